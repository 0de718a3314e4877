//! One orchestrator: the same rule through every entry point of `AuthService` (login,
//! `check_password` as HTTP Basic uses it, `sign_in`, change password, sign-up, onboarding's
//! pending accounts, reset), on the memory stores. The same attacks over HTTP against the
//! server, on every database, are in `crates/auth-server/tests/it/attacks.rs`.

use std::sync::Arc;
use std::time::Duration;

use auth_service::{
    AuthEventKind, Error, LoginOptions, LoginOutcome, MemoryRateLimiter, RateLimitPolicy,
    RateLimiter, SessionMeta,
};

use crate::common::{Harness, PASSWORD};

fn from(ip: &str) -> LoginOptions {
    LoginOptions::new().with_meta(SessionMeta::new().with_ip(ip.parse().unwrap()))
}

fn outcome_counts<T>(results: &[Result<T, Error>]) -> (usize, usize) {
    let wrong = results
        .iter()
        .filter(|r| matches!(r, Err(Error::InvalidCredentials)))
        .count();
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(Error::RateLimited { .. })))
        .count();
    (wrong, limited)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_guesses_get_exactly_the_budget_on_every_entry_point() {
    let h = Harness::new();
    h.auth.register("ann@example.com", PASSWORD).await.unwrap();
    let auth = Arc::new(h.auth.clone());

    // The login path.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let auth = Arc::clone(&auth);
        tasks.push(tokio::spawn(async move {
            auth.login_with(
                "ann@example.com",
                &format!("guess-{i}"),
                from("203.0.113.1"),
            )
            .await
            .map(|_| ())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(outcome_counts(&results), (5, 25), "login");

    // The Basic path (check_password), from another client: its own budget, same rule.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let auth = Arc::clone(&auth);
        tasks.push(tokio::spawn(async move {
            auth.check_password(
                "ann@example.com",
                &format!("guess-{i}"),
                &from("203.0.113.2"),
            )
            .await
            .map(|_| ())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(outcome_counts(&results), (5, 25), "check_password");

    // The two-step path shares the login keys: locked from both clients.
    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert!(matches!(
            auth.sign_in("ann@example.com", PASSWORD, from(ip)).await,
            Err(Error::RateLimited { .. })
        ));
    }
    // The owner elsewhere is not locked out.
    assert!(matches!(
        auth.sign_in("ann@example.com", PASSWORD, from("198.51.100.9"))
            .await,
        Ok(LoginOutcome::Session(_))
    ));
    assert!(h.kinds().contains(&AuthEventKind::AccountLocked));

    // The current-password check of a password change.
    let user = auth
        .find_user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let auth = Arc::clone(&auth);
        let id = user.id.clone();
        tasks.push(tokio::spawn(async move {
            auth.change_password(&id, &format!("guess-{i}"), "amber-heron-dances-7", None)
                .await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(outcome_counts(&results), (5, 25), "change_password");
}

#[tokio::test]
async fn crafted_identifiers_stay_in_the_login_namespace() {
    let h = Harness::new();
    let ip_limiter = MemoryRateLimiter::new(
        RateLimitPolicy::new(3, Duration::from_secs(300), Duration::from_secs(900)).unwrap(),
    );
    let auth = h.auth.clone().with_ip_rate_limiter(ip_limiter.clone());
    let user = auth.register("bo@example.com", PASSWORD).await.unwrap();
    for crafted in [
        "ip:198.51.100.7".to_owned(),
        format!("mfa:{}", user.id),
        "signup:198.51.100.7".to_owned(),
        "login:198.51.100.7|bo@example.com".to_owned(),
    ] {
        for _ in 0..6 {
            let _ = auth.login_with(&crafted, "x", LoginOptions::new()).await;
        }
    }
    // No other throttle's key was touched.
    for key in [
        "ip:198.51.100.7".to_owned(),
        format!("mfa:{}", user.id),
        "signup:198.51.100.7".to_owned(),
    ] {
        assert_eq!(
            ip_limiter.check(&key).await.unwrap().retry_after(),
            None,
            "{key}"
        );
    }
    assert!(
        auth.login_with("bo@example.com", PASSWORD, from("198.51.100.7"))
            .await
            .is_ok()
    );
    // Identifiers in failure events are the canonical email, or a hash for non-addresses.
    let failed: Vec<String> = h
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            auth_service::AuthEvent::UserLoginFailed { identifier, .. } => Some(identifier.clone()),
            _ => None,
        })
        .collect();
    // The first three are not addresses; the last one is (a `|` is allowed in a local part),
    // and stays inside the login namespace all the same.
    assert!(
        failed[..15]
            .iter()
            .all(|i| i.starts_with('#') && i.len() == 65),
        "{failed:?}"
    );
    assert!(
        failed[15..]
            .iter()
            .all(|i| i == "login:198.51.100.7|bo@example.com")
    );
    // A crafted address cannot land on another client's key either: bo is not locked from
    // 198.51.100.7 by calls that came with no address at all.
    assert!(
        h.auth
            .parts()
            .limiter
            .check("login:198.51.100.7|bo@example.com")
            .await
            .unwrap()
            .is_allowed()
    );
}

#[tokio::test]
async fn ipv6_clients_count_by_their_64() {
    let h = Harness::new();
    let auth = h.auth.clone().with_ip_rate_limiter(MemoryRateLimiter::new(
        RateLimitPolicy::new(3, Duration::from_secs(300), Duration::from_secs(900)).unwrap(),
    ));
    for n in 0..3 {
        let opts = from(&format!("2001:db8:1:2::{n:x}"));
        let _ = auth
            .login_with(&format!("u{n}@example.com"), "x", opts)
            .await;
    }
    // A fresh address in the same /64 is the same client.
    assert!(matches!(
        auth.login_with("u9@example.com", "x", from("2001:db8:1:2:ffff::1"))
            .await,
        Err(Error::RateLimited { .. })
    ));
    assert!(matches!(
        auth.login_with("u9@example.com", "x", from("2001:db8:1:3::1"))
            .await,
        Err(Error::InvalidCredentials)
    ));
}

#[tokio::test]
async fn pending_onboarding_accounts_sign_in_nowhere() {
    let h = Harness::new();
    let meta = SessionMeta::new();
    let user = h
        .auth
        .register_pending("cy@example.com", PASSWORD, &meta)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        h.auth.login("cy@example.com", PASSWORD).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        h.auth
            .check_password("cy@example.com", PASSWORD, &LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        h.auth
            .sign_in("cy@example.com", PASSWORD, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(
        h.auth
            .password_reset_target("cy@example.com")
            .await
            .unwrap()
            .is_none(),
        "no reset mail for a pending account"
    );
    // The same address again: the same work, nothing created, nothing revealed.
    assert!(
        h.auth
            .register_pending("cy@example.com", PASSWORD, &meta)
            .await
            .unwrap()
            .is_none()
    );
    let done = h
        .auth
        .complete_onboarding(&user.id, LoginOptions::new())
        .await
        .unwrap();
    assert!(h.auth.authenticate(done.access_token()).await.is_ok());
    assert!(h.auth.login("cy@example.com", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn sign_ups_are_throttled_per_client_on_every_path() {
    let h = Harness::new();
    let meta = SessionMeta::new().with_ip("203.0.113.50".parse().unwrap());
    for i in 0..6 {
        h.auth
            .register_with(&format!("a{i}@example.com"), PASSWORD, &meta)
            .await
            .unwrap();
    }
    for i in 0..4 {
        h.auth
            .register_pending(&format!("b{i}@example.com"), PASSWORD, &meta)
            .await
            .unwrap();
    }
    // Ten from this address, whichever path: the eleventh is refused on both.
    assert!(matches!(
        h.auth.register_with("c@example.com", PASSWORD, &meta).await,
        Err(Error::RateLimited { .. })
    ));
    assert!(matches!(
        h.auth
            .register_pending("d@example.com", PASSWORD, &meta)
            .await,
        Err(Error::RateLimited { .. })
    ));
    assert!(matches!(
        h.auth
            .sign_up(
                "e@example.com",
                PASSWORD,
                LoginOptions::new().with_meta(meta.clone())
            )
            .await,
        Err(Error::RateLimited { .. })
    ));
    // Another address signs up.
    let other = SessionMeta::new().with_ip("203.0.113.51".parse().unwrap());
    assert!(
        h.auth
            .register_with("f@example.com", PASSWORD, &other)
            .await
            .is_ok()
    );
    // The throttle follows the service clock.
    h.clock.advance(Duration::from_secs(3600));
    assert!(
        h.auth
            .register_with("g@example.com", PASSWORD, &meta)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn resets_prove_the_address_and_use_the_one_password_path() {
    let h = Harness::new();
    let user = h.auth.register("di@example.com", PASSWORD).await.unwrap();
    let phone = h.auth.login("di@example.com", PASSWORD).await.unwrap();
    h.auth
        .reset_password(&user, "amber-heron-dances-7")
        .await
        .unwrap();
    let after = h.auth.find_user(&user.id).await.unwrap().unwrap();
    assert!(after.is_verified, "the reset link proved the address");
    assert!(
        h.auth.authenticate(phone.access_token()).await.is_err(),
        "sessions end"
    );
    // The same read of the user again: the compare-and-set refuses it.
    assert!(matches!(
        h.auth.reset_password(&user, "amber-heron-dances-8").await,
        Err(Error::TokenInvalid)
    ));
    let kinds = h.kinds();
    assert!(kinds.contains(&AuthEventKind::PasswordChanged));
    assert!(kinds.contains(&AuthEventKind::EmailVerified));
    assert!(kinds.contains(&AuthEventKind::PasswordResetCompleted));
}
