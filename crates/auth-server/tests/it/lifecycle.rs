//! The account lifecycle over real HTTP: breached passwords refused at sign-up, change and
//! reset (from range files, and from a local stand-in for Have I Been Pwned's range API).

use crate::common;

use common::{PASSWORD, Server};
use serde_json::json;

/// Passes every local rule, and is in the breach data below.
const BREACHED: &str = "correct-horse-battery-staple";
/// SHA-1(BREACHED), upper-case hex, as the range files hold it.
const BREACHED_SHA1: &str = "DD606CD49BBBD06B4C2606FC2449F8FB87975786";

fn has_code(body: &serde_json::Value, code: &str) -> bool {
    body["errors"]
        .as_array()
        .is_some_and(|e| e.iter().any(|f| f["code"] == code))
}

async fn refuses_breached_everywhere(s: &Server) {
    // Sign-up.
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "pwn@example.com", "password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(has_code(&r.body, "breached_password"), "{}", r.body);
    let access = s.register("pwn@example.com").await;

    // Change.
    let r = s
        .send(
            s.post("/auth/password/change")
                .bearer_auth(&access)
                .json(&json!({"current_password": PASSWORD, "new_password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(has_code(&r.body, "breached_password"));

    // Reset.
    let r = s
        .send(
            s.post("/auth/password/reset/request")
                .json(&json!({"email": "pwn@example.com"})),
        )
        .await;
    assert_eq!(r.status, 202);
    let token = s
        .outbox
        .token("pwn@example.com", "https://app.example.com/reset-password")
        .await;
    let r = s
        .send(
            s.post("/auth/password/reset/confirm")
                .json(&json!({"token": token, "new_password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(has_code(&r.body, "breached_password"));

    // Nothing changed: the session lives, the old password logs in.
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&access)).await.status,
        200
    );
    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "pwn@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breached_passwords_from_range_files() {
    let dir = std::env::temp_dir().join(format!("auth-pwned-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (prefix, suffix) = BREACHED_SHA1.split_at(5);
    std::fs::write(
        dir.join(prefix),
        format!("0018A45C4D1DEF81644B54AB7F969B88D65:3\n{suffix}:1234\n"),
    )
    .unwrap();
    let s = Server::start(&[("AUTH_PWNED_DIR", dir.to_str().unwrap())]).await;
    refuses_breached_everywhere(&s).await;

    // A threshold above the count lets it through.
    let s = Server::start(&[
        ("AUTH_PWNED_DIR", dir.to_str().unwrap()),
        ("AUTH_PWNED_THRESHOLD", "5000"),
    ])
    .await;
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "ok@example.com", "password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A local stand-in for Have I Been Pwned's range API (the real one cannot be reached from
/// CI), speaking its protocol: `GET /range/{prefix}`, `SUFFIX:COUNT` lines, padding with 0.
async fn range_api_stand_in(up: bool) -> String {
    use axum::extract::Path;
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/range/{prefix}",
        axum::routing::get(move |Path(prefix): Path<String>| async move {
            if !up {
                return (StatusCode::SERVICE_UNAVAILABLE, String::new());
            }
            let (p, suffix) = BREACHED_SHA1.split_at(5);
            let mut body = String::from("00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n");
            if prefix == p {
                body.push_str(&format!("{suffix}:42\r\n"));
            }
            (StatusCode::OK, body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breached_passwords_from_the_range_api() {
    let url = range_api_stand_in(true).await;
    let s = Server::start(&[("AUTH_PWNED_URL", &url)]).await;
    refuses_breached_everywhere(&s).await;

    // The source down: accepted by default (with a warning), refused when configured so.
    let down = range_api_stand_in(false).await;
    let s = Server::start(&[("AUTH_PWNED_URL", &down)]).await;
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "open@example.com", "password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 201, "fails open by default: {}", r.body);
    let s = Server::start(&[
        ("AUTH_PWNED_URL", &down),
        ("AUTH_PWNED_ON_FAILURE", "refuse"),
    ])
    .await;
    let r = s
        .send(
            s.post("/auth/register")
                .json(&json!({"email": "closed@example.com", "password": BREACHED})),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["error"], "unavailable");
    assert_eq!(r.headers["retry-after"], "5");
}

#[test]
fn breach_settings_say_what_to_set() {
    let settings = |vars: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        auth_server::Settings::from_lookup(|n| map.get(n).cloned())
    };
    let err = settings(&[("AUTH_PWNED_DIR", "/no/such/dir")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_PWNED_DIR"), "{err}");
    let err = settings(&[("AUTH_PWNED_URL", "ftp://x")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_PWNED_URL"), "{err}");
    let err = settings(&[
        ("AUTH_PWNED_URL", "https://api.pwnedpasswords.com"),
        ("AUTH_PWNED_ON_FAILURE", "maybe"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_PWNED_ON_FAILURE"), "{err}");
    let ok = settings(&[("AUTH_PWNED_URL", "https://api.pwnedpasswords.com")]).unwrap();
    assert!(ok.config.password_policy().breach_check().is_some());
    let off = settings(&[]).unwrap();
    assert!(off.config.password_policy().breach_check().is_none());
}

/// The pages mailed links open are served by the binary with a strict CSP and no Referer (their
/// address holds a token); `AUTH_PAGES=false` serves none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_pages_are_served_with_strict_headers() {
    let s = Server::start(&[]).await;
    for page in [
        "/reset-password?token=x",
        "/verify-email",
        "/confirm-email-change",
        "/cancel-email-change",
        "/pages/link.js",
        "/pages/app.css",
        "/onboarding/",
        "/login",
        "/account",
        "/pages/kit.js",
        "/pages/login.js",
        "/pages/account.js",
    ] {
        let r = s.send(s.get(page)).await;
        assert_eq!(r.status, 200, "{page}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{page}");
    }
    let html = reqwest::get(format!("{}/verify-email", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"data-page="verify-email""#), "{html}");
    assert!(!html.contains("<script>"), "no inline script");
    // The server's name (AUTH_MFA_ISSUER, HTML-escaped) and the password policy's rules.
    let login = reqwest::get(format!("{}/reset-password", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("at least 8 characters"), "{login}");
    let named = Server::start(&[("AUTH_MFA_ISSUER", "<Acme & Co>")]).await;
    let login = reqwest::get(format!("{}/login", named.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("&lt;Acme &amp; Co&gt;") && !login.contains("<Acme"),
        "{login}"
    );

    let off = Server::start(&[("AUTH_PAGES", "false")]).await;
    for page in [
        "/reset-password",
        "/onboarding/",
        "/pages/link.js",
        "/login",
        "/account",
    ] {
        assert_eq!(off.send(off.get(page)).await.status, 404, "{page}");
    }
    // The API stays.
    let r = off
        .send(
            off.post("/onboarding/start")
                .json(&json!({"email": "api-only@example.com"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}
