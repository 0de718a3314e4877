//! AuthService flows end to end on the memory stores.

use std::sync::Arc;
use std::time::Duration;

use auth_service::{
    AuthConfig, AuthEventKind, AuthService, AuthUser, Error, LoginOptions, MemoryTokenBackend,
    MemoryUserStore, NewUser, SessionMeta, UserId, UserStore,
};
use auth_testkit::TestHasher;

use crate::common::{Harness, PASSWORD};

#[tokio::test]
async fn register_login_authenticate_refresh_logout() {
    let h = Harness::new();
    let user = h
        .auth
        .register("Alice@Example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(user.email, "alice@example.com");
    assert!(user.joined_at.is_some());

    let login = h.auth.login("ALICE@example.COM", PASSWORD).await.unwrap();
    assert_eq!(login.user.id, user.id);
    let me = h.auth.authenticate(login.access_token()).await.unwrap();
    assert_eq!(me.id, user.id);
    assert_eq!(
        me.last_login.unwrap().unix_timestamp(),
        crate::common::START
    );

    let next = h.auth.refresh(login.refresh_token()).await.unwrap();
    assert!(
        h.auth
            .authenticate(next.access_token.expose_secret())
            .await
            .is_ok()
    );
    h.auth
        .logout(next.access_token.expose_secret())
        .await
        .unwrap();
    assert!(matches!(
        h.auth.authenticate(next.access_token.expose_secret()).await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        h.auth.refresh(next.refresh_token.expose_secret()).await,
        Err(Error::TokenRevoked)
    ));
    assert_eq!(
        h.kinds(),
        [
            AuthEventKind::UserRegistered,
            AuthEventKind::UserLogin,
            AuthEventKind::TokenRefreshed,
            AuthEventKind::UserLogout,
        ]
    );
}

#[tokio::test]
async fn every_login_failure_is_the_same_error() {
    let h = Harness::new();
    h.auth
        .register("active@example.com", PASSWORD)
        .await
        .unwrap();
    let inactive = h
        .auth
        .register("inactive@example.com", PASSWORD)
        .await
        .unwrap();
    h.auth.set_active(&inactive.id, false).await.unwrap();
    let unusable = h
        .auth
        .register("unusable@example.com", PASSWORD)
        .await
        .unwrap();
    h.auth.set_unusable_password(&unusable.id).await.unwrap();
    h.users
        .create(NewUser::new("nopassword@example.com"))
        .await
        .unwrap();

    let long = "x".repeat(5000);
    let cases = [
        ("missing@example.com", PASSWORD),
        ("inactive@example.com", PASSWORD),
        ("unusable@example.com", PASSWORD),
        ("nopassword@example.com", PASSWORD),
        ("active@example.com", "wrong password"),
        ("active@example.com", long.as_str()),
        ("not an email", PASSWORD),
        ("", ""),
    ];
    for (email, password) in cases {
        let err = h.auth.login(email, password).await.unwrap_err();
        assert!(matches!(err, Error::InvalidCredentials), "{email}: {err:?}");
        assert_eq!(err.to_string(), "invalid credentials");
    }
}

#[tokio::test]
async fn failed_logins_lock_the_account_for_the_whole_lockout() {
    let h = Harness::new();
    h.auth.register("bob@example.com", PASSWORD).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(
            h.auth.login("bob@example.com", "nope").await,
            Err(Error::InvalidCredentials)
        ));
    }
    // Even the right password is refused during the lockout, without hashing.
    let err = h.auth.login("bob@example.com", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after } if retry_after == Duration::from_secs(600)),
        "{err:?}"
    );
    h.clock.advance(Duration::from_secs(301));
    assert!(
        matches!(h.auth.login("bob@example.com", PASSWORD).await, Err(Error::RateLimited { retry_after }) if retry_after == Duration::from_secs(299)),
        "the lockout outlasts the window"
    );
    h.clock.advance(Duration::from_secs(300));
    h.auth.login("bob@example.com", PASSWORD).await.unwrap();
    assert!(h.kinds().contains(&AuthEventKind::RateLimitExceeded));
    // Unknown accounts are limited the same way.
    for _ in 0..5 {
        let _ = h.auth.login("ghost@example.com", "x").await;
    }
    assert!(matches!(
        h.auth.login("ghost@example.com", "x").await,
        Err(Error::RateLimited { .. })
    ));
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let h = Harness::new();
    h.auth
        .register("carol@example.com", PASSWORD)
        .await
        .unwrap();
    for _ in 0..4 {
        let _ = h.auth.login("carol@example.com", "nope").await;
    }
    h.auth.login("carol@example.com", PASSWORD).await.unwrap();
    for _ in 0..4 {
        let _ = h.auth.login("carol@example.com", "nope").await;
    }
    h.auth.login("carol@example.com", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn login_failure_events_carry_the_reason() {
    let h = Harness::new();
    let _ = h.auth.login("ghost@example.com", "x").await;
    let events = h.events.lock().unwrap().clone();
    match &events[0] {
        auth_service::AuthEvent::UserLoginFailed { identifier, reason } => {
            assert_eq!(identifier, "ghost@example.com");
            assert_eq!(*reason, auth_service::LoginFailureReason::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn weaker_hashes_are_upgraded_on_login_only() {
    // Hashes made with 1 iteration; the service's primary hasher uses 3.
    let h = Harness::with_hasher(AuthConfig::default(), TestHasher::with_iterations(3));
    let legacy = auth_service::PasswordHasher::hash(&TestHasher::fast(), PASSWORD).unwrap();
    let user = h
        .users
        .create(NewUser::new("legacy@example.com").with_password_hash(legacy.clone()))
        .await
        .unwrap();

    assert!(h.auth.login("legacy@example.com", "wrong").await.is_err());
    let stored = h.users.find_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(
        stored.password_hash.as_deref(),
        Some(legacy.as_str()),
        "a failed login rewrites nothing"
    );

    h.auth.login("legacy@example.com", PASSWORD).await.unwrap();
    let stored = h.users.find_by_id(&user.id).await.unwrap().unwrap();
    let new_hash = stored.password_hash.unwrap();
    assert!(new_hash.starts_with("test-pbkdf2-sha256$3$"), "{new_hash}");
    assert!(h.kinds().contains(&AuthEventKind::PasswordRehashed));
    h.clear_events();
    h.auth.login("legacy@example.com", PASSWORD).await.unwrap();
    assert!(
        !h.kinds().contains(&AuthEventKind::PasswordRehashed),
        "no second upgrade"
    );
}

#[tokio::test]
async fn refresh_refuses_inactive_and_deleted_users() {
    let h = Harness::new();
    h.auth.register("dave@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("dave@example.com", PASSWORD).await.unwrap();
    // Deactivate directly in the store, so no token is revoked: the service must check.
    h.users.set_active(&login.user.id, false).await.unwrap();
    assert!(matches!(
        h.auth.authenticate(login.access_token()).await,
        Err(Error::InactiveUser)
    ));
    assert!(matches!(
        h.auth.refresh(login.refresh_token()).await,
        Err(Error::InactiveUser)
    ));
    // A refused refresh changes nothing: once the user is active again, the session continues.
    h.users.set_active(&login.user.id, true).await.unwrap();
    assert!(h.auth.refresh(login.refresh_token()).await.is_ok());

    // A token whose user does not exist.
    let backend = MemoryTokenBackend::new();
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        backend.clone(),
    )
    .unwrap();
    let orphan = auth_service::TokenBackend::issue(
        &backend,
        &auth_service::IssueRequest::new(UserId::new("404")),
    )
    .await
    .unwrap();
    assert!(matches!(
        auth.authenticate(orphan.access_token.expose_secret()).await,
        Err(Error::TokenInvalid)
    ));
    assert!(matches!(
        auth.refresh(orphan.refresh_token.expose_secret()).await,
        Err(Error::TokenInvalid)
    ));
}

#[tokio::test]
async fn refresh_keeps_extra_claims_and_stops_at_the_absolute_lifetime() {
    let config = AuthConfig::builder()
        .access_token_lifetime(Duration::from_secs(60))
        .refresh_token_lifetime(Duration::from_secs(600))
        .refresh_absolute_lifetime(Duration::from_secs(1000))
        .build()
        .unwrap();
    let h = Harness::with_config(config);
    h.auth.register("erin@example.com", PASSWORD).await.unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("tenant".into(), "acme".into());
    let login = h
        .auth
        .login_with(
            "erin@example.com",
            PASSWORD,
            LoginOptions::new().with_extra(extra),
        )
        .await
        .unwrap();
    let mut refresh = login.refresh_token().to_owned();
    for _ in 0..2 {
        h.clock.advance(Duration::from_secs(450));
        let pair = h.auth.refresh(&refresh).await.unwrap();
        let claims = h
            .auth
            .verify_access(pair.access_token.expose_secret())
            .await
            .unwrap();
        assert_eq!(claims.extra.unwrap()["tenant"], "acme");
        assert!(pair.refresh_expires_at.unix_timestamp() <= crate::common::START + 1000);
        refresh = pair.refresh_token.expose_secret().to_owned();
    }
    h.clock.advance(Duration::from_secs(101));
    assert!(matches!(
        h.auth.refresh(&refresh).await,
        Err(Error::TokenExpired)
    ));
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family_and_emits_an_event() {
    let h = Harness::new();
    h.auth.register("fay@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("fay@example.com", PASSWORD).await.unwrap();
    let other = h.auth.login("fay@example.com", PASSWORD).await.unwrap();
    let rotated = h.auth.refresh(login.refresh_token()).await.unwrap();
    // The thief replays the old token.
    assert!(matches!(
        h.auth.refresh(login.refresh_token()).await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        h.auth
            .authenticate(rotated.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
    assert!(h.kinds().contains(&AuthEventKind::RefreshReuseDetected));
    // Another device's session is untouched.
    h.auth.authenticate(other.access_token()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_refreshes_one_success() {
    let h = Harness::new();
    h.auth.register("gus@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("gus@example.com", PASSWORD).await.unwrap();
    let token: Arc<str> = login.refresh_token().into();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let auth = h.auth.clone();
        let token = Arc::clone(&token);
        tasks.push(tokio::spawn(async move { auth.refresh(&token).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::TokenRevoked) => {}
            Err(other) => panic!("losers get TokenRevoked, got {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn logout_all_and_sessions() {
    let h = Harness::new();
    h.auth.register("hal@example.com", PASSWORD).await.unwrap();
    let meta = SessionMeta::new()
        .with_ip("203.0.113.9".parse().unwrap())
        .with_user_agent("phone/1.0");
    let phone = h
        .auth
        .login_with(
            "hal@example.com",
            PASSWORD,
            LoginOptions::new().with_meta(meta),
        )
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(5));
    let laptop = h.auth.login("hal@example.com", PASSWORD).await.unwrap();
    let sessions = h.auth.sessions(&phone.user.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions[0].created_at > sessions[1].created_at,
        "newest first"
    );
    assert_eq!(sessions[1].meta.user_agent.as_deref(), Some("phone/1.0"));

    assert_eq!(h.auth.logout_all(&phone.user.id).await.unwrap(), 2);
    for token in [phone.access_token(), laptop.access_token()] {
        assert!(matches!(
            h.auth.authenticate(token).await,
            Err(Error::TokenRevoked)
        ));
    }
    assert!(h.auth.sessions(&phone.user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn logout_accepts_refresh_and_unknown_tokens() {
    let h = Harness::new();
    h.auth.register("ivy@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("ivy@example.com", PASSWORD).await.unwrap();
    h.auth.logout(login.refresh_token()).await.unwrap();
    assert!(h.auth.authenticate(login.access_token()).await.is_err());
    h.auth.logout("never-issued").await.unwrap();
    h.auth.logout(login.access_token()).await.unwrap();
}

#[tokio::test]
async fn change_password_requires_the_current_one_and_ends_other_sessions() {
    let h = Harness::new();
    h.auth.register("jo@example.com", PASSWORD).await.unwrap();
    let here = h.auth.login("jo@example.com", PASSWORD).await.unwrap();
    let there = h.auth.login("jo@example.com", PASSWORD).await.unwrap();
    let id = here.user.id.clone();
    let session = h
        .auth
        .verify_access(here.access_token())
        .await
        .unwrap()
        .family;

    assert!(matches!(
        h.auth
            .change_password(&id, "wrong", "amber-heron-dances-7", None)
            .await,
        Err(Error::InvalidCredentials)
    ));
    let err = h
        .auth
        .change_password(&id, PASSWORD, "password", None)
        .await
        .unwrap_err();
    let Error::Validation(errors) = err else {
        panic!("{err:?}")
    };
    assert!(
        errors
            .errors()
            .iter()
            .any(|e| e.code == "password_too_common")
    );

    h.auth
        .change_password(&id, PASSWORD, "amber-heron-dances-7", session.as_deref())
        .await
        .unwrap();
    h.auth.authenticate(here.access_token()).await.unwrap();
    assert!(h.auth.authenticate(there.access_token()).await.is_err());
    assert!(h.auth.login("jo@example.com", PASSWORD).await.is_err());
    h.auth
        .login("jo@example.com", "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(h.kinds().contains(&AuthEventKind::PasswordChanged));
}

#[tokio::test]
async fn set_password_validates_and_ends_every_session() {
    let h = Harness::new();
    let user = h.auth.register("kim@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("kim@example.com", PASSWORD).await.unwrap();
    assert!(matches!(
        h.auth.set_password(&user.id, "kim@example.com").await,
        Err(Error::Validation(_))
    ));
    h.auth
        .set_password(&user.id, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(h.auth.authenticate(login.access_token()).await.is_err());
    assert!(matches!(
        h.auth
            .set_password(&UserId::new("999"), "amber-heron-dances-7")
            .await,
        Err(Error::UserNotFound)
    ));
}

#[tokio::test]
async fn register_reports_every_problem_at_once() {
    let h = Harness::new();
    let err = h
        .auth
        .register("lee@example.com", "1234")
        .await
        .unwrap_err();
    let Error::Validation(errors) = err else {
        panic!("{err:?}")
    };
    let codes: Vec<&str> = errors.errors().iter().map(|e| e.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "password_too_short",
            "password_too_common",
            "password_entirely_numeric"
        ]
    );
    assert!(matches!(
        h.auth.register("not-an-email", PASSWORD).await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        h.auth.register("lee@example.com", "lee@example.com").await,
        Err(Error::Validation(_))
    ));
    assert!(h.users.is_empty(), "nothing half-written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registration_of_one_email_makes_one_user() {
    let h = Harness::new();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let auth = h.auth.clone();
        tasks.push(tokio::spawn(async move {
            auth.register("race@example.com", PASSWORD).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::EmailTaken) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(h.users.len(), 1);
}

#[tokio::test]
async fn services_are_independent_tenants() {
    let a = Harness::new();
    let b = Harness::new();
    a.auth.register("same@example.com", PASSWORD).await.unwrap();
    b.auth
        .register("same@example.com", "amber-heron-dances-7")
        .await
        .unwrap();
    let la = a.auth.login("same@example.com", PASSWORD).await.unwrap();
    assert!(b.auth.login("same@example.com", PASSWORD).await.is_err());
    assert!(
        b.auth.authenticate(la.access_token()).await.is_err(),
        "tenants share no tokens"
    );
}

#[tokio::test]
async fn access_tokens_expire_by_the_clock() {
    let h = Harness::new();
    h.auth.register("max@example.com", PASSWORD).await.unwrap();
    let login = h.auth.login("max@example.com", PASSWORD).await.unwrap();
    h.clock.advance(Duration::from_secs(901));
    assert!(matches!(
        h.auth.authenticate(login.access_token()).await,
        Err(Error::TokenExpired)
    ));
    let next = h.auth.refresh(login.refresh_token()).await.unwrap();
    let me = h
        .auth
        .authenticate(next.access_token.expose_secret())
        .await
        .unwrap();
    assert!(me.is_active());
}

/// One address trying many accounts is locked out like one account tried many times; the
/// lock emits `AccountLocked`, says nothing about whether the accounts exist, and ends by
/// itself.
#[tokio::test]
async fn per_ip_limit_and_account_locked_event() {
    use auth_service::{
        AuthEventKind, Error, LoginOptions, MemoryRateLimiter, RateLimitPolicy, SessionMeta,
    };
    let h = Harness::new();
    let policy =
        RateLimitPolicy::new(3, Duration::from_secs(300), Duration::from_secs(600)).unwrap();
    let auth = h
        .auth
        .clone()
        .with_ip_rate_limiter(MemoryRateLimiter::new(policy).with_clock(h.clock.clone()));
    auth.register("real@example.com", PASSWORD).await.unwrap();
    let mut meta = SessionMeta::default();
    meta.ip = Some("203.0.113.9".parse().unwrap());
    let from_ip = || LoginOptions::new().with_meta(meta.clone());

    for email in ["a@example.com", "real@example.com", "c@example.com"] {
        assert!(matches!(
            auth.login_with(email, "wrong", from_ip()).await,
            Err(Error::InvalidCredentials)
        ));
    }
    assert!(h.kinds().contains(&AuthEventKind::AccountLocked));
    // The address is locked, even for the right password of an account it never tried...
    let locked = auth
        .login_with("real@example.com", PASSWORD, from_ip())
        .await;
    let Err(Error::RateLimited { retry_after }) = locked else {
        panic!("{locked:?}")
    };
    assert_eq!(retry_after, Duration::from_secs(600));
    // ...while the same account from another address is fine.
    assert!(auth.login("real@example.com", PASSWORD).await.is_ok());
    // Unknown and existing accounts are locked the same way by the per-account limiter.
    h.clock.advance(Duration::from_secs(601));
    assert!(
        auth.login_with("real@example.com", PASSWORD, from_ip())
            .await
            .is_ok()
    );
}

/// The default in-memory limiter follows the service's clock, so a lockout ends when that
/// clock says so.
#[tokio::test]
async fn default_limiter_follows_the_service_clock() {
    use auth_service::{
        AuthConfig, AuthService, Error, FixedClock, MemoryTokenBackend, MemoryUserStore,
    };
    let clock = FixedClock::from_unix(crate::common::START);
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_clock(clock.clone());
    auth.register("z@example.com", PASSWORD).await.unwrap();
    for _ in 0..5 {
        let _ = auth.login("z@example.com", "wrong").await;
    }
    assert!(matches!(
        auth.login("z@example.com", PASSWORD).await,
        Err(Error::RateLimited { .. })
    ));
    clock.advance(Duration::from_secs(3_600));
    assert!(auth.login("z@example.com", PASSWORD).await.is_ok());
}

/// A token store whose writes fail as a full disk does: sessions cannot be started.
struct FullDisk(MemoryTokenBackend);

fn disk_full() -> Error {
    Error::backend(
        "saving a session",
        std::io::Error::from(std::io::ErrorKind::StorageFull),
    )
}

#[auth_service::async_trait]
impl auth_service::TokenBackend for FullDisk {
    async fn issue(
        &self,
        _: &auth_service::IssueRequest,
    ) -> auth_service::Result<auth_service::TokenPair> {
        Err(disk_full())
    }
    async fn verify(
        &self,
        token: &str,
        kind: auth_service::TokenKind,
    ) -> auth_service::Result<auth_service::Claims> {
        self.0.verify(token, kind).await
    }
    async fn rotate(
        &self,
        refresh_token: &str,
        request: &auth_service::RotateRequest,
        guard: &dyn auth_service::RefreshGuard,
    ) -> auth_service::Result<auth_service::RotateOutcome> {
        self.0.rotate(refresh_token, request, guard).await
    }
    async fn revoke(&self, token: &str) -> auth_service::Result<()> {
        self.0.revoke(token).await
    }
    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> auth_service::Result<u64> {
        self.0.revoke_all(user_id, keep).await
    }
    async fn sessions(
        &self,
        user_id: &UserId,
    ) -> auth_service::Result<Vec<auth_service::SessionInfo>> {
        self.0.sessions(user_id).await
    }
    async fn revoke_session(
        &self,
        user_id: &UserId,
        session_id: &str,
    ) -> auth_service::Result<bool> {
        self.0.revoke_session(user_id, session_id).await
    }
    async fn cleanup_expired(&self) -> auth_service::Result<u64> {
        self.0.cleanup_expired().await
    }
}

/// Finding (issue 30): on a full disk, sign-ups that answered 503 had created the account
/// anyway, so the address was taken by an account nobody had been told of. Now a sign-up that
/// answers an error leaves nothing behind.
#[tokio::test]
async fn a_sign_up_that_fails_creates_nothing() {
    let users = MemoryUserStore::new();
    let auth = AuthService::new(
        AuthConfig::default(),
        users.clone(),
        TestHasher::fast(),
        FullDisk(MemoryTokenBackend::new()),
    )
    .unwrap();
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    for kind in AuthEventKind::ALL {
        let events = Arc::clone(&events);
        auth.events().on_fn(kind, move |e| {
            let events = Arc::clone(&events);
            async move {
                events.lock().unwrap().push(e.kind());
                Ok(())
            }
        });
    }
    let err = auth
        .sign_up("tess@example.com", PASSWORD, LoginOptions::new())
        .await
        .unwrap_err();
    assert!(err.is_storage_failure(), "{err}");
    assert!(
        users
            .find_by_email("tess@example.com")
            .await
            .unwrap()
            .is_none(),
        "the account was removed again"
    );
    let kinds = events.lock().unwrap().clone();
    assert!(
        kinds.ends_with(&[AuthEventKind::UserRegistered, AuthEventKind::UserDeleted]),
        "{kinds:?}"
    );
}
