//! Two instances on one Redis: revocations reach the other's mirror through pub/sub, failed
//! attempts spread across instances lock after the policy's total, concurrently.

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_redis::{RedisFeed, RedisRateLimiter, RedisRevocationStore};
use auth_service::{
    ChangeFeed as _, RateLimitPolicy, RateLimiter, RevocationMirror, RevocationQuery,
    RevocationStore, UserId,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_on_one_instance_is_refused_by_the_other() {
    for a in crate::targets().await {
        let b = crate::another(&a).await;
        let (feed_a, feed_b) = (RedisFeed::start(&a), RedisFeed::start(&b));
        let mirror_a = RevocationMirror::new(RedisRevocationStore::new(a.clone()), feed_a);
        let mirror_b = RevocationMirror::new(RedisRevocationStore::new(b.clone()), feed_b.clone());
        assert!(mirror_a.wait_ready(Duration::from_secs(10)).await);
        assert!(mirror_b.wait_ready(Duration::from_secs(10)).await);

        let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(15);
        let mut took = Vec::new();
        for i in 0..50 {
            let jti = format!("access-{i}");
            // Issued now: after the revocation epoch the mirrors started (a token issued
            // before it counts as revoked).
            let now = time::OffsetDateTime::now_utc();
            let q = RevocationQuery::new(jti.as_str(), UserId::new("7"), now.unix_timestamp())
                .with_issued_at_micros(i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap())
                .with_consumable(false);
            assert!(!mirror_b.is_revoked(&q).await.unwrap());
            mirror_a.revoke(&jti, later).await.unwrap();
            let start = Instant::now();
            while !mirror_b.is_revoked(&q).await.unwrap() {
                assert!(start.elapsed() < Duration::from_secs(5), "not delivered");
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            took.push(start.elapsed());
        }
        took.sort();
        assert_eq!(mirror_b.status().store_checks, 0, "b answered from memory");
        println!(
            "{}: a revocation on A refused by B after p50 {:?}, max {:?} (50 revocations)",
            crate::kind(&a),
            took[25],
            took[49]
        );
        assert!(feed_b.status().delivered >= 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_attempts_spread_across_instances_lock_after_the_total() {
    for a in crate::targets().await {
        let kind = crate::kind(&a);
        let b = crate::another(&a).await;
        let policy =
            RateLimitPolicy::new(5, Duration::from_secs(300), Duration::from_secs(600)).unwrap();
        let limiters: [Arc<dyn RateLimiter>; 2] = [
            Arc::new(RedisRateLimiter::new(a, policy)),
            Arc::new(RedisRateLimiter::new(b, policy)),
        ];
        let mut tasks = Vec::new();
        for i in 0..30 {
            let limiter = Arc::clone(&limiters[i % 2]);
            tasks.push(tokio::spawn(async move {
                limiter.acquire("login:*|victim@example.com").await
            }));
        }
        let mut granted = 0;
        for t in tasks {
            if t.await.unwrap().unwrap().is_allowed() {
                granted += 1;
            }
        }
        assert_eq!(
            granted, 5,
            "30 concurrent attempts over two instances: exactly the policy's 5"
        );
        println!(
            "{}: 30 concurrent attempts over two instances -> {granted} granted, {} refused",
            kind,
            30 - granted
        );
    }
}
