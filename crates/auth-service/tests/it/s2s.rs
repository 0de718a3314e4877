use std::sync::{Arc, Mutex};

use auth_service::{AuthEvent, AuthEventKind, Error, EventBus, S2SService};

const TOKEN_A: &str = "service-token-a-0123456789abcdef0123";
const TOKEN_B: &str = "service-token-b-0123456789abcdef0123";

#[tokio::test]
async fn fixed_tokens_rotate_and_emit_events() {
    let bus = EventBus::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for kind in [AuthEventKind::S2sAuthSuccess, AuthEventKind::S2sAuthFailed] {
        let seen = Arc::clone(&seen);
        bus.on_fn(kind, move |e| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push(e);
                Ok(())
            }
        });
    }
    let s2s = S2SService::new([TOKEN_A, TOKEN_B], bus);
    assert_eq!(
        s2s.authenticate(TOKEN_B, Some("billing"))
            .await
            .unwrap()
            .display_name(),
        "billing"
    );
    assert!(s2s.authenticate(TOKEN_A, None).await.is_ok());
    for bad in [
        "",
        "service-token-a",
        &format!("{TOKEN_A}x"),
        &"x".repeat(10_000),
    ] {
        assert!(matches!(
            s2s.authenticate(bad, None).await,
            Err(Error::InvalidCredentials)
        ));
    }
    let seen = seen.lock().unwrap();
    assert!(
        matches!(&seen[0], AuthEvent::S2sAuthSuccess { service_name: Some(n) } if n == "billing")
    );
    assert_eq!(seen.len(), 6);
}

#[tokio::test]
async fn disabled_and_empty_sources_are_configuration_errors() {
    let err = S2SService::disabled()
        .authenticate(TOKEN_A, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Configuration(_)));
    assert!(err.to_string().contains("AUTH_S2S_TOKENS"), "{err}");

    let empty = S2SService::from_source("MY_S2S_VAR", || Some(" , ".into()), EventBus::new());
    let err = empty.authenticate(TOKEN_A, None).await.unwrap_err();
    assert!(err.to_string().contains("MY_S2S_VAR"), "{err}");
}

#[tokio::test]
async fn dynamic_sources_are_read_on_every_call() {
    let current = Arc::new(Mutex::new(TOKEN_A.to_owned()));
    let source = Arc::clone(&current);
    let s2s = S2SService::from_source(
        "vault",
        move || Some(source.lock().unwrap().clone()),
        EventBus::new(),
    );
    assert!(s2s.authenticate(TOKEN_A, None).await.is_ok());
    *current.lock().unwrap() = format!("{TOKEN_A},{TOKEN_B}");
    assert!(s2s.authenticate(TOKEN_B, None).await.is_ok());
    *current.lock().unwrap() = TOKEN_B.to_owned();
    assert!(
        s2s.authenticate(TOKEN_A, None).await.is_err(),
        "a removed token stops working"
    );
}

#[tokio::test]
async fn env_var_source_reports_the_variable() {
    let s2s = S2SService::from_env_var("AUTH_TEST_S2S_UNSET_VARIABLE", EventBus::new());
    let err = s2s.authenticate(TOKEN_A, None).await.unwrap_err();
    assert!(err.to_string().contains("AUTH_TEST_S2S_UNSET_VARIABLE"));
}
