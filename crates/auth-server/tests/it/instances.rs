//! Several `auth-server` instances over one database, over real HTTP: what one revokes or
//! changes, the others refuse once the change feed delivered, answering from memory; a
//! management command's change reaches a server on an SQLite file. `/ready` says where checks
//! are answered from.

use crate::common;

use std::time::{Duration, Instant};

use auth_testkit::db::Target;
use serde_json::{Value, json};

use common::PASSWORD;

struct Instance {
    base: String,
    http: reqwest::Client,
}

impl Instance {
    async fn start(url: &str) -> Self {
        let (base, _) = common::start(&[("DATABASE_URL", url)]).await;
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

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

    async fn ready(&self) -> Value {
        let (s, body) = self.send(reqwest::Method::GET, "/ready", None, None).await;
        assert_eq!(s, 200);
        body
    }

    async fn answers_from_memory(&self) {
        let start = Instant::now();
        while self.ready().await["answers_from"] != "memory" {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{}",
                self.ready().await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn login(&self, email: &str, password: &str) -> (String, String) {
        let (s, body) = self
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }
}

/// Waits until `instance` answers 401 to `token` on /auth/me; how long that took.
async fn refused_by(instance: &Instance, token: &str, what: &str) -> Duration {
    let start = Instant::now();
    while instance.me(token).await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: still accepted"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

async fn three_instances(target: Target) {
    let Some(url) = auth_testkit::db::fresh_url(target).await else {
        return;
    };
    let a = Instance::start(&url).await;
    let b = Instance::start(&url).await;
    let c = Instance::start(&url).await;
    for i in [&a, &b, &c] {
        i.answers_from_memory().await;
    }
    let (s, _) = a
        .post(
            "/auth/register",
            None,
            json!({"email": "ida@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);

    // Logged in on B; logged out on A; refused by B and C.
    let (access, refresh) = b.login("ida@example.com", PASSWORD).await;
    assert_eq!((b.me(&access).await, c.me(&access).await), (200, 200));
    let (s, _) = a.post("/auth/logout", Some(&access), json!({})).await;
    assert_eq!(s, 204);
    let on_b = refused_by(&b, &access, "logout on A, seen by B").await;
    let on_c = refused_by(&c, &access, "logout on A, seen by C").await;
    let (s, _) = c
        .post("/auth/refresh", None, json!({"refresh_token": refresh}))
        .await;
    assert_eq!(s, 401, "the session is over everywhere");
    println!("{target:?}: logout on A refused by B after {on_b:?}, by C after {on_c:?}");

    // A password changed on C ends the other sessions on A and B.
    let (old, _) = a.login("ida@example.com", PASSWORD).await;
    let (current, _) = c.login("ida@example.com", PASSWORD).await;
    assert_eq!(b.me(&old).await, 200);
    let (s, body) = c
        .post(
            "/auth/password/change",
            Some(&current),
            json!({"current_password": PASSWORD, "new_password": "amber-heron-drifts-77"}),
        )
        .await;
    assert!(s == 200 || s == 204, "{s} {body}");
    refused_by(&a, &old, "password change on C, seen by A").await;
    refused_by(&b, &old, "password change on C, seen by B").await;
    assert_eq!(a.me(&current).await, 200, "the changing session stays");

    for (name, i) in [("A", &a), ("B", &b), ("C", &c)] {
        let ready = i.ready().await;
        assert_eq!(ready["answers_from"], "memory", "{name}: {ready}");
        assert!(
            ready["change_feed"]["delivered"].as_u64().unwrap() > 0,
            "{name}: {ready}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    three_instances(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    three_instances(Target::MySql).await;
}

/// SQLite: one serving process; `auth-server user deactivate` in another process reaches it
/// through the change log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_and_a_management_command() {
    let url = auth_testkit::db::fresh_url(Target::SqliteFile)
        .await
        .unwrap();
    let server = Instance::start(&url).await;
    server.answers_from_memory().await;
    let (s, _) = server
        .post(
            "/auth/register",
            None,
            json!({"email": "jo@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, 201);
    let (access, _) = server.login("jo@example.com", PASSWORD).await;
    assert_eq!(server.me(&access).await, 200);
    // What `auth-server user deactivate jo@example.com` runs, in a stack of its own.
    let settings = auth_server::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "AUTH_SIGNING_SECRET" => Some(common::SECRET.to_owned()),
        _ => None,
    })
    .unwrap();
    let db = auth_server::connect(&url).await.unwrap();
    let command = auth_server::command_stack(&settings, db).unwrap();
    let user = command
        .auth
        .find_user_by_email("jo@example.com")
        .await
        .unwrap()
        .unwrap();
    command.auth.set_active(&user.id, false).await.unwrap();
    let took = refused_by(&server, &access, "a command's deactivation").await;
    println!("SqliteFile: a command's deactivation refused by the server after {took:?}");
}

/// Three instances starting at the same moment on an empty database (a rolling deploy): one
/// migrates under the lock, the others wait and find nothing to do; all three serve.
async fn start_together(target: Target) {
    let Some(url) = auth_testkit::db::fresh_url(target).await else {
        return;
    };
    let (a, b, c) = tokio::join!(
        auth_server::connect(&url),
        auth_server::connect(&url),
        auth_server::connect(&url)
    );
    for (name, db) in [("a", a), ("b", b), ("c", c)] {
        let db = db.unwrap_or_else(|e| {
            panic!(
                "{target:?}: instance {name} failed: {e}: {:?}",
                std::error::Error::source(&e)
            )
        });
        assert!(
            auth::migration::pending(&db).await.unwrap().is_empty(),
            "{target:?}"
        );
    }
    // And over HTTP: three servers at once, each registering a user.
    let servers = futures_util::future::join_all((0..3).map(|_| Instance::start(&url))).await;
    for (i, s) in servers.iter().enumerate() {
        let (status, body) = s
            .post(
                "/auth/register",
                None,
                json!({"email": format!("n{i}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{target:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_start_together() {
    Box::pin(start_together(Target::Postgres)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_instances_start_together() {
    Box::pin(start_together(Target::MySql)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_instances_start_together() {
    Box::pin(start_together(Target::SqliteFile)).await;
}

/// `AUTH_MIGRATE=false`: an unmigrated database is refused with the command to run; once
/// migrated, the server starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_as_a_separate_step() {
    let url = auth_testkit::db::fresh_url(Target::SqliteFile)
        .await
        .unwrap();
    let settings = auth_server::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "AUTH_SIGNING_SECRET" => Some(common::SECRET.to_owned()),
        "AUTH_MIGRATE" => Some("false".to_owned()),
        _ => None,
    })
    .unwrap();
    assert!(!settings.migrate);
    let err = auth_server::connect_from(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AUTH_MIGRATE") && err.contains("auth-server migrate"),
        "{err}"
    );
    auth_server::connect(&url).await.unwrap(); // what `auth-server migrate` runs
    auth_server::connect_from(&settings).await.unwrap();
}
