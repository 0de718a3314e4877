//! Request bodies: the JSON extractor that never echoes input, and the body types.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Rejection;

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
            Err(rejection) => Err(body_error(&rejection).into_response()),
        }
    }
}

fn body_error(rejection: &JsonRejection) -> Rejection {
    let status = rejection.status();
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected Content-Type: application/json",
        StatusCode::UNPROCESSABLE_ENTITY => "the JSON does not have the expected fields and types",
        _ => "the request body is not valid JSON",
    };
    Rejection::InvalidBody { status, detail }
}

#[derive(Deserialize)]
pub(super) struct Credentials {
    pub(super) email: String,
    pub(super) password: String,
}

#[derive(Deserialize, Default)]
pub(super) struct RefreshBody {
    pub(super) refresh_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ChangePassword {
    pub(super) current_password: String,
    pub(super) new_password: String,
}

#[derive(Deserialize)]
pub(super) struct EmailBody {
    pub(super) email: String,
}

#[derive(Deserialize)]
pub(super) struct ResetConfirm {
    pub(super) token: String,
    pub(super) new_password: String,
}

#[derive(Deserialize)]
pub(super) struct TokenBody {
    pub(super) token: String,
}
