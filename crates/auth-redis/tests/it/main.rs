//! auth-redis against a real Redis (`AUTH_TEST_REDIS_URL`; each test under a prefix of its own,
//! below `AUTH_TEST_REDIS_PREFIX` when set): the shared conformance suites, the feed between
//! two instances, and what happens when Redis cannot be reached.

mod conformance;
mod outage;
mod spread;

use auth_redis::Redis;

/// A connection under a fresh prefix, or `None` (the reason printed) without a server.
pub(crate) async fn redis() -> Option<Redis> {
    let Ok(url) = std::env::var("AUTH_TEST_REDIS_URL") else {
        auth_testkit::skip("redis", "AUTH_TEST_REDIS_URL is not set");
        return None;
    };
    let base = std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into());
    let redis = Redis::connect(&url)
        .await
        .expect("connect to the test Redis")
        .with_prefix(&format!("{base}{}:", auth_testkit::unique("t")));
    Some(redis)
}
