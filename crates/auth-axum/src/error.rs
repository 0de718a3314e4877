//! HTTP status codes for `auth_core::Error`, chosen here and nowhere else.

use auth_core::Error;
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
/// | anything else | 500 | `{"error": "internal"}` (the detail goes to `tracing` only) |
///
/// ```
/// use axum::response::IntoResponse;
/// let response = auth_axum::ApiError(auth_core::Error::TokenExpired).into_response();
/// assert_eq!(response.status(), 401);
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
/// changing a password, the holder of a link): the same 401 with a reason that reveals nothing
/// about any account (`wrong_current_password`, `link_used_or_expired`, `invalid_code`). Any
/// other error answers as [`ApiError`] does. Never used on login.
pub(crate) fn refused_because(error: auth_core::Error, reason: &'static str) -> Response {
    if !error.is_auth_failure() {
        return ApiError(error).into_response();
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "unauthorized", "reason": reason})),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
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
