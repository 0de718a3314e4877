//! The [`ChallengeStore`] suite.

use std::sync::Arc;

use auth_service::UserId;
use auth_service::ephemeral::{ChallengeRecord, ChallengeStore};
use time::OffsetDateTime;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// Every promise of a [`ChallengeStore`] (the two-step login's challenges, the service's
/// single-use link records): attempts counted up to a limit, expiry, single use, cleanup of
/// expired records only; then 20 concurrent callers on one challenge with 5 attempts get
/// exactly 5, and 20 concurrent consumers end it once. `a` and `b` are two distinct existing
/// users (SQL stores reference them).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use auth_service::UserId;
/// auth_testkit::conformance::challenge_store(
///     std::sync::Arc::new(auth_service::ephemeral::MemoryChallengeStore::new()),
///     UserId::new("1"),
///     UserId::new("2"),
/// ).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn challenge_store(store: Arc<dyn ChallengeStore>, a: UserId, b: UserId) {
    let live = ChallengeRecord::new("a".repeat(64), a.clone(), at(2_000));
    store.create(&live).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            store.attempt(&live.token_hash, at(1_000), 3).await.unwrap(),
            Some(a.clone())
        );
    }
    assert_eq!(
        store.attempt(&live.token_hash, at(1_000), 3).await.unwrap(),
        None,
        "a fourth attempt of three"
    );
    assert_eq!(
        store.attempt(&live.token_hash, at(1_000), 5).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.attempt(&live.token_hash, at(2_000), 9).await.unwrap(),
        None,
        "expired"
    );
    assert!(store.consume(&live.token_hash).await.unwrap());
    assert!(!store.consume(&live.token_hash).await.unwrap(), "used once");
    assert_eq!(
        store.attempt(&live.token_hash, at(1_000), 9).await.unwrap(),
        None
    );
    let old = ChallengeRecord::new("b".repeat(64), b.clone(), at(1_500));
    let young = ChallengeRecord::new("c".repeat(64), b.clone(), at(2_500));
    store.create(&old).await.unwrap();
    store.create(&young).await.unwrap();
    assert_eq!(
        store.cleanup_expired(at(2_000)).await.unwrap(),
        1,
        "cleanup removes the expired challenge and only it"
    );
    assert_eq!(
        store.attempt(&old.token_hash, at(1_000), 9).await.unwrap(),
        None,
        "a cleaned-up challenge is gone"
    );
    assert!(
        store
            .attempt(&young.token_hash, at(2_000), 1)
            .await
            .unwrap()
            .is_some()
    );
    races(store, b).await;
}

/// 20 concurrent attempts on a challenge allowing 5 give exactly 5; 20 consumers end it once.
async fn races(store: Arc<dyn ChallengeStore>, user: UserId) {
    let challenge = ChallengeRecord::new("d".repeat(64), user, at(9_999_999_999));
    store.create(&challenge).await.unwrap();
    let attempts = (0..20).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let attempt = store.attempt(&"d".repeat(64), at(1_000), 5).await;
            usize::from(attempt.unwrap().is_some())
        })
    });
    let attempts: usize = futures_sum(attempts.collect()).await;
    let consumers = (0..20).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { usize::from(store.consume(&"d".repeat(64)).await.unwrap()) })
    });
    let consumed: usize = futures_sum(consumers.collect()).await;
    assert_eq!((attempts, consumed), (5, 1));
}

async fn futures_sum(tasks: Vec<tokio::task::JoinHandle<usize>>) -> usize {
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    sum
}
