//! Redis figures (with `AUTH_BENCH_REDIS_URL`): a revocation check and a rate-limit reservation
//! against the raw round trip they wrap (`GET`, `INCR`), on the same connection.

use std::hint::black_box;

use auth_core::{RateLimitPolicy, RateLimiter, RevocationQuery, RevocationStore, UserId};
use auth_redis::{Redis, RedisRateLimiter, RedisRevocationStore};

pub(crate) async fn run() -> Result<(), String> {
    let Ok(url) = std::env::var("AUTH_BENCH_REDIS_URL") else {
        println!("Redis: skipped (set AUTH_BENCH_REDIS_URL, e.g. redis://127.0.0.1:6379/)");
        return Ok(());
    };
    let prefix = format!("auth:bench:{}:", auth_core::random::token(6));
    let redis = Redis::connect(&url)
        .await
        .map_err(|e| e.to_string())?
        .with_prefix(&prefix);
    println!("\nRedis ({url}, one connection, loopback) against the raw command it wraps\n");
    let store = RedisRevocationStore::new(redis.clone());
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    store
        .revoke("bench-jti", later)
        .await
        .map_err(|e| e.to_string())?;
    let q = RevocationQuery::new("other-jti", UserId::new("7"), 0).with_family("fam");
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
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
    // Leave nothing behind.
    let mut conn = conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
    }
    Ok(())
}
