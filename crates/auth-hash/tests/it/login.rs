//! Wired into AuthService: legacy hashes upgrade in the login flow; failures rewrite nothing.

use std::sync::{Arc, Mutex};

use auth_hash::MultiHasher;
use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, Error, MemoryTokenBackend, MemoryUserStore,
    NewUser, UserStore,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_library_s_hash_logs_in_and_is_upgraded() {
    let users = MemoryUserStore::new();
    let config = AuthConfig::builder()
        .rate_limit_max_attempts(10_000)
        .build()
        .unwrap();
    let auth = AuthService::new(
        config,
        users.clone(),
        MultiHasher::default(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let rehashed = Arc::new(Mutex::new(0));
    let r = Arc::clone(&rehashed);
    auth.events()
        .on_fn(AuthEventKind::PasswordRehashed, move |e| {
            let r = Arc::clone(&r);
            async move {
                assert!(matches!(
                    e,
                    AuthEvent::PasswordRehashed {
                        algorithm: "argon2id",
                        ..
                    }
                ));
                *r.lock().unwrap() += 1;
                Ok(())
            }
        });

    // One vector per library and scheme, with a non-empty password (login needs one to be typed).
    let mut seen = std::collections::BTreeSet::new();
    let mut upgraded = 0;
    for (i, v) in crate::vectors::load().into_iter().enumerate() {
        if v.password.is_empty() || v.password.len() > 72 || crate::vectors::costly(&v) {
            continue;
        }
        if !seen.insert((v.library.clone(), v.scheme.clone())) {
            continue;
        }
        let email = format!("user{i}@example.com");
        users
            .create(NewUser::new(email.clone()).with_password_hash(v.hash.clone()))
            .await
            .unwrap();

        assert!(matches!(
            auth.login(&email, &v.wrong[0]).await,
            Err(Error::InvalidCredentials)
        ));
        let stored = users
            .find_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert_eq!(
            stored, v.hash,
            "a failed login rewrites nothing ({})",
            v.scheme
        );

        auth.login(&email, &v.password)
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", v.library, v.scheme));
        let stored = users
            .find_by_email(&email)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{} {} → {stored}",
            v.library,
            v.scheme
        );
        auth.login(&email, &v.password).await.unwrap();
        upgraded += 1;
    }
    assert_eq!(seen.len(), 17, "every library and scheme: {seen:?}");
    assert_eq!(upgraded, 17);
    assert_eq!(
        *rehashed.lock().unwrap(),
        17,
        "one upgrade each, none on the second login"
    );
}
