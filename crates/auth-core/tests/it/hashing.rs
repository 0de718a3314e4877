//! Hashing runs off the runtime, bounded, with equal work for every failure.

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthConfig, AuthService, Error, MemoryTokenBackend, MemoryUserStore, PasswordHasher,
    PasswordHashing,
};
use auth_testkit::{CountingHasher, TestHasher};

#[tokio::test(flavor = "current_thread")]
async fn hashing_never_runs_on_the_runtime_thread() {
    let hasher = CountingHasher::new(TestHasher::fast(), Duration::ZERO);
    let stats = hasher.stats();
    // Construction hashes the dummy password synchronously; do it off this thread so the
    // statistics only show the async calls.
    let hashing = std::thread::spawn(move || PasswordHashing::new(hasher).unwrap())
        .join()
        .unwrap();
    let runtime_thread = std::thread::current().id();
    let hash = hashing.hash("pw").await.unwrap();
    assert!(hashing.verify("pw", Some(&hash)).await.unwrap().valid);
    hashing.dummy_verify("pw").await.unwrap();
    assert!(stats.calls() >= 3);
    assert!(
        !stats.threads().contains(&runtime_thread),
        "hash and verify ran on the async runtime's thread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_never_exceeds_the_bound() {
    let hasher = CountingHasher::new(TestHasher::fast(), Duration::from_millis(5));
    let stats = hasher.stats();
    let config = AuthConfig::builder()
        .hash_concurrency(2)
        .rate_limit_max_attempts(1000)
        .build()
        .unwrap();
    let auth = AuthService::new(
        config,
        MemoryUserStore::new(),
        hasher,
        MemoryTokenBackend::new(),
    )
    .unwrap();
    auth.register("flood@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            // Distinct emails, so the rate limiter does not cut the flood short.
            let email = if i % 2 == 0 {
                "flood@example.com".to_owned()
            } else {
                format!("nobody{i}@example.com")
            };
            let password = if i % 4 == 0 {
                "violet-otter-sings-42"
            } else {
                "wrong"
            };
            auth.login(&email, password).await
        }));
    }
    for t in tasks {
        let _ = t.await.unwrap();
    }
    assert!(
        stats.calls() >= 64,
        "every login verified once, got {}",
        stats.calls()
    );
    assert!(
        stats.max_in_flight() <= 2,
        "max in flight {}",
        stats.max_in_flight()
    );
    assert_eq!(
        stats.max_in_flight(),
        2,
        "the flood did run hashes in parallel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_callers_keep_the_bound() {
    let hasher = CountingHasher::new(TestHasher::fast(), Duration::from_millis(20));
    let stats = hasher.stats();
    let hashing = Arc::new(PasswordHashing::new(hasher).unwrap().with_concurrency(1));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let hashing = Arc::clone(&hashing);
        tasks.push(tokio::spawn(
            async move { hashing.dummy_verify("pw").await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for t in &tasks {
        t.abort();
    }
    hashing.dummy_verify("pw").await.unwrap();
    assert_eq!(stats.max_in_flight(), 1);
}

#[tokio::test]
async fn every_failure_kind_costs_exactly_one_verification() {
    let hasher = CountingHasher::new(TestHasher::fast(), Duration::ZERO);
    let stats = hasher.stats();
    let hashing = PasswordHashing::new(hasher)
        .unwrap()
        .with_max_password_length(64);
    let real = hashing.hash("right").await.unwrap();
    let long = "x".repeat(65);
    let cases: [(&str, Option<&str>); 7] = [
        ("wrong", Some(real.as_str())),
        ("right", None),
        ("right", Some("!unusable")),
        ("right", Some("")),
        (long.as_str(), Some(real.as_str())),
        ("right", Some("unknown$format")),
        ("right", Some("test-pbkdf2-sha256$1$bad")),
    ];
    for (password, stored) in cases {
        let before = stats.calls();
        let v = hashing.verify(password, stored).await.unwrap();
        assert!(!v.valid, "{stored:?}");
        let spent = stats.calls() - before;
        assert!(
            (1..=2).contains(&spent),
            "{stored:?} spent {spent} verifications (want the cost of one real check)"
        );
    }
    assert!(hashing.verify("right", Some(&real)).await.unwrap().valid);
}

#[tokio::test]
async fn over_long_passwords_are_refused_before_hashing() {
    let hasher = CountingHasher::new(TestHasher::fast(), Duration::ZERO);
    let stats = hasher.stats();
    let hashing = PasswordHashing::new(hasher).unwrap();
    let before = stats.calls();
    let err = hashing.hash(&"x".repeat(4097)).await.unwrap_err();
    assert!(matches!(&err, Error::Validation(e) if e.errors()[0].code == "password_too_long"));
    assert_eq!(
        stats.calls(),
        before,
        "no hashing for an over-long password"
    );
    assert!(hashing.hash(&"x".repeat(4096)).await.is_ok());
}

#[test]
fn needs_update_is_reported_only_for_valid_passwords() {
    let old = TestHasher::fast().hash("pw").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let hashing = PasswordHashing::new(TestHasher::with_iterations(2)).unwrap();
        let v = hashing.verify("pw", Some(&old)).await.unwrap();
        assert!(v.valid && v.needs_update);
        let v = hashing.verify("nope", Some(&old)).await.unwrap();
        assert!(!v.valid && !v.needs_update);
    });
}
