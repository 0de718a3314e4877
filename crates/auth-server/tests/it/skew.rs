//! Clock skew between instances, with real clocks: two `auth-server` processes on one
//! PostgreSQL database, one of them under libfaketime ten minutes ahead.
//!
//! Finding (issue 30): a token the fast instance issued (`iat` = now + 600 s) was accepted by
//! both and survived "log out everywhere" and a password change made on the other: per-user
//! cut-offs compare issue instants across machines. Now a token from further ahead than the
//! tolerance is refused by an instance with a correct clock, and logout-all revokes every
//! tracked session by family, which no clock outruns.

use crate::common;

use std::time::{Duration, Instant};

use auth_testkit::db::Target;
use serde_json::{Value, json};

use common::{PASSWORD, Process};

/// Where Debian and others install the multithreaded libfaketime.
const FAKETIME_LIBRARIES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
];

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_instance_does_not_outlive_logout_everywhere() {
    // libfaketime preloaded into the server itself (the `faketime` command would fork it as
    // a child that outlives the test's kill).
    let Some(library) = FAKETIME_LIBRARIES
        .iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        auth_testkit::skip(
            "faketime",
            "libfaketime is not installed (Debian: apt-get install faketime)",
        );
        return;
    };
    let Some(url) = auth_testkit::db::fresh_url(Target::Postgres).await else {
        return;
    };
    let right = Process::start(&[], &[("DATABASE_URL", url.as_str())]).await;
    let fast = Process::start(
        &[],
        &[
            ("DATABASE_URL", url.as_str()),
            ("LD_PRELOAD", library),
            ("FAKETIME", "+10m"),
        ],
    )
    .await;
    let creds = json!({"email": "skew@example.com", "password": PASSWORD});
    let (status, _) = call(
        &right.base,
        reqwest::Method::POST,
        "/auth/register",
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let login = |base: &str| {
        let (base, creds) = (base.to_owned(), creds.clone());
        async move {
            let (status, body) = call(
                &base,
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(creds),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let ahead = login(&fast.base).await;
    let (ahead_access, ahead_refresh) = (
        ahead["access_token"].as_str().unwrap().to_owned(),
        ahead["refresh_token"].as_str().unwrap().to_owned(),
    );
    let me = |base: &str, token: &str| {
        let (base, token) = (base.to_owned(), token.to_owned());
        async move {
            call(&base, reqwest::Method::GET, "/auth/me", Some(&token), None)
                .await
                .0
        }
    };
    // The fast instance accepts its own token; the correct one refuses a token from ten
    // minutes ahead.
    assert_eq!(me(&fast.base, &ahead_access).await, 200);
    assert_eq!(me(&right.base, &ahead_access).await, 401);

    // Log out everywhere, on the instance with the right clock.
    let here = login(&right.base).await;
    let (status, body) = call(
        &right.base,
        reqwest::Method::POST,
        "/auth/logout-all",
        here["access_token"].as_str(),
        Some(json!({})),
    )
    .await;
    assert!(matches!(status, 200 | 204), "{status} {body}");

    // The fast instance learns of it through the change feed and refuses its own token, and
    // its refresh token.
    let started = Instant::now();
    while me(&fast.base, &ahead_access).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the fast instance's token outlived logout-all"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = call(
        &fast.base,
        reqwest::Method::POST,
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": ahead_refresh})),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    println!(
        "an instance 10 minutes ahead: its token refused by the other at once, and by itself {:?} after logout-all on the other; its refresh token refused",
        started.elapsed()
    );
}
