//! No secret appears in Debug, Display, errors or logs captured while the flows run.

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth_core::{AuthConfig, AuthEvent, EventBus, S2SService, SecretString, UserId};
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{Harness, PASSWORD};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const S2S_TOKEN: &str = "s2s-secret-token-0123456789abcdef0123";
const RESET_TOKEN: &str = "reset-token-secret-value-987654321";
const CODE: &str = "493817";

#[tokio::test(flavor = "current_thread")]
async fn flows_leak_no_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::new();
    let mut seen: Vec<String> = Vec::new();
    let mut debug_output = String::new();

    let user = h.auth.register("zed@example.com", PASSWORD).await.unwrap();
    let stored_hash = h
        .auth
        .users()
        .find_by_id(&user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    debug_output += &format!("{user:?}");
    let login = h.auth.login("zed@example.com", PASSWORD).await.unwrap();
    debug_output += &format!("{login:?}{:?}", login.tokens);
    seen.push(login.access_token().to_owned());
    seen.push(login.refresh_token().to_owned());
    for attempt in ["wrong-password-1", "wrong-password-2"] {
        let err = h.auth.login("zed@example.com", attempt).await.unwrap_err();
        debug_output += &format!("{err:?}{err}");
        seen.push(attempt.to_owned());
    }
    let next = h.auth.refresh(login.refresh_token()).await.unwrap();
    seen.push(next.access_token.expose_secret().to_owned());
    seen.push(next.refresh_token.expose_secret().to_owned());
    let err = h.auth.refresh(login.refresh_token()).await.unwrap_err();
    debug_output += &format!("{err:?}{err}");
    let err = h.auth.authenticate(login.access_token()).await.unwrap_err();
    debug_output += &format!("{err:?}{err}");
    let again = h.auth.login("zed@example.com", PASSWORD).await.unwrap();
    seen.push(again.access_token().to_owned());
    h.auth
        .change_password(&user.id, PASSWORD, "amber-heron-dances-7", None)
        .await
        .unwrap();
    seen.push("amber-heron-dances-7".to_owned());
    h.auth.logout(again.access_token()).await.unwrap();

    let s2s = S2SService::new([S2S_TOKEN], EventBus::new());
    s2s.authenticate(S2S_TOKEN, Some("billing")).await.unwrap();
    let err = s2s
        .authenticate("s2s-wrong-token-value", None)
        .await
        .unwrap_err();
    debug_output += &format!("{err:?}{err}{s2s:?}");
    seen.push(S2S_TOKEN.to_owned());
    seen.push("s2s-wrong-token-value".to_owned());

    h.auth
        .events()
        .emit(AuthEvent::PasswordResetRequested {
            user_id: UserId::new("1"),
            email: "zed@example.com".into(),
            token: SecretString::new(RESET_TOKEN),
        })
        .await;
    h.auth
        .events()
        .emit(AuthEvent::VerificationCodeGenerated {
            email: "zed@example.com".into(),
            code: SecretString::new(CODE),
        })
        .await;
    seen.push(RESET_TOKEN.to_owned());
    let config = AuthConfig::builder()
        .signing_secret("signing-secret-0123456789abcdef01234567")
        .build()
        .unwrap();
    debug_output += &format!("{config:?}{:?}", h.auth);
    seen.push("signing-secret-0123456789abcdef01234567".to_owned());

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("user_login"), "the capture works: {logs}");
    assert!(logs.contains("verification_code_generated"));
    let haystack = format!("{logs}\n{debug_output}");
    for secret in seen
        .iter()
        .map(String::as_str)
        .chain([PASSWORD, stored_hash.as_str()])
    {
        assert!(!haystack.contains(secret), "a secret leaked: {secret}");
    }
    // The code is 6 digits; check the event field rather than every digit run in the log.
    assert!(
        !haystack.contains(&format!("\"{CODE}\"")),
        "the code leaked"
    );
    assert!(!haystack.contains(&format!("({CODE})")), "the code leaked");
}
