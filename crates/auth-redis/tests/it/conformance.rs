//! The Redis stores pass the suites every backend passes.

use std::sync::Arc;

use auth_redis::{RedisFeed, RedisRateLimiter, RedisRevocationStore, RedisTokenBackend};
use auth_service::UserId;
use auth_testkit::conformance;
use auth_tokens_jwt::{Algorithm, JwtBackend};

const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limiter() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::rate_limiter(|clock, policy| {
            let redis = redis.clone();
            async move {
                // A prefix per run of the suite: it reuses its keys across its cases.
                let redis = redis
                    .clone()
                    .with_prefix(&format!("{}{}:", redis.prefix(), auth_testkit::unique("r")))
                    .with_clock(clock);
                RedisRateLimiter::new(redis, policy)
            }
        })
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_store() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::revocation_store(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("v"));
                RedisRevocationStore::new(redis.with_prefix(&prefix).with_clock(clock))
            }
        })
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jwt_backend_over_redis() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::token_backend(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("j"));
                let redis = redis.with_prefix(&prefix).with_clock(clock.clone());
                JwtBackend::try_hmac(Algorithm::HS256, SECRET)
                    .unwrap()
                    .with_revocation_store(RedisRevocationStore::new(redis))
                    .with_clock(clock)
            }
        })
        .await;
        conformance::refresh_reuse_window(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("w"));
                let redis = redis.with_prefix(&prefix).with_clock(clock.clone());
                JwtBackend::try_hmac(Algorithm::HS256, SECRET)
                    .unwrap()
                    .with_revocation_store(RedisRevocationStore::new(redis))
                    .with_clock(clock)
            }
        })
        .await;
        println!("{kind}: suite and reuse window passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mirror_over_redis() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::revocation_store(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("m"));
                let redis = redis.with_prefix(&prefix).with_clock(clock.clone());
                let mirror = auth_service::RevocationMirror::new(
                    RedisRevocationStore::new(redis.clone()),
                    RedisFeed::start(&redis),
                )
                .with_clock(clock);
                assert!(mirror.wait_ready(std::time::Duration::from_secs(10)).await);
                mirror
            }
        })
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_backend() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::token_backend(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("o"));
                RedisTokenBackend::new(redis.with_prefix(&prefix).with_clock(clock))
            }
        })
        .await;
        conformance::refresh_reuse_window(|clock| {
            let redis = redis.clone();
            async move {
                let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("ow"));
                RedisTokenBackend::new(redis.with_prefix(&prefix).with_clock(clock))
                    .with_successor_key(b"a-server-secret-of-at-least-32-bytes!!")
            }
        })
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mfa_challenges() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        // The login challenges of `Mfa::with_challenge_store`: the ChallengeStore suite.
        let store = auth_redis::RedisChallengeStore::new(redis);
        conformance::challenge_store(Arc::new(store), UserId::new("1"), UserId::new("2")).await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onboarding_sessions() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        conformance::session_store(
            Arc::new(auth_redis::RedisSessionStore::new(redis)),
            UserId::new("1"),
        )
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_key_store() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        let suite = redis.clone();
        conformance::api_key_store(|clock| async move {
            (
                auth_redis::RedisApiKeyStore::new(suite.with_clock(clock)),
                auth_service::MemoryUserStore::new(),
            )
        })
        .await;
        let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("c"));
        conformance::api_key_cleanup(
            auth_redis::RedisApiKeyStore::new(redis.with_prefix(&prefix)),
            "1",
        )
        .await;
        println!("{kind}: suite passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ceremony_store() {
    for redis in crate::targets().await {
        let kind = crate::kind(&redis);
        let prefix = format!("{}{}:", redis.prefix(), auth_testkit::unique("w"));
        conformance::ceremony_store(Arc::new(auth_redis::RedisCeremonyStore::new(
            redis.with_prefix(&prefix),
        )))
        .await;
        println!("{kind}: suite passed");
    }
}
