//! Password reset, email verification and invites over a real AuthService.

use std::sync::Arc;
use std::time::Duration;

use auth_service::RequestScope;
use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, Error, EventBus, FixedClock,
    MemoryRateLimiter, MemoryTokenBackend, MemoryUserStore, UserId, UserStore,
};
use auth_service::{EmailVerificationService, Invite, InviteLinks, PasswordResetService};
use auth_sign::OneTimeTokens;
use auth_testkit::TestHasher;
use tokio::sync::mpsc;

const SECRET: &str = "0123456789abcdef0123456789abcdef-signing";
const PASSWORD: &str = "violet-otter-sings-42";
const NEW_PASSWORD: &str = "amber-heron-dances-7";

struct Env {
    auth: AuthService,
    clock: FixedClock,
    users: MemoryUserStore,
    reset: PasswordResetService,
    verification: EmailVerificationService,
    mail: mpsc::UnboundedReceiver<AuthEvent>,
}

fn env() -> Env {
    let clock = FixedClock::from_unix(1_700_000_000);
    let config = AuthConfig::builder()
        .signing_secret(SECRET)
        .build()
        .unwrap();
    let users = MemoryUserStore::new().with_clock(clock.clone());
    let events = EventBus::new();
    let (tx, mail) = mpsc::unbounded_channel();
    for kind in [
        AuthEventKind::PasswordResetRequested,
        AuthEventKind::PasswordResetCompleted,
        AuthEventKind::PasswordChanged,
        AuthEventKind::EmailVerificationRequested,
        AuthEventKind::EmailVerified,
    ] {
        let tx = tx.clone();
        events.on_fn(kind, move |e| {
            let tx = tx.clone();
            async move {
                tx.send(e).ok();
                Ok(())
            }
        });
    }
    let auth = AuthService::new(
        config.clone(),
        users.clone(),
        TestHasher::fast(),
        MemoryTokenBackend::new().with_clock(clock.clone()),
    )
    .unwrap()
    .with_events(events)
    .with_clock(clock.clone())
    .with_rate_limiter(MemoryRateLimiter::new(config.rate_limit()).with_clock(clock.clone()));
    let reset = PasswordResetService::new(auth.clone())
        .unwrap()
        .with_clock(clock.clone());
    let verification = EmailVerificationService::new(auth.clone())
        .unwrap()
        .with_clock(clock.clone());
    Env {
        auth,
        clock,
        users,
        reset,
        verification,
        mail,
    }
}

async fn next_reset_token(mail: &mut mpsc::UnboundedReceiver<AuthEvent>) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), mail.recv())
            .await
            .unwrap()
            .unwrap()
        {
            AuthEvent::PasswordResetRequested { token, .. } => {
                return token.expose_secret().to_owned();
            }
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_round_trip_ends_every_session() {
    let mut e = env();
    e.auth
        .register("alice@example.com", PASSWORD)
        .await
        .unwrap();
    let session = e.auth.login("alice@example.com", PASSWORD).await.unwrap();
    e.reset.request("Alice@Example.com").await.unwrap();
    let token = next_reset_token(&mut e.mail).await;

    e.reset.confirm(&token, NEW_PASSWORD).await.unwrap();
    assert!(
        e.auth.authenticate(session.access_token()).await.is_err(),
        "sessions end"
    );
    assert!(e.auth.login("alice@example.com", PASSWORD).await.is_err());
    e.auth
        .login("alice@example.com", NEW_PASSWORD)
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Ok(ev) = e.mail.try_recv() {
        kinds.push(ev.kind());
    }
    // The account had never proven its address: the reset link did.
    assert_eq!(
        kinds,
        [
            AuthEventKind::PasswordChanged,
            AuthEventKind::EmailVerified,
            AuthEventKind::PasswordResetCompleted
        ]
    );
    let user = e
        .auth
        .find_user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.is_verified);

    assert!(
        matches!(
            e.reset.confirm(&token, "third-phrase-entirely-9").await,
            Err(Error::TokenInvalid)
        ),
        "replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reveals_nothing_and_mails_only_active_accounts() {
    let mut e = env();
    let inactive = e
        .auth
        .register("inactive@example.com", PASSWORD)
        .await
        .unwrap();
    e.auth.set_active(&inactive.id, false).await.unwrap();
    for email in ["nobody@example.com", "inactive@example.com"] {
        assert!(e.reset.request(email).await.is_ok());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        e.mail.try_recv().is_err(),
        "no mail for missing or inactive accounts"
    );
    assert!(matches!(
        e.reset.request("not an email").await,
        Err(Error::Validation(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_does_not_wait_for_the_mailer() {
    let e = env();
    e.auth.register("slow@example.com", PASSWORD).await.unwrap();
    // A mailer that blocks until released: if `request` awaited it, this would time out.
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let (delivered_tx, delivered_rx) = tokio::sync::oneshot::channel::<()>();
    let delivered_tx = Arc::new(std::sync::Mutex::new(Some(delivered_tx)));
    e.auth
        .events()
        .on_fn(AuthEventKind::PasswordResetRequested, move |_| {
            let release_rx = Arc::clone(&release_rx);
            let delivered_tx = Arc::clone(&delivered_tx);
            async move {
                if let Some(rx) = release_rx.lock().await.take() {
                    rx.await.ok();
                }
                if let Some(tx) = delivered_tx.lock().unwrap().take() {
                    tx.send(()).ok();
                }
                Ok(())
            }
        });
    tokio::time::timeout(Duration::from_secs(5), e.reset.request("slow@example.com"))
        .await
        .expect("request returned while the mailer was still blocked")
        .unwrap();
    release_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), delivered_rx)
        .await
        .expect("the mail was delivered afterwards")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_requests_are_rate_limited_per_email() {
    let e = env();
    for _ in 0..5 {
        e.reset.request("target@example.com").await.unwrap();
    }
    assert!(matches!(
        e.reset.request("target@example.com").await,
        Err(Error::RateLimited { .. })
    ));
    e.reset.request("other@example.com").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_die_with_the_state_they_were_made_for() {
    let e = env();
    let user = e.auth.register("bob@example.com", PASSWORD).await.unwrap();

    // A login changes last_login: an earlier link dies.
    let token = e.reset.tokens().make(&user);
    e.clock.advance(Duration::from_secs(1));
    e.auth.login("bob@example.com", PASSWORD).await.unwrap();
    assert!(matches!(
        e.reset.confirm(&token, NEW_PASSWORD).await,
        Err(Error::TokenInvalid)
    ));

    // A password change: dies.
    let user = e.users.find_by_id(&user.id).await.unwrap().unwrap();
    let token = e.reset.tokens().make(&user);
    e.auth
        .set_password(&user.id, "a-completely-new-phrase-3")
        .await
        .unwrap();
    assert!(matches!(
        e.reset.confirm(&token, NEW_PASSWORD).await,
        Err(Error::TokenInvalid)
    ));

    // Deactivation: dies.
    let user = e.users.find_by_id(&user.id).await.unwrap().unwrap();
    let token = e.reset.tokens().make(&user);
    e.auth.set_active(&user.id, false).await.unwrap();
    assert!(matches!(
        e.reset.confirm(&token, NEW_PASSWORD).await,
        Err(Error::TokenInvalid)
    ));
    e.auth.set_active(&user.id, true).await.unwrap();

    // Age: one hour by default.
    let user = e.users.find_by_id(&user.id).await.unwrap().unwrap();
    let token = e.reset.tokens().make(&user);
    e.clock.advance(Duration::from_secs(3601));
    assert!(matches!(
        e.reset.confirm(&token, NEW_PASSWORD).await,
        Err(Error::TokenExpired)
    ));

    // A policy failure leaves the token usable.
    let token = e.reset.tokens().make(&user);
    assert!(matches!(
        e.reset.confirm(&token, "123").await,
        Err(Error::Validation(_))
    ));
    e.reset.confirm(&token, NEW_PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirmations_of_one_token_succeed_once() {
    let e = env();
    let user = e.auth.register("race@example.com", PASSWORD).await.unwrap();
    let token = Arc::new(e.reset.tokens().make(&user));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let reset = e.reset.clone();
        let token = Arc::clone(&token);
        tasks.push(tokio::spawn(async move {
            reset
                .confirm(&token, &format!("racing-phrase-number-{i}"))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(Error::TokenInvalid) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_one_purpose_fail_every_other_purpose() {
    let e = env();
    let user = e
        .auth
        .register("carol@example.com", PASSWORD)
        .await
        .unwrap();
    let reset_token = e.reset.tokens().make(&user);
    let verify_token = e.verification.make_token(&user);
    let unsalted = auth_sign::make_token(SECRET, user.id.as_str()).unwrap(); // tortoise-auth's reset token shape
    let invite = InviteLinks::new(SECRET)
        .unwrap()
        .make(&Invite::new("team", user.id.clone()))
        .unwrap();

    for token in [&verify_token, &unsalted, &invite] {
        assert!(
            e.reset.confirm(token, NEW_PASSWORD).await.is_err(),
            "accepted as reset: {token}"
        );
    }
    for token in [&reset_token, &unsalted, &invite] {
        assert!(
            e.verification.confirm(token).await.is_err(),
            "accepted as verification: {token}"
        );
    }
    let links = InviteLinks::new(SECRET).unwrap();
    for token in [&reset_token, &verify_token, &unsalted] {
        assert!(links.accept(token).is_err(), "accepted as invite: {token}");
    }
    // Another purpose with the same generator shape.
    let other = OneTimeTokens::new(SECRET, "something-else", Duration::from_secs(3600)).unwrap();
    assert!(
        e.reset
            .confirm(&other.make(&user), NEW_PASSWORD)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_verification_flow() {
    let mut e = env();
    let user = e.auth.register("dora@example.com", PASSWORD).await.unwrap();
    e.verification.request(&user.id).await.unwrap();
    let token = match e.mail.recv().await.unwrap() {
        AuthEvent::EmailVerificationRequested { token, email, .. } => {
            assert_eq!(email, "dora@example.com");
            token.expose_secret().to_owned()
        }
        other => panic!("{other:?}"),
    };
    let verified = e.verification.confirm(&token).await.unwrap();
    assert!(verified.is_verified);
    assert!(matches!(
        e.mail.recv().await.unwrap(),
        AuthEvent::EmailVerified { .. }
    ));
    assert!(
        matches!(
            e.verification.confirm(&token).await,
            Err(Error::TokenInvalid)
        ),
        "once"
    );
    // Already verified: no new mail.
    e.verification.request(&user.id).await.unwrap();
    assert!(e.mail.try_recv().is_err());

    // Expiry, 24 hours by default.
    let other = e.auth.register("eve@example.com", PASSWORD).await.unwrap();
    let token = e.verification.make_token(&other);
    e.clock.advance(Duration::from_secs(86_401));
    assert!(matches!(
        e.verification.confirm(&token).await,
        Err(Error::TokenExpired)
    ));
    assert!(matches!(
        e.verification.request(&UserId::new("999")).await,
        Err(Error::UserNotFound)
    ));
}

#[test]
fn invites_expire_and_resist_tampering() {
    let clock = FixedClock::from_unix(1_700_000_000);
    let links = InviteLinks::new(SECRET).unwrap().with_clock(clock.clone());
    let invite = Invite::new("team-7", UserId::new("42")).with_email("new@example.com");
    let token = links.make(&invite).unwrap();
    assert_eq!(links.accept(&token).unwrap(), invite);
    let tampered = token.replacen('e', "f", 1);
    assert!(links.accept(&tampered).is_err());
    clock.advance(InviteLinks::DEFAULT_MAX_AGE + Duration::from_secs(1));
    assert!(matches!(
        links.accept(&token),
        Err(auth_sign::SignError::Expired { .. })
    ));
}

#[test]
fn flows_need_a_signing_secret() {
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let err = PasswordResetService::new(auth.clone()).unwrap_err();
    assert!(matches!(err, Error::Configuration(_)));
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"));
    assert!(EmailVerificationService::new(auth).is_err());
}

/// The reset mail goes out after the answer, in a task of its own; its audit entry still
/// carries the address and user agent of the request that asked for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_requests_audit_entry_keeps_the_clients_address() {
    let mut e = env();
    let store = auth_service::MemoryAuditStore::new();
    auth_service::AuditLog::new(store.clone()).install(e.auth.events());
    let carol = e
        .auth
        .register("carol@example.com", PASSWORD)
        .await
        .unwrap();
    let meta = auth_service::SessionMeta::new()
        .with_ip("203.0.113.77".parse().unwrap())
        .with_user_agent("reset-test/1");
    auth_service::RequestContext::new(meta)
        .scope(e.reset.request("carol@example.com"))
        .await
        .unwrap();
    next_reset_token(&mut e.mail).await;
    // The audit handler runs after the mail's, in the same background task.
    let query = auth_service::AuditQuery::for_user(carol.id.clone());
    let mut entry = None;
    for _ in 0..500 {
        let entries = auth_service::AuditStore::list(&store, &query)
            .await
            .unwrap();
        entry = entries
            .into_iter()
            .find(|x| x.kind == "password_reset_requested");
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entry = entry.expect("the request is in the audit log");
    assert_eq!(entry.ip.as_deref(), Some("203.0.113.77"));
    assert_eq!(entry.user_agent.as_deref(), Some("reset-test/1"));
}
