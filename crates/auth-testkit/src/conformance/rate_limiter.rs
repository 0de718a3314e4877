use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth_service::{FixedClock, RateLimitPolicy, RateLimitStatus, RateLimiter};

use super::START;
use crate::unique;

fn allowed(remaining: u32) -> RateLimitStatus {
    RateLimitStatus::Allowed { remaining }
}

fn limited(secs: u64) -> RateLimitStatus {
    RateLimitStatus::Limited {
        retry_after: Duration::from_secs(secs),
    }
}

/// Runs the [`RateLimiter`] suite with a policy of 3 failures in 60 s locking for 120 s: the
/// lockout is enforced for its whole length (past the window), `retry_after` is exact, old
/// failures leave the window, reset clears, keys are independent, concurrent records all count,
/// 30 concurrent reservations get exactly `max_attempts` grants, a release gives one back, and
/// cleanup forgets idle keys.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::rate_limiter(|clock, policy| async move {
///     auth_service::MemoryRateLimiter::new(policy).with_clock(clock)
/// }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the limiter breaks a promise of the trait.
pub async fn rate_limiter<L, F, Fut>(make: F)
where
    L: RateLimiter,
    F: Fn(FixedClock, RateLimitPolicy) -> Fut,
    Fut: Future<Output = L>,
{
    let policy = RateLimitPolicy::new(3, Duration::from_secs(60), Duration::from_secs(120))
        .expect("valid policy");
    let clock = FixedClock::from_unix(START);
    let limiter = Arc::new(make(clock.clone(), policy).await);
    let key = unique("key");
    let check = |k: String| {
        let l = Arc::clone(&limiter);
        async move { l.check(&k).await.expect("check") }
    };

    assert_eq!(
        check(key.clone()).await,
        allowed(3),
        "a fresh key has every attempt"
    );
    assert_eq!(limiter.record(&key).await.expect("record"), allowed(2));
    assert_eq!(limiter.record(&key).await.expect("record"), allowed(1));
    assert_eq!(
        check(key.clone()).await,
        allowed(1),
        "check records nothing"
    );
    assert_eq!(
        limiter.record(&key).await.expect("record"),
        limited(120),
        "the failure that reaches the maximum locks the key for the lockout"
    );
    assert_eq!(check(key.clone()).await, limited(120));
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        check(key.clone()).await,
        limited(59),
        "the lockout holds past the window, and retry_after is the exact remaining time"
    );
    assert_eq!(
        limiter.record(&key).await.expect("record"),
        limited(59),
        "failures during a lockout do not extend it"
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        check(key.clone()).await,
        allowed(3),
        "after the lockout the key starts afresh"
    );

    // The window slides.
    let w = unique("window");
    limiter.record(&w).await.expect("record");
    limiter.record(&w).await.expect("record");
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        limiter.record(&w).await.expect("record"),
        allowed(2),
        "failures older than the window no longer count"
    );

    // Reset and independence.
    let r = unique("reset");
    limiter.record(&r).await.expect("record");
    limiter.record(&r).await.expect("record");
    let other = unique("other");
    assert_eq!(
        check(other.clone()).await,
        allowed(3),
        "keys are independent"
    );
    limiter.reset(&r).await.expect("reset");
    assert_eq!(check(r.clone()).await, allowed(3), "reset forgets failures");
    for _ in 0..3 {
        limiter.record(&r).await.expect("record");
    }
    limiter.reset(&r).await.expect("reset");
    assert_eq!(check(r.clone()).await, allowed(3), "reset ends a lockout");

    // Concurrent failures all count.
    let c = unique("concurrent");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let l = Arc::clone(&limiter);
        let c = c.clone();
        tasks.push(tokio::spawn(async move { l.record(&c).await }));
    }
    for t in tasks {
        t.await.expect("task").expect("record");
    }
    assert!(
        !check(c.clone()).await.is_allowed(),
        "20 concurrent failures lock the key"
    );

    // Reservations: the attempt counts before the work it guards, atomically.
    let g = unique("guarded");
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let l = Arc::clone(&limiter);
        let g = g.clone();
        tasks.push(tokio::spawn(async move { l.acquire(&g).await }));
    }
    let mut granted = 0;
    for t in tasks {
        if t.await.expect("task").expect("acquire").is_allowed() {
            granted += 1;
        }
    }
    assert_eq!(
        granted, 3,
        "30 concurrent reservations get exactly max_attempts grants"
    );
    assert_eq!(
        check(g.clone()).await,
        limited(120),
        "the grant that used the last attempt locked the key"
    );
    let h = unique("refund");
    assert_eq!(limiter.acquire(&h).await.expect("acquire"), allowed(2));
    assert_eq!(limiter.acquire(&h).await.expect("acquire"), allowed(1));
    assert_eq!(limiter.acquire(&h).await.expect("acquire"), allowed(0));
    assert!(!check(h.clone()).await.is_allowed(), "the last grant locks");
    limiter.release(&h).await.expect("release");
    assert_eq!(
        check(h.clone()).await,
        allowed(1),
        "a released attempt comes back, and the lockout it set is lifted"
    );
    limiter.release(&h).await.expect("release");
    limiter.release(&h).await.expect("release");
    limiter.release(&h).await.expect("release");
    assert_eq!(
        check(h.clone()).await,
        allowed(3),
        "releases never go below zero"
    );

    // Cleanup.
    clock.advance(Duration::from_secs(121));
    let removed = limiter.cleanup_expired().await.expect("cleanup");
    assert!(removed >= 1, "cleanup forgets idle keys, got {removed}");
    assert_eq!(check(c).await, allowed(3), "cleanup leaves keys usable");
}
