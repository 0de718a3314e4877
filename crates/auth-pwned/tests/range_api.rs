//! `HttpPwnedPasswords` against a local stand-in for Have I Been Pwned's range API (the real
//! one cannot be reached from CI): an axum server speaking the same protocol, with padding
//! lines, that records what it was asked. Then the whole path: a policy with the check, an
//! `AuthService` refusing a breached password at sign-up, change and reset.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_pwned::HttpPwnedPasswords;
use auth_service::{
    AuthConfig, AuthService, BreachSourceFailure, BreachedPasswordValidator, Error,
    MemoryTokenBackend, MemoryUserStore, PasswordPolicy, PwnedPasswords,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;

/// SHA-1("password") = 5BAA6 1E4C9B93F3F0682250B6CF8331B7EE68FD8, here seen 10,434,004 times.
const PASSWORD_SUFFIX: &str = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";

#[derive(Clone, Default)]
struct Seen {
    paths: Arc<Mutex<Vec<String>>>,
    padding_headers: Arc<Mutex<Vec<Option<String>>>>,
}

/// SHA-1("password"), spelled out (the published test vector) rather than computed with the
/// crate's own code path.
fn password_sha1() -> String {
    format!("5BAA6{PASSWORD_SUFFIX}")
}

async fn range(
    State((seen, mode)): State<(Seen, &'static str)>,
    Path(prefix): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    seen.paths.lock().unwrap().push(prefix.clone());
    seen.padding_headers.lock().unwrap().push(
        headers
            .get("add-padding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    match mode {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, String::new())
        }
        "error" => (StatusCode::SERVICE_UNAVAILABLE, "down".into()),
        "huge" => (StatusCode::OK, "0".repeat(auth_pwned::MAX_RANGE_BYTES + 10)),
        "garbage" => (StatusCode::OK, "<html>not a range</html>".into()),
        _ => {
            // A real-looking range: the matching suffix among others, padding lines with
            // count 0, CRLF line ends as the real API sends.
            let mut body = String::new();
            body.push_str("0018A45C4D1DEF81644B54AB7F969B88D65:21\r\n");
            if prefix == "5BAA6" {
                body.push_str(&format!("{PASSWORD_SUFFIX}:10434004\r\n"));
            }
            body.push_str("00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n");
            body.push_str("011053FD0102E94D6AE2F8B83D76FAF94F6:0");
            (StatusCode::OK, body)
        }
    }
}

async fn stand_in(mode: &'static str) -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/range/{prefix}", get(range))
        .with_state((seen.clone(), mode));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn asks_only_the_prefix_with_padding_and_ignores_padding_lines() {
    let (url, seen) = stand_in("normal").await;
    let pwned = HttpPwnedPasswords::new(&url).unwrap();
    let hex = password_sha1();
    let range = pwned.range(&hex[..5]).await.unwrap();
    assert_eq!(range.count(&hex[5..]), 10_434_004);
    assert_eq!(range.count("00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), 0);
    assert_eq!(range.len(), 2, "padding lines are dropped");

    let v = BreachedPasswordValidator::new(pwned.clone());
    assert_eq!(v.occurrences("password").await.unwrap(), 10_434_004);
    assert_eq!(v.occurrences("violet-otter-sings-42").await.unwrap(), 0);
    let paths = seen.paths.lock().unwrap().clone();
    assert_eq!(paths.len(), 3);
    assert_eq!(paths[1], "5BAA6");
    for p in &paths {
        assert_eq!(p.len(), 5, "only five characters of the hash leave: {p}");
        assert!(!p.contains("password"));
    }
    assert!(
        seen.padding_headers
            .lock()
            .unwrap()
            .iter()
            .all(|h| h.as_deref() == Some("true"))
    );
}

#[tokio::test]
async fn threshold_decides() {
    let (url, _) = stand_in("normal").await;
    let pwned = HttpPwnedPasswords::new(&url).unwrap();
    let strict = BreachedPasswordValidator::new(pwned.clone());
    let Err(Error::Validation(e)) = strict.check("password").await else {
        panic!("a breached password passed");
    };
    assert_eq!(e.errors()[0].code, "breached_password");
    let lax = BreachedPasswordValidator::new(pwned).with_threshold(20_000_000);
    assert!(lax.check("password").await.is_ok());
}

#[tokio::test]
async fn failing_source_fails_open_by_default_and_closed_when_asked() {
    for mode in ["error", "huge", "garbage", "slow"] {
        let (url, _) = stand_in(mode).await;
        let pwned = HttpPwnedPasswords::new(&url)
            .unwrap()
            .with_timeout(Duration::from_millis(300));
        assert!(
            matches!(pwned.range("5BAA6").await, Err(Error::Backend(_))),
            "{mode}"
        );
        let open = BreachedPasswordValidator::new(pwned.clone());
        assert!(open.check("password").await.is_ok(), "{mode}: fail open");
        let closed =
            BreachedPasswordValidator::new(pwned).on_source_failure(BreachSourceFailure::Refuse);
        assert!(
            matches!(closed.check("password").await, Err(Error::Backend(_))),
            "{mode}: fail closed"
        );
    }
    // Nothing listening at all.
    let pwned = HttpPwnedPasswords::new("http://127.0.0.1:9").unwrap();
    assert!(
        BreachedPasswordValidator::new(pwned)
            .check("password")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_service_refuses_breached_passwords_in_every_flow() {
    let (url, seen) = stand_in("normal").await;
    let policy = PasswordPolicy::default().with_breach_check(BreachedPasswordValidator::new(
        HttpPwnedPasswords::new(&url).unwrap(),
    ));
    let config = AuthConfig::builder()
        .password_policy(policy)
        .build()
        .unwrap();
    let auth = AuthService::new(
        config,
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    // A password that passes the local rules is asked about; one that fails them is not.
    let before = seen.paths.lock().unwrap().len();
    assert!(auth.register("a@example.com", "12345").await.is_err());
    assert_eq!(
        seen.paths.lock().unwrap().len(),
        before,
        "no request for a refused password"
    );
    auth.register("a@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    assert_eq!(seen.paths.lock().unwrap().len(), before + 1);

    // "password" is refused by the common-password rule before any request; the breach check
    // is what refuses it under a policy without that rule.
    let lax =
        AuthConfig::builder()
            .password_policy(PasswordPolicy::empty().with_breach_check(
                BreachedPasswordValidator::new(HttpPwnedPasswords::new(&url).unwrap()),
            ))
            .build()
            .unwrap();
    let auth = AuthService::new(
        lax,
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let breached = |r: Result<(), Error>| match r {
        Err(Error::Validation(e)) => e.errors().iter().any(|f| f.code == "breached_password"),
        _ => false,
    };
    assert!(breached(
        auth.register("b@example.com", "password").await.map(|_| ())
    ));
    let user2 = auth
        .register("b@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    assert!(breached(
        auth.change_password(&user2.id, "violet-otter-sings-42", "password", None)
            .await
    ));
    assert!(breached(auth.reset_password(&user2, "password").await));
    assert!(breached(auth.set_password(&user2.id, "password").await));
    // Nothing changed: the old password still logs in.
    assert!(
        auth.login("b@example.com", "violet-otter-sings-42")
            .await
            .is_ok()
    );
}
