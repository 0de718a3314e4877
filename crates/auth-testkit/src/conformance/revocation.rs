use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_service::{Consumption, FixedClock, RevocationQuery, RevocationStore, UserId};
use time::OffsetDateTime;

use super::START;
use crate::unique;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("valid instant")
}

/// Runs the [`RevocationStore`] suite: revoke by id, single-use consume and `consume_with` (also under 50
/// concurrent callers), `consume_at` keeping the instant of consumption for the callers that
/// lose (and forgetting it once the id is revoked), family revocation, per-user not-before that never moves back and can
/// keep one session, and
/// cleanup of expired entries.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::revocation_store(|clock| async move {
///     auth_service::MemoryRevocationStore::new().with_clock(clock)
/// }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn revocation_store<R, F, Fut>(make: F)
where
    R: RevocationStore,
    F: Fn(FixedClock) -> Fut,
    Fut: Future<Output = R>,
{
    let clock = FixedClock::from_unix(START);
    let store = Arc::new(make(clock.clone()).await);
    let user = UserId::new(unique("user"));
    let q = |jti: &str, iat: i64| RevocationQuery::new(jti, user.clone(), iat);

    // Revoke by id.
    let jti = unique("jti");
    assert!(
        !store.is_revoked(&q(&jti, START)).await.expect("check"),
        "nothing is revoked at first"
    );
    store.revoke(&jti, at(START + 100)).await.expect("revoke");
    store
        .revoke(&jti, at(START + 100))
        .await
        .expect("revoking twice is fine");
    assert!(
        store.is_revoked(&q(&jti, START)).await.expect("check"),
        "a revoked id is revoked"
    );
    assert!(
        !store
            .is_revoked(&q(&unique("other"), START))
            .await
            .expect("check"),
        "other ids are not revoked"
    );

    // Single use.
    let once = unique("once");
    assert!(
        store
            .consume(&once, at(START + 100))
            .await
            .expect("consume"),
        "the first consume wins"
    );
    assert!(
        !store
            .consume(&once, at(START + 100))
            .await
            .expect("consume"),
        "the second consume loses"
    );
    assert!(
        store.is_revoked(&q(&once, START)).await.expect("check"),
        "a consumed id is revoked"
    );
    assert!(
        !store.consume(&jti, at(START + 100)).await.expect("consume"),
        "a revoked id cannot be consumed"
    );

    // The instant of consumption, for a rotation's reuse window.
    let timed = unique("timed");
    let instant = at(START + 7) + time::Duration::microseconds(250);
    let paired = unique("paired");
    assert_eq!(
        store
            .consume_at(
                &timed,
                at(START + 100),
                Some((&paired, at(START + 50))),
                instant
            )
            .await
            .expect("consume_at"),
        Consumption::Won
    );
    assert!(
        store.is_revoked(&q(&paired, START)).await.expect("check"),
        "consume_at revokes the pair"
    );
    assert_eq!(
        store
            .consume_at(&timed, at(START + 100), None, at(START + 8))
            .await
            .expect("consume_at"),
        Consumption::Taken { at: Some(instant) },
        "a losing consume learns when the id was consumed, to the microsecond"
    );
    assert_eq!(
        store
            .consume_at(&jti, at(START + 100), None, at(START + 8))
            .await
            .expect("consume_at"),
        Consumption::Taken { at: None },
        "a revoked id was never consumed"
    );
    store.revoke(&timed, at(START + 100)).await.expect("revoke");
    assert_eq!(
        store
            .consume_at(&timed, at(START + 100), None, at(START + 9))
            .await
            .expect("consume_at"),
        Consumption::Taken { at: None },
        "a consumed id revoked afterwards (a logout) no longer says when it was consumed"
    );
    let race = unique("race");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        let race = race.clone();
        tasks.push(tokio::spawn(async move {
            store.consume(&race, at(START + 100)).await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("consume") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "of 50 concurrent consumes exactly one wins");

    // Consume with the paired access token, in one step.
    let (refresh, access) = (unique("refresh"), unique("access"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        let (refresh, access) = (refresh.clone(), access.clone());
        tasks.push(tokio::spawn(async move {
            store
                .consume_with(&refresh, at(START + 100), Some((&access, at(START + 100))))
                .await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("task").expect("consume_with") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "of 50 concurrent consume_with exactly one wins");
    assert!(
        store.is_revoked(&q(&access, START)).await.expect("check"),
        "the paired token is revoked with it"
    );
    let (refresh2, gone) = (unique("refresh"), unique("gone"));
    store.revoke(&gone, at(START + 100)).await.expect("revoke");
    assert!(
        store
            .consume_with(&refresh2, at(START + 100), Some((&gone, at(START + 100))))
            .await
            .expect("consume_with"),
        "an already revoked paired token does not stop the consume"
    );
    assert!(store.is_revoked(&q(&refresh2, START)).await.expect("check"));

    // Families.
    let family = unique("family");
    let member = q(&unique("member"), START).with_family(family.clone());
    assert!(!store.is_revoked(&member).await.expect("check"));
    store
        .revoke_family(&family, at(START + 100))
        .await
        .expect("revoke family");
    assert!(
        store.is_revoked(&member).await.expect("check"),
        "a revoked family revokes its members"
    );
    assert!(
        !store
            .is_revoked(&q(&unique("m"), START).with_family(unique("other-family")))
            .await
            .expect("check"),
        "other families are untouched"
    );

    // Per-user not-before.
    store
        .revoke_user(&user, at(START + 10), None)
        .await
        .expect("revoke user");
    assert!(
        store
            .is_revoked(&q(&unique("old"), START + 9))
            .await
            .expect("check"),
        "tokens issued before not-before are revoked"
    );
    assert!(
        store
            .is_revoked(&q(&unique("same"), START + 10))
            .await
            .expect("check"),
        "a token issued at the cut-off's very instant is revoked (the safe side)"
    );
    assert!(
        !store
            .is_revoked(&q(&unique("new"), START + 11))
            .await
            .expect("check"),
        "tokens issued after not-before are valid"
    );
    // The cut-off compares to the microsecond: a login right after a logout everywhere works.
    let micros = |secs: i64| secs * 1_000_000;
    let sub_second = at(START + 20) + time::Duration::microseconds(500_000);
    store
        .revoke_user(&user, sub_second, None)
        .await
        .expect("revoke user");
    assert!(
        store
            .is_revoked(
                &q(&unique("before"), START + 20)
                    .with_issued_at_micros(micros(START + 20) + 499_999)
            )
            .await
            .expect("check"),
        "issued a microsecond before the cut-off: revoked"
    );
    assert!(
        !store
            .is_revoked(
                &q(&unique("after"), START + 20)
                    .with_issued_at_micros(micros(START + 20) + 500_001)
            )
            .await
            .expect("check"),
        "issued a microsecond after the cut-off, in the same second: valid"
    );
    store
        .revoke_user(&user, at(START), None)
        .await
        .expect("revoke user");
    assert!(
        store
            .is_revoked(&q(&unique("old"), START + 9))
            .await
            .expect("check"),
        "an earlier not-before never moves the instant back"
    );
    // Session tracking (optional): counted exactly when ended, the kept one survives.
    let tracked = UserId::new(unique("tracked"));
    let (a, b, c) = (unique("fa"), unique("fb"), unique("fc"));
    for f in [&a, &b, &c] {
        store
            .track_session(&tracked, f, at(START + 3_600))
            .await
            .expect("track");
    }
    store.end_session(&c).await.expect("end one");
    match store
        .end_sessions(&tracked, Some(&a))
        .await
        .expect("end all")
    {
        None => {}
        Some(n) => {
            assert_eq!(n, 1, "b ended; a kept; c was logged out before");
            assert_eq!(
                store.end_sessions(&tracked, None).await.expect("end all"),
                Some(1),
                "the kept session ends last"
            );
            assert_eq!(
                store.end_sessions(&tracked, None).await.expect("end all"),
                Some(0),
                "nothing left"
            );
        }
    }

    // Keep one session: its family is exempt, the others are not.
    let kept = unique("kept-family");
    store
        .revoke_user(&user, at(START + 30), Some(&kept))
        .await
        .expect("revoke user");
    let kept_token = q(&unique("k"), START + 25).with_family(kept.clone());
    let other_token = q(&unique("o"), START + 25).with_family(unique("other"));
    let kept_before = q(&unique("kb"), START + 20).with_family(kept.clone());
    assert!(
        !store.is_revoked(&kept_token).await.expect("check"),
        "the kept session survives"
    );
    assert!(
        store.is_revoked(&other_token).await.expect("check"),
        "other sessions end"
    );
    assert!(
        store.is_revoked(&kept_before).await.expect("check"),
        "the kept session's tokens from before the earlier cut-off stay revoked"
    );
    store
        .revoke_user(&user, at(START + 29), None)
        .await
        .expect("revoke user");
    assert!(
        store.is_revoked(&kept_token).await.expect("check"),
        "a cut-off arriving late without the exemption still revokes up to its instant"
    );
    let kept_later = q(&unique("kl"), START + 29)
        .with_issued_at_micros((START + 29) * 1_000_000 + 1)
        .with_family(kept.clone());
    assert!(
        !store.is_revoked(&kept_later).await.expect("check"),
        "and no further: the later cut-off keeps its exemption"
    );
    store
        .revoke_user(&user, at(START + 30), None)
        .await
        .expect("revoke user");
    assert!(
        store.is_revoked(&kept_later).await.expect("check"),
        "a call at the same instant without keep ends the exemption"
    );
    // The other order: a cut-off keeping a session arriving after a later one that does not.
    let late_user = UserId::new(unique("late"));
    let fam = unique("fam");
    store
        .revoke_user(&late_user, at(START + 50), None)
        .await
        .expect("revoke user");
    store
        .revoke_user(&late_user, at(START + 40), Some(&fam))
        .await
        .expect("revoke user");
    assert!(
        store
            .is_revoked(
                &RevocationQuery::new(unique("t"), late_user.clone(), START + 45)
                    .with_family(fam.clone())
            )
            .await
            .expect("check"),
        "an earlier cut-off never spares what a later one revokes"
    );
    let stranger = RevocationQuery::new(unique("s"), UserId::new(unique("stranger")), START);
    assert!(
        !store.is_revoked(&stranger).await.expect("check"),
        "other users are untouched"
    );

    // Cleanup.
    clock.advance(Duration::from_secs(101));
    let removed = store.cleanup_expired().await.expect("cleanup");
    assert!(
        removed >= 4,
        "cleanup forgets expired ids and families, got {removed}"
    );
    assert!(
        store
            .consume(&once, at(START + 500))
            .await
            .expect("consume"),
        "a forgotten id (its token expired) can be recorded again"
    );
}
