//! Two-factor over real HTTP: setup, confirm, the two-step login, replay, recovery codes,
//! lockout, disable; on both token backends.

use crate::common;

use std::collections::HashMap;

use auth::mfa::{TotpCode, TotpSettings};
use common::{PASSWORD, now};
use serde_json::{Value, json};

async fn start(backend: &str) -> (String, common::Outbox) {
    common::start(&[("AUTH_TOKEN_BACKEND", backend), ("AUTH_MFA_ISSUER", "Acme")]).await
}

/// Registers `email` and proves the address through the emailed link (enrolment needs a
/// verified email); the access token.
async fn register_verified(base: &str, outbox: &common::Outbox, email: &str) -> String {
    let (s, reg) = post(
        base,
        "/auth/register",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 201, "{reg}");
    let access = reg["access_token"].as_str().unwrap().to_owned();
    let (s, _) = post(base, "/auth/email/verify/request", Some(&access), json!({})).await;
    assert_eq!(s, 202);
    let token = outbox.token(email, "/verify-email").await;
    let (s, body) = post(
        base,
        "/auth/email/verify/confirm",
        Some(&access),
        json!({"token": token}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    access
}

async fn call(
    method: reqwest::Method,
    url: String,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, HashMap<String, String>, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn post(base: &str, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let (s, _, v) = call(
        reqwest::Method::POST,
        format!("{base}{path}"),
        bearer,
        Some(body),
    )
    .await;
    (s, v)
}

async fn flow(backend: &str) {
    let (base, outbox) = start(backend).await;
    let creds = json!({"email": "mia@example.com", "password": PASSWORD});
    let access = register_verified(&base, &outbox, "mia@example.com").await;

    // Setup requires a Bearer token.
    assert_eq!(
        post(&base, "/auth/mfa/totp/setup", None, json!({})).await.0,
        401
    );
    let (s, h, setup) = call(
        reqwest::Method::POST,
        format!("{base}/auth/mfa/totp/setup"),
        Some(&access),
        None,
    )
    .await;
    assert_eq!(s, 200, "{setup}");
    assert_eq!(h.get("cache-control").map(String::as_str), Some("no-store"));
    let secret = setup["secret"].as_str().unwrap();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Acme:mia%40example.com?secret=")
    );
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    let app = TotpCode::from_base32(secret, TotpSettings::default()).unwrap();

    // Pending: the password alone still logs in.
    let (s, plain) = post(&base, "/auth/login", None, creds.clone()).await;
    assert_eq!(s, 200);
    assert!(plain["access_token"].is_string());

    assert_eq!(
        post(
            &base,
            "/auth/mfa/totp/confirm",
            Some(&access),
            json!({"code": "000000"})
        )
        .await
        .0,
        401
    );
    let (s, confirmed) = post(
        &base,
        "/auth/mfa/totp/confirm",
        Some(&access),
        json!({"code": app.generate(now())}),
    )
    .await;
    assert_eq!(s, 200, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);

    // Login now answers with a challenge and no tokens.
    let (s, login) = post(&base, "/auth/login", None, creds.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(login["mfa_required"], true);
    assert!(login.get("access_token").is_none() && login.get("refresh_token").is_none());
    let mfa_token = login["mfa_token"].as_str().unwrap().to_owned();

    // The next step's code (within the ±1 skew) completes it.
    let code = app.generate(now() + 30);
    let (s, pair) = post(
        &base,
        "/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await;
    assert_eq!(s, 200, "{pair}");
    let access2 = pair["access_token"].as_str().unwrap().to_owned();
    let (s, _, me) = call(
        reqwest::Method::GET,
        format!("{base}/auth/me"),
        Some(&access2),
        None,
    )
    .await;
    assert_eq!((s, me["email"].as_str()), (200, Some("mia@example.com")));

    // A replayed code is a 401, like every other credential failure.
    let (_, login) = post(&base, "/auth/login", None, creds.clone()).await;
    let mfa_token = login["mfa_token"].as_str().unwrap().to_owned();
    let (s, replay) = post(
        &base,
        "/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await;
    assert_eq!((s, replay), (401, json!({"error": "unauthorized"})));
    // A recovery code works on the same challenge, once.
    let (s, _) = post(
        &base,
        "/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": recovery[0]}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, status_h, status) = call(
        reqwest::Method::GET,
        format!("{base}/auth/mfa"),
        Some(&access2),
        None,
    )
    .await;
    assert_eq!(status["enabled"], true, "{status_h:?}");
    assert_eq!(status["recovery_codes_left"], 9);

    // Wrong codes lock the factor: 429 with Retry-After.
    let mut last = (0, HashMap::new());
    for _ in 0..3 {
        let (_, login) = post(&base, "/auth/login", None, creds.clone()).await;
        let Some(token) = login["mfa_token"].as_str() else {
            break;
        };
        for _ in 0..5 {
            let (s, h, _) = call(
                reqwest::Method::POST,
                format!("{base}/auth/mfa/verify"),
                None,
                Some(json!({"mfa_token": token, "code": "000000"})),
            )
            .await;
            last = (s, h);
        }
    }
    let (s, _, _) = call(
        reqwest::Method::POST,
        format!("{base}/auth/login"),
        None,
        Some(creds.clone()),
    )
    .await;
    assert_eq!(s, 429);
    assert!(last.0 == 429 || last.0 == 401);
    let (s, h, _) = call(
        reqwest::Method::POST,
        format!("{base}/auth/mfa/verify"),
        None,
        Some(json!({"mfa_token": "x", "code": "000000"})),
    )
    .await;
    assert_eq!(s, 401, "an unknown challenge is a 401 whatever the lock");
    let _ = h;
    let (s, h, _) = call(
        reqwest::Method::POST,
        format!("{base}/auth/mfa/totp/disable"),
        Some(&access2),
        Some(json!({"code": recovery[1]})),
    )
    .await;
    assert_eq!(s, 429, "disable is locked too");
    assert!(
        h.get("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() > 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_over_http_jwt() {
    flow("jwt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_over_http_db_tokens() {
    flow("db").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_with_a_code() {
    let (base, outbox) = start("jwt").await;
    let creds = json!({"email": "ned@example.com", "password": PASSWORD});
    let access = register_verified(&base, &outbox, "ned@example.com").await;
    let (_, setup) = post(&base, "/auth/mfa/totp/setup", Some(&access), json!({})).await;
    let app =
        TotpCode::from_base32(setup["secret"].as_str().unwrap(), TotpSettings::default()).unwrap();
    let (_, confirmed) = post(
        &base,
        "/auth/mfa/totp/confirm",
        Some(&access),
        json!({"code": app.generate(now())}),
    )
    .await;
    let codes = confirmed["recovery_codes"].as_array().unwrap().clone();
    let (s, fresh) = post(
        &base,
        "/auth/mfa/recovery-codes",
        Some(&access),
        json!({"code": codes[0]}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(fresh["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(
        post(
            &base,
            "/auth/mfa/totp/disable",
            Some(&access),
            json!({"code": codes[1]})
        )
        .await
        .0,
        401,
        "old codes died with the regeneration"
    );
    assert_eq!(
        post(
            &base,
            "/auth/mfa/totp/disable",
            Some(&access),
            json!({"code": app.generate(now() + 30)})
        )
        .await
        .0,
        204
    );
    let (s, login) = post(&base, "/auth/login", None, creds).await;
    assert_eq!(s, 200);
    assert!(login["access_token"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_needs_a_verified_email() {
    let (base, _) = start("jwt").await;
    let (_, reg) = post(
        &base,
        "/auth/register",
        None,
        json!({"email": "pat@example.com", "password": PASSWORD}),
    )
    .await;
    let access = reg["access_token"].as_str().unwrap().to_owned();
    let (s, body) = post(&base, "/auth/mfa/totp/setup", Some(&access), json!({})).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "email_not_verified", "{body}");
}

/// Enrols a TOTP factor for a verified account: its recovery codes.
async fn enrol(base: &str, access: &str) -> Vec<String> {
    let (_, setup) = post(base, "/auth/mfa/totp/setup", Some(access), json!({})).await;
    let app =
        TotpCode::from_base32(setup["secret"].as_str().unwrap(), TotpSettings::default()).unwrap();
    let (s, confirmed) = post(
        base,
        "/auth/mfa/totp/confirm",
        Some(access),
        json!({"code": app.generate(now())}),
    )
    .await;
    assert_eq!(s, 200, "{confirmed}");
    confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// A password login presenting `device` (header `X-Auth-Device`, or the cookie): the answer.
async fn login_on(base: &str, email: &str, device: Option<(&str, &str)>) -> Value {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}));
    match device {
        Some(("header", token)) => req = req.header("x-auth-device", token),
        Some((_, token)) => req = req.header("cookie", format!("auth_device={token}")),
        None => {}
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Trusted devices (issue 29), on SQLite, PostgreSQL and MariaDB: after the second factor with
/// `trust_device`, the password alone signs in from that device (header or cookie), never from
/// another device nor for another account; the device is listed, and stops skipping the
/// factor once forgotten, after logout everywhere, and after a password change.
async fn trusted_devices(url: &str, what: &str) {
    let (base, outbox) =
        common::start(&[("DATABASE_URL", url), ("AUTH_TRUSTED_DEVICE_DAYS", "30")]).await;
    // The hosted sign-in page offers "trust this browser" for the configured days.
    let page = reqwest::get(format!("{base}/login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="trust-row" data-days="30""#) && page.contains("for 30 days"));
    let access = register_verified(&base, &outbox, "tru@example.com").await;
    let codes = enrol(&base, &access).await;
    let other = register_verified(&base, &outbox, "oth@example.com").await;
    enrol(&base, &other).await;

    let trust = |code: String| {
        let base = base.clone();
        async move {
            let challenge = login_on(&base, "tru@example.com", None).await;
            assert_eq!(challenge["mfa_required"], true, "{challenge}");
            let (s, headers, body) = call(
                reqwest::Method::POST,
                format!("{base}/auth/mfa/verify"),
                None,
                Some(json!({"mfa_token": challenge["mfa_token"], "code": code, "trust_device": true})),
            )
            .await;
            assert_eq!(s, 200, "{body}");
            let cookie = headers.get("set-cookie").cloned().unwrap_or_default();
            assert!(
                cookie.contains("auth_device=")
                    && cookie.contains("HttpOnly")
                    && cookie.contains("SameSite=Strict"),
                "{cookie}"
            );
            body["device_token"].as_str().unwrap().to_owned()
        }
    };
    let device = trust(codes[0].clone()).await;
    for how in ["header", "cookie"] {
        let signed = login_on(&base, "tru@example.com", Some((how, &device))).await;
        assert!(signed["access_token"].is_string(), "{what} {how}: {signed}");
    }
    assert_eq!(
        login_on(&base, "tru@example.com", None).await["mfa_required"],
        true
    );
    assert_eq!(
        login_on(
            &base,
            "tru@example.com",
            Some(("header", "forged-device-credential"))
        )
        .await["mfa_required"],
        true
    );
    assert_eq!(
        login_on(&base, "oth@example.com", Some(("header", &device))).await["mfa_required"],
        true,
        "{what}: a device trusted by one account does nothing for another"
    );

    // As an attacker with the password of `oth`: 30 sign-ins at once presenting `tru`'s device,
    // crafted credentials (empty, over-long, not ASCII, a replayed digest-like value), none
    // skips the factor; the password alone never opens a session.
    let forged = [
        device.clone(),
        String::new(),
        "x".repeat(10_000),
        "ü".repeat(40),
        format!("{device}{device}"),
        device[..device.len() - 1].to_owned(),
    ];
    let attempts = (0..30).map(|i| {
        let (base, forged) = (base.clone(), forged[i % forged.len()].clone());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/auth/login"))
                .header("cookie", format!("auth_device={forged}"))
                .json(&json!({"email": "oth@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    });
    for (status, body) in futures_util::future::join_all(attempts).await {
        assert!(
            body.get("access_token").is_none(),
            "{what}: a session without the second factor: {status} {body}"
        );
    }

    // Listed, then forgotten one by one.
    let session = login_on(&base, "tru@example.com", Some(("header", &device))).await;
    let fresh = session["access_token"].as_str().unwrap().to_owned();
    let (s, _, listed) = call(
        reqwest::Method::GET,
        format!("{base}/auth/devices"),
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let devices = listed["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{listed}");
    assert!(devices[0].get("device_token").is_none() && devices[0]["expires_at"].is_string());
    let id = devices[0]["id"].as_str().unwrap();
    let (s, _, _) = call(
        reqwest::Method::DELETE,
        format!("{base}/auth/devices/{id}"),
        Some(&fresh),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        login_on(&base, "tru@example.com", Some(("header", &device))).await["mfa_required"],
        true,
        "{what}: a forgotten device asks for the second factor again"
    );

    // Logout everywhere forgets every device.
    let device = trust(codes[1].clone()).await;
    let session = login_on(&base, "tru@example.com", Some(("header", &device))).await;
    let fresh = session["access_token"].as_str().unwrap().to_owned();
    let (s, _) = post(&base, "/auth/logout-all", Some(&fresh), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        login_on(&base, "tru@example.com", Some(("header", &device))).await["mfa_required"],
        true,
        "{what}: logout everywhere ends the device's trust"
    );

    // So does a password change.
    let device = trust(codes[2].clone()).await;
    let session = login_on(&base, "tru@example.com", Some(("header", &device))).await;
    let fresh = session["access_token"].as_str().unwrap().to_owned();
    let (s, body) = post(
        &base,
        "/auth/password/change",
        Some(&fresh),
        json!({"current_password": PASSWORD, "new_password": PASSWORD_2}),
    )
    .await;
    assert_eq!(s, 204, "{body}");
    let r = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .header("x-auth-device", &device)
        .json(&json!({"email": "tru@example.com", "password": PASSWORD_2}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["mfa_required"], true,
        "{what}: a password change ends the device's trust"
    );
}

const PASSWORD_2: &str = "another-violet-otter-43";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_devices_sqlite() {
    trusted_devices("sqlite::memory:", "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_devices_postgres() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await {
        trusted_devices(&url, "postgres").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_devices_mysql() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::MySql).await {
        trusted_devices(&url, "mysql").await;
    }
}
