//! The onboarding routes (feature `onboarding`).

use auth_onboarding::{Onboarding, OnboardingError, OnboardingResult};
use auth_service::{AuthUser, SessionMeta};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::client::TrustedProxies;
use crate::error::ApiError;
use crate::router::{ApiJson, MAX_BODY_BYTES, no_store};

fn refusal(e: OnboardingError) -> Response {
    let (status, error) = match e {
        OnboardingError::Invalid => (StatusCode::NOT_FOUND, "invalid"),
        OnboardingError::Expired => (StatusCode::GONE, "expired"),
        OnboardingError::Completed => (StatusCode::CONFLICT, "completed"),
        OnboardingError::Conflict => (StatusCode::CONFLICT, "conflict"),
        OnboardingError::Auth(e) => return ApiError(e).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    (status, Json(json!({"error": error}))).into_response()
}

fn answer<U: AuthUser>(r: OnboardingResult<U>) -> Response {
    let mut body = json!({
        "status": r.status,
        "current_step": r.current_step,
        "client_hint": r.client_hint,
    });
    if let Some(map) = body.as_object_mut() {
        if let Some(token) = &r.session_token {
            map.insert("session_token".into(), token.expose_secret().into());
        }
        if !r.errors.is_empty() {
            let errors: Map<String, Value> = r
                .errors
                .iter()
                .map(|(f, m)| (f.clone(), Value::String(m.clone())))
                .collect();
            map.insert("errors".into(), Value::Object(errors));
        }
        if !r.output.is_empty() {
            map.insert("output".into(), Value::Object(r.output.clone()));
        }
        if let Some(login) = &r.auth {
            map.insert("user_id".into(), login.user.id().to_string().into());
            map.insert("access_token".into(), login.access_token().into());
            map.insert("refresh_token".into(), login.refresh_token().into());
            map.insert("token_type".into(), "Bearer".into());
        }
    }
    no_store(StatusCode::OK, body)
}

fn token_of(body: &mut Map<String, Value>) -> String {
    match body.remove("session_token") {
        Some(Value::String(t)) => t,
        _ => String::new(),
    }
}

/// The flow and how to find the client address (its sign-ups are throttled per address).
struct FlowState<U: AuthUser> {
    flow: Onboarding<U>,
    proxies: TrustedProxies,
}

impl<U: AuthUser> Clone for FlowState<U> {
    fn clone(&self) -> Self {
        Self {
            flow: self.flow.clone(),
            proxies: self.proxies.clone(),
        }
    }
}

async fn start<U: AuthUser>(
    State(FlowState { flow, .. }): State<FlowState<U>>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Response {
    let email = body
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match flow.start(email).await {
        Ok(r) => answer(r),
        Err(e) => refusal(e),
    }
}

async fn advance<U: AuthUser>(
    State(FlowState { flow, proxies }): State<FlowState<U>>,
    parts: Parts,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> Response {
    let token = token_of(&mut body);
    let skip = body
        .remove("skip")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut meta = SessionMeta::new();
    meta.ip = proxies.from_parts(&parts);
    match flow.advance_with(&token, body, skip, &meta).await {
        Ok(r) => answer(r),
        Err(e) => refusal(e),
    }
}

async fn resume<U: AuthUser>(
    State(FlowState { flow, .. }): State<FlowState<U>>,
    ApiJson(mut body): ApiJson<Map<String, Value>>,
) -> Response {
    let token = token_of(&mut body);
    match flow.resume(&token).await {
        Ok(r) => answer(r),
        Err(e) => refusal(e),
    }
}

/// The onboarding routes, to mount under a prefix (`auth-server` uses `/onboarding`), with
/// the status codes of the seed's Starlette endpoints:
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /start` | `{email}` | 200 `{session_token, status, current_step, client_hint}` |
/// | `POST /advance` | `{session_token, skip?, …step data}` | 200 `{status, current_step, client_hint, errors?, output?}`, plus `{user_id, access_token, refresh_token}` on completion |
/// | `POST /resume` | `{session_token}` | 200 as `advance` |
///
/// 404 `{"error": "invalid"}` for an unknown or replaced session, 410 `expired`, 409
/// `completed` (or `conflict` while another request holds the session); a step's refusal of
/// its data is a 200 with `errors` per field, the flow staying on the step.
///
/// ```
/// use auth_service::*;
/// use auth_onboarding::{MemorySessionStore, Onboarding, RegisterStep};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let flow = Onboarding::builder(auth, MemorySessionStore::new()).step(RegisterStep).build().unwrap();
/// let app: axum::Router = axum::Router::new().nest("/onboarding", auth_axum::onboarding_router(flow));
/// # let _ = app;
/// ```
pub fn onboarding_router<U: AuthUser>(flow: Onboarding<U>) -> Router {
    onboarding_router_with_proxies(flow, TrustedProxies::none())
}

/// [`onboarding_router`] behind proxies: the client address that throttles the register
/// step's sign-ups is found as [`crate::AuthRouter::trusted_proxies`] does (give the same).
///
/// ```
/// use auth_service::*;
/// use auth_onboarding::{MemorySessionStore, Onboarding, RegisterStep};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let flow = Onboarding::builder(auth, MemorySessionStore::new()).step(RegisterStep).build().unwrap();
/// let proxies = auth_axum::TrustedProxies::parse("10.0.0.0/8").unwrap();
/// let app: axum::Router = axum::Router::new()
///     .nest("/onboarding", auth_axum::onboarding_router_with_proxies(flow, proxies));
/// # let _ = app;
/// ```
pub fn onboarding_router_with_proxies<U: AuthUser>(
    flow: Onboarding<U>,
    proxies: TrustedProxies,
) -> Router {
    let router = Router::new()
        .route("/start", post(start::<U>))
        .route("/advance", post(advance::<U>))
        .route("/resume", post(resume::<U>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(FlowState {
            flow,
            proxies: proxies.clone(),
        });
    crate::client::with_request_context(router, proxies)
}

/// The OpenAPI document of [`onboarding_router`]'s routes (paths relative to where it is
/// mounted; `OpenApi::nest` places them).
///
/// ```
/// let doc = auth_axum::onboarding_openapi();
/// assert!(doc.paths.paths.contains_key("/advance"));
/// let all = utoipa::openapi::OpenApi::default().nest("/onboarding", doc);
/// assert!(all.paths.paths.contains_key("/onboarding/start"));
/// ```
#[must_use]
pub fn onboarding_openapi() -> utoipa::openapi::OpenApi {
    crate::openapi::model(crate::openapi::onboarding_document())
}
