//! Hashing runs off the runtime, bounded, with equal work for every failure.

use std::sync::Arc;
use std::time::Duration;

use auth_service::RequestScope;
use auth_service::{
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

fn from(ip: &str) -> auth_service::RequestContext {
    auth_service::RequestContext::new(auth_service::SessionMeta::new().with_ip(ip.parse().unwrap()))
}

/// A bounded queue sorts callers by their client's last outcome: clients that failed share a
/// lane of one place fewer than the running hashes (at least one); one waiting place is kept for clients that signed in;
/// clients never seen take the rest. Shedding is decided on arrival, in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_prefers_clients_in_good_standing() {
    use auth_service::HashLane;
    let slow = CountingHasher::new(TestHasher::fast(), Duration::from_millis(300));
    let hash = slow.hash("pw").unwrap();
    let h = PasswordHashing::new(slow)
        .unwrap()
        .with_concurrency(1)
        .with_queue(2, 1, Duration::from_secs(5));
    for ip in ["198.18.0.1", "198.18.0.2", "198.18.0.3"] {
        from(ip).scope(async { h.note_failure() }).await;
    }
    from("203.0.113.7").scope(async { h.note_success() }).await;
    let lane = |ip: &str| {
        let h = h.clone();
        from(ip).scope(async move { h.lane() })
    };
    assert_eq!(lane("198.18.0.1").await, HashLane::Suspect);
    assert_eq!(lane("203.0.113.7").await, HashLane::Trusted);
    assert_eq!(lane("192.0.2.50").await, HashLane::Standard);

    let verify = |ip: &'static str, delay_ms: u64| {
        let (h, hash) = (h.clone(), hash.clone());
        tokio::spawn(from(ip).scope(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            h.verify("pw", Some(&hash)).await
        }))
    };
    // Three suspects at once: their lane holds one place, so two are shed.
    let suspects = [
        verify("198.18.0.1", 0),
        verify("198.18.0.2", 0),
        verify("198.18.0.3", 0),
    ];
    // Meanwhile (the suspect's hash running): a new client takes one waiting place, a second
    // new client finds the rest kept and is shed, a trusted client takes the kept place.
    let first_new = verify("192.0.2.50", 50);
    let second_new = verify("192.0.2.51", 100);
    let trusted = verify("203.0.113.7", 150);
    let mut shed = 0;
    for s in suspects {
        match s.await.unwrap() {
            Ok(v) => assert!(v.valid),
            Err(Error::Overloaded { .. }) => shed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(shed, 2, "the suspects' lane holds one place");
    assert!(first_new.await.unwrap().unwrap().valid);
    assert!(matches!(
        second_new.await.unwrap(),
        Err(Error::Overloaded { .. })
    ));
    assert!(trusted.await.unwrap().unwrap().valid, "the kept place");
}

/// With two hashers or more, clients that failed never hold them all: one is always left to
/// everybody else, so a returning user's login runs beside the flood instead of after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_never_hold_every_hasher() {
    let slow = CountingHasher::new(TestHasher::fast(), Duration::from_millis(300));
    let stats = slow.stats();
    let hash = slow.hash("pw").unwrap();
    let h = PasswordHashing::new(slow)
        .unwrap()
        .with_concurrency(2)
        .with_queue(4, 2, Duration::from_secs(5));
    for i in 0..4 {
        from(&format!("198.18.0.{i}"))
            .scope(async { h.note_failure() })
            .await;
    }
    from("203.0.113.7").scope(async { h.note_success() }).await;
    let verify = |ip: String, delay_ms: u64| {
        let (h, hash) = (h.clone(), hash.clone());
        tokio::spawn(from(&ip).scope(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            h.verify("pw", Some(&hash)).await
        }))
    };
    let suspects: Vec<_> = (0..4).map(|i| verify(format!("198.18.0.{i}"), 0)).collect();
    let trusted = verify("203.0.113.7".into(), 100);
    let mut shed = 0;
    for s in suspects {
        match s.await.unwrap() {
            Ok(v) => assert!(v.valid),
            Err(Error::Overloaded { .. }) => shed += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(shed, 3, "the suspects' lane holds one of the two hashers");
    assert!(trusted.await.unwrap().unwrap().valid);
    assert_eq!(
        stats.max_in_flight(),
        2,
        "the trusted client's hash ran beside the suspect's"
    );
}
