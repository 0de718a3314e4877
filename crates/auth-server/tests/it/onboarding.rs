//! Onboarding through auth-server over HTTP (the page in a browser: `browser.rs`).

use crate::common;

use auth::mfa::{TotpCode, TotpSettings};
use common::{PASSWORD, now, start};
use serde_json::{Value, json};

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_over_http() {
    let (base, outbox) = start(&[("AUTH_ONBOARDING_TOTP", "required")]).await;
    let (s, started) = post(
        &base,
        "/onboarding/start",
        json!({"email": "ann@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["current_step"], "register");
    let token = started["session_token"].as_str().unwrap().to_owned();
    let advance = |body: Value| {
        let mut body = body;
        body["session_token"] = Value::String(token.clone());
        post(&base, "/onboarding/advance", body)
    };
    let (_, r) = advance(
        json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": "nope"}),
    )
    .await;
    assert!(r["errors"]["password_confirm"].is_string());
    let (_, r) = advance(
        json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
    )
    .await;
    assert_eq!(r["current_step"], "verify_email");
    let code = outbox.code("ann@example.com");
    let (_, r) = advance(json!({"code": code})).await;
    assert_eq!(r["current_step"], "setup_totp");
    let hint = &r["client_hint"];
    assert_eq!(hint["skippable"], false);
    let (_, skipped) = advance(json!({"skip": true})).await;
    assert!(
        skipped["errors"]["skip"].is_string(),
        "required TOTP cannot be skipped"
    );
    let app = TotpCode::from_base32(
        hint["extra"]["secret"].as_str().unwrap(),
        TotpSettings::default(),
    )
    .unwrap();
    let (_, r) = advance(json!({"code": app.generate(now())})).await;
    assert_eq!(r["current_step"], "profile");
    assert_eq!(r["output"]["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, r) = advance(json!({"first_name": "Ann", "last_name": "Lee"})).await;
    assert_eq!(r["status"], "completed");
    let access = r["access_token"].as_str().unwrap();
    assert!(r["refresh_token"].is_string());
    let me: Value = reqwest::Client::new()
        .get(format!("{base}/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["email"].as_str(), me["is_verified"].as_bool()),
        (Some("ann@example.com"), Some(true))
    );

    // The seed's status codes: completed 409, unknown 404; a replaced session is unknown.
    assert_eq!(advance(json!({})).await.0, 409);
    assert_eq!(
        post(
            &base,
            "/onboarding/resume",
            json!({"session_token": "nope"})
        )
        .await
        .0,
        404
    );
    let (_, first) = post(
        &base,
        "/onboarding/start",
        json!({"email": "bo@example.com"}),
    )
    .await;
    post(
        &base,
        "/onboarding/start",
        json!({"email": "bo@example.com"}),
    )
    .await;
    assert_eq!(
        post(
            &base,
            "/onboarding/resume",
            json!({"session_token": first["session_token"]})
        )
        .await
        .0,
        404
    );
    // A malformed email is a typed 422.
    assert_eq!(
        post(&base, "/onboarding/start", json!({"email": "not-an-email"}))
            .await
            .0,
        422
    );
}
