//! Changing the email address, and signing in by emailed link or code.

use auth_service::{AuthUser, LoginOutcome};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::dto::{ApiJson, EmailBody, TokenBody};
use super::{Device, Meta, RouterState};
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
    /// The flow id of the request (else the `auth_magic_flow` cookie).
    flow: Option<String>,
}

/// The cookie holding a sign-in request's flow id, for the browser that asked.
const MAGIC_FLOW_COOKIE: &str = "auth_magic_flow";

/// The cookie binding the browser that asked for an email change to its account.
const CHANGE_BINDING_COOKIE: &str = "auth_change_binding";

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
    let mut response = StatusCode::ACCEPTED.into_response();
    // The confirmation link, opened in any tab of this browser, counts as this account's.
    if let Ok(binding) = state.auth.browser_binding("email-change", user.id())
        && let Some(v) = super::cookie::flow_cookie(
            CHANGE_BINDING_COOKIE,
            &binding,
            &format!("{}/email/change", state.options.mount),
            24 * 3600,
            "Lax",
            state.options.secure_cookies,
        )
    {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(response)
}

pub(super) async fn email_change_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, Rejection> {
    // Confirmed from a signed-in session of the account that asked (that session stays, every
    // other one ends), or in the browser that asked (its binding cookie; every session ends).
    // Otherwise the service refuses (403).
    let session = crate::extract::bearer(&headers).ok().flatten();
    let binding = super::cookie::read_cookie(&headers, CHANGE_BINDING_COOKIE);
    let confirmed = match (session, binding) {
        (None, Some(binding)) => {
            state
                .auth
                .confirm_email_change_in_browser(&body.token, binding)
                .await
        }
        (session, _) => state.auth.confirm_email_change(&body.token, session).await,
    };
    let user = confirmed.map_err(|e| refused_because(e, "link_used_or_expired"))?;
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
    let flow = state.auth.request_magic_link(&body.email, &meta).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"status": "accepted", "flow": flow.expose_secret()})),
    )
        .into_response();
    if let Some(v) = super::cookie::flow_cookie(
        MAGIC_FLOW_COOKIE,
        flow.expose_secret(),
        &format!("{}/magic-link", state.options.mount),
        auth_service::MAGIC_LINK_LIFETIME.as_secs(),
        "Strict",
        state.options.secure_cookies,
    ) {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, v);
    }
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

pub(super) async fn magic_verify<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    Device(device): Device,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MagicVerify>,
) -> Result<Response, Rejection> {
    let options = state.fresh_login(meta).with_device(device);
    // The flow of the request that asked: the body's (API clients), else this browser's cookie.
    let flow = body
        .flow
        .clone()
        .or_else(|| super::cookie::read_cookie(&headers, MAGIC_FLOW_COOKIE).map(str::to_owned))
        .unwrap_or_default();
    let outcome: LoginOutcome<U> = match (&body.token, &body.email, &body.code) {
        (Some(token), None, None) => {
            state
                .auth
                .sign_in_with_magic_link(token, &flow, options)
                .await?
        }
        (None, Some(email), Some(code)) => {
            state
                .auth
                .sign_in_with_code(email, code, &flow, options)
                .await?
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
