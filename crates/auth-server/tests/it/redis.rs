//! Three `auth-server` instances sharing PostgreSQL and Redis (`AUTH_REDIS_URL`), over real
//! HTTP: revocations, limits and the change feed live in Redis; what one instance does holds on
//! the others. The same on a Redis Cluster (`AUTH_REDIS_CLUSTER=true`). Needs
//! `AUTH_TEST_POSTGRES_URL` and `AUTH_TEST_REDIS_URL` or `AUTH_TEST_REDIS_CLUSTER_URL` (skipped,
//! with the reason printed, without them).

use crate::common;

use std::time::{Duration, Instant};

use auth::mfa::{TotpCode, TotpSettings};
use futures_util::future::join_all;
use serde_json::{Value, json};

use common::{Outbox, PASSWORD, now};

struct Instance {
    base: String,
    outbox: Outbox,
    http: reqwest::Client,
}

impl Instance {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the server answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, bearer, Some(body))
            .await
    }

    async fn me(&self, bearer: &str) -> u16 {
        self.send(reqwest::Method::GET, "/auth/me", Some(bearer), None)
            .await
            .0
    }
}

async fn refused_by(i: &Instance, token: &str, what: &str) -> Duration {
    let start = Instant::now();
    while i.me(token).await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: still accepted"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// Rows of `table` in the shared database (what must stay out of SQL with Redis).
async fn rows(db_url: &str, table: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(db_url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_postgres_and_redis() {
    three_instances("jwt", false).await;
}

/// The same with opaque tokens in Redis (`AUTH_TOKEN_BACKEND=redis`): no token row in SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_with_tokens_in_redis() {
    three_instances("redis", false).await;
}

/// The same on a Redis Cluster (`AUTH_REDIS_CLUSTER=true`, the seed nodes in `AUTH_REDIS_URL`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_postgres_and_a_redis_cluster() {
    three_instances("jwt", true).await;
}

/// Opaque tokens in a Redis Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_with_tokens_in_a_redis_cluster() {
    three_instances("redis", true).await;
}

async fn three_instances(token_backend: &str, cluster: bool) {
    let (service, var) = if cluster {
        ("redis-cluster", "AUTH_TEST_REDIS_CLUSTER_URL")
    } else {
        ("redis", "AUTH_TEST_REDIS_URL")
    };
    let Ok(redis_url) = std::env::var(var) else {
        auth_testkit::skip(service, &format!("{var} is not set"));
        return;
    };
    let kind = if cluster { "Redis Cluster" } else { "Redis" };
    let Some(db_url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await else {
        return;
    };
    let prefix = format!(
        "{}{}:",
        std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into()),
        auth_testkit::unique("srv")
    );
    let vars = [
        ("DATABASE_URL", db_url.as_str()),
        ("AUTH_REDIS_URL", redis_url.as_str()),
        ("AUTH_REDIS_PREFIX", prefix.as_str()),
        ("AUTH_REDIS_CLUSTER", if cluster { "true" } else { "false" }),
        ("AUTH_TOKEN_BACKEND", token_backend),
        // JWTs: racing refreshes within the reuse window; opaque Redis tokens: the window
        // off, so that exactly one of the racers wins across the instances.
        (
            "AUTH_REFRESH_REUSE_WINDOW",
            if token_backend == "jwt" { "10" } else { "0" },
        ),
    ];
    let mut instances = Vec::new();
    for _ in 0..3 {
        let (base, outbox) = common::start(&vars).await;
        instances.push(Instance {
            base,
            outbox,
            http: reqwest::Client::new(),
        });
    }
    let [a, b, c] = &instances[..] else {
        unreachable!()
    };
    for i in [a, b, c] {
        let start = Instant::now();
        loop {
            let (s, ready) = i.send(reqwest::Method::GET, "/ready", None, None).await;
            if s == 200 && ready["answers_from"] == "memory" {
                assert_eq!(ready["redis"], "reachable");
                assert_eq!(ready["change_feed"]["channel"], "redis-pubsub");
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "{ready}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (s, _) = a
        .post(
            "/auth/register",
            None,
            json!({"email": "ida@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);

    // Logged in on B, logged out on A: refused by B and C.
    let (_, login) = b
        .post(
            "/auth/login",
            None,
            json!({"email": "ida@example.com", "password": PASSWORD}),
        )
        .await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        a.post("/auth/logout", Some(&access), json!({})).await.0,
        204
    );
    let on_b = refused_by(b, &access, "logout on A, seen by B").await;
    let on_c = refused_by(c, &access, "logout on A, seen by C").await;
    println!(
        "{kind} ({token_backend}): logout on A refused by B after {on_b:?}, by C after {on_c:?}"
    );

    // 30 concurrent refreshes of one token spread over the three: exactly one wins, and the
    // reuse ends the session everywhere.
    let (_, login) = a
        .post(
            "/auth/login",
            None,
            json!({"email": "ida@example.com", "password": PASSWORD}),
        )
        .await;
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let answers = join_all((0..30).map(|n| {
        let i = &instances[n % 3];
        let body = json!({"refresh_token": refresh});
        async move { i.post("/auth/refresh", None, body).await }
    }))
    .await;
    if token_backend == "jwt" {
        // Within the reuse window every racer, on whichever instance, gets the one successor
        // (the instant of consumption is shared through Redis).
        let successors: std::collections::HashSet<&str> = answers
            .iter()
            .map(|(s, b)| {
                assert_eq!(*s, 200, "{kind}: every racing refresh succeeds: {b}");
                b["refresh_token"].as_str().unwrap()
            })
            .collect();
        assert_eq!(successors.len(), 1, "{kind}: one successor for 30 racers");
        let successor = successors.into_iter().next().unwrap().to_owned();
        let (s, next) = b
            .post("/auth/refresh", None, json!({"refresh_token": successor}))
            .await;
        assert_eq!(s, 200, "{kind}: the successor rotates");
        // The chain moved on: the first token again is a replay on any instance.
        let (s, _) = c
            .post("/auth/refresh", None, json!({"refresh_token": refresh}))
            .await;
        assert_eq!(s, 401, "{kind}: a replay after the successor was used");
        for i in [a, b, c] {
            refused_by(
                i,
                next["access_token"].as_str().unwrap(),
                "the replayed family's newest access token",
            )
            .await;
        }
        println!(
            "{kind} ({token_backend}): 30 concurrent refreshes over three instances -> 30 x 200 with one successor; a later replay revokes the family everywhere"
        );
    } else {
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one of 30 refreshes wins");
        assert_eq!(answers.iter().filter(|(s, _)| *s == 401).count(), 29);
        let next_access = winners[0]["access_token"].as_str().unwrap();
        let next_refresh = winners[0]["refresh_token"].as_str().unwrap();
        for i in [a, b, c] {
            refused_by(i, next_access, "the reused family's newest access token").await;
            let (s, _) = i
                .post(
                    "/auth/refresh",
                    None,
                    json!({"refresh_token": next_refresh}),
                )
                .await;
            assert_eq!(s, 401, "the reused family's newest refresh token");
        }
        println!(
            "{kind} ({token_backend}): 30 concurrent refreshes over three instances -> 1 x 200, 29 x 401; the family is revoked everywhere"
        );
    }

    // Failed logins spread over the three lock after the policy's total.
    let (s, _) = a
        .post(
            "/auth/register",
            None,
            json!({"email": "vic@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    let answers = join_all((0..30).map(|n| {
        let i = &instances[n % 3];
        async move {
            i.post(
                "/auth/login",
                None,
                json!({"email": "vic@example.com", "password": "wrong-password-123"}),
            )
            .await
            .0
        }
    }))
    .await;
    let (denied, limited) = (
        answers.iter().filter(|s| **s == 401).count(),
        answers.iter().filter(|s| **s == 429).count(),
    );
    assert_eq!((denied, limited), (5, 25), "{answers:?}");
    println!(
        "{kind} ({token_backend}): 30 concurrent wrong passwords over three instances -> {denied} x 401, {limited} x 429"
    );

    // A second-factor challenge opened on A is answered on B.
    let (_, reg) = a
        .post(
            "/auth/register",
            None,
            json!({"email": "mo@example.com", "password": PASSWORD}),
        )
        .await;
    let access = reg["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        a.post("/auth/email/verify/request", Some(&access), json!({}))
            .await
            .0,
        202
    );
    let token = a.outbox.token("mo@example.com", "/verify-email").await;
    assert_eq!(
        b.post(
            "/auth/email/verify/confirm",
            Some(&access),
            json!({"token": token})
        )
        .await
        .0,
        200
    );
    let (s, setup) = a
        .post("/auth/mfa/totp/setup", Some(&access), json!({}))
        .await;
    assert_eq!(s, 200, "{setup}");
    let app =
        TotpCode::from_base32(setup["secret"].as_str().unwrap(), TotpSettings::default()).unwrap();
    let (s, body) = c
        .post(
            "/auth/mfa/totp/confirm",
            Some(&access),
            json!({"code": app.generate(now())}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, challenge) = a
        .post(
            "/auth/login",
            None,
            json!({"email": "mo@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(
        rows(&db_url, "auth_mfa_challenges").await,
        0,
        "the challenge is in Redis"
    );
    let (s, body) = b
        .post(
            "/auth/mfa/verify",
            None,
            json!({"mfa_token": challenge["mfa_token"], "code": app.generate(now() + 30)}),
        )
        .await;
    assert_eq!(s, 200, "{body}");

    // Onboarding started on A resumes on B and C.
    let (_, started) = a
        .post(
            "/onboarding/start",
            None,
            json!({"email": "nia@example.com"}),
        )
        .await;
    let session = started["session_token"].as_str().unwrap().to_owned();
    let (_, r) = a
        .post("/onboarding/advance", None, json!({"session_token": session, "email": "nia@example.com", "password": PASSWORD, "password_confirm": PASSWORD}))
        .await;
    assert_eq!(r["current_step"], "verify_email", "{r}");
    let code = a.outbox.code("nia@example.com");
    let (_, r) = b
        .post(
            "/onboarding/advance",
            None,
            json!({"session_token": session, "code": code}),
        )
        .await;
    assert_ne!(r["current_step"], "verify_email", "{r}");
    let (s, r) = c
        .post(
            "/onboarding/resume",
            None,
            json!({"session_token": session}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["current_step"], json!("setup_totp"), "{r}");
    assert_eq!(
        rows(&db_url, "auth_onboarding_sessions").await,
        0,
        "onboarding sessions are in Redis"
    );
    // A sign-in link asked on A, used on B: its record lives in Redis, once.
    let (s, _) = a
        .post(
            "/auth/register",
            None,
            json!({"email": "lin@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, asked) = a
        .post(
            "/auth/magic-link/request",
            None,
            json!({"email": "lin@example.com"}),
        )
        .await;
    assert_eq!(s, 202);
    let flow = asked["flow"].as_str().unwrap().to_owned();
    let link = a
        .outbox
        .token("lin@example.com", "https://app.example.com/magic-link")
        .await;
    let (s, r) = b
        .post(
            "/auth/magic-link/verify",
            None,
            json!({"token": link, "flow": flow}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, _) = c
        .post(
            "/auth/magic-link/verify",
            None,
            json!({"token": link, "flow": flow}),
        )
        .await;
    assert_eq!(s, 401, "once, across instances");
    assert_eq!(
        rows(&db_url, "auth_mfa_challenges").await,
        0,
        "link records are in Redis"
    );
    let token_rows = rows(&db_url, "auth_tokens").await;
    if token_backend == "redis" {
        assert_eq!(token_rows, 0, "opaque tokens are in Redis");
    }
    println!(
        "{kind} ({token_backend}): an MFA challenge opened on A was answered on B; onboarding started on A went on on B and C; \
         a sign-in link asked on A worked once on B (401 on C); \
         SQL holds 0 challenges, 0 onboarding sessions, {token_rows} token rows"
    );
}

/// Redis goes away under a running server: `/ready` says so (503), logins are refused (429),
/// tokens are answered from memory for the outage grace and not accepted after it; when Redis
/// is back, everything works again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_fails_closed_and_recovers() {
    let Ok(redis_url) = std::env::var("AUTH_TEST_REDIS_URL") else {
        auth_testkit::skip("redis", "AUTH_TEST_REDIS_URL is not set");
        return;
    };
    let upstream: std::net::SocketAddr = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = auth_testkit::CutProxy::start(upstream).await;
    let through = format!("redis://{}/", proxy.addr());
    let prefix = format!(
        "{}{}:",
        std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into()),
        auth_testkit::unique("down")
    );
    let (base, outbox) = common::start(&[
        ("AUTH_REDIS_URL", through.as_str()),
        ("AUTH_REDIS_PREFIX", prefix.as_str()),
        ("AUTH_OUTAGE_GRACE_SECS", "2"),
    ])
    .await;
    let s = Instance {
        base,
        outbox,
        http: reqwest::Client::new(),
    };
    let creds = json!({"email": "uma@example.com", "password": PASSWORD});
    let (status, reg) = s.post("/auth/register", None, creds.clone()).await;
    assert_eq!(status, 201, "{reg}");
    let access = reg["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.me(&access).await, 200);

    proxy.cut();
    let start = Instant::now();
    loop {
        let (code, ready) = s.send(reqwest::Method::GET, "/ready", None, None).await;
        if code == 503 {
            assert_eq!(ready["redis"], "unreachable");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, body) = s.post("/auth/login", None, creds.clone()).await;
    assert_eq!(code, 429, "a throttle that cannot be asked refuses: {body}");
    // Memory vouches for the grace (2 s here), then nothing is accepted unchecked.
    let mut from_memory = 0;
    let me = loop {
        let me = s.me(&access).await;
        if me != 200 {
            break me;
        }
        from_memory += 1;
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "memory stops vouching after the grace"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        me == 503 || me == 401,
        "a backend that cannot answer is 503 (or the token is refused): {me}"
    );
    println!(
        "Redis down: /ready 503, login 429, /auth/me 200 from memory {from_memory} times during the grace, then {me}"
    );

    proxy.restore();
    let start = Instant::now();
    loop {
        let (code, _) = s.post("/auth/login", None, creds.clone()).await;
        if code == 200 && s.me(&access).await == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "recovers by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = s.send(reqwest::Method::GET, "/ready", None, None).await;
    assert_eq!(code, 200);
}

/// Redis comes back empty (here: every key under the prefix deleted, as a restart without
/// persistence or a flush leaves it) under three running instances: over HTTP, nine logged-out
/// tokens (signed in and logged out on different instances) stay refused by an instance
/// started afterwards and, within seconds, by each of the three that were running; every
/// session from before ends (sign in again), and new sign-ins work everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restarted_empty_forgets_no_logout() {
    let Ok(redis_url) = std::env::var("AUTH_TEST_REDIS_URL") else {
        auth_testkit::skip("redis", "AUTH_TEST_REDIS_URL is not set");
        return;
    };
    let Some(db_url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await else {
        return;
    };
    let prefix = format!(
        "{}{}:",
        std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into()),
        auth_testkit::unique("empty")
    );
    let vars = [
        ("DATABASE_URL", db_url.as_str()),
        ("AUTH_REDIS_URL", redis_url.as_str()),
        ("AUTH_REDIS_PREFIX", prefix.as_str()),
    ];
    let instance = || async {
        let (base, outbox) = common::start(&vars).await;
        Instance {
            base,
            outbox,
            http: reqwest::Client::new(),
        }
    };
    let all_running = [instance().await, instance().await, instance().await];
    let mut logged_out = Vec::new();
    let mut kept = Vec::new();
    for n in 0..9 {
        // Sign up and in on one instance, log out on the next.
        let running = &all_running[n % 3];
        let email = format!("empty{n}@example.com");
        let (s, _) = running
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(s, 201);
        for list in [&mut logged_out, &mut kept] {
            let (s, login) = running
                .post(
                    "/auth/login",
                    None,
                    json!({"email": email, "password": PASSWORD}),
                )
                .await;
            assert_eq!(s, 200);
            list.push(login["access_token"].as_str().unwrap().to_owned());
        }
        let token = logged_out.last().unwrap();
        assert_eq!(
            all_running[(n + 1) % 3]
                .post("/auth/logout", Some(token), json!({}))
                .await
                .0,
            204
        );
    }

    // Redis loses its data.
    let client = redis::Client::open(redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();

    let started_after = instance().await;
    for token in logged_out.iter().chain(&kept) {
        assert_eq!(
            started_after.me(token).await,
            401,
            "a token from before the loss, on an instance started after it"
        );
    }
    for running in &all_running {
        for token in logged_out.iter().chain(&kept) {
            refused_by(
                running,
                token,
                "a token from before the loss, on an instance that was running",
            )
            .await;
        }
    }
    // Sign in again: works on both.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (s, login) = started_after
        .post(
            "/auth/login",
            None,
            json!({"email": "empty0@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 200);
    let fresh = login["access_token"].as_str().unwrap();
    assert_eq!(started_after.me(fresh).await, 200);
    for running in &all_running {
        let start = Instant::now();
        while running.me(fresh).await != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "each running instance reloaded"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "Redis emptied under three instances: 9 logged-out tokens refused by a new one and by each of the three"
    );
}
