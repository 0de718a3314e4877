//! The ready-made auth router.

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthService, AuthUser, ExtraClaims, LoginOptions, LoginOutcome, SessionMeta, TokenPair, UserId,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::TrustedProxies;
use crate::error::ApiError;
use crate::extract::{Authenticated, bearer};

/// The claim recording when the password (or a second factor) was last entered, carried across
/// refreshes; the fresh-authentication check reads it.
pub const AUTH_TIME_CLAIM: &str = "auth_time";

/// The routers' state: the service, and the optional parts.
#[derive(Clone)]
pub(crate) struct RouterState<U: AuthUser> {
    pub(crate) auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    pub(crate) mfa: Option<auth_mfa::Mfa>,
    pub(crate) reset: Option<auth_sign::PasswordResetService<U>>,
    pub(crate) verification: Option<auth_sign::EmailVerificationService<U>>,
    pub(crate) options: Arc<Options>,
}

/// Settings shared by every route.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) mount: String,
    pub(crate) fresh_window: Duration,
    pub(crate) cookie: Option<RefreshCookie>,
    pub(crate) proxies: TrustedProxies,
}

impl<U: AuthUser> axum::extract::FromRef<RouterState<U>> for AuthService<U> {
    fn from_ref(state: &RouterState<U>) -> Self {
        state.auth.clone()
    }
}

/// The largest request body the auth routes accept.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// `Json<T>` whose rejections are typed JSON errors that never echo the input.
pub(crate) struct ApiJson<T>(pub(crate) T);

/// A JSON answer that must not be cached (it carries secrets or tokens).
pub(crate) fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(body_error(&rejection)),
        }
    }
}

fn body_error(rejection: &JsonRejection) -> Response {
    let status = rejection.status();
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected Content-Type: application/json",
        StatusCode::UNPROCESSABLE_ENTITY => "the JSON does not have the expected fields and types",
        _ => "the request body is not valid JSON",
    };
    (
        status,
        Json(json!({"error": "invalid_body", "detail": detail})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize, Default)]
struct RefreshBody {
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
struct ResetConfirm {
    token: String,
    new_password: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

/// Client metadata of a request: user agent, and the address (through trusted proxies only).
pub(crate) struct Meta(pub(crate) SessionMeta);

impl<U: AuthUser> FromRequestParts<RouterState<U>> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &RouterState<U>,
    ) -> Result<Self, Self::Rejection> {
        let mut meta = match parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            Some(ua) => SessionMeta::new().with_user_agent(ua),
            None => SessionMeta::new(),
        };
        meta.ip = state.options.proxies.from_parts(parts);
        Ok(Meta(meta))
    }
}

impl<U: AuthUser> RouterState<U> {
    /// Login options for a fresh password (or second-factor) entry: metadata and `auth_time`.
    pub(crate) fn fresh_login(&self, meta: SessionMeta) -> LoginOptions {
        let mut extra = ExtraClaims::new();
        extra.insert(
            AUTH_TIME_CLAIM.into(),
            Value::from(self.auth.clock().now().unix_timestamp()),
        );
        LoginOptions::new().with_meta(meta).with_extra(extra)
    }

    /// A token response: the pair (the refresh token in a cookie in cookie mode), never cached.
    pub(crate) fn tokens(
        &self,
        status: StatusCode,
        user_id: Option<&UserId>,
        pair: &TokenPair,
    ) -> Response {
        let now = self.auth.clock().now();
        let mut body = json!({
            "access_token": pair.access_token.expose_secret(),
            "token_type": pair.token_type,
            "expires_in": (pair.access_expires_at - now).whole_seconds().max(0),
            "refresh_expires_in": (pair.refresh_expires_at - now).whole_seconds().max(0),
        });
        let map = body.as_object_mut();
        if let Some(map) = map {
            if self.options.cookie.is_none() {
                map.insert(
                    "refresh_token".into(),
                    Value::String(pair.refresh_token.expose_secret().to_owned()),
                );
            }
            if let Some(id) = user_id {
                map.insert("user_id".into(), Value::String(id.to_string()));
            }
        }
        let mut response = no_store(status, body);
        if let Some(cookie) = &self.options.cookie {
            let max_age = (pair.refresh_expires_at - now).whole_seconds().max(0);
            if let Ok(v) =
                HeaderValue::from_str(&cookie.set(pair.refresh_token.expose_secret(), max_age))
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// 403 `reauthentication_required` unless the request's token records a password entry
    /// within the fresh-authentication window.
    pub(crate) async fn require_fresh(&self, headers: &HeaderMap) -> Result<(), Response> {
        let token = bearer(headers)
            .ok()
            .flatten()
            .ok_or_else(crate::error::unauthorized)?;
        let claims = self
            .auth
            .verify_access(token)
            .await
            .map_err(|e| ApiError(e).into_response())?;
        let auth_time = claims
            .extra
            .as_ref()
            .and_then(|e| e.get(AUTH_TIME_CLAIM))
            .and_then(Value::as_i64);
        let now = self.auth.clock().now().unix_timestamp();
        let window = i64::try_from(self.options.fresh_window.as_secs()).unwrap_or(i64::MAX);
        match auth_time {
            Some(t) if now.saturating_sub(t) <= window => Ok(()),
            _ => Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                    "error": "reauthentication_required",
                    "detail": "log in again: this action needs a recent password entry",
                    "max_age": window,
                })),
            )
                .into_response()),
        }
    }
}

/// Refresh tokens in an HttpOnly cookie instead of the response body, for browser clients.
/// With it, `POST /refresh` reads the cookie when the body has no `refresh_token`, `POST
/// /logout` clears it, and every state-changing request passes a CSRF check: a
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is neither the
/// request's host nor an allowed origin, is refused with 403.
///
/// ```
/// let cookie = auth_axum::RefreshCookie::new().path("/auth").allow_origin("https://app.example.com");
/// assert!(cookie.set("tok", 60).starts_with("auth_refresh=tok; Max-Age=60; Path=/auth; HttpOnly; Secure; SameSite=Strict"));
/// ```
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
    secure: bool,
    same_site: &'static str,
    origins: Vec<String>,
}

impl Default for RefreshCookie {
    fn default() -> Self {
        Self::new()
    }
}

impl RefreshCookie {
    /// `auth_refresh`, path `/`, `Secure`, `SameSite=Strict`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            name: "auth_refresh".into(),
            path: "/".into(),
            secure: true,
            same_site: "Strict",
            origins: Vec::new(),
        }
    }

    /// The cookie's path (the router's mount point, such as `/auth`).
    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        self.path = path
            .chars()
            .filter(|c| !matches!(c, ';' | ',' | ' '))
            .collect();
        self
    }

    /// Drops `Secure` (plain-HTTP development only).
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.secure = false;
        self
    }

    /// `SameSite=Lax` instead of `Strict`.
    #[must_use]
    pub fn same_site_lax(mut self) -> Self {
        self.same_site = "Lax";
        self
    }

    /// Another origin (`https://app.example.com`) allowed to make state-changing requests.
    #[must_use]
    pub fn allow_origin(mut self, origin: &str) -> Self {
        self.origins.push(origin.trim_end_matches('/').to_owned());
        self
    }

    /// The `Set-Cookie` value for `token`.
    #[must_use]
    pub fn set(&self, token: &str, max_age: i64) -> String {
        format!(
            "{}={token}; Max-Age={max_age}; Path={}; HttpOnly{}; SameSite={}",
            self.name,
            self.path,
            if self.secure { "; Secure" } else { "" },
            self.same_site
        )
    }

    fn clear(&self) -> String {
        self.set("", 0)
    }

    fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == self.name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    }

    /// Whether a state-changing request passes the CSRF check.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin.is_some_and(|o| self.origins.iter().any(|a| a == o)) {
            return true;
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            return matches!(site, "same-origin" | "none");
        }
        match origin {
            None => true, // not a browser: no ambient cookie risk beyond what the client sends
            Some(o) => {
                let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                let origin_host = o.split_once("://").map(|(_, h)| h);
                host.is_some() && origin_host == host
            }
        }
    }
}

async fn csrf_guard(cookie: Arc<RefreshCookie>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || cookie.allows(request.headers()) {
        next.run(request).await
    } else {
        tracing::info!(path = %request.uri().path(), "cross-site request refused");
        (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "csrf", "detail": "cross-site request refused"})),
        )
            .into_response()
    }
}

async fn register<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    // Throttled per client address (`signup:`) inside the service.
    let login = state
        .auth
        .sign_up(&body.email, &body.password, state.fresh_login(meta))
        .await?;
    Ok(state.tokens(StatusCode::CREATED, Some(login.user.id()), &login.tokens))
}

async fn login<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let options = state.fresh_login(meta);
    // One login path: the service asks its second-factor gate, if it has one.
    match state
        .auth
        .sign_in(&body.email, &body.password, options)
        .await?
    {
        LoginOutcome::Session(login) => {
            Ok(state.tokens(StatusCode::OK, Some(login.user.id()), &login.tokens))
        }
        LoginOutcome::Challenge(challenge) => Ok(no_store(
            StatusCode::OK,
            json!({
                "mfa_required": true,
                "mfa_token": challenge.token.expose_secret(),
                "expires_in": challenge.expires_in.as_secs(),
            }),
        )),
        _ => Err(ApiError(auth_core::Error::Unsupported(
            "unknown login outcome".into(),
        ))),
    }
}

fn no_refresh_token() -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": "invalid_body", "detail": "expected {\"refresh_token\": \"…\"}"})),
    )
        .into_response()
}

async fn refresh<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Response> {
    let parsed: RefreshBody = if body.is_empty() {
        RefreshBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| no_refresh_token())?
    };
    let token = match (&parsed.refresh_token, &state.options.cookie) {
        (Some(t), _) => t.as_str(),
        (None, Some(cookie)) => cookie
            .read(&headers)
            .ok_or_else(crate::error::unauthorized)?,
        (None, None) => return Err(no_refresh_token()),
    };
    let pair = state
        .auth
        .refresh_with(token, meta)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    Ok(state.tokens(StatusCode::OK, None, &pair))
}

async fn me<U: AuthUser>(Authenticated(user): Authenticated<U>) -> Response {
    let fmt = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    Json(json!({
        "id": user.id().to_string(),
        "email": user.email(),
        "is_verified": user.is_verified(),
        "is_active": user.is_active(),
        "last_login": fmt(user.last_login()),
    }))
    .into_response()
}

async fn logout<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(_user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Ok(Some(token)) = bearer(&headers) {
        state.auth.logout(token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(cookie) = &state.options.cookie
        && let Ok(v) = HeaderValue::from_str(&cookie.clear())
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout_all<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, ApiError> {
    let ended = auth.logout_all(user.id()).await?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

/// The session (refresh family) of the request's access token.
async fn current_session<U: AuthUser>(
    auth: &AuthService<U>,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    match bearer(headers) {
        Ok(Some(token)) => Ok(auth.verify_access(token).await?.family),
        _ => Ok(None),
    }
}

async fn sessions<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let current = current_session(&auth, &headers).await?;
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    let list: Vec<Value> = auth
        .sessions(user.id())
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "current": current.as_deref() == Some(s.id.as_str()),
                "created_at": rfc3339(s.created_at),
                "last_used_at": s.last_used_at.and_then(rfc3339),
                "expires_at": rfc3339(s.expires_at),
                "ip": s.meta.ip.map(|ip| ip.to_string()),
                "user_agent": s.meta.user_agent,
            })
        })
        .collect();
    Ok(Json(json!({"sessions": list})).into_response())
}

async fn revoke_session<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    state.require_fresh(&headers).await?;
    match state.auth.revoke_session(user.id(), &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(ApiError(auth_core::Error::UserNotFound).into_response()),
        Err(e) => Err(ApiError(e).into_response()),
    }
}

async fn revoke_other_sessions<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    state.require_fresh(&headers).await?;
    let inner = async {
        let current = current_session(&state.auth, &headers).await?;
        let ended = state
            .auth
            .revoke_other_sessions(user.id(), current.as_deref())
            .await?;
        Ok::<_, ApiError>(Json(json!({"sessions_ended": ended})).into_response())
    };
    inner.await.map_err(IntoResponse::into_response)
}

async fn change_password<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Response> {
    state.require_fresh(&headers).await?;
    let inner = async {
        let current = current_session(&state.auth, &headers)
            .await
            .map_err(IntoResponse::into_response)?;
        state
            .auth
            .change_password(
                user.id(),
                &body.current_password,
                &body.new_password,
                current.as_deref(),
            )
            .await
            .map_err(|e| crate::error::refused_because(e, "wrong_current_password"))?;
        Ok::<_, Response>(StatusCode::NO_CONTENT)
    };
    inner.await
}

fn not_configured(what: &'static str) -> ApiError {
    ApiError(auth_core::Error::Unsupported(what.into()))
}

async fn reset_request<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    let reset = state
        .reset
        .as_ref()
        .ok_or_else(|| not_configured("password reset is not configured"))?;
    reset.request(&body.email).await?;
    // The same answer whether or not the account exists.
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response())
}

async fn reset_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<StatusCode, Response> {
    let reset = state
        .reset
        .as_ref()
        .ok_or_else(|| not_configured("password reset is not configured").into_response())?;
    reset
        .confirm(&body.token, &body.new_password)
        .await
        .map_err(|e| crate::error::refused_because(e, "link_used_or_expired"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn verify_request<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, ApiError> {
    let verification = state
        .verification
        .as_ref()
        .ok_or_else(|| not_configured("email verification is not configured"))?;
    verification.request(user.id()).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response())
}

async fn verify_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, Response> {
    let verification = state
        .verification
        .as_ref()
        .ok_or_else(|| not_configured("email verification is not configured").into_response())?;
    let user = verification
        .confirm(&body.token)
        .await
        .map_err(|e| crate::error::refused_because(e, "link_used_or_expired"))?;
    Ok(Json(json!({"id": user.id().to_string(), "is_verified": true})).into_response())
}

/// The auth routes, to mount under a prefix of your choice (`auth-server` uses `/auth`):
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /register` | `{email, password}` | 201 `{user_id, access_token, refresh_token, token_type, expires_in, refresh_expires_in}` |
/// | `POST /login` | `{email, password}` | 200 the same (or `{mfa_required, mfa_token}`, see [`AuthRouter::with_mfa`]) |
/// | `POST /refresh` | `{refresh_token}` | 200 the new pair |
/// | `GET /me` | Bearer | 200 `{id, email, is_verified, is_active, last_login}` |
/// | `POST /logout` | Bearer | 204 (the session ends) |
/// | `POST /logout-all` | Bearer | 200 `{sessions_ended}` |
/// | `GET /sessions` | Bearer | 200 `{sessions: [{id, current, created_at, last_used_at, expires_at, ip, user_agent}]}` (501 for stateless JWTs) |
/// | `DELETE /sessions/{id}` | Bearer, fresh | 204, or 404 when not one of the user's sessions |
/// | `POST /sessions/revoke-others` | Bearer, fresh | 200 `{sessions_ended}` (the current session stays) |
/// | `POST /password/change` | Bearer, fresh, `{current_password, new_password}` | 204; every other session ends |
/// | `POST /password/reset/request` | `{email}` | 202, whether or not the account exists (with [`AuthRouter::with_password_reset`]) |
/// | `POST /password/reset/confirm` | `{token, new_password}` | 204; every session ends |
/// | `POST /email/verify/request` | Bearer | 202 (with [`AuthRouter::with_email_verification`]) |
/// | `POST /email/verify/confirm` | `{token}` | 200 `{id, is_verified}` |
///
/// "Fresh" routes need a token from a password entry within the fresh-authentication window
/// ([`AuthRouter::fresh_auth_window`], 15 minutes by default), else 403
/// `{"error": "reauthentication_required"}`: a stolen long-lived session cannot change the
/// password or end the owner's other sessions.
///
/// Errors follow [`ApiError`]: every credential or token failure is the same 401. Bodies are
/// limited to [`MAX_BODY_BYTES`]; token responses carry `Cache-Control: no-store`.
///
/// ```
/// use auth_core::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let app: axum::Router = axum::Router::new().nest("/auth", auth_axum::auth_router(auth));
/// # let _ = app;
/// ```
pub fn auth_router<U: AuthUser>(auth: AuthService<U>) -> Router {
    AuthRouter::new(auth).build()
}

/// Builds the auth router with optional parts: [`auth_router`] is `AuthRouter::new(auth).build()`.
///
/// With [`with_mfa`](Self::with_mfa) (feature `mfa`), `POST /login` answers
/// `{mfa_required: true, mfa_token, expires_in}` (and no tokens) for users with a second
/// factor, and these routes join:
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /mfa/verify` | `{mfa_token, code}` (TOTP or recovery code) | 200 the token pair; 401 for a wrong or replayed code; 429 when locked |
/// | `GET /mfa` | Bearer | 200 `{enabled, pending, recovery_codes_left}` |
/// | `POST /mfa/totp/setup` | Bearer | 200 `{secret, otpauth_uri, qr_svg}` (pending until confirmed) |
/// | `POST /mfa/totp/confirm` | Bearer, `{code}` | 200 `{recovery_codes: [...]}` |
/// | `POST /mfa/totp/disable` | Bearer, fresh, `{code}` | 204 |
/// | `POST /mfa/recovery-codes` | Bearer, `{code}` | 200 `{recovery_codes: [...]}` (the old ones stop working) |
///
/// ```
/// use auth_core::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
/// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k1", &[1u8; 32]).unwrap(),
///     MfaConfig::new("Example")).unwrap();
/// let auth = AuthService::new(AuthConfig::builder().signing_secret("a-signing-secret-of-32-bytes-or-more!").build().unwrap(),
///     MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
///     .with_second_factor(mfa.clone());
/// let app: axum::Router = axum::Router::new().nest(
///     "/auth",
///     auth_axum::AuthRouter::new(auth.clone())
///         .with_mfa(mfa)
///         .with_password_reset(auth_sign::PasswordResetService::new(auth.clone()).unwrap())
///         .with_email_verification(auth_sign::EmailVerificationService::new(auth).unwrap())
///         .refresh_cookie(auth_axum::RefreshCookie::new().path("/auth"))
///         .fresh_auth_window(std::time::Duration::from_secs(300))
///         .build(),
/// );
/// # let _ = app;
/// ```
pub struct AuthRouter<U: AuthUser> {
    auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    mfa: Option<auth_mfa::Mfa>,
    reset: Option<auth_sign::PasswordResetService<U>>,
    verification: Option<auth_sign::EmailVerificationService<U>>,
    options: Options,
}

impl<U: AuthUser> std::fmt::Debug for AuthRouter<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRouter")
            .field("options", &self.options)
            .field("password_reset", &self.reset.is_some())
            .field("email_verification", &self.verification.is_some())
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> AuthRouter<U> {
    /// The routes over `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self {
            auth,
            #[cfg(feature = "mfa")]
            mfa: None,
            reset: None,
            verification: None,
            options: Options {
                mount: String::new(),
                fresh_window: Duration::from_secs(15 * 60),
                cookie: None,
                proxies: TrustedProxies::none(),
            },
        }
    }

    /// Adds the two-factor routes and the two-step login. Give the service the same `Mfa`
    /// as its second-factor gate ([`AuthService::with_second_factor`]).
    #[cfg(feature = "mfa")]
    #[must_use]
    pub fn with_mfa(mut self, mfa: auth_mfa::Mfa) -> Self {
        self.mfa = Some(mfa);
        self
    }

    /// Adds `POST /password/reset/request` and `/password/reset/confirm`. The link's token
    /// reaches your mailer through the `PasswordResetRequested` event.
    #[must_use]
    pub fn with_password_reset(mut self, reset: auth_sign::PasswordResetService<U>) -> Self {
        self.reset = Some(reset);
        self
    }

    /// Adds `POST /email/verify/request` and `/email/verify/confirm`. The token reaches your
    /// mailer through the `EmailVerificationRequested` event.
    #[must_use]
    pub fn with_email_verification(
        mut self,
        verification: auth_sign::EmailVerificationService<U>,
    ) -> Self {
        self.verification = Some(verification);
        self
    }

    /// How recent a password entry the sensitive routes need (15 minutes by default).
    #[must_use]
    pub fn fresh_auth_window(mut self, window: Duration) -> Self {
        self.options.fresh_window = window;
        self
    }

    /// Refresh tokens in an HttpOnly cookie, with CSRF checks (see [`RefreshCookie`]).
    #[must_use]
    pub fn refresh_cookie(mut self, cookie: RefreshCookie) -> Self {
        self.options.cookie = Some(cookie);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies only (see [`TrustedProxies`]). The
    /// client address goes into session metadata and the per-IP rate limiter; serve the app
    /// with `into_make_service_with_connect_info::<SocketAddr>()` so the peer is known.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.options.proxies = proxies;
        self
    }

    /// Where the router is mounted (`/auth`): the OpenAPI document's server URL.
    #[must_use]
    pub fn mounted_at(mut self, path: &str) -> Self {
        self.options.mount = path.trim_end_matches('/').to_owned();
        self
    }

    /// The OpenAPI 3.1 document of the routes this router serves (also at `GET
    /// /openapi.json`).
    ///
    /// ```
    /// # use auth_core::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let doc = auth_axum::AuthRouter::new(auth).mounted_at("/auth").openapi();
    /// assert!(doc.paths.paths.contains_key("/login"));
    /// assert!(!doc.paths.paths.contains_key("/mfa/verify"));
    /// ```
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        crate::openapi::openapi(&self.openapi_parts())
    }

    fn openapi_parts(&self) -> crate::openapi::Parts {
        crate::openapi::Parts {
            mount: self.options.mount.clone(),
            #[cfg(feature = "mfa")]
            mfa: self.mfa.is_some(),
            #[cfg(not(feature = "mfa"))]
            mfa: false,
            reset: self.reset.is_some(),
            verification: self.verification.is_some(),
            cookie: self.options.cookie.is_some(),
        }
    }

    /// The router, to mount under a prefix with [`Router::nest`].
    pub fn build(self) -> Router {
        let document = Arc::new(crate::openapi::document(&self.openapi_parts()));
        let router = Router::new()
            .route("/register", post(register::<U>))
            .route("/login", post(login::<U>))
            .route("/refresh", post(refresh::<U>))
            .route("/me", get(me::<U>))
            .route("/logout", post(logout::<U>))
            .route("/logout-all", post(logout_all::<U>))
            .route("/sessions", get(sessions::<U>))
            .route("/sessions/{id}", delete(revoke_session::<U>))
            .route("/sessions/revoke-others", post(revoke_other_sessions::<U>))
            .route("/password/change", post(change_password::<U>))
            .route(
                "/openapi.json",
                get(move || {
                    let document = Arc::clone(&document);
                    async move { Json((*document).clone()) }
                }),
            );
        let router = if self.reset.is_some() {
            router
                .route("/password/reset/request", post(reset_request::<U>))
                .route("/password/reset/confirm", post(reset_confirm::<U>))
        } else {
            router
        };
        let router = if self.verification.is_some() {
            router
                .route("/email/verify/request", post(verify_request::<U>))
                .route("/email/verify/confirm", post(verify_confirm::<U>))
        } else {
            router
        };
        #[cfg(feature = "mfa")]
        let router = if self.mfa.is_some() {
            crate::mfa::routes::<U>(router)
        } else {
            router
        };
        let cookie = self.options.cookie.clone();
        let router = router
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(RouterState {
                auth: self.auth,
                #[cfg(feature = "mfa")]
                mfa: self.mfa,
                reset: self.reset,
                verification: self.verification,
                options: Arc::new(self.options),
            });
        match cookie {
            Some(cookie) => {
                let cookie = Arc::new(cookie);
                router.layer(axum::middleware::from_fn(move |req, next| {
                    csrf_guard(Arc::clone(&cookie), req, next)
                }))
            }
            None => router,
        }
    }
}
