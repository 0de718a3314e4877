//! Schemes and MultiAuth, the layers, fresh authentication, cookie mode with CSRF checks,
//! password reset and email verification routes, client addresses, the OpenAPI document.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_axum::{
    AuthLayer, AuthRouter, BasicScheme, BearerScheme, MultiAuth, Principal, RefreshCookie,
    RequireAuth, S2sCaller, S2sScheme, TokenScheme, TrustedProxies,
};
use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, AuthUser, EventBus, FixedClock,
    MemoryTokenBackend, MemoryUserStore, S2SService, User,
};
use auth_testkit::TestHasher;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::get;
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "violet-otter-sings-42";
const SECRET: &str = "a-signing-secret-of-32-bytes-or-more!";
const S2S_TOKEN: &str = "service-token-0123456789abcdef012345";

fn service(clock: &FixedClock) -> AuthService {
    service_on(clock, MemoryUserStore::new())
}

/// [`service`] over `users`, for tests that change the store behind the service's back.
fn service_on(clock: &FixedClock, users: MemoryUserStore) -> AuthService {
    AuthService::new(
        AuthConfig::builder()
            .signing_secret(SECRET)
            .build()
            .unwrap(),
        users,
        TestHasher::fast(),
        MemoryTokenBackend::new().with_clock(clock.clone()),
    )
    .unwrap()
    .with_clock(clock.clone())
}

/// TOTP on memory stores, on `clock`.
#[cfg(feature = "mfa")]
fn mfa(clock: &FixedClock) -> auth_mfa::Mfa {
    auth_mfa::Mfa::new(
        auth_mfa::MemoryMfaStore::new(),
        auth_mfa::SecretCipher::new("k", &[3u8; 32]).unwrap(),
        auth_mfa::MfaConfig::new("Acme"),
    )
    .unwrap()
    .with_clock(clock.clone())
}

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<Value>,
    peer: Option<SocketAddr>,
}

fn call<'a>(method: &'a str, path: &'a str) -> Call<'a> {
    Call {
        method,
        path,
        headers: Vec::new(),
        body: None,
        peer: None,
    }
}

impl<'a> Call<'a> {
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
    fn peer(mut self, addr: &str) -> Self {
        self.peer = Some(addr.parse().unwrap());
        self
    }
    async fn send(self, app: &Router) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(self.method).uri(self.path);
        for (k, v) in &self.headers {
            req = req.header(*k, v);
        }
        let mut req = match self.body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        let response = app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

async fn hello(principal: Option<Principal<User>>) -> String {
    match principal {
        Some(Principal::User(u)) => format!("user {}", u.email()),
        Some(Principal::Service(s)) => format!("service {}", s.display_name()),
        _ => "anonymous".into(),
    }
}

async fn internal(S2sCaller(caller): S2sCaller) -> String {
    format!("hello {}", caller.display_name())
}

fn schemes_app(auth: &AuthService) -> Router {
    let chain = MultiAuth::new()
        .with(BearerScheme::new(auth.clone()))
        .with(TokenScheme::new(auth.clone()))
        .with(BasicScheme::new(auth.clone()))
        .with(S2sScheme::new(S2SService::new(
            [S2S_TOKEN],
            EventBus::new(),
        )));
    Router::new()
        .route("/open", get(hello))
        .merge(
            Router::new()
                .route("/api", get(hello))
                .route_layer(RequireAuth::<User>::login()),
        )
        .merge(
            Router::new()
                .route("/page", get(hello))
                .route_layer(RequireAuth::<User>::login().redirect_to("/login")),
        )
        .merge(Router::new().route("/verified", get(hello)).route_layer(
            RequireAuth::<User>::login().allow(|p| p.user().is_some_and(|u| u.is_verified())),
        ))
        .route("/internal", get(internal))
        .layer(AuthLayer::new(chain))
}

async fn text(app: &Router, req: Call<'_>) -> (StatusCode, HeaderMap, String) {
    let mut r = Request::builder().method(req.method).uri(req.path);
    for (k, v) in &req.headers {
        r = r.header(*k, v);
    }
    let response = app
        .clone()
        .oneshot(r.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemes_multiauth_and_layers() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock);
    auth.register("ann@example.com", PASSWORD).await.unwrap();
    let token = auth
        .login("ann@example.com", PASSWORD)
        .await
        .unwrap()
        .access_token()
        .to_owned();
    let app = schemes_app(&auth);
    let basic = |email: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"))
        )
    };

    // Each scheme on its own.
    for authorization in [
        format!("Bearer {token}"),
        format!("Token {token}"),
        basic("ann@example.com", PASSWORD),
    ] {
        let (s, _, body) = text(
            &app,
            call("GET", "/api").header("authorization", authorization),
        )
        .await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "user ann@example.com"));
    }
    let (s, _, body) = text(
        &app,
        call("GET", "/internal")
            .header("x-s2s-token", S2S_TOKEN)
            .header("x-service-name", "billing"),
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hello billing"));
    // A user is not a service.
    let (s, _, _) = text(&app, call("GET", "/internal").bearer(&token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Anonymous: open routes see None; protected ones answer 401 or redirect.
    assert_eq!(text(&app, call("GET", "/open")).await.2, "anonymous");
    let (s, h, _) = text(&app, call("GET", "/api")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    let (s, h, _) = text(&app, call("GET", "/page?tab=2")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/login?next=/page%3Ftab%3D2");
    // Authenticated but refused by the predicate: 403.
    assert_eq!(
        text(&app, call("GET", "/verified").bearer(&token)).await.0,
        StatusCode::FORBIDDEN
    );

    // Presented but invalid credentials stop the chain: a wrong Bearer token is a 401 even
    // with a valid S2S token present, and even on an open route.
    let (s, h, _) = text(
        &app,
        call("GET", "/open")
            .bearer("wrong")
            .header("x-s2s-token", S2S_TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        h[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("Basic realm=")
    );
    for authorization in [
        basic("ann@example.com", "wrong"),
        basic("nobody@example.com", PASSWORD),
        "Basic !!!".to_owned(),
        "Token ".to_owned(),
    ] {
        let (s, _, _) = text(
            &app,
            call("GET", "/open").header("authorization", authorization),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = text(&app, call("GET", "/open").header("x-s2s-token", "nope")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An unknown scheme is not ours: anonymous.
    assert_eq!(
        text(
            &app,
            call("GET", "/open").header("authorization", "Digest x")
        )
        .await
        .2,
        "anonymous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_routes_need_a_fresh_login() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock);
    let app = Router::new().nest(
        "/auth",
        AuthRouter::new(auth)
            .fresh_auth_window(Duration::from_secs(600))
            .build(),
    );
    let creds = json!({"email": "bo@example.com", "password": PASSWORD});
    let (_, _, reg) = call("POST", "/auth/register")
        .json(creds.clone())
        .send(&app)
        .await;
    let refresh = reg["refresh_token"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(601));
    // A refreshed token keeps the original password time.
    let (_, _, next) = call("POST", "/auth/refresh")
        .json(json!({"refresh_token": refresh}))
        .send(&app)
        .await;
    let stale = next["access_token"].as_str().unwrap().to_owned();
    let change = json!({"current_password": PASSWORD, "new_password": "another-violet-otter-99"});
    let (s, _, body) = call("POST", "/auth/password/change")
        .bearer(&stale)
        .json(change.clone())
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "reauthentication_required");
    for (method, path) in [
        ("POST", "/auth/sessions/revoke-others"),
        ("DELETE", "/auth/sessions/x"),
    ] {
        assert_eq!(
            call(method, path).bearer(&stale).send(&app).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // Reading is not sensitive.
    assert_eq!(
        call("GET", "/auth/me").bearer(&stale).send(&app).await.0,
        StatusCode::OK
    );
    // A new login is fresh.
    let (_, _, login) = call("POST", "/auth/login").json(creds).send(&app).await;
    let fresh = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        call("POST", "/auth/password/change")
            .bearer(&fresh)
            .json(change)
            .send(&app)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
}

fn cookie_of(headers: &HeaderMap) -> String {
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_cookie_mode_with_csrf_checks() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let app = Router::new().nest(
        "/auth",
        AuthRouter::new(service(&clock))
            .refresh_cookie(
                RefreshCookie::new()
                    .path("/auth")
                    .allow_origin("https://app.example.com"),
            )
            .build(),
    );
    let (s, h, body) = call("POST", "/auth/register")
        .header("origin", "https://app.example.com")
        .json(json!({"email": "cy@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(body.get("refresh_token").is_none(), "{body}");
    let set = h[header::SET_COOKIE].to_str().unwrap();
    for part in [
        "auth_refresh=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/auth",
    ] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = cookie_of(&h);

    // Cross-site requests are refused before anything else happens.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let (s, _, body) = call("POST", "/auth/refresh")
            .header("cookie", cookie.clone())
            .header(name, value)
            .send(&app)
            .await;
        assert_eq!(
            (s, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf"))
        );
    }
    // Same origin (Fetch Metadata) works, with the token from the cookie.
    let (s, h, body) = call("POST", "/auth/refresh")
        .header("cookie", cookie.clone())
        .header("sec-fetch-site", "same-origin")
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rotated = cookie_of(&h);
    assert_ne!(rotated, cookie);
    // The old cookie was rotated away (reuse is refused).
    let (s, _, _) = call("POST", "/auth/refresh")
        .header("cookie", cookie)
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Logout clears the cookie.
    let (_, _, login) = call("POST", "/auth/login")
        .header("origin", "https://app.example.com")
        .json(json!({"email": "cy@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let (s, h, _) = call("POST", "/auth/logout")
        .bearer(&access)
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        h[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // Reads are never blocked.
    let (s, _, _) = call("GET", "/auth/openapi.json")
        .header("sec-fetch-site", "cross-site")
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_and_email_verification_routes() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock);
    let mail: Arc<Mutex<Vec<AuthEvent>>> = Arc::default();
    for kind in [
        AuthEventKind::PasswordResetRequested,
        AuthEventKind::EmailVerificationRequested,
    ] {
        let mail = Arc::clone(&mail);
        auth.events().on_fn(kind, move |e| {
            let mail = Arc::clone(&mail);
            async move {
                mail.lock().unwrap().push(e);
                Ok(())
            }
        });
    }
    let app = Router::new().nest(
        "/auth",
        AuthRouter::new(auth.clone())
            .with_password_reset(
                auth_service::PasswordResetService::new(auth.clone())
                    .unwrap()
                    .with_clock(clock.clone()),
            )
            .with_email_verification(
                auth_service::EmailVerificationService::new(auth.clone())
                    .unwrap()
                    .with_clock(clock.clone()),
            )
            .build(),
    );
    let (_, _, reg) = call("POST", "/auth/register")
        .json(json!({"email": "dee@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let access = reg["access_token"].as_str().unwrap().to_owned();

    // The same answer for an unknown email.
    for email in ["dee@example.com", "nobody@example.com"] {
        let (s, _, body) = call("POST", "/auth/password/reset/request")
            .json(json!({"email": email}))
            .send(&app)
            .await;
        assert_eq!(
            (s, body),
            (StatusCode::ACCEPTED, json!({"status": "accepted"}))
        );
    }
    // Delivery runs in a task of its own; wait for it.
    let token = loop {
        let found = mail.lock().unwrap().iter().find_map(|e| match e {
            AuthEvent::PasswordResetRequested { token, .. } => {
                Some(token.expose_secret().to_owned())
            }
            _ => None,
        });
        if let Some(t) = found {
            break t;
        }
        tokio::task::yield_now().await;
    };
    let (s, _, _) = call("POST", "/auth/password/reset/confirm")
        .json(json!({"token": token, "new_password": "brand-new-otter-77"}))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Every session ended, and the link is spent.
    assert_eq!(
        call("GET", "/auth/me").bearer(&access).send(&app).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _, body) = call("POST", "/auth/password/reset/confirm")
        .json(json!({"token": token, "new_password": "another-new-otter-88"}))
        .send(&app)
        .await;
    // The link's holder learns why (nothing about any account).
    assert_eq!(
        (s, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "reason": "link_used_or_expired"})
        )
    );

    let (_, _, login) = call("POST", "/auth/login")
        .json(json!({"email": "dee@example.com", "password": "brand-new-otter-77"}))
        .send(&app)
        .await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    // The reset link proved the address: the account is verified now.
    let (_, _, me) = call("GET", "/auth/me").bearer(&access).send(&app).await;
    assert_eq!(me["is_verified"], true);

    // Verification by link, for an account that has not proven its address.
    let (_, _, reg) = call("POST", "/auth/register")
        .json(json!({"email": "dot@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let access = reg["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        call("POST", "/auth/email/verify/request")
            .send(&app)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call("POST", "/auth/email/verify/request")
            .bearer(&access)
            .send(&app)
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let token = mail
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            AuthEvent::EmailVerificationRequested { token, .. } => {
                Some(token.expose_secret().to_owned())
            }
            _ => None,
        })
        .unwrap();
    // Opened in the account's own session: the proof rests on it too, nothing is removed.
    let (s, _, body) = call("POST", "/auth/email/verify/confirm")
        .bearer(&access)
        .json(json!({"token": token}))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&body["is_verified"], &body["claimed"]),
        (&json!(true), &json!(false))
    );
    let (_, _, me) = call("GET", "/auth/me").bearer(&access).send(&app).await;
    assert_eq!(me["is_verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_address_through_trusted_proxies_only() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let app = |proxies: TrustedProxies| {
        Router::new().nest(
            "/auth",
            AuthRouter::new(service(&clock))
                .trusted_proxies(proxies)
                .build(),
        )
    };
    for (proxies, expected) in [
        (TrustedProxies::none(), "198.51.100.1"),
        (
            TrustedProxies::parse("198.51.100.0/24").unwrap(),
            "203.0.113.9",
        ),
    ] {
        let app = app(proxies);
        let (_, _, reg) = call("POST", "/auth/register")
            .peer("198.51.100.1:4000")
            .header("x-forwarded-for", "203.0.113.9")
            .json(json!({"email": "eve@example.com", "password": PASSWORD}))
            .send(&app)
            .await;
        let access = reg["access_token"].as_str().unwrap().to_owned();
        let (_, _, sessions) = call("GET", "/auth/sessions")
            .bearer(&access)
            .send(&app)
            .await;
        assert_eq!(sessions["sessions"][0]["ip"], expected, "{sessions}");
    }
}

#[cfg(feature = "mfa")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_route() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock);
    let mfa = auth_mfa::Mfa::new(
        auth_mfa::MemoryMfaStore::new(),
        auth_mfa::SecretCipher::new("k", &[3u8; 32]).unwrap(),
        auth_mfa::MfaConfig::new("Acme"),
    )
    .unwrap();
    let app = Router::new().nest(
        "/auth",
        AuthRouter::new(auth.clone())
            .mounted_at("/auth")
            .with_mfa(mfa)
            .with_password_reset(auth_service::PasswordResetService::new(auth.clone()).unwrap())
            .with_email_verification(auth_service::EmailVerificationService::new(auth).unwrap())
            .build(),
    );
    let (s, _, doc) = call("GET", "/auth/openapi.json").send(&app).await;
    assert_eq!(s, StatusCode::OK);
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(doc["servers"][0]["url"], "/auth");
    let expected = [
        ("post", "/register"),
        ("post", "/login"),
        ("post", "/refresh"),
        ("get", "/me"),
        ("get", "/verify"),
        ("post", "/logout"),
        ("post", "/logout-all"),
        ("get", "/sessions"),
        ("delete", "/sessions/{id}"),
        ("post", "/sessions/revoke-others"),
        ("post", "/password/change"),
        ("post", "/password/reset/request"),
        ("post", "/password/reset/confirm"),
        ("post", "/email/verify/request"),
        ("post", "/email/verify/confirm"),
        ("post", "/mfa/verify"),
        ("get", "/mfa"),
        ("post", "/mfa/totp/setup"),
        ("post", "/mfa/totp/confirm"),
        ("post", "/mfa/totp/disable"),
        ("post", "/mfa/recovery-codes"),
        ("get", "/devices"),
        ("delete", "/devices/{id}"),
        ("post", "/api-keys"),
        ("get", "/api-keys"),
        ("post", "/api-keys/{id}/roll"),
        ("delete", "/api-keys/{id}"),
        ("post", "/account/secure"),
    ];
    let distinct: std::collections::BTreeSet<&str> = expected.iter().map(|(_, p)| *p).collect();
    assert_eq!(parsed.paths.paths.len(), distinct.len());
    for (method, path) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
        // And the route really exists (anything but 404/405).
        let concrete = path.replace("{id}", "x");
        let (s, _, _) = call(&method.to_uppercase(), &format!("/auth{concrete}"))
            .send(&app)
            .await;
        assert_ne!(s, StatusCode::NOT_FOUND, "{method} {path}");
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
}

#[cfg(feature = "onboarding")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_routes_answer_the_seed_status_codes() {
    use auth_onboarding::{MemorySessionStore, Onboarding, RegisterStep};
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock);
    let flow = Onboarding::builder(auth, MemorySessionStore::new())
        .step(RegisterStep)
        .build()
        .unwrap();
    let app = Router::new().nest("/onboarding", auth_axum::onboarding_router(flow));
    let (s, _, started) = call("POST", "/onboarding/start")
        .json(json!({"email": "fin@example.com"}))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(started["current_step"], "register");
    assert_eq!(started["client_hint"]["fields"][1]["type"], "password");
    let token = started["session_token"].as_str().unwrap().to_owned();
    let (s, _, r) = call("POST", "/onboarding/advance")
        .json(json!({"session_token": token, "email": "fin@example.com", "password": "x", "password_confirm": "y"}))
        .send(&app)
        .await;
    assert_eq!(
        (s, r["errors"]["password_confirm"].is_string()),
        (StatusCode::OK, true)
    );
    assert_eq!(
        call("POST", "/onboarding/resume")
            .json(json!({"session_token": "nope"}))
            .send(&app)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    clock.advance(Duration::from_secs(3_601));
    let (s, _, body) = call("POST", "/onboarding/resume")
        .json(json!({"session_token": token}))
        .send(&app)
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::GONE, Some("expired"))
    );

    let (_, _, started) = call("POST", "/onboarding/start")
        .json(json!({"email": "gus@example.com"}))
        .send(&app)
        .await;
    let token = started["session_token"].as_str().unwrap().to_owned();
    let (s, _, done) = call("POST", "/onboarding/advance")
        .json(json!({"session_token": token, "email": "gus@example.com", "password": PASSWORD, "password_confirm": PASSWORD}))
        .send(&app)
        .await;
    assert_eq!(
        (s, done["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    assert!(done["access_token"].is_string() && done["refresh_token"].is_string());
    let (s, _, body) = call("POST", "/onboarding/advance")
        .json(json!({"session_token": token}))
        .send(&app)
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("completed"))
    );
}

/// HTTP Basic checks a password on every request: it goes through the service's throttle
/// with the client address, so one address guessing across accounts is limited like a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_throttled_per_client_address() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock).with_ip_rate_limiter(
        auth_service::MemoryRateLimiter::new(
            auth_service::RateLimitPolicy::new(
                3,
                std::time::Duration::from_secs(300),
                std::time::Duration::from_secs(900),
            )
            .unwrap(),
        )
        .with_clock(clock.clone()),
    );
    auth.register("ann@example.com", PASSWORD).await.unwrap();
    let app = Router::new()
        .route("/api", get(hello))
        .route_layer(RequireAuth::<User>::login())
        .layer(AuthLayer::new(
            MultiAuth::new().with(
                BasicScheme::new(auth.clone())
                    .trusted_proxies(TrustedProxies::parse("10.0.0.1").unwrap()),
            ),
        ));
    let basic = |email: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{password}"))
        )
    };
    let from = |ip: &'static str, authorization: String| {
        call("GET", "/api")
            .peer("10.0.0.1:4000")
            .header("x-forwarded-for", ip)
            .header("authorization", authorization)
    };
    // One client, three accounts guessed: that address is locked, for the right password too.
    for n in 0..3 {
        let (s, _, _) = from("203.0.113.9", basic(&format!("u{n}@example.com"), "guess"))
            .send(&app)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = from("203.0.113.9", basic("ann@example.com", PASSWORD))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // Another client is not.
    let (s, _, _) = from("198.51.100.4", basic("ann@example.com", PASSWORD))
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// Enrolling a second factor is as sensitive as removing one: a stale login (a refreshed token
/// whose password entry is older than the window) cannot set up or confirm TOTP.
#[cfg(feature = "mfa")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_factor_enrolment_needs_a_fresh_login() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let mfa = mfa(&clock);
    let auth = service(&clock).with_second_factor(mfa.clone());
    let app = Router::new().nest(
        "/auth",
        AuthRouter::new(auth.clone())
            .with_mfa(mfa.clone())
            .fresh_auth_window(Duration::from_secs(600))
            .build(),
    );
    let (_, _, reg) = call("POST", "/auth/register")
        .json(json!({"email": "tia@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let user = auth_service::UserId::new(reg["user_id"].as_str().unwrap());
    auth.prove_address(&user, auth_service::AddressProof::InSession)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(601));
    let (_, _, next) = call("POST", "/auth/refresh")
        .json(json!({"refresh_token": reg["refresh_token"]}))
        .send(&app)
        .await;
    let stale = next["access_token"].as_str().unwrap().to_owned();
    for path in ["/auth/mfa/totp/setup", "/auth/mfa/totp/confirm"] {
        let (s, _, body) = call("POST", path)
            .bearer(&stale)
            .json(json!({"code": "123456"}))
            .send(&app)
            .await;
        assert_eq!(
            (s, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("reauthentication_required")),
            "{path}"
        );
    }
    let (_, _, login) = call("POST", "/auth/login")
        .json(json!({"email": "tia@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let fresh = login["access_token"].as_str().unwrap().to_owned();
    let (s, _, setup) = call("POST", "/auth/mfa/totp/setup")
        .bearer(&fresh)
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK, "{setup}");
    // A wrong confirmation code tells the (authenticated) caller why.
    let app_code = mfa.authenticator(&user).await.unwrap();
    let now = 1_800_000_601;
    let valid = [
        app_code.generate(now - 30),
        app_code.generate(now),
        app_code.generate(now + 30),
    ];
    let wrong = (0..10u32)
        .map(|n| format!("{n}{n}{n}{n}{n}{n}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    let (s, _, body) = call("POST", "/auth/mfa/totp/confirm")
        .bearer(&fresh)
        .json(json!({"code": wrong}))
        .send(&app)
        .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "reason": "invalid_code"})
        )
    );
}

/// An address confirmed on another instance a moment ago: the access token's user is a cached
/// copy the invalidation has not reached yet, but enrolment decides on the stored account.
#[cfg(feature = "mfa")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_sees_an_address_confirmed_elsewhere() {
    let clock = FixedClock::from_unix(1_800_000_000);
    let mfa = mfa(&clock);
    let users = MemoryUserStore::new();
    let auth = service_on(&clock, users.clone())
        .with_user_cache(auth_service::UserCache::new(auth_service::LocalFeed::new()))
        .with_second_factor(mfa.clone());
    let app = Router::new().nest("/auth", AuthRouter::new(auth.clone()).with_mfa(mfa).build());
    let (_, _, reg) = call("POST", "/auth/register")
        .json(json!({"email": "uma@example.com", "password": PASSWORD}))
        .send(&app)
        .await;
    let token = reg["access_token"].as_str().unwrap().to_owned();
    let (_, _, me) = call("GET", "/auth/me").bearer(&token).send(&app).await;
    assert_eq!(me["is_verified"], false, "now cached");
    // Confirmed through another instance: the store changes, this instance's cache does not.
    let user = auth_service::UserId::new(reg["user_id"].as_str().unwrap());
    auth_service::UserStore::set_verified(&users, &user, true)
        .await
        .unwrap();
    let (_, _, me) = call("GET", "/auth/me").bearer(&token).send(&app).await;
    assert_eq!(me["is_verified"], false, "still the cached copy");
    let (s, _, setup) = call("POST", "/auth/mfa/totp/setup")
        .bearer(&token)
        .send(&app)
        .await;
    assert_eq!(s, StatusCode::OK, "{setup}");
}

/// API keys in a MultiAuth chain and `RequireScope`: no credentials 401, a key without the
/// scope 403, a key with it (or `*`) 200, the user's own session 200, a mangled key 401, and
/// the `ApiKeyCaller` extractor sees the key's scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_in_the_chain_and_scopes() {
    use auth_axum::{ApiKeyCaller, ApiKeyScheme, RequireScope};
    use auth_service::{ApiKeyOwner, MemoryApiKeyStore, NewApiKey};
    let clock = FixedClock::from_unix(1_800_000_000);
    let auth = service(&clock).with_api_keys(MemoryApiKeyStore::new());
    let user = auth.register("kay@example.com", PASSWORD).await.unwrap();
    auth.prove_address(&user.id, auth_service::AddressProof::InSession)
        .await
        .unwrap();
    let token = auth
        .login("kay@example.com", PASSWORD)
        .await
        .unwrap()
        .access_token()
        .to_owned();
    let owner = ApiKeyOwner::User(user.id.clone());
    let reader = auth
        .create_api_key(&owner, NewApiKey::new("reader").with_scopes(["read"]))
        .await
        .unwrap();
    let deployer = auth
        .create_api_key(
            &owner,
            NewApiKey::new("deployer").with_scopes(["deploy:write"]),
        )
        .await
        .unwrap();
    let all = auth
        .create_api_key(&owner, NewApiKey::new("all").with_scopes(["*"]))
        .await
        .unwrap();
    async fn scopes(ApiKeyCaller(caller): ApiKeyCaller<User>) -> String {
        caller.key.scopes.join(",")
    }
    let chain = MultiAuth::new()
        .with(ApiKeyScheme::new(auth.clone()))
        .with(BearerScheme::new(auth.clone()));
    let app = Router::new()
        .route("/deploy", get(hello))
        .route_layer(RequireScope::<User>::scope("deploy:write"))
        .route("/scopes", get(scopes))
        .layer(AuthLayer::new(chain))
        .with_state(auth.clone());
    let deploy = |headers: Vec<(&'static str, String)>| Call {
        headers,
        ..call("GET", "/deploy")
    };
    let mut typo = deployer.key.expose_secret().to_owned();
    typo.replace_range(12..13, if &typo[12..13] == "a" { "b" } else { "a" });
    for (headers, want) in [
        (vec![], StatusCode::UNAUTHORIZED),
        (
            vec![("x-api-key", reader.key.expose_secret().to_owned())],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("x-api-key", deployer.key.expose_secret().to_owned())],
            StatusCode::OK,
        ),
        (
            vec![(
                "authorization",
                format!("Bearer {}", deployer.key.expose_secret()),
            )],
            StatusCode::OK,
        ),
        (
            vec![("x-api-key", all.key.expose_secret().to_owned())],
            StatusCode::OK,
        ),
        (
            vec![("authorization", format!("Bearer {token}"))],
            StatusCode::OK,
        ),
        (vec![("x-api-key", typo)], StatusCode::UNAUTHORIZED),
    ] {
        let shown = format!("{headers:?}");
        let (status, _, body) = text(&app, deploy(headers)).await;
        assert_eq!(status, want, "{shown}: {body}");
    }
    let (status, _, body) = text(
        &app,
        Call {
            headers: vec![("x-api-key", reader.key.expose_secret().to_owned())],
            ..call("GET", "/scopes")
        },
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "read"));
}
