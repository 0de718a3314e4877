//! Changing the email address, and signing in by emailed link or code.

use auth_core::{AuthUser, LoginOutcome};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::dto::{ApiJson, EmailBody, TokenBody};
use super::{Meta, RouterState};
use crate::error::{Rejection, refused_because};
use crate::extract::Authenticated;

#[derive(Deserialize)]
pub(super) struct EmailChange {
    new_email: String,
    password: String,
}

/// `{token}` or `{email, code}`.
#[derive(Deserialize)]
pub(super) struct MagicVerify {
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
}

pub(super) async fn email_change<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    ApiJson(body): ApiJson<EmailChange>,
) -> Result<Response, Rejection> {
    state
        .auth
        .request_email_change(user.id(), &body.new_email, &body.password)
        .await
        .map_err(|e| refused_because(e, "wrong_password"))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(super) async fn email_change_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, Rejection> {
    // Confirmed from a signed-in session of the account that asked: that session stays, every
    // other one ends. Without one the service refuses (403).
    let session = crate::extract::bearer(&headers).ok().flatten();
    let user = state
        .auth
        .confirm_email_change(&body.token, session)
        .await
        .map_err(|e| refused_because(e, "link_used_or_expired"))?;
    Ok(Json(json!({
        "id": user.id().to_string(),
        "email": user.email(),
        "is_verified": user.is_verified(),
    }))
    .into_response())
}

pub(super) async fn email_change_cancel<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, Rejection> {
    state
        .auth
        .cancel_email_change(&body.token)
        .await
        .map_err(|e| refused_because(e, "link_used_or_expired"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn magic_request<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, Rejection> {
    state.auth.request_magic_link(&body.email, &meta).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(super) async fn magic_verify<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<MagicVerify>,
) -> Result<Response, Rejection> {
    let options = state.fresh_login(meta);
    let outcome: LoginOutcome<U> = match (&body.token, &body.email, &body.code) {
        (Some(token), None, None) => state.auth.sign_in_with_magic_link(token, options).await?,
        (None, Some(email), Some(code)) => {
            state.auth.sign_in_with_code(email, code, options).await?
        }
        _ => {
            return Err(Rejection::InvalidBody {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                detail: "expected {\"token\": \"…\"} or {\"email\": \"…\", \"code\": \"…\"}",
            });
        }
    };
    state.login_answer(outcome)
}
