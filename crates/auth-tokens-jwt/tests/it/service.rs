//! The JWT backend under AuthService: the user checks apply to the JWT path too.

use std::time::Duration;

use auth_service::{
    AuthConfig, AuthService, Error, FixedClock, LoginOptions, MemoryUserStore, UserStore,
};
use auth_testkit::TestHasher;
use auth_tokens_jwt::{Algorithm, JwtBackend};

use crate::conformance::SECRET;

const PASSWORD: &str = "violet-otter-sings-42";

fn service(clock: &FixedClock) -> (AuthService, MemoryUserStore) {
    let users = MemoryUserStore::new();
    let jwt = JwtBackend::try_hmac(Algorithm::HS256, SECRET)
        .unwrap()
        .with_clock(clock.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        users.clone(),
        TestHasher::fast(),
        jwt,
    )
    .unwrap()
    .with_clock(clock.clone());
    (auth, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refresh_logout_with_jwts() {
    let clock = FixedClock::from_unix(1_795_345_084);
    let (auth, users) = service(&clock);
    auth.register("alice@example.com", PASSWORD).await.unwrap();
    let mut extra = serde_json::Map::new();
    extra.insert("role".into(), "admin".into());
    let login = auth
        .login_with(
            "alice@example.com",
            PASSWORD,
            LoginOptions::new().with_extra(extra),
        )
        .await
        .unwrap();
    assert_eq!(login.access_token().matches('.').count(), 2, "a JWT");
    assert_eq!(
        auth.authenticate(login.access_token()).await.unwrap().email,
        "alice@example.com"
    );

    clock.advance(Duration::from_secs(60));
    let next = auth.refresh(login.refresh_token()).await.unwrap();
    let claims = auth
        .verify_access(next.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(
        claims.extra.unwrap()["role"],
        "admin",
        "extra claims survive refresh"
    );
    // Replayed after the reuse window (10 s by default).
    clock.advance(Duration::from_secs(11));
    assert!(
        matches!(
            auth.refresh(login.refresh_token()).await,
            Err(Error::TokenRevoked)
        ),
        "reuse"
    );
    assert!(
        auth.authenticate(next.access_token.expose_secret())
            .await
            .is_err(),
        "reuse ends the session"
    );

    // Logout ends the session (the token and its pair).
    let s = auth.login("alice@example.com", PASSWORD).await.unwrap();
    auth.logout(s.access_token()).await.unwrap();
    assert!(matches!(
        auth.authenticate(s.access_token()).await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        auth.refresh(s.refresh_token()).await,
        Err(Error::TokenRevoked)
    ));

    // A deactivated user cannot refresh, even with a valid token.
    let s = auth.login("alice@example.com", PASSWORD).await.unwrap();
    users.set_active(&s.user.id, false).await.unwrap();
    assert!(matches!(
        auth.refresh(s.refresh_token()).await,
        Err(Error::InactiveUser)
    ));
    assert!(matches!(
        auth.authenticate(s.access_token()).await,
        Err(Error::InactiveUser)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_and_change_password_keep_one_session() {
    let clock = FixedClock::from_unix(1_795_345_084);
    let (auth, _) = service(&clock);
    auth.register("bob@example.com", PASSWORD).await.unwrap();
    let laptop = auth.login("bob@example.com", PASSWORD).await.unwrap();
    let phone = auth.login("bob@example.com", PASSWORD).await.unwrap();
    let here = auth
        .verify_access(laptop.access_token())
        .await
        .unwrap()
        .family;
    auth.change_password(
        &laptop.user.id,
        PASSWORD,
        "amber-heron-dances-7",
        here.as_deref(),
    )
    .await
    .unwrap();
    assert!(
        auth.authenticate(laptop.access_token()).await.is_ok(),
        "the session changing the password stays"
    );
    assert!(matches!(
        auth.authenticate(phone.access_token()).await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        auth.refresh(phone.refresh_token()).await,
        Err(Error::TokenRevoked)
    ));

    clock.advance(Duration::from_secs(5));
    auth.logout_all(&laptop.user.id).await.unwrap();
    assert!(matches!(
        auth.authenticate(laptop.access_token()).await,
        Err(Error::TokenRevoked)
    ));
    // Logging in again afterwards works.
    clock.advance(Duration::from_secs(2));
    let again = auth
        .login("bob@example.com", "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.authenticate(again.access_token()).await.is_ok());
}

/// A rotation revokes the access token issued with the refresh token only as long as that
/// access token could verify (15 minutes), not as long as the refresh token (7 days): the
/// revocation mirror holds each rotation's entry for minutes, not a week.
#[tokio::test]
async fn rotation_revokes_the_old_access_token_until_it_expires() {
    use auth_service::{
        AllowAll, Change, IssueRequest, MemoryRevocationStore, RevocationStore, RotateRequest,
        TokenBackend, TokenLifetimes, UserId,
    };
    let clock = FixedClock::from_unix(1_795_345_084);
    let store = MemoryRevocationStore::new().with_clock(clock.clone());
    let jwt = auth_tokens_jwt::JwtBackend::hmac(auth_tokens_jwt::Algorithm::HS256, SECRET)
        .with_revocation_store(store.clone())
        .with_clock(clock.clone());
    let lifetimes = TokenLifetimes::new(
        Duration::from_secs(900),
        Duration::from_secs(7 * 86_400),
        Duration::from_secs(30 * 86_400),
    )
    .unwrap();
    let pair = jwt
        .issue(&IssueRequest::new(UserId::new("7")).with_lifetimes(lifetimes))
        .await
        .unwrap();
    jwt.rotate(
        pair.refresh_token.expose_secret(),
        &RotateRequest::new().with_lifetimes(lifetimes),
        &AllowAll,
    )
    .await
    .unwrap();
    let live = store.live_revocations().await.unwrap().unwrap();
    let until: Vec<_> = live
        .iter()
        .filter_map(|c| match c {
            Change::TokenRevoked { until, .. } => Some(*until),
            _ => None,
        })
        .collect();
    assert!(
        until.contains(&pair.access_expires_at),
        "the old access token is revoked until its own expiry: {until:?}"
    );
    assert!(
        until
            .iter()
            .all(|u| *u <= pair.access_expires_at || *u == pair.refresh_expires_at),
        "{until:?}"
    );
    clock.advance(Duration::from_secs(901));
    assert_eq!(
        store.cleanup_expired().await.unwrap(),
        1,
        "gone with the access token"
    );
}
