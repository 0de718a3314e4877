//! auth-redis against a real Redis (`AUTH_TEST_REDIS_URL`) and a real Redis Cluster
//! (`AUTH_TEST_REDIS_CLUSTER_URL`: seed nodes' URLs separated by commas, as `.ci/redis-cluster`
//! prints them); each test under a prefix of its own, below `AUTH_TEST_REDIS_PREFIX` when set:
//! the shared conformance suites on both, the feed between two instances, what happens when
//! Redis cannot be reached, and a cluster's failover.

mod cluster;
mod conformance;
mod outage;
mod spread;

use auth_redis::Redis;

fn prefix() -> String {
    let base = std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into());
    format!("{base}{}:", auth_testkit::unique("t"))
}

fn cluster_seeds() -> Option<Vec<String>> {
    let urls = std::env::var("AUTH_TEST_REDIS_CLUSTER_URL").ok()?;
    Some(
        urls.split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// A connection to the single server under a fresh prefix, or `None` (the reason printed).
pub(crate) async fn redis() -> Option<Redis> {
    let Ok(url) = std::env::var("AUTH_TEST_REDIS_URL") else {
        auth_testkit::skip("redis", "AUTH_TEST_REDIS_URL is not set");
        return None;
    };
    let redis = Redis::connect(&url)
        .await
        .expect("connect to the test Redis")
        .with_prefix(&prefix());
    Some(redis)
}

/// A connection to the cluster under a fresh prefix, or `None` (the reason printed).
pub(crate) async fn cluster() -> Option<Redis> {
    let Some(seeds) = cluster_seeds() else {
        auth_testkit::skip(
            "redis-cluster",
            "AUTH_TEST_REDIS_CLUSTER_URL is not set (.ci/redis-cluster start DIR PORT makes one)",
        );
        return None;
    };
    let redis = Redis::connect_cluster(&seeds)
        .await
        .expect("connect to the test Redis Cluster")
        .with_prefix(&prefix());
    Some(redis)
}

/// Every deployment the tests can reach: the server, then the cluster.
pub(crate) async fn targets() -> Vec<Redis> {
    let mut targets = Vec::new();
    targets.extend(redis().await);
    targets.extend(cluster().await);
    targets
}

/// What a line of output calls `redis`'s deployment.
pub(crate) fn kind(redis: &Redis) -> &'static str {
    if redis.is_cluster() {
        "Redis Cluster"
    } else {
        "Redis"
    }
}

/// Another instance's connection to the same deployment, under the same prefix.
pub(crate) async fn another(redis: &Redis) -> Redis {
    let other = if redis.is_cluster() {
        Redis::connect_cluster(&cluster_seeds().unwrap()).await
    } else {
        Redis::connect(&std::env::var("AUTH_TEST_REDIS_URL").unwrap()).await
    };
    other.unwrap().with_prefix(redis.prefix())
}
