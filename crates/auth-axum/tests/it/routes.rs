use auth_axum::auth_router;
use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
use auth_testkit::TestHasher;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "violet-otter-sings-42";

fn app() -> Router {
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    Router::new().nest("/auth", auth_router(auth))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_contract() {
    let app = app();
    let (s, h, body) = call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert!(
        body["user_id"].is_string()
            && body["access_token"].is_string()
            && body["refresh_token"].is_string()
    );
    assert_eq!(body["token_type"], "Bearer");

    let (s, _, login) = call(
        &app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": "ALICE@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    let (s, _, me) = call(&app, "GET", "/auth/me", Some(&access), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["is_verified"], false);
    assert_eq!(me["id"], body["user_id"]);

    let (s, _, next) = call(
        &app,
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let next_access = next["access_token"].as_str().unwrap().to_owned();
    let (s, _, _) = call(
        &app,
        "POST",
        "/auth/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "reuse");

    let (_, _, other) = call(
        &app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    let other = other["access_token"].as_str().unwrap().to_owned();
    let (s, _, _) = call(&app, "POST", "/auth/logout", Some(&other), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = call(&app, "GET", "/auth/me", Some(&other), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (_, _, third) = call(
        &app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    let third = third["access_token"].as_str().unwrap().to_owned();
    let (s, _, ended) = call(&app, "POST", "/auth/logout-all", Some(&third), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(ended["sessions_ended"].as_u64().unwrap() >= 1);
    let (s, _, _) = call(&app, "GET", "/auth/me", Some(&third), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let _ = next_access;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_failure_is_the_same_401() {
    let app = app();
    call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "bob@example.com", "password": PASSWORD})),
    )
    .await;
    let mut bodies = Vec::new();
    for (method, path, bearer, body) in [
        (
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "bob@example.com", "password": "wrong"})),
        ),
        (
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": PASSWORD})),
        ),
        (
            "POST",
            "/auth/refresh",
            None,
            Some(json!({"refresh_token": "forged"})),
        ),
        ("GET", "/auth/me", None, None),
        ("GET", "/auth/me", Some("forged"), None),
        ("POST", "/auth/logout", Some("forged"), None),
    ] {
        let (s, h, b) = call(&app, method, path, bearer, body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        bodies.push(b);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {bodies:?}"
    );
    // A malformed Authorization header is the same 401.
    let req = Request::get("/auth/me")
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_error_statuses() {
    let app = app();
    let (s, _, b) = call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "carol@example.com", "password": "123"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"], "validation");
    assert!(
        b["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "password_too_common")
    );
    call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "carol@example.com", "password": PASSWORD})),
    )
    .await;
    let (s, _, b) = call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "carol@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );

    for _ in 0..5 {
        call(
            &app,
            "POST",
            "/auth/login",
            None,
            Some(json!({"email": "carol@example.com", "password": "nope"})),
        )
        .await;
    }
    let (s, h, b) = call(
        &app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": "carol@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h[header::RETRY_AFTER], "600");
    assert_eq!(b["retry_after"], 600);

    // Bodies: malformed, wrong shape, too large, wrong type — typed, and never echoing input.
    let (s, _, b) = call(
        &app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": 5, "password": "hunter2-secret"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"], "invalid_body");
    assert!(!b.to_string().contains("hunter2"));
    let req = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let huge = json!({"email": "a@b.c", "password": "x".repeat(20_000)});
    let (s, _, _) = call(&app, "POST", "/auth/login", None, Some(huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let req = Request::post("/auth/login").body(Body::from("{}")).unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

async fn login_token(app: &Router, password: &str) -> String {
    let (_, _, b) = call(
        app,
        "POST",
        "/auth/login",
        None,
        Some(json!({"email": "dan@example.com", "password": password})),
    )
    .await;
    b["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_password_change() {
    let app = app();
    call(
        &app,
        "POST",
        "/auth/register",
        None,
        Some(json!({"email": "dan@example.com", "password": PASSWORD})),
    )
    .await;
    let laptop = login_token(&app, PASSWORD).await;
    let phone = login_token(&app, PASSWORD).await;
    let tablet = login_token(&app, PASSWORD).await;

    let (s, _, list) = call(&app, "GET", "/auth/sessions", Some(&laptop), None).await;
    assert_eq!(s, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 4, "register's session and three logins");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);

    // End the phone's session by id, from the laptop.
    let (_, _, phone_list) = call(&app, "GET", "/auth/sessions", Some(&phone), None).await;
    let phone_id = phone_list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, _) = call(
        &app,
        "DELETE",
        &format!("/auth/sessions/{phone_id}"),
        Some(&laptop),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, "GET", "/auth/me", Some(&phone), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, _) = call(
        &app,
        "DELETE",
        "/auth/sessions/not-a-session",
        Some(&laptop),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Change the password from the laptop: the tablet is logged out, the laptop stays.
    let wrong = json!({"current_password": "wrong", "new_password": "amber-heron-dances-7"});
    assert_eq!(
        call(
            &app,
            "POST",
            "/auth/password/change",
            Some(&laptop),
            Some(wrong)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let weak = json!({"current_password": PASSWORD, "new_password": "password"});
    assert_eq!(
        call(
            &app,
            "POST",
            "/auth/password/change",
            Some(&laptop),
            Some(weak)
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let good = json!({"current_password": PASSWORD, "new_password": "amber-heron-dances-7"});
    assert_eq!(
        call(
            &app,
            "POST",
            "/auth/password/change",
            Some(&laptop),
            Some(good)
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "GET", "/auth/me", Some(&tablet), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/auth/me", Some(&laptop), None).await.0,
        StatusCode::OK
    );

    // Revoke every other session: a fresh login elsewhere ends, the laptop stays.
    let elsewhere = login_token(&app, "amber-heron-dances-7").await;
    let (s, _, ended) = call(
        &app,
        "POST",
        "/auth/sessions/revoke-others",
        Some(&laptop),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ended["sessions_ended"], 1);
    assert_eq!(
        call(&app, "GET", "/auth/me", Some(&elsewhere), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, "GET", "/auth/me", Some(&laptop), None).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_checks_the_token_without_the_user() {
    let users = MemoryUserStore::new();
    let auth = AuthService::new(
        AuthConfig::default(),
        users.clone(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap();
    let app = Router::new().nest("/auth", auth_router(auth.clone()));
    auth.register("vee@example.com", PASSWORD).await.unwrap();
    let login = auth.login("vee@example.com", PASSWORD).await.unwrap();
    let (s, h, _) = call(
        &app,
        "GET",
        "/auth/verify",
        Some(login.access_token()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["x-auth-user-id"], login.user.id.as_str());
    // Claims only: a deactivated user's token still verifies until it is revoked (that is
    // /auth/me's job) ...
    auth_service::UserStore::set_active(&users, &login.user.id, false)
        .await
        .unwrap();
    let (s, _, _) = call(
        &app,
        "GET",
        "/auth/verify",
        Some(login.access_token()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = call(&app, "GET", "/auth/me", Some(login.access_token()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // ... and a revoked, refresh, forged or missing token is the one 401.
    let (s, _, body) = call(
        &app,
        "GET",
        "/auth/verify",
        Some(login.refresh_token()),
        None,
    )
    .await;
    assert_eq!(
        (s, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}))
    );
    auth.logout(login.access_token()).await.unwrap();
    for token in [Some(login.access_token()), Some("forged"), None] {
        let (s, _, body) = call(&app, "GET", "/auth/verify", token, None).await;
        assert_eq!(
            (s, body),
            (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}))
        );
    }
}
