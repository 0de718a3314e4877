//! The ready-made auth router.

use auth_core::{AuthService, AuthUser, LoginOptions, SessionMeta, TokenPair, UserId};
use axum::extract::Path;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Authenticated, bearer};

/// The routers' state: the service, and the optional parts.
#[derive(Clone)]
pub(crate) struct RouterState<U: AuthUser> {
    pub(crate) auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    pub(crate) mfa: Option<auth_mfa::Mfa>,
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

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

pub(crate) fn meta(headers: &HeaderMap) -> SessionMeta {
    match headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        Some(ua) => SessionMeta::new().with_user_agent(ua),
        None => SessionMeta::new(),
    }
}

/// A token response: the pair, never cached.
pub(crate) fn tokens(status: StatusCode, user_id: Option<&UserId>, pair: &TokenPair) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let mut body = json!({
        "access_token": pair.access_token.expose_secret(),
        "refresh_token": pair.refresh_token.expose_secret(),
        "token_type": pair.token_type,
        "expires_in": (pair.access_expires_at - now).whole_seconds().max(0),
        "refresh_expires_in": (pair.refresh_expires_at - now).whole_seconds().max(0),
    });
    if let (Some(id), Some(map)) = (user_id, body.as_object_mut()) {
        map.insert("user_id".into(), Value::String(id.to_string()));
    }
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn register<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let user = auth.register(&body.email, &body.password).await?;
    let login = auth
        .login_with(
            &body.email,
            &body.password,
            LoginOptions::new().with_meta(meta(&headers)),
        )
        .await?;
    Ok(tokens(StatusCode::CREATED, Some(user.id()), &login.tokens))
}

async fn login<U: AuthUser>(
    State(state): State<RouterState<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let options = LoginOptions::new().with_meta(meta(&headers));
    #[cfg(feature = "mfa")]
    if let Some(mfa) = &state.mfa {
        return match mfa
            .login(&state.auth, &body.email, &body.password, options)
            .await?
        {
            auth_mfa::LoginOutcome::Authenticated(login) => {
                Ok(tokens(StatusCode::OK, Some(login.user.id()), &login.tokens))
            }
            auth_mfa::LoginOutcome::MfaRequired(challenge) => Ok(no_store(
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
        };
    }
    let login = state
        .auth
        .login_with(&body.email, &body.password, options)
        .await?;
    Ok(tokens(StatusCode::OK, Some(login.user.id()), &login.tokens))
}

async fn refresh<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Response, ApiError> {
    let pair = auth
        .refresh_with(&body.refresh_token, meta(&headers))
        .await?;
    Ok(tokens(StatusCode::OK, None, &pair))
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
    State(auth): State<AuthService<U>>,
    Authenticated(_user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if let Ok(Some(token)) = bearer(&headers) {
        auth.logout(token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
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
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if auth.revoke_session(user.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(auth_core::Error::UserNotFound))
    }
}

async fn revoke_other_sessions<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let current = current_session(&auth, &headers).await?;
    let ended = auth
        .tokens()
        .revoke_all(user.id(), current.as_deref())
        .await?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

async fn change_password<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let current = current_session(&auth, &headers).await?;
    auth.change_password(
        user.id(),
        &body.current_password,
        &body.new_password,
        current.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The auth routes, to mount under a prefix of your choice (`auth-server` uses `/auth`):
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /register` | `{email, password}` | 201 `{user_id, access_token, refresh_token, token_type, expires_in, …}` |
/// | `POST /login` | `{email, password}` | 200 the same |
/// | `POST /refresh` | `{refresh_token}` | 200 the new pair |
/// | `GET /me` | Bearer | 200 `{id, email, is_verified, is_active, last_login}` |
/// | `POST /logout` | Bearer | 204 (the session ends) |
/// | `POST /logout-all` | Bearer | 200 `{sessions_ended}` |
/// | `GET /sessions` | Bearer | 200 `{sessions: [{id, current, created_at, last_used_at, expires_at, ip, user_agent}]}` (501 for stateless JWTs) |
/// | `DELETE /sessions/{id}` | Bearer | 204, or 404 when not one of the user's sessions |
/// | `POST /sessions/revoke-others` | Bearer | 200 `{sessions_ended}` (the current session stays) |
/// | `POST /password/change` | Bearer, `{current_password, new_password}` | 204; every other session ends |
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
/// | `POST /mfa/totp/disable` | Bearer, `{code}` | 204 |
/// | `POST /mfa/recovery-codes` | Bearer, `{code}` | 200 `{recovery_codes: [...]}` (the old ones stop working) |
///
/// ```
/// use auth_core::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
/// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k1", &[1u8; 32]).unwrap(),
///     MfaConfig::new("Example")).unwrap();
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
///     .with_second_factor(mfa.clone());
/// let app: axum::Router = axum::Router::new()
///     .nest("/auth", auth_axum::AuthRouter::new(auth).with_mfa(mfa).build());
/// # let _ = app;
/// ```
#[derive(Debug)]
pub struct AuthRouter<U: AuthUser> {
    auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    mfa: Option<auth_mfa::Mfa>,
}

impl<U: AuthUser> AuthRouter<U> {
    /// The routes over `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self {
            auth,
            #[cfg(feature = "mfa")]
            mfa: None,
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

    /// The router, to mount under a prefix with [`Router::nest`].
    pub fn build(self) -> Router {
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
            .route("/password/change", post(change_password::<U>));
        #[cfg(feature = "mfa")]
        let router = if self.mfa.is_some() {
            crate::mfa::routes::<U>(router)
        } else {
            router
        };
        router
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(RouterState {
                auth: self.auth,
                #[cfg(feature = "mfa")]
                mfa: self.mfa,
            })
    }
}
