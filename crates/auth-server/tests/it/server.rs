//! auth-server end to end over real HTTP, on a random port, with both token backends.

use std::collections::HashMap;

use auth_server::{Settings, TokenBackendKind};
use serde_json::{Value, json};

fn settings(vars: &[(&str, &str)]) -> Result<Settings, auth::ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

const SECRET: &str = "server-test-secret-0123456789abcdef0123";
const PASSWORD: &str = "violet-otter-sings-42";

async fn start(backend: &str) -> String {
    let s = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_TOKEN_BACKEND", backend),
        ("DATABASE_URL", "sqlite::memory:"),
    ])
    .unwrap();
    let db = auth_server::connect(&s.database_url).await.unwrap();
    let app = auth_server::app(&s, db).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn post(base: &str, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.post(format!("{base}{path}")).json(&body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{base}{path}"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn round_trip(backend: &str) {
    let base = start(backend).await;
    assert_eq!(get(&base, "/health", None).await.0, 200);
    let (status, ready) = get(&base, "/ready", None).await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")));
    assert_eq!(ready["database"], "reachable");
    assert!(ready["change_feed"]["live"].is_boolean());

    let (s, reg) = post(
        &base,
        "/auth/register",
        None,
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 201, "{backend}: {reg}");
    assert!(reg["user_id"].is_string());
    let (s, login) = post(
        &base,
        "/auth/login",
        None,
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 200);
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    if backend == "jwt" {
        assert_eq!(access.matches('.').count(), 2);
    } else {
        assert_eq!(access.matches('.').count(), 0);
    }
    let (s, me) = get(&base, "/auth/me", Some(&access)).await;
    assert_eq!((s, me["email"].as_str()), (200, Some("alice@example.com")));
    let (s, next) = post(
        &base,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(s, 200);
    // The successor is used (the chain moves on), so the first token again is a replay on
    // every backend, within the reuse window or not.
    let (s, next) = post(
        &base,
        "/auth/refresh",
        None,
        json!({"refresh_token": next["refresh_token"]}),
    )
    .await;
    assert_eq!(s, 200);
    let next_access = next["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(
            &base,
            "/auth/refresh",
            None,
            json!({"refresh_token": refresh})
        )
        .await
        .0,
        401,
        "reuse"
    );
    let (_, again) = post(
        &base,
        "/auth/login",
        None,
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    let again = again["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(&base, "/auth/logout", Some(&again), json!({})).await.0,
        204
    );
    assert_eq!(get(&base, "/auth/me", Some(&again)).await.0, 401);
    let (_, third) = post(
        &base,
        "/auth/login",
        None,
        json!({"email": "alice@example.com", "password": PASSWORD}),
    )
    .await;
    let third = third["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        post(&base, "/auth/logout-all", Some(&third), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(get(&base, "/auth/me", Some(&third)).await.0, 401);
    let _ = next_access;
    // Lockout is shared through the database limiter.
    for _ in 0..5 {
        post(
            &base,
            "/auth/login",
            None,
            json!({"email": "alice@example.com", "password": "nope"}),
        )
        .await;
    }
    assert_eq!(
        post(
            &base,
            "/auth/login",
            None,
            json!({"email": "alice@example.com", "password": PASSWORD})
        )
        .await
        .0,
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_round_trip() {
    round_trip("jwt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_round_trip() {
    round_trip("db").await;
}

#[test]
fn settings_name_what_to_set() {
    let err = settings(&[("AUTH_ENV", "production")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"), "{err}");
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_TOKEN_BACKEND", "redis"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_TOKEN_BACKEND"));
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_SERVER_ADDR", "nowhere"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_SERVER_ADDR"));
    let s = settings(&[("AUTH_SIGNING_SECRET", SECRET)]).unwrap();
    assert_eq!(s.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database_url, "sqlite://auth.db?mode=rwc");
    assert_eq!(s.token_backend, TokenBackendKind::Jwt);
}

/// `Settings`' `Debug` (what a `tracing::debug!(?settings)` or a panic prints) shows no
/// secret: the database URL's password (in the user part or a query parameter), the Redis and
/// SMTP URLs, the signing and key-sealing secrets.
#[test]
fn settings_debug_shows_no_secret() {
    let s = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        (
            "DATABASE_URL",
            "postgres://app:pg-pass-1@db.internal:5432/auth?sslmode=require&password=pg-pass-2",
        ),
        (
            "AUTH_REDIS_URL",
            "redis://:redis-pass-3@cache.internal:6379/",
        ),
        (
            "AUTH_SMTP_URL",
            "smtps://mailer:smtp-pass-4@smtp.internal:465",
        ),
        (
            "AUTH_JWT_KEYS_SECRET",
            "keys-secret-5-keys-secret-5-keys-secret-5",
        ),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    for secret in [
        SECRET,
        "pg-pass-1",
        "pg-pass-2",
        "redis-pass-3",
        "smtp-pass-4",
        "keys-secret-5",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(
        shown.contains("postgres://app:***@db.internal:5432/auth?sslmode=require&password=***"),
        "{shown}"
    );
    // The value itself is untouched.
    assert!(s.database_url.contains("pg-pass-1"));
}

#[tokio::test]
async fn sqlite_files_run_in_wal_mode_with_the_chosen_durability() {
    use sea_orm::ConnectionTrait;
    let dir = std::env::temp_dir().join(format!("auth-server-wal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    for (value, expected) in [("full", 2), ("normal", 1)] {
        let s = settings(&[
            ("AUTH_SIGNING_SECRET", SECRET),
            ("DATABASE_URL", url.as_str()),
            ("AUTH_SQLITE_SYNCHRONOUS", value),
        ])
        .unwrap();
        let db = auth_server::connect_with(&s.database_url, s.sqlite_durability)
            .await
            .unwrap();
        let pragma = |sql: &'static str| {
            let db = db.clone();
            async move {
                db.query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .unwrap()
            }
        };
        let mode: String = pragma("PRAGMA journal_mode")
            .await
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i32 = pragma("PRAGMA synchronous")
            .await
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(sync, expected, "synchronous for {value}");
        let busy: i32 = pragma("PRAGMA busy_timeout")
            .await
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(busy, 5000);
        db.close().await.unwrap();
    }
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_SQLITE_SYNCHRONOUS", "off"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_SQLITE_SYNCHRONOUS"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn production_needs_an_https_public_url() {
    let production = [
        ("AUTH_ENV", "production"),
        ("AUTH_SIGNING_SECRET", SECRET),
        (
            "AUTH_MFA_KEY",
            "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        (
            "AUTH_SMTP_URL",
            "smtp://mailer:hunter2-smtp-password@mail.example.com:587",
        ),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = production.to_vec();
        vars.extend_from_slice(extra);
        settings(&vars)
    };
    // No public URL means http://127.0.0.1:8080: refused, naming the variable.
    let err = with(&[]).unwrap_err();
    assert!(err.to_string().contains("AUTH_PUBLIC_URL"), "{err}");
    let err = with(&[("AUTH_PUBLIC_URL", "http://auth.example.com")]).unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
    // Behind a TLS-terminating proxy, said explicitly.
    assert!(
        with(&[
            ("AUTH_PUBLIC_URL", "http://auth.example.com"),
            ("AUTH_ALLOW_HTTP_PUBLIC_URL", "true"),
        ])
        .is_ok()
    );
    let ok = with(&[
        ("AUTH_PUBLIC_URL", "https://auth.example.com"),
        (
            "AUTH_REDIS_URL",
            "redis://:hunter3-redis-password@redis.internal:6379/0",
        ),
    ])
    .unwrap();
    // Secrets never reach Debug.
    let shown = format!("{ok:?}");
    for secret in [SECRET, "hunter2-smtp-password", "hunter3-redis-password"] {
        assert!(!shown.contains(secret), "Debug shows a secret: {shown}");
    }
}

#[test]
fn a_redis_url_must_be_one() {
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_REDIS_URL", "http://redis.internal:6379"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_REDIS_URL"), "{err}");
}

#[test]
fn a_redis_cluster_is_named_by_its_nodes() {
    let two = "redis://10.0.0.1:6379/, redis://10.0.0.2:6379/";
    let ok = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_REDIS_URL", two),
        ("AUTH_REDIS_CLUSTER", "true"),
    ])
    .unwrap();
    assert!(ok.redis_cluster);
    // Several servers without saying it is a cluster: refused, saying what to set.
    let err = settings(&[("AUTH_SIGNING_SECRET", SECRET), ("AUTH_REDIS_URL", two)]).unwrap_err();
    assert!(err.to_string().contains("AUTH_REDIS_CLUSTER=true"), "{err}");
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_REDIS_CLUSTER", "true"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_REDIS_URL"), "{err}");
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_REDIS_URL", "redis://10.0.0.1:6379/"),
        ("AUTH_REDIS_CLUSTER", "yes please"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_REDIS_CLUSTER"), "{err}");
    // Braces choose a key's slot: not in the prefix.
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_REDIS_URL", "redis://10.0.0.1:6379/"),
        ("AUTH_REDIS_PREFIX", "{auth}:"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_REDIS_PREFIX"), "{err}");
}

#[test]
fn argon2_costs_are_settable_but_not_below_owasp() {
    let ok = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_ARGON2_MEMORY_KIB", "65536"),
        ("AUTH_ARGON2_ITERATIONS", "3"),
        ("AUTH_ARGON2_PARALLELISM", "2"),
    ])
    .unwrap();
    assert_eq!(
        (
            ok.argon2.memory_kib(),
            ok.argon2.iterations(),
            ok.argon2.parallelism()
        ),
        (65_536, 3, 2)
    );
    let hash =
        auth::PasswordHasher::hash(&auth::hash::MultiHasher::with_argon2(ok.argon2), "pw").unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=65536,t=3,p=2$"),
        "{hash}"
    );
    // OWASP: 19,456 KiB with 2 iterations; 12,288 with 3; 7,168 with 5 or more.
    for (memory, iterations, accepted) in [
        ("19456", "2", true),
        ("19455", "2", false),
        ("12288", "3", true),
        ("9000", "4", false),
        ("8192", "6", true),
        ("47104", "1", true),
        ("40000", "1", false),
    ] {
        let r = settings(&[
            ("AUTH_SIGNING_SECRET", SECRET),
            ("AUTH_ARGON2_MEMORY_KIB", memory),
            ("AUTH_ARGON2_ITERATIONS", iterations),
        ]);
        assert_eq!(r.is_ok(), accepted, "{memory} KiB x {iterations}: {r:?}");
        if let Err(e) = r {
            assert!(e.to_string().contains("OWASP"), "{e}");
        }
    }
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_ARGON2_ITERATIONS", "many"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_ARGON2_ITERATIONS"), "{err}");
}

#[test]
fn tokens_in_redis_need_redis() {
    let err = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_TOKEN_BACKEND", "redis"),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("AUTH_TOKEN_BACKEND")
            && err.to_string().contains("AUTH_REDIS_URL"),
        "{err}"
    );
    let ok = settings(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_TOKEN_BACKEND", "redis"),
        ("AUTH_REDIS_URL", "redis://127.0.0.1:6379/"),
    ])
    .unwrap();
    assert_eq!(ok.token_backend, auth_server::TokenBackendKind::Redis);
}

#[test]
fn development_secret_is_generated_beside_the_database_and_reused() {
    let dir = std::env::temp_dir().join(format!("auth-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    let first = settings(&[("DATABASE_URL", url.as_str())]).unwrap();
    let file = dir.join("auth-dev-secret");
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.trim().len() >= 32);
    let second = settings(&[("DATABASE_URL", url.as_str())]).unwrap();
    assert_eq!(
        first.jwt_secret.expose_secret(),
        second.jwt_secret.expose_secret(),
        "the same secret across restarts"
    );
    std::fs::remove_dir_all(&dir).ok();
}
