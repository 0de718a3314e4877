//! The admin API and the audit log over real HTTP: who may administer (verified listed
//! emails, service-account keys with the `admin` scope; never a user's own key), 30
//! concurrent non-admin requests all refused, every action (list, show with lockouts,
//! unlock, deactivate, reactivate, logout-all, reset-mfa, delete raced 30 ways), the audit
//! entries they leave (address, user agent, acting admin) and `/auth/activity`. On an SQLite
//! file with the management commands, and on PostgreSQL and MariaDB when their URLs are set.

use crate::common;

use futures_util::future::join_all;
use serde_json::{Value, json};

use common::{PASSWORD, Server};

const OPS: &str = "ops@example.com";
const VIC: &str = "vic@example.com";

fn kinds(entries: &Value) -> Vec<String> {
    entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn login(s: &Server, email: &str, ua: &str) -> (u16, Value) {
    let r = s
        .send(
            s.post("/auth/login")
                .header("user-agent", ua)
                .json(&json!({"email": email, "password": PASSWORD})),
        )
        .await;
    (r.status, r.body)
}

async fn run(db_url: &str, what: &str) {
    let s = Server::start(&[("DATABASE_URL", db_url), ("AUTH_ADMIN_EMAILS", OPS)]).await;

    // A listed address administers nothing until its owner proves it; the proof grants the
    // role (in the account's own session here, so nothing is removed).
    let ops = s.register(OPS).await;
    let r = s.send(s.get("/admin/users").bearer_auth(&ops)).await;
    assert_eq!(r.status, 403, "{what}: unverified admin: {}", r.body);
    assert_eq!(r.body["error"], "forbidden");
    s.send(s.post("/auth/email/verify/request").bearer_auth(&ops))
        .await;
    let token = s
        .outbox
        .token(OPS, "https://app.example.com/verify-email")
        .await;
    let r = s
        .send(
            s.post("/auth/email/verify/confirm")
                .bearer_auth(&ops)
                .json(&json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s.send(s.get("/admin/users").bearer_auth(&ops)).await;
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    let ops_id = r.body["users"][0]["id"].as_str().unwrap().to_owned();

    // Without credentials, with bad ones, as someone else.
    assert_eq!(s.send(s.get("/admin/users")).await.status, 401);
    let r = s
        .send(s.get("/admin/users").bearer_auth("not-a-token"))
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (401, json!({"error": "unauthorized"}))
    );
    let vic = s.register(VIC).await;
    let refused = join_all((0..30).map(|_| {
        s.send(
            s.delete(&format!("/admin/users/{ops_id}"))
                .bearer_auth(&vic),
        )
    }))
    .await;
    assert!(
        refused.iter().all(|r| r.status == 403),
        "{what}: 30 concurrent non-admin deletes, all 403"
    );
    // A user without the role cannot give a key the `admin` scope, and a `*` key of theirs
    // administers nothing.
    let r = s
        .send(
            s.post("/auth/api-keys")
                .bearer_auth(&vic)
                .json(&json!({"name": "sneaky", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(r.status, 422, "{what}: unproven address: {}", r.body);
    s.verify_in_session(VIC, &vic).await;
    let r = s
        .send(
            s.post("/auth/api-keys")
                .bearer_auth(&vic)
                .json(&json!({"name": "sneaky", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    let r = s
        .send(
            s.post("/auth/api-keys")
                .bearer_auth(&vic)
                .json(&json!({"name": "all", "scopes": ["*"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let own_key = r.body["key"].as_str().unwrap().to_owned();
    let r = s
        .send(s.get("/admin/users").header("x-api-key", &own_key))
        .await;
    assert_eq!(r.status, 403, "{what}: a user's `*` key: {}", r.body);

    // List: prefix, no wildcards, pages.
    let r = s.send(s.get("/admin/users?q=VIC").bearer_auth(&ops)).await;
    let users = r.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], VIC);
    let vic_id = users[0]["id"].as_str().unwrap().to_owned();
    for q in ["%25", "_ic", "v%25"] {
        let r = s
            .send(s.get(&format!("/admin/users?q={q}")).bearer_auth(&ops))
            .await;
        assert_eq!(
            r.body["users"],
            json!([]),
            "{what}: q={q} is not a wildcard"
        );
    }
    let r = s
        .send(s.get("/admin/users?page=2&per_page=1").bearer_auth(&ops))
        .await;
    assert_eq!(r.body["users"][0]["id"], vic_id.as_str());

    // Locked out by wrong passwords: the admin sees it and lifts it.
    for _ in 0..5 {
        let r = s
            .send(
                s.post("/auth/login")
                    .header("user-agent", "guesser/1.0")
                    .json(&json!({"email": VIC, "password": "wrong-password-entirely"})),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(login(&s, VIC, "vic-laptop/2.0").await.0, 429);
    let r = s
        .send(s.get(&format!("/admin/users/{vic_id}")).bearer_auth(&ops))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email"], VIC);
    assert_eq!(r.body["second_factor"], false);
    assert_eq!(r.body["usable_password"], true);
    assert_eq!(
        r.body["sessions"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let locks = r.body["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1, "{what}: {}", r.body);
    assert_eq!(locks[0]["client"], "127.0.0.1");
    assert_eq!(locks[0]["throttle"], "login");
    let r = s
        .send(
            s.post(&format!("/admin/users/{vic_id}/unlock"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.status, 204);
    let (status, body) = login(&s, VIC, "vic-laptop/2.0").await;
    assert_eq!(status, 200, "{what}: unlocked: {body}");
    let vic = body["access_token"].as_str().unwrap().to_owned();
    let r = s
        .send(s.get(&format!("/admin/users/{vic_id}")).bearer_auth(&ops))
        .await;
    assert_eq!(r.body["locks"], json!([]));

    // The audit log: what happened, from where, and who acted.
    let r = s
        .send(
            s.get(&format!("/admin/users/{vic_id}/audit"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.status, 200);
    let k = kinds(&r.body);
    assert_eq!(
        &k[..4],
        [
            "user_login",
            "account_unlocked",
            "rate_limit_exceeded",
            "account_locked"
        ],
        "{what}: {k:?}"
    );
    assert_eq!(k.iter().filter(|k| *k == "user_login_failed").count(), 5);
    assert!(k.contains(&"user_registered".to_owned()));
    assert!(k.contains(&"api_key_created".to_owned()));
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["ip"], "127.0.0.1");
    assert_eq!(entries[0]["user_agent"], "vic-laptop/2.0");
    assert_eq!(entries[1]["actor"], format!("user:{ops_id}"));
    let failed = entries
        .iter()
        .find(|e| e["kind"] == "user_login_failed")
        .unwrap();
    assert_eq!(failed["user_agent"], "guesser/1.0");
    assert_eq!(failed["detail"]["reason"], "bad_password");
    let r = s
        .send(
            s.get(&format!("/admin/users/{vic_id}/audit?limit=2"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 2);
    let before = r.body["entries"][1]["time"].as_str().unwrap().to_owned();
    let r = s
        .send(
            s.get(&format!(
                "/admin/users/{vic_id}/audit?before={}",
                before.replace('+', "%2B")
            ))
            .bearer_auth(&ops),
        )
        .await;
    assert_eq!(
        kinds(&r.body)[0],
        "rate_limit_exceeded",
        "{what}: the next page"
    );

    // The user's own activity: the same entries, the administrator not named.
    let r = s.send(s.get("/auth/activity").bearer_auth(&vic)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let own = r.body["entries"].as_array().unwrap();
    assert_eq!(own[1]["kind"], "account_unlocked");
    assert_eq!(own[1]["by_admin"], true);
    assert!(own[1].get("actor").is_none());
    assert!(
        own.iter()
            .all(|e| e["kind"] != "user_registered" || e["detail"]["email"] == VIC)
    );
    let r = s.send(s.get("/auth/activity").bearer_auth(&ops)).await;
    assert!(
        kinds(&r.body).iter().all(|k| k != "user_login_failed"),
        "{what}: another account's failures are not in mine"
    );

    // Deactivate: sessions end, logins fail; reactivate.
    let r = s
        .send(
            s.post(&format!("/admin/users/{vic_id}/deactivate"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&vic)).await.status,
        401
    );
    assert_eq!(login(&s, VIC, "x").await.0, 401);
    s.send(
        s.post(&format!("/admin/users/{vic_id}/reactivate"))
            .bearer_auth(&ops),
    )
    .await;
    let (status, body) = login(&s, VIC, "x").await;
    assert_eq!(status, 200);
    let vic = body["access_token"].as_str().unwrap().to_owned();

    // Log out everywhere; reset the second factor.
    let r = s
        .send(
            s.post(&format!("/admin/users/{vic_id}/logout-all"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["sessions_ended"].as_u64().unwrap() >= 1);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&vic)).await.status,
        401
    );
    let r = s
        .send(
            s.post(&format!("/admin/users/{vic_id}/reset-mfa"))
                .bearer_auth(&ops),
        )
        .await;
    assert_eq!(r.status, 204);

    // Delete, raced 30 ways: exactly one deletes.
    let (_, body) = login(&s, VIC, "x").await;
    let vic = body["access_token"].as_str().unwrap().to_owned();
    let answers = join_all((0..30).map(|_| {
        s.send(
            s.delete(&format!("/admin/users/{vic_id}"))
                .bearer_auth(&ops),
        )
    }))
    .await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses[0], 204, "{what}: {statuses:?}");
    assert!(
        statuses[1..].iter().all(|s| *s == 404),
        "{what}: {statuses:?}"
    );
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&vic)).await.status,
        401
    );
    assert_eq!(
        s.send(s.get("/auth/me").header("x-api-key", &own_key))
            .await
            .status,
        401,
        "{what}: the deleted user's key is gone"
    );
    assert_eq!(login(&s, VIC, "x").await.0, 401);
    assert_eq!(
        s.send(s.get(&format!("/admin/users/{vic_id}")).bearer_auth(&ops))
            .await
            .status,
        404
    );
    let again = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": VIC, "password": PASSWORD})),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["user_id"], vic_id.as_str(), "{what}: a new id");
    let r = s.send(s.get("/admin/users/424242").bearer_auth(&ops)).await;
    assert_eq!(r.status, 404);
    println!(
        "{what}: admin API: unverified admin 403, no credentials 401, 30 concurrent non-admin 403, \
         user's admin key 403, lockout shown and lifted, audit with ip/user agent/actor, \
         delete raced 30 ways -> one 204 and 29 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_on_sqlite_file_and_from_the_command_line() {
    let (dir, url) = common::sqlite_file("auth-admin");
    run(&url, "SQLite").await;

    let cli = |args: &[&str]| common::cli(&url, args);
    let ok = |args: &[&str]| common::cli_ok(&url, args);
    ok(&["service-account", "create", "ops-bot"]);
    let admin_key = ok(&[
        "apikey",
        "create",
        "--service-account",
        "ops-bot",
        "--scope",
        "admin",
    ]);
    let reader_key = ok(&[
        "apikey",
        "create",
        "--service-account",
        "ops-bot",
        "--scope",
        "reports:read",
    ]);
    let s = Server::start(&[
        ("DATABASE_URL", url.as_str()),
        ("AUTH_ADMIN_API_KEYS", "true"),
    ])
    .await;
    let r = s
        .send(s.get("/admin/users").header("x-api-key", admin_key.trim()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .send(s.get("/admin/users").header("x-api-key", reader_key.trim()))
        .await;
    assert_eq!(r.status, 403);
    // /admin is always there (administrators are whoever holds the role); the operator's
    // service-account keys administer unless AUTH_ADMIN_API_KEYS=false.
    let plain = Server::start(&[("DATABASE_URL", url.as_str())]).await;
    assert_eq!(
        plain
            .send(
                plain
                    .get("/admin/users")
                    .header("x-api-key", admin_key.trim())
            )
            .await
            .status,
        200
    );
    let no_keys = Server::start(&[
        ("DATABASE_URL", url.as_str()),
        ("AUTH_ADMIN_API_KEYS", "false"),
    ])
    .await;
    assert_eq!(
        no_keys
            .send(
                no_keys
                    .get("/admin/users")
                    .header("x-api-key", admin_key.trim())
            )
            .await
            .status,
        403
    );

    // The same from a shell.
    let _ = login(&s, VIC, "shell-test").await;
    for _ in 0..5 {
        let _ = s
            .send(
                s.post("/auth/login")
                    .json(&json!({"email": VIC, "password": "wrong-password-entirely"})),
            )
            .await;
    }
    assert_eq!(login(&s, VIC, "x").await.0, 429);
    let shown = ok(&["user", "show", VIC]);
    assert!(shown.contains("active: true"), "{shown}");
    assert!(shown.contains("account_locked"), "{shown}");
    assert!(shown.contains("ip=127.0.0.1"), "{shown}");
    assert!(ok(&["user", "unlock", VIC]).contains("unlocked"));
    assert_eq!(login(&s, VIC, "x").await.0, 200, "unlocked from the shell");
    assert!(ok(&["user", "reset-mfa", VIC]).contains("second factor removed"));
    assert!(ok(&["user", "deactivate", VIC]).contains("deactivated"));
    assert_eq!(login(&s, VIC, "x").await.0, 401);
    assert!(ok(&["user", "reactivate", VIC]).contains("reactivated"));
    assert_eq!(login(&s, VIC, "x").await.0, 200);
    let (success, _, err) = cli(&["user", "delete", VIC]);
    assert!(!success && err.contains("--yes"), "{err}");
    assert!(ok(&["user", "delete", VIC, "--yes"]).contains("deleted"));
    assert_eq!(login(&s, VIC, "x").await.0, 401);
    let shown = ok(&["user", "show", OPS]);
    assert!(shown.contains("verified: true"), "{shown}");
    let (success, _, err) = cli(&["user", "show", "nobody@example.com"]);
    assert!(!success && err.contains("not found"), "{err}");
    println!(
        "SQLite: service-account key with scope admin -> 200, without -> 403, /admin absent \
         without AUTH_ADMIN_* (404); user show/unlock/reset-mfa/deactivate/reactivate/delete from the shell"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_on_postgres() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await {
        run(&url, "PostgreSQL").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_on_mariadb() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::MySql).await {
        run(&url, "MariaDB").await;
    }
}
