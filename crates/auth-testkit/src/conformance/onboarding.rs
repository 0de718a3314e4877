//! The onboarding `SessionStore` suite.

use std::sync::Arc;

use auth_service::ephemeral::{SessionRecord, SessionStore};
use serde_json::json;
use time::OffsetDateTime;

fn at(s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(s).unwrap()
}

/// Runs the onboarding [`SessionStore`] suite: create and find, compare-and-set saves on the
/// version (a stale save loses), invalidating an email's other sessions, and cleanup by expiry.
/// `user` is an existing user.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::session_store(
///     std::sync::Arc::new(auth_onboarding::MemorySessionStore::new()), auth_service::UserId::new("1"),
/// ).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn session_store(store: Arc<dyn SessionStore>, user: auth_service::UserId) {
    let mut a = SessionRecord::new(
        "ida".into(),
        "a".repeat(64),
        "a@example.com".into(),
        at(1_000),
        at(2_000),
    );
    store.create(&a).await.unwrap();
    assert_eq!(store.find(&a.token_hash).await.unwrap().unwrap(), a);
    a.version += 1;
    a.step_index = 1;
    a.user_id = Some(user.clone());
    a.data.insert("verify_email".into(), json!({"attempts": 2}));
    a.lease_until = Some(at(1_030));
    assert!(store.save(&a).await.unwrap());
    assert_eq!(store.find(&a.token_hash).await.unwrap().unwrap(), a);
    // A save naming an old version loses.
    let stale = a.clone();
    a.version += 1;
    assert!(store.save(&a).await.unwrap());
    assert!(!store.save(&stale).await.unwrap());
    let b = SessionRecord::new(
        "idb".into(),
        "b".repeat(64),
        "a@example.com".into(),
        at(1_000),
        at(3_000),
    );
    store.create(&b).await.unwrap();
    assert_eq!(
        store
            .invalidate_email("a@example.com", "idb")
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .find(&a.token_hash)
            .await
            .unwrap()
            .unwrap()
            .invalidated
    );
    assert!(
        !store
            .find(&b.token_hash)
            .await
            .unwrap()
            .unwrap()
            .invalidated
    );
    assert_eq!(store.cleanup_expired(at(2_500)).await.unwrap(), 1);
    assert!(store.find(&a.token_hash).await.unwrap().is_none());
    assert!(store.find(&b.token_hash).await.unwrap().is_some());
}
