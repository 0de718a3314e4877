//! No secret appears in Debug, Display, errors or logs while the flows run.
//!
//! Its own test binary on purpose: it installs a *global* tracing subscriber. A thread-scoped one
//! (`set_default`) misses events when other tests in the same process hit the same callsites
//! first, because tracing caches each callsite's interest.

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth::sign::{EmailVerificationService, PasswordResetService, Signer};
use auth::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, EventBus, MemoryTokenBackend,
    MemoryUserStore, S2SService, SecretString, UserId, UserStore,
};
use auth_testkit::TestHasher;
use tracing_subscriber::fmt::MakeWriter;

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

const PASSWORD: &str = "violet-otter-sings-42";
const NEW_PASSWORD: &str = "amber-heron-dances-7";
const SIGNING_SECRET: &str = "signing-secret-0123456789abcdef01234567";
const S2S_TOKEN: &str = "s2s-secret-token-0123456789abcdef0123";
const CODE: &str = "493817";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_leak_no_secret() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish(),
    )
    .unwrap();

    let config = AuthConfig::builder()
        .signing_secret(SIGNING_SECRET)
        .build()
        .unwrap();
    let users = MemoryUserStore::new();
    let auth = AuthService::new(
        config.clone(),
        users.clone(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    // The audit log records every event: its rows are searched for secrets too.
    let audit = auth::MemoryAuditStore::new();
    auth::AuditLog::new(audit.clone())
        .skip([])
        .install(auth.events());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for kind in [
        AuthEventKind::PasswordResetRequested,
        AuthEventKind::EmailVerificationRequested,
    ] {
        let tx = tx.clone();
        auth.events().on_fn(kind, move |e| {
            let tx = tx.clone();
            async move {
                tx.send(e).ok();
                Ok(())
            }
        });
    }
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        NEW_PASSWORD.into(),
        SIGNING_SECRET.into(),
        S2S_TOKEN.into(),
    ];
    let mut debug_output = String::new();

    let user = auth.register("zed@example.com", PASSWORD).await.unwrap();
    secrets.push(
        users
            .find_by_id(&user.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap(),
    );
    debug_output += &format!("{user:?}{config:?}{auth:?}");
    let login = auth.login("zed@example.com", PASSWORD).await.unwrap();
    debug_output += &format!("{login:?}{:?}", login.tokens);
    secrets.push(login.access_token().to_owned());
    secrets.push(login.refresh_token().to_owned());
    for attempt in ["wrong-password-1", "wrong-password-2"] {
        let err = auth.login("zed@example.com", attempt).await.unwrap_err();
        debug_output += &format!("{err:?}{err}");
        secrets.push(attempt.to_owned());
    }
    // Failed-login identifiers are logged hashed: what was typed into the email field may be a
    // password, and an address that has no account is nobody's business.
    for typed in [
        "hunter2-typed-into-the-email-field",
        "lost-soul@example.com",
    ] {
        let err = auth.login(typed, PASSWORD).await.unwrap_err();
        debug_output += &format!("{err:?}{err}");
        secrets.push(typed.to_owned());
    }
    let next = auth.refresh(login.refresh_token()).await.unwrap();
    secrets.push(next.access_token.expose_secret().to_owned());
    secrets.push(next.refresh_token.expose_secret().to_owned());
    let err = auth.refresh(login.refresh_token()).await.unwrap_err(); // reuse
    debug_output += &format!("{err:?}{err}");
    let again = auth.login("zed@example.com", PASSWORD).await.unwrap();
    secrets.push(again.access_token().to_owned());
    auth.logout(again.access_token()).await.unwrap();

    // Signed links.
    let reset = PasswordResetService::new(auth.clone()).unwrap();
    reset.request("zed@example.com").await.unwrap();
    let AuthEvent::PasswordResetRequested { token, .. } = rx.recv().await.unwrap() else {
        panic!()
    };
    secrets.push(token.expose_secret().to_owned());
    reset
        .confirm(token.expose_secret(), NEW_PASSWORD)
        .await
        .unwrap();
    let err = reset
        .confirm(token.expose_secret(), "yet-another-phrase-5")
        .await
        .unwrap_err();
    debug_output += &format!("{err:?}{err}{reset:?}");
    // The reset proved zed's address; verification by link is for an unproven one.
    let unproven = auth.register("yan@example.com", PASSWORD).await.unwrap();
    let verification = EmailVerificationService::new(auth.clone()).unwrap();
    verification.request(&unproven.id).await.unwrap();
    let AuthEvent::EmailVerificationRequested { token, .. } = rx.recv().await.unwrap() else {
        panic!()
    };
    secrets.push(token.expose_secret().to_owned());
    verification.confirm(token.expose_secret()).await.unwrap();
    let signer = Signer::new(SIGNING_SECRET)
        .unwrap()
        .with_salt("unsubscribe");
    let signed = signer.sign("42");
    let err = signer.unsign(&format!("{signed}x")).unwrap_err();
    debug_output += &format!("{err:?}{err}{signer:?}");

    // Service-to-service.
    let s2s = S2SService::new([S2S_TOKEN], EventBus::new());
    s2s.authenticate(S2S_TOKEN, Some("billing")).await.unwrap();
    let err = s2s
        .authenticate("s2s-wrong-token-value", None)
        .await
        .unwrap_err();
    debug_output += &format!("{err:?}{err}{s2s:?}");
    secrets.push("s2s-wrong-token-value".into());

    // Events carrying secrets.
    auth.events()
        .emit(AuthEvent::VerificationCodeGenerated {
            email: "zed@example.com".into(),
            code: SecretString::new(CODE),
        })
        .await;
    auth.events()
        .emit(AuthEvent::PasswordResetRequested {
            user_id: UserId::new("1"),
            email: "zed@example.com".into(),
            token: SecretString::new("reset-token-secret-value-987654321"),
        })
        .await;
    secrets.push("reset-token-secret-value-987654321".into());

    // Two-factor: the TOTP secret, its URI, codes, recovery codes and challenges.
    {
        use auth::LoginOptions;
        use auth::mfa::{LoginOutcome, MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
        let key = [0x5au8; 32];
        let cipher = SecretCipher::new("k1", &key).unwrap();
        let mfa = Mfa::new(
            MemoryMfaStore::new(),
            cipher.clone(),
            MfaConfig::new("Acme"),
        )
        .unwrap()
        .with_events(auth.events().clone());
        let guarded = auth.clone().with_second_factor(mfa.clone());
        let user = guarded.register("mfa@example.com", PASSWORD).await.unwrap();
        guarded
            .prove_address(&user.id, auth_service::AddressProof::InSession)
            .await
            .unwrap();
        let user = guarded.find_user(&user.id).await.unwrap().unwrap();
        let enrollment = mfa.begin_enrollment(&user).await.unwrap();
        secrets.push(enrollment.secret_base32().expose_secret().to_owned());
        secrets.push(enrollment.otpauth_uri().expose_secret().to_owned());
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
        let app = mfa.authenticator(&user.id).await.unwrap();
        let codes = mfa
            .confirm_enrollment(&user.id, &app.generate(now))
            .await
            .unwrap();
        secrets.extend(codes.expose());
        let LoginOutcome::Challenge(challenge) = mfa
            .login(&guarded, "mfa@example.com", PASSWORD, LoginOptions::new())
            .await
            .unwrap()
        else {
            panic!("a challenge")
        };
        secrets.push(challenge.token.expose_secret().to_owned());
        let _ = mfa
            .complete_login(
                &guarded,
                challenge.token.expose_secret(),
                "999999",
                LoginOptions::new(),
            )
            .await;
        let done = mfa
            .complete_login(
                &guarded,
                challenge.token.expose_secret(),
                &codes.expose()[0],
                LoginOptions::new(),
            )
            .await
            .unwrap();
        secrets.push(done.access_token().to_owned());
        debug_output += &format!("{enrollment:?}{codes:?}{challenge:?}{mfa:?}{cipher:?}{done:?}");
        secrets.push(String::from_utf8_lossy(&key).into_owned());
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "user_login",
        "user_login_failed",
        "refresh_reuse_detected",
        "password_reset_completed",
        "email_verified",
        "verification_code_generated",
        "s2s_auth_failed",
        "mfa_enabled",
        "mfa_failed",
        "recovery_code_used",
    ] {
        assert!(
            logs.contains(expected),
            "the capture sees {expected}: {logs}"
        );
    }
    let rows = serde_json::to_string(&audit.entries().unwrap()).unwrap();
    for expected in [
        "user_login_failed",
        "password_reset_requested",
        "password_reset_completed",
        "verification_code_generated",
        "mfa_enabled",
    ] {
        assert!(rows.contains(expected), "the audit log has {expected}");
    }
    let haystack = format!("{logs}\n{debug_output}\n{rows}");
    for secret in &secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret leaked: {secret}"
        );
    }
    // The code is 6 digits; look for it as a value rather than any digit run in timestamps.
    for shape in [
        format!("\"{CODE}\""),
        format!("({CODE})"),
        format!("={CODE}"),
    ] {
        assert!(!haystack.contains(&shape), "the code leaked");
    }
}
