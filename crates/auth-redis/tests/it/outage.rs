//! Redis unreachable: nothing panics, revocation checks fail closed, a login's throttle refuses
//! the attempt (429), and everything recovers by itself when Redis is back.

use std::time::{Duration, Instant};

use auth_redis::{Redis, RedisFeed, RedisRateLimiter, RedisRevocationStore};
use auth_service::{
    AuthConfig, AuthService, ChangeFeed as _, Error, MemoryUserStore, RateLimitPolicy,
    RevocationMirror, RevocationQuery, RevocationStore, UserId,
};
use auth_testkit::{CutProxy, TestHasher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_clear_error() {
    let started = Instant::now();
    let err = Redis::connect("redis://127.0.0.1:1/").await.unwrap_err();
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    assert!(err.to_string().contains("Redis"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_fails_closed_and_recovers() {
    let Some(direct) = crate::redis().await else {
        return;
    };
    let url = std::env::var("AUTH_TEST_REDIS_URL").unwrap();
    let upstream: std::net::SocketAddr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = CutProxy::start(upstream).await;
    let redis = Redis::connect(&format!("redis://{}/", proxy.addr()))
        .await
        .unwrap()
        .with_prefix(direct.prefix());
    let feed = RedisFeed::start(&redis);
    let mirror = RevocationMirror::new(RedisRevocationStore::new(redis.clone()), feed.clone());
    assert!(mirror.wait_ready(Duration::from_secs(10)).await);
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        auth_service::MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_rate_limiter(RedisRateLimiter::new(
        redis.clone(),
        RateLimitPolicy::default(),
    ));
    auth.register("ola@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.login("ola@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(15);
    mirror.revoke("known", later).await.unwrap();

    proxy.cut();
    let start = Instant::now();
    while feed.status().live {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the feed notices"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Revocation checks cannot be answered from memory, and the store is down: an error,
    // never "not revoked".
    let q = RevocationQuery::new("unknown", UserId::new("1"), 0).with_consumable(false);
    let checked = mirror.is_revoked(&q).await;
    assert!(matches!(checked, Err(Error::Backend(_))), "{checked:?}");
    // A login's throttle cannot be asked: the attempt is refused, as a rate limit.
    let login = auth.login("ola@example.com", "violet-otter-sings-42").await;
    assert!(matches!(login, Err(Error::RateLimited { .. })), "{login:?}");
    println!(
        "Redis down ({}): checks failed closed, login refused",
        feed.status().detail.unwrap_or_default()
    );

    proxy.restore();
    assert!(
        mirror.wait_ready(Duration::from_secs(20)).await,
        "the mirror reloads"
    );
    assert!(
        mirror
            .is_revoked(&q.clone().with_consumable(false))
            .await
            .is_ok()
    );
    let known = RevocationQuery::new("known", UserId::new("1"), 0).with_consumable(false);
    assert!(mirror.is_revoked(&known).await.unwrap());
    let start = Instant::now();
    loop {
        match auth.login("ola@example.com", "violet-otter-sings-42").await {
            Ok(_) => break,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(20),
                "logins work again once Redis is back: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis comes back empty (restarted without persistence, or flushed): nothing it forgot is
/// accepted. Tokens issued before it lost its data are refused by an instance started
/// afterwards and, within a few heartbeats, by one that was running; new sign-ins work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_that_lost_its_data_forgets_no_logout() {
    use auth_service::{IssueRequest, TokenBackend, TokenKind};
    use auth_tokens_jwt::{Algorithm, JwtBackend};
    let Some(redis) = crate::redis().await else {
        return;
    };
    let instance = |redis: &Redis| {
        let mirror = RevocationMirror::new(
            RedisRevocationStore::new(redis.clone()),
            RedisFeed::start(redis),
        );
        let jwt = JwtBackend::try_hmac(
            Algorithm::HS256,
            "jwt-secret-0123456789abcdef0123456789abcdef",
        )
        .unwrap()
        .with_revocation_store(mirror.clone());
        (mirror, jwt)
    };
    let (mirror, running) = instance(&redis);
    assert!(mirror.wait_ready(Duration::from_secs(10)).await);
    let issue = |jwt: &JwtBackend| {
        let jwt = jwt.clone();
        async move {
            jwt.issue(&IssueRequest::new(UserId::new("7")))
                .await
                .unwrap()
        }
    };
    let logged_out = issue(&running).await;
    let kept = issue(&running).await;
    running
        .revoke(logged_out.access_token.expose_secret())
        .await
        .unwrap();
    let verify = |jwt: &JwtBackend, token: &str| {
        let (jwt, token) = (jwt.clone(), token.to_owned());
        async move { jwt.verify(&token, TokenKind::Access).await }
    };
    assert!(
        verify(&running, kept.access_token.expose_secret())
            .await
            .is_ok()
    );

    // Redis loses everything under this prefix, the epoch with it.
    let mut conn = redis::Client::open(std::env::var("AUTH_TEST_REDIS_URL").unwrap())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();

    // An instance started now refuses the logged-out token, and everything issued before.
    let (fresh_mirror, fresh) = instance(&redis);
    assert!(fresh_mirror.wait_ready(Duration::from_secs(10)).await);
    for token in [&logged_out, &kept] {
        assert!(
            matches!(
                verify(&fresh, token.access_token.expose_secret()).await,
                Err(Error::TokenRevoked)
            ),
            "a token from before the loss is refused"
        );
    }
    // The running instance notices within a few heartbeats, and refuses them too (the
    // logged-out one it refused all along, from memory).
    let start = Instant::now();
    while verify(&running, kept.access_token.expose_secret())
        .await
        .is_ok()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the running instance notices"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mirror.wait_ready(Duration::from_secs(10)).await);
    for token in [&logged_out, &kept] {
        assert!(matches!(
            verify(&running, token.access_token.expose_secret()).await,
            Err(Error::TokenRevoked)
        ));
    }
    // Signing in again works everywhere.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let again = issue(&fresh).await;
    assert!(
        verify(&running, again.access_token.expose_secret())
            .await
            .is_ok()
    );
    assert!(
        verify(&fresh, again.access_token.expose_secret())
            .await
            .is_ok()
    );
}
