//! auth-server over real HTTP on a random port: the seed cookbook's "Starlette Full REST API"
//! scenario, every route and error status, mail links, cookie mode, OpenAPI, request ids,
//! CORS, client addresses; and the management commands run as a real process.

use crate::common;

use common::{PASSWORD, SECRET, Server};
use serde_json::json;

async fn start(vars: &[(&str, &str)]) -> Server {
    Server::start(vars).await
}

/// The cookbook's Starlette app (register with password validation, login, refresh, me,
/// logout), step by step against our routes, with the answers its clients expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starlette_full_rest_api_scenario() {
    let s = start(&[]).await;
    // validate_password failure: the seed answers 400 {"errors": [...]}; we answer 422 with
    // the same list, per field.
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "ann@example.com", "password": "123"})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(!r.body["errors"].as_array().unwrap().is_empty());

    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201);
    for field in ["user_id", "access_token", "refresh_token"] {
        assert!(r.body[field].is_string(), "{field}");
    }
    let user_id = r.body["user_id"].as_str().unwrap().to_owned();

    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "ann@example.com", "password": "wrong"})),
        )
        .await;
    assert_eq!((r.status, r.body), (401, json!({"error": "unauthorized"})));

    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "ann@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();

    let r = s
        .send(
            s.post("/auth/refresh")
                .json(&json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(r.status, 200);
    let access2 = r.body["access_token"].as_str().unwrap().to_owned();
    assert!(r.body["refresh_token"].is_string());

    let r = s.send(s.get("/auth/me").bearer_auth(&access2)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], user_id.as_str());
    assert_eq!(r.body["email"], "ann@example.com");
    assert_eq!(r.body["is_verified"], false);
    // login_required without a token.
    assert_eq!(s.send(s.get("/auth/me")).await.status, 401);

    let r = s.send(s.post("/auth/logout").bearer_auth(&access2)).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&access2)).await.status,
        401
    );
    let _ = access;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_limits_ids_and_openapi() {
    let s = start(&[("AUTH_CORS_ORIGINS", "https://app.example.com")]).await;
    let creds = json!({"email": "bo@example.com", "password": PASSWORD});
    assert_eq!(
        s.send(s.post("/auth/register").json(&creds)).await.status,
        201
    );
    assert_eq!(
        s.send(s.post("/auth/register").json(&creds)).await.status,
        409
    );
    // No such route, wrong method: JSON like every other error (405 keeps its Allow header).
    let r = s.send(s.get("/no/such/route")).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("not_found"))
    );
    let r = s.send(s.get("/auth/login")).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert!(r.headers.contains_key("allow"));
    // A handler's own JSON 404 is kept.
    let r = s
        .send(
            reqwest::Client::new()
                .delete(format!("{}/auth/api-keys/none", s.base))
                .bearer_auth("not-a-token"),
        )
        .await;
    assert_eq!(r.status, 401);
    // Bodies: wrong type, wrong shape, too large.
    let r = s
        .send(
            s.post("/auth/login")
                .header("content-type", "text/plain")
                .body("x"),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = s
        .send(s.post("/auth/login").json(&json!({"email": 1})))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (422, Some("invalid_body"))
    );
    let huge = "x".repeat(64 * 1024);
    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": huge, "password": huge})),
        )
        .await;
    assert_eq!(r.status, 413);
    // Over-long tokens are refused like any bad token.
    let r = s
        .send(s.get("/auth/me").bearer_auth("x".repeat(10_000)))
        .await;
    assert_eq!(r.status, 401);
    // Sessions are listed and ended one by one with JWTs too (the revocation store tracks
    // each session it issued: start, last refresh, address, client).
    let other = s
        .send(
            s.post("/auth/login")
                .header("user-agent", "phone-app/3.1")
                .json(&creds),
        )
        .await;
    let other_access = other.body["access_token"].as_str().unwrap().to_owned();
    let login = s.send(s.post("/auth/login").json(&creds)).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let listed = s.send(s.get("/auth/sessions").bearer_auth(&access)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let sessions = listed.body["sessions"].as_array().unwrap().clone();
    assert!(sessions.len() >= 2, "{}", listed.body);
    assert_eq!(
        sessions.iter().filter(|s| s["current"] == true).count(),
        1,
        "{}",
        listed.body
    );
    let phone = sessions
        .iter()
        .find(|s| s["user_agent"] == "phone-app/3.1")
        .expect("the phone's session is listed with its client");
    assert!(phone["created_at"].is_string() && phone["expires_at"].is_string());
    let id = phone["id"].as_str().unwrap();
    let r = s
        .send(
            reqwest::Client::new()
                .delete(format!("{}/auth/sessions/{id}", s.base))
                .bearer_auth(&access),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&other_access))
            .await
            .status,
        401,
        "the ended session's token is refused"
    );
    let listed = s.send(s.get("/auth/sessions").bearer_auth(&access)).await;
    assert!(
        !listed.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id)
    );

    // Request ids: generated, or kept from the client.
    let r = s.send(s.get("/health")).await;
    assert!(r.headers.get("x-request-id").is_some_and(|v| v.len() >= 16));
    let r = s
        .send(s.get("/health").header("x-request-id", "abc-123"))
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");

    // CORS: the configured origin only.
    let preflight = |origin: &str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{}/auth/login", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };
    let r = s.send(preflight("https://app.example.com")).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = s.send(preflight("https://evil.example")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // The OpenAPI document parses and lists the server's routes.
    let r = s.send(s.get("/auth/openapi.json")).await;
    assert_eq!(r.status, 200);
    let doc: utoipa::openapi::OpenApi = serde_json::from_value(r.body.clone()).unwrap();
    // 21 routes, /api-keys, /api-keys/{id}, /api-keys/{id}/roll, /activity, the three email
    // change routes, the two sign-in link routes, the six passkey routes, /account/secure, and
    // /devices and /devices/{id} (trusted devices).
    assert_eq!(doc.paths.paths.len(), 39);
    assert_eq!(r.body["servers"][0]["url"], "/auth");
    // The whole service in one document: /auth, /onboarding and /admin (always mounted: its
    // 11 routes answer holders of the `admin` role), references resolvable.
    let r = s.send(s.get("/openapi.json")).await;
    let all: utoipa::openapi::OpenApi = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(all.paths.paths.len(), 53);
    for path in [
        "/auth/activity",
        "/auth/email/change",
        "/auth/magic-link/verify",
        "/auth/passkeys/{id}",
        "/auth/login",
        "/auth/mfa/verify",
        "/auth/devices/{id}",
        "/auth/api-keys",
        "/onboarding/start",
        "/onboarding/advance",
        "/admin/users/{id}/roles",
        "/admin/users/{id}/roles/{role}",
    ] {
        assert!(all.paths.paths.contains_key(path), "{path}");
    }
    assert!(r.body["components"]["schemas"]["TokenPair"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_verification_links_by_mail() {
    let s = start(&[("AUTH_TOKEN_BACKEND", "db")]).await;
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "cy@example.com", "password": PASSWORD})),
        )
        .await;
    let access = r.body["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        s.send(s.post("/auth/email/verify/request").bearer_auth(&access))
            .await
            .status,
        202
    );
    let token = s
        .outbox
        .token("cy@example.com", "https://app.example.com/verify-email")
        .await;
    let r = s
        .send(
            s.post("/auth/email/verify/confirm")
                .bearer_auth(&access)
                .json(&json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&access)).await.body["is_verified"],
        true
    );

    for email in ["cy@example.com", "nobody@example.com"] {
        let r = s
            .send(
                s.post("/auth/password/reset/request")
                    .json(&json!({"email": email})),
            )
            .await;
        assert_eq!(r.status, 202);
    }
    let token = s
        .outbox
        .token("cy@example.com", "https://app.example.com/reset-password")
        .await;
    assert!(
        s.outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|m| m.to != "nobody@example.com"),
        "no mail for unknown accounts"
    );
    let r = s
        .send(
            s.post("/auth/password/reset/confirm")
                .json(&json!({"token": token, "new_password": "brand-new-otter-77"})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&access)).await.status,
        401,
        "sessions ended"
    );
    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "cy@example.com", "password": "brand-new-otter-77"})),
        )
        .await;
    assert_eq!(r.status, 200);
    // Sessions with the database backend: list, then 404 for someone else's id.
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let r = s.send(s.get("/auth/sessions").bearer_auth(&access)).await;
    assert_eq!(r.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["sessions"][0]["ip"], "127.0.0.1");
    let r = s
        .send(
            reqwest::Client::new()
                .delete(format!("{}/auth/sessions/not-mine", s.base))
                .bearer_auth(&access),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_mode_over_http() {
    let s = start(&[
        ("AUTH_REFRESH_COOKIE", "true"),
        ("AUTH_CORS_ORIGINS", "https://app.example.com"),
    ])
    .await;
    let r = s
        .send(
            s.post("/auth/register")
                .header("origin", "https://app.example.com")
                .json(&json!({"email": "dee@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body.get("refresh_token").is_none());
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/auth")
    );
    // AUTH_PUBLIC_URL is https here, so the cookie is Secure.
    assert!(set.contains("Secure"));
    let cookie = set.split(';').next().unwrap().to_owned();
    let r = s
        .send(
            s.post("/auth/refresh")
                .header("cookie", &cookie)
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .send(
            s.post("/auth/refresh")
                .header("cookie", &cookie)
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("auth_refresh=")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_lockout_behind_a_trusted_proxy() {
    let s = start(&[
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTH_IP_RATE_LIMIT_ATTEMPTS", "3"),
    ])
    .await;
    let login = |email: &str, ip: &str| {
        s.post("/auth/login")
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": "wrong-password"}))
    };
    // One address, three different accounts: locked.
    for n in 0..3 {
        assert_eq!(
            s.send(login(&format!("u{n}@example.com"), "203.0.113.5"))
                .await
                .status,
            401
        );
    }
    let r = s.send(login("u9@example.com", "203.0.113.5")).await;
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_some());
    // Another client address is not affected.
    assert_eq!(
        s.send(login("u9@example.com", "203.0.113.6")).await.status,
        401
    );
}

fn bin(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("auth.db").display()),
        )
        .env("AUTH_SIGNING_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn management_commands() {
    let dir = std::env::temp_dir().join(format!("auth-server-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, out, _) = bin(&dir, &["help"], None);
    assert!(ok && out.contains("user set-password"));
    let (ok, out, _) = bin(&dir, &["secret", "generate", "--mfa"], None);
    assert!(ok);
    assert!(
        auth::mfa::SecretCipher::from_spec(out.trim()).is_ok(),
        "{out}"
    );

    let (ok, _, err) = bin(&dir, &["migrate"], None);
    assert!(ok, "{err}");
    let (ok, out, err) = bin(
        &dir,
        &["user", "create", "ops@example.com", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert!(out.contains("created user"), "{out}");
    // The password never reaches the output or the log.
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    let (ok, _, err) = bin(&dir, &["user", "create", "weak@example.com"], Some("123\n"));
    assert!(!ok && err.contains("validation"), "{err}");

    let (ok, out, err) = bin(
        &dir,
        &["user", "set-password", "ops@example.com"],
        Some("another-violet-otter-99\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("password set"));
    let (ok, _, err) = bin(
        &dir,
        &["user", "set-password", "ghost@example.com"],
        Some("another-violet-otter-99\n"),
    );
    assert!(!ok && err.contains("user not found"), "{err}");
    let (ok, out, err) = bin(&dir, &["user", "deactivate", "ops@example.com"], None);
    assert!(ok && out.contains("deactivated"), "{err}");
    let (ok, out, err) = bin(&dir, &["tokens", "cleanup"], None);
    assert!(ok && out.starts_with("deleted "), "{out}{err}");
    let (ok, _, _) = bin(&dir, &["bogus"], None);
    assert!(!ok);

    // The database says what the commands did.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
        let db = auth_server::connect(&url).await.unwrap();
        let users = auth::users_db::DbUserStore::new(db);
        let user = auth::UserStore::find_by_email(&users, "ops@example.com")
            .await
            .unwrap()
            .unwrap();
        assert!(!user.is_active);
        let hash = user.password_hash.unwrap();
        assert!(
            auth::PasswordHasher::verify(
                &auth::hash::MultiHasher::default(),
                "another-violet-otter-99",
                &hash
            )
            .unwrap()
        );
    });
    std::fs::remove_dir_all(&dir).ok();
}
