//! Redis figures: a revocation check and a rate-limit reservation against the raw round trip
//! they wrap (`GET`, `INCR`), on one server (`AUTH_BENCH_REDIS_URL`) and on a Redis Cluster
//! (`AUTH_BENCH_REDIS_CLUSTER_URL`, seed URLs separated by commas), each time against a raw
//! connection of the same kind.

use std::hint::black_box;

use auth_redis::{Redis, RedisRateLimiter, RedisRevocationStore};
use auth_service::{RateLimitPolicy, RateLimiter, RevocationQuery, RevocationStore, UserId};
use redis::aio::ConnectionLike;

pub(crate) async fn run() -> Result<(), String> {
    let prefix = format!("auth:bench:{}:", auth_service::random::token(6));
    match std::env::var("AUTH_BENCH_REDIS_URL") {
        Ok(url) => {
            let redis = Redis::connect(&url).await.map_err(|e| e.to_string())?;
            let raw = redis::Client::open(url.as_str())
                .map_err(|e| e.to_string())?
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "\nRedis ({url}, one connection, loopback) against the raw command it wraps\n"
            );
            measure(redis.with_prefix(&prefix), raw, &prefix).await?;
        }
        Err(_) => {
            println!("Redis: skipped (set AUTH_BENCH_REDIS_URL, e.g. redis://127.0.0.1:6379/)")
        }
    }
    match std::env::var("AUTH_BENCH_REDIS_CLUSTER_URL") {
        Ok(urls) => {
            let seeds: Vec<&str> = urls.split(',').map(str::trim).collect();
            let redis = Redis::connect_cluster(&seeds)
                .await
                .map_err(|e| e.to_string())?;
            let raw = redis::cluster::ClusterClient::new(seeds.clone())
                .map_err(|e| e.to_string())?
                .get_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "\nRedis Cluster ({} seed nodes, loopback) against the raw command it wraps, on a raw cluster connection\n",
                seeds.len()
            );
            measure(redis.with_prefix(&prefix), raw, &prefix).await?;
        }
        Err(_) => println!(
            "Redis Cluster: skipped (set AUTH_BENCH_REDIS_CLUSTER_URL; .ci/redis-cluster start DIR auto prints one)"
        ),
    }
    Ok(())
}

async fn measure<C>(redis: Redis, conn: C, prefix: &str) -> Result<(), String>
where
    C: ConnectionLike + Clone + Send + 'static,
{
    let store = RedisRevocationStore::new(redis.clone());
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store
        .revoke("bench-jti", later)
        .await
        .map_err(|e| e.to_string())?;
    let q = RevocationQuery::new("other-jti", UserId::new("7"), 0).with_family("fam");
    let raw_get = || {
        let mut conn = conn.clone();
        let key = format!("{prefix}raw");
        async move {
            let _: Option<String> = redis::cmd("GET")
                .arg(black_box(key))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
        }
    };
    let (op, raw) = crate::bench::paired(2_000, 7, raw_get, || store.is_revoked(&q)).await;
    crate::bench::row(
        "RedisRevocationStore::is_revoked",
        op,
        "GET (one round trip)",
        raw,
    );
    let limiter = RedisRateLimiter::new(
        redis.clone(),
        RateLimitPolicy::new(
            u32::MAX,
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(1),
        )
        .map_err(|e| e.to_string())?,
    );
    let raw_incr = || {
        let mut conn = conn.clone();
        let key = format!("{prefix}raw-counter");
        async move {
            let _: i64 = redis::cmd("INCR")
                .arg(black_box(key))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
        }
    };
    let (op, raw) = crate::bench::paired(2_000, 7, raw_incr, || {
        limiter.acquire("login:*|bench@example.com")
    })
    .await;
    crate::bench::row(
        "RedisRateLimiter::acquire (Lua)",
        op,
        "INCR (one round trip)",
        raw,
    );
    // Leave nothing behind (the limiter's window expires by itself within a minute).
    let mut conn = conn.clone();
    for key in ["raw", "raw-counter", "rev:t:bench-jti"] {
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
    }
    Ok(())
}
