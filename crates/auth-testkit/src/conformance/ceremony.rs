//! The [`CeremonyStore`] suite.

use std::sync::Arc;

use auth_service::UserId;
use auth_service::ephemeral::{CeremonyRecord, CeremonyStore};
use time::{Duration, OffsetDateTime};

use super::START;

/// Every promise of a [`CeremonyStore`]: a record comes back once, whole (user or none,
/// state); `put` replaces a record under the same key; expired records are never handed out
/// and `cleanup_expired` removes them; of 30 concurrent `take`s of one record exactly one
/// gets it. Give it an empty store; keys are 64 hex characters as the backend makes them.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// auth_testkit::conformance::ceremony_store(std::sync::Arc::new(auth_service::ephemeral::MemoryCeremonyStore::new())).await;
/// # });
/// ```
pub async fn ceremony_store(store: Arc<dyn CeremonyStore>) {
    let now = OffsetDateTime::from_unix_timestamp(START).expect("START is a valid instant");
    let later = now + Duration::minutes(5);
    let key = |n: u8| format!("{n:02x}").repeat(32);
    let user = UserId::new("42");

    // Round trip, once.
    let state = r#"{"kind":"login","state":{"challenge":"AAEC"}}"#;
    store
        .put(&CeremonyRecord::new(
            key(1),
            Some(user.clone()),
            state.into(),
            later,
        ))
        .await
        .expect("put");
    let taken = store
        .take(&key(1), now)
        .await
        .expect("take")
        .expect("the record comes back");
    assert_eq!(taken.user_id, Some(user.clone()), "the user comes back");
    assert_eq!(taken.state, state, "the state comes back byte for byte");
    assert_eq!(
        taken.expires_at.unix_timestamp(),
        later.unix_timestamp(),
        "the expiry comes back"
    );
    assert!(
        store.take(&key(1), now).await.expect("take").is_none(),
        "a record is taken once"
    );
    assert!(
        store.take(&key(9), now).await.expect("take").is_none(),
        "unknown keys give nothing"
    );

    // No user.
    store
        .put(&CeremonyRecord::new(key(2), None, "{}".into(), later))
        .await
        .expect("put");
    assert_eq!(
        store
            .take(&key(2), now)
            .await
            .expect("take")
            .expect("record")
            .user_id,
        None
    );

    // Replacement.
    store
        .put(&CeremonyRecord::new(
            key(3),
            Some(user.clone()),
            "old".into(),
            later,
        ))
        .await
        .expect("put");
    store
        .put(&CeremonyRecord::new(
            key(3),
            Some(user.clone()),
            "new".into(),
            later,
        ))
        .await
        .expect("put");
    assert_eq!(
        store
            .take(&key(3), now)
            .await
            .expect("take")
            .expect("record")
            .state,
        "new",
        "put replaces"
    );

    // Expiry.
    store
        .put(&CeremonyRecord::new(
            key(4),
            None,
            "{}".into(),
            now + Duration::seconds(1),
        ))
        .await
        .expect("put");
    assert!(
        store
            .take(&key(4), now + Duration::seconds(1))
            .await
            .expect("take")
            .is_none(),
        "an expired record is not handed out"
    );
    store
        .put(&CeremonyRecord::new(
            key(5),
            None,
            "{}".into(),
            now + Duration::seconds(1),
        ))
        .await
        .expect("put");
    store
        .put(&CeremonyRecord::new(key(6), None, "{}".into(), later))
        .await
        .expect("put");
    assert!(
        store
            .cleanup_expired(now + Duration::seconds(2))
            .await
            .expect("cleanup")
            >= 1,
        "cleanup removes expired records"
    );
    assert!(
        store.take(&key(6), now).await.expect("take").is_some(),
        "cleanup keeps live records"
    );

    // 30 concurrent takes.
    store
        .put(&CeremonyRecord::new(key(7), Some(user), "{}".into(), later))
        .await
        .expect("put");
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let store = Arc::clone(&store);
            let key = key(7);
            tokio::spawn(async move { store.take(&key, now).await })
        })
        .collect();
    let mut got = 0;
    for t in tasks {
        if t.await.expect("task").expect("take").is_some() {
            got += 1;
        }
    }
    assert_eq!(got, 1, "of 30 concurrent takes exactly one gets the record");
}
