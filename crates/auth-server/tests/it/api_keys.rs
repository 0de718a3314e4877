//! API keys over real HTTP against auth-server: create (fresh login), `/auth/me` by key in
//! either header, a mangled key, keys that cannot manage keys, roll with and without grace,
//! a per-key limit under 30 concurrent requests, revoke; service accounts and keys from the
//! command line. On an SQLite file, and on PostgreSQL and MariaDB when their URLs are set.

use crate::common;

use futures_util::future::join_all;
use serde_json::{Value, json};

use common::PASSWORD;

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the server answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

async fn run(db_url: &str, what: &str) {
    let (base, outbox) = common::start(&[("DATABASE_URL", db_url)]).await;
    let c = Client {
        base,
        http: reqwest::Client::new(),
    };
    let (s, reg) = c
        .send(
            reqwest::Method::POST,
            "/auth/register",
            &[],
            Some(json!({"email": "keys@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 201, "{reg}");
    let access = reg["access_token"].as_str().unwrap().to_owned();
    let auth = bearer(&access);
    let auth = [(auth.0, auth.1.as_str())];

    // No key before the address is proven; proven from the account's own session.
    let (s, body) = c
        .send(
            reqwest::Method::POST,
            "/auth/api-keys",
            &auth,
            Some(json!({"name": "early"})),
        )
        .await;
    assert_eq!(
        (s, &body["errors"][0]["code"]),
        (422, &json!("email_not_verified")),
        "{body}"
    );
    let (s, _) = c
        .send(
            reqwest::Method::POST,
            "/auth/email/verify/request",
            &auth,
            None,
        )
        .await;
    assert_eq!(s, 202);
    let token = outbox
        .token("keys@example.com", "https://app.example.com/verify-email")
        .await;
    let (s, body) = c
        .send(
            reqwest::Method::POST,
            "/auth/email/verify/confirm",
            &auth,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!((s, &body["claimed"]), (200, &json!(false)), "{body}");

    // Create: 201, the key shown once.
    let (s, created) = c
        .send(
            reqwest::Method::POST,
            "/auth/api-keys",
            &auth,
            Some(json!({"name": "deploy bot", "scopes": ["deploy:write"], "expires_in": 86400})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("ak_live_") && key.starts_with(created["start"].as_str().unwrap()));
    assert_eq!(created["scopes"], json!(["deploy:write"]));

    // /auth/me by key, in either header: the owner and the key.
    for header in [("x-api-key", key.clone()), bearer(&key)] {
        let (s, me) = c
            .send(
                reqwest::Method::GET,
                "/auth/me",
                &[(header.0, &header.1)],
                None,
            )
            .await;
        assert_eq!(s, 200, "{me}");
        assert_eq!(me["email"], "keys@example.com");
        assert_eq!(me["api_key"]["id"], id);
        assert_eq!(me["api_key"]["scopes"], json!(["deploy:write"]));
    }
    // A scoped check for a gateway (forward auth): 204 with the owner, the key and its
    // scopes in headers; 403 for a scope the key lacks.
    let verify = |scope: &'static str| {
        c.http
            .get(format!("{}/auth/verify?scope={scope}", c.base))
            .header("x-api-key", key.clone())
            .send()
    };
    let r = verify("deploy:write").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-auth-api-key-id"], id.as_str());
    assert_eq!(r.headers()["x-auth-scopes"], "deploy:write");
    assert_eq!(
        r.headers()["x-auth-user-id"],
        reg["user_id"].as_str().unwrap()
    );
    let r = verify("admin").await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    // A mangled key, an unknown key: the same 401.
    let mut typo = key.clone();
    typo.replace_range(12..13, if &typo[12..13] == "a" { "b" } else { "a" });
    let (unknown, _) = auth::ApiKeyFormat::default().generate();
    for bad in [typo.as_str(), unknown.expose_secret()] {
        let (s, body) = c
            .send(
                reqwest::Method::GET,
                "/auth/me",
                &[("x-api-key", bad)],
                None,
            )
            .await;
        assert_eq!(
            (s, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{body}"
        );
    }
    // Crafted input: an oversized header, a key of another prefix, a path id that is not one:
    // the same 401 / 404, nothing else.
    let huge = format!("ak_live_{}", "A".repeat(10_000));
    for bad in [
        huge.as_str(),
        "ak_test_0000000000000000000000000000000000000",
        "ak_live_\u{1F600}",
    ] {
        let (s, _) = c
            .send(
                reqwest::Method::GET,
                "/auth/me",
                &[("x-api-key", bad)],
                None,
            )
            .await;
        assert_eq!(s, 401, "{}", &bad[..bad.len().min(20)]);
    }
    let (s, _) = c
        .send(
            reqwest::Method::DELETE,
            "/auth/api-keys/..%2F..%2Fetc",
            &auth,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // A key cannot manage keys.
    let by_key = bearer(&key);
    let (s, _) = c
        .send(
            reqwest::Method::POST,
            "/auth/api-keys",
            &[(by_key.0, &by_key.1)],
            Some(json!({"name": "escalate"})),
        )
        .await;
    assert_eq!(s, 401, "an API key cannot create keys");

    // List: no secrets.
    let (s, list) = c
        .send(reqwest::Method::GET, "/auth/api-keys", &auth, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&key[10..]), "{list}");
    assert!(list["api_keys"][0]["last_used_at"].is_string(), "{list}");

    // Roll with a grace period: both work; roll again without: the previous one dies at once.
    let (s, rolled) = c
        .send(
            reqwest::Method::POST,
            &format!("/auth/api-keys/{id}/roll"),
            &auth,
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    assert_eq!(s, 200, "{rolled}");
    assert_eq!(rolled["id"], id);
    assert!(rolled["previous_expires_at"].is_string());
    let second = rolled["key"].as_str().unwrap().to_owned();
    for k in [&key, &second] {
        let (s, _) = c
            .send(reqwest::Method::GET, "/auth/me", &[("x-api-key", k)], None)
            .await;
        assert_eq!(s, 200, "both keys work during the grace period");
    }
    let (s, rolled) = c
        .send(
            reqwest::Method::POST,
            &format!("/auth/api-keys/{id}/roll"),
            &auth,
            None,
        )
        .await;
    assert_eq!(s, 200, "{rolled}");
    let third = rolled["key"].as_str().unwrap().to_owned();
    for (k, want) in [(&key, 401), (&second, 401), (&third, 200)] {
        let (s, _) = c
            .send(reqwest::Method::GET, "/auth/me", &[("x-api-key", k)], None)
            .await;
        assert_eq!(s, want);
    }
    println!(
        "{what}: created, /auth/me by X-API-Key and Bearer, /auth/verify?scope= 204 in scope and 403 out of it, roll with 1 h grace (both 200), roll without (old 401, new 200)"
    );

    // A per-key limit under 30 concurrent requests.
    let (s, limited) = c
        .send(
            reqwest::Method::POST,
            "/auth/api-keys",
            &auth,
            Some(json!({"name": "limited", "rate_limit": {"requests": 5, "window_seconds": 3600}})),
        )
        .await;
    assert_eq!(s, 201, "{limited}");
    let limited_key = limited["key"].as_str().unwrap().to_owned();
    let statuses = join_all((0..30).map(|_| {
        let c = &c;
        let k = limited_key.clone();
        async move {
            c.send(reqwest::Method::GET, "/auth/me", &[("x-api-key", &k)], None)
                .await
                .0
        }
    }))
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited_out = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited_out), (5, 25), "{statuses:?}");
    println!(
        "{what}: 30 concurrent requests on a 5-per-hour key -> {ok} x 200, {limited_out} x 429"
    );

    // Revoke: 204, then the key is refused; a second revoke is 404.
    let (s, _) = c
        .send(
            reqwest::Method::DELETE,
            &format!("/auth/api-keys/{id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = c
        .send(
            reqwest::Method::GET,
            "/auth/me",
            &[("x-api-key", &third)],
            None,
        )
        .await;
    assert_eq!(s, 401);
    let (s, _) = c
        .send(
            reqwest::Method::DELETE,
            &format!("/auth/api-keys/{id}"),
            &auth,
            None,
        )
        .await;
    assert_eq!(s, 404);
    println!("{what}: revoked -> 401; revoking again -> 404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_keys_on_sqlite_file() {
    let (dir, url) = common::sqlite_file("auth-apikeys");
    run(&url, "SQLite").await;

    // Service accounts and keys from the command line, on the same database.
    let cli = |args: &[&str]| common::cli_ok(&url, args);
    assert!(cli(&["service-account", "create", "ci"]).contains("created"));
    let key = cli(&[
        "apikey",
        "create",
        "--service-account",
        "ci",
        "--scope",
        "builds:read",
        "--name",
        "nightly",
    ]);
    let key = key.trim();
    assert!(key.starts_with("ak_live_"), "{key}");
    let listed = cli(&["apikey", "list", "--service-account", "ci"]);
    assert!(
        listed.contains("nightly") && !listed.contains(key),
        "{listed}"
    );
    let id = listed.split_whitespace().next().unwrap().to_owned();

    let (base, _outbox) = common::start(&[("DATABASE_URL", url.as_str())]).await;
    let http = reqwest::Client::new();
    let me: Value = http
        .get(format!("{base}/auth/me"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["service_account"], "ci", "{me}");
    assert_eq!(me["api_key"]["scopes"], json!(["builds:read"]));
    assert!(cli(&["apikey", "revoke", &id]).contains("revoked"));
    let s = http
        .get(format!("{base}/auth/me"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 401);
    println!(
        "SQLite: service account and key from the CLI: /auth/me answers the service account; revoked from the CLI -> 401"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_keys_on_postgres() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await {
        run(&url, "PostgreSQL").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_keys_on_mariadb() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::MySql).await {
        run(&url, "MariaDB").await;
    }
}
