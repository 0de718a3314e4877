//! HTTP status codes for `auth_service::Error`, chosen here and nowhere else.

use auth_service::Error;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as an HTTP response:
///
/// | error | status | body |
/// |---|---|---|
/// | any credential or token failure | 401 + `WWW-Authenticate: Bearer` | `{"error": "unauthorized"}` — the same for all |
/// | `RateLimited` | 429 + `Retry-After` | `{"error": "rate_limited", "retry_after": s}` |
/// | `Validation` | 422 | `{"error": "validation", "errors": [{field, code, message}]}` |
/// | `EmailTaken` | 409 | `{"error": "email_taken"}` |
/// | `MfaRequired` | 403 | `{"error": "mfa_required"}` (the routers answer a login with a challenge instead) |
/// | `UserNotFound` | 404 | `{"error": "not_found"}` |
/// | `Unsupported` | 501 | `{"error": "unsupported", "detail": …}` |
/// | `Backend` that is a storage failure (a full disk, a read-only database: [`auth_service::Error::is_storage_failure`]) | 503 + `Retry-After: 30` | `{"error": "storage_unavailable"}` (the detail goes to `tracing` only) |
/// | any other `Backend` (a database, Redis or another source that cannot answer) | 503 + `Retry-After: 5` | `{"error": "unavailable"}` (the detail goes to `tracing` only) |
/// | anything else | 500 | `{"error": "internal"}` (the detail goes to `tracing` only) |
///
/// ```
/// use axum::response::IntoResponse;
/// let response = auth_axum::ApiError(auth_service::Error::TokenExpired).into_response();
/// assert_eq!(response.status(), 401);
/// let down = auth_service::Error::backend("reading a user", std::io::Error::other("connection refused"));
/// let response = auth_axum::ApiError(down).into_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "5");
/// ```
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

/// The one body every credential or token failure gets.
/// A credential failure of a caller who already proved who they are (an authenticated user
/// changing a password, the holder of a link): [`Rejection::Refused`] with a reason that
/// reveals nothing about any account; any other error as [`Rejection::Service`]. Never used on
/// login.
pub(crate) fn refused_because(error: Error, reason: &'static str) -> Rejection {
    if error.is_auth_failure() {
        tracing::debug!(reason = %error, "authenticated caller refused");
        Rejection::Refused { reason }
    } else {
        Rejection::Service(error)
    }
}

pub(crate) fn unauthorized() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "unauthorized"})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

impl ApiError {
    /// The status this error answers with.
    ///
    /// ```
    /// use auth_axum::ApiError;
    /// assert_eq!(ApiError(auth_service::Error::EmailTaken).status(), 409);
    /// assert_eq!(ApiError(auth_service::Error::TokenRevoked).status(), 401);
    /// ```
    #[must_use]
    pub fn status(&self) -> StatusCode {
        status_of(&self.0)
    }
}

fn status_of(error: &Error) -> StatusCode {
    {
        match error {
            e if e.is_auth_failure() => StatusCode::UNAUTHORIZED,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::EmailTaken => StatusCode::CONFLICT,
            Error::MfaRequired => StatusCode::FORBIDDEN,
            Error::UserNotFound => StatusCode::NOT_FOUND,
            Error::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Forbidden(_) | Error::ReauthenticationRequired { .. } => StatusCode::FORBIDDEN,
            Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            e if e.is_auth_failure() => {
                tracing::debug!(reason = %e, "authentication failed");
                unauthorized()
            }
            Error::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": "rate_limited", "retry_after": secs})),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Error::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"error": "validation", "errors": errors.errors()})),
            )
                .into_response(),
            Error::EmailTaken => {
                (StatusCode::CONFLICT, Json(json!({"error": "email_taken"}))).into_response()
            }
            Error::MfaRequired => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "mfa_required"})),
            )
                .into_response(),
            Error::UserNotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response()
            }
            Error::Unsupported(detail) => (
                StatusCode::NOT_IMPLEMENTED,
                Json(json!({"error": "unsupported", "detail": detail})),
            )
                .into_response(),
            Error::Overloaded { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "overloaded", "retry_after": secs})),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Error::Forbidden(detail) => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "forbidden", "detail": detail})),
            )
                .into_response(),
            Error::ReauthenticationRequired { max_age } => Rejection::ReauthenticationRequired {
                max_age: i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            }
            .into_response(),
            Error::Backend(e) if e.is_storage_failure() => {
                // Storage refuses writes until an operator frees space or permission.
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "storage refuses writes");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "storage_unavailable"})),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                r
            }
            Error::Backend(e) => {
                // A part the service needs cannot answer: the request may work again shortly.
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "a backend cannot answer");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "unavailable"})),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "internal"})),
                )
                    .into_response()
            }
        }
    }
}

/// Every refusal the routers answer with, and its status: with [`ApiError`] for the service's
/// errors, the one place statuses and bodies are chosen.
///
/// | rejection | status | body |
/// |---|---|---|
/// | `Service(e)` | as [`ApiError`] | as [`ApiError`] |
/// | `Refused { reason }` | 401 + `WWW-Authenticate: Bearer` | `{"error": "unauthorized", "reason": …}` (authenticated callers and link holders only) |
/// | `Csrf` | 403 | `{"error": "csrf", "detail": …}` |
/// | `ReauthenticationRequired { max_age }` | 403 | `{"error": "reauthentication_required", "detail": …, "max_age": s}` |
/// | `InvalidBody { status, detail }` | 413 / 415 / 422 / 400 | `{"error": "invalid_body", "detail": …}` (never echoes the input) |
///
/// ```
/// use axum::response::IntoResponse;
/// use auth_axum::Rejection;
/// assert_eq!(Rejection::Csrf.status(), 403);
/// assert_eq!(Rejection::from(auth_service::Error::EmailTaken).status(), 409);
/// assert_eq!(Rejection::Refused { reason: "wrong_current_password" }.into_response().status(), 401);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// An error of the service.
    Service(Error),
    /// A credential failure of a caller who already proved who they are, with a reason that
    /// reveals nothing about any account (`wrong_current_password`, `invalid_code`,
    /// `link_used_or_expired`).
    Refused {
        /// Why.
        reason: &'static str,
    },
    /// A state-changing cross-site request in cookie mode.
    Csrf,
    /// A sensitive route needs a password entered within the window.
    ReauthenticationRequired {
        /// The window, in seconds.
        max_age: i64,
    },
    /// A body that could not be read.
    InvalidBody {
        /// 413, 415, 422 or 400.
        status: StatusCode,
        /// What was expected.
        detail: &'static str,
    },
}

impl Rejection {
    /// The status this rejection answers with.
    ///
    /// ```
    /// assert_eq!(auth_axum::Rejection::ReauthenticationRequired { max_age: 900 }.status(), 403);
    /// ```
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Service(e) => status_of(e),
            Self::Refused { .. } => StatusCode::UNAUTHORIZED,
            Self::Csrf | Self::ReauthenticationRequired { .. } => StatusCode::FORBIDDEN,
            Self::InvalidBody { status, .. } => *status,
        }
    }
}

impl From<Error> for Rejection {
    fn from(err: Error) -> Self {
        Self::Service(err)
    }
}

impl From<ApiError> for Rejection {
    fn from(err: ApiError) -> Self {
        Self::Service(err.0)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Self::Service(e) => ApiError(e).into_response(),
            Self::Refused { reason } => {
                let mut response = (
                    status,
                    Json(json!({"error": "unauthorized", "reason": reason})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::Csrf => (
                status,
                Json(json!({"error": "csrf", "detail": "cross-site request refused"})),
            )
                .into_response(),
            Self::ReauthenticationRequired { max_age } => (
                status,
                Json(json!({
                    "error": "reauthentication_required",
                    "detail": "log in again: this action needs a recent password entry",
                    "max_age": max_age,
                })),
            )
                .into_response(),
            Self::InvalidBody { detail, .. } => (
                status,
                Json(json!({"error": "invalid_body", "detail": detail})),
            )
                .into_response(),
        }
    }
}
