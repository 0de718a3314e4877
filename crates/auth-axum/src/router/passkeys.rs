//! Passkey routes (mounted when the service has passkeys: `AuthService::with_passkeys`):
//! registration behind a fresh login, sign-in with or without an address, a passkey as the
//! second factor, and the account's list.

use auth_service::{AuthUser, Error, PasskeyOptions};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{ApiJson, no_store};
use super::state::{Meta, RouterState};
use crate::error::Rejection;
use crate::extract::{Authenticated, Fresh};
use auth_service::SignedIn;

#[derive(Debug, Default, Deserialize)]
struct LoginOptionsBody {
    email: Option<String>,
    mfa_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginBody {
    challenge_id: String,
    credential: Value,
    mfa_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct NameBody {
    name: String,
}

fn options_json(options: &PasskeyOptions, with_id: bool) -> Value {
    let mut body = json!({ "publicKey": options.public_key });
    if with_id {
        body["challenge_id"] = Value::from(options.ceremony.as_str());
    }
    if let Some(mediation) = &options.mediation {
        body["mediation"] = Value::from(mediation.as_str());
    }
    body
}

fn passkey_json(info: &auth_service::PasskeyInfo) -> Value {
    serde_json::to_value(info).unwrap_or(Value::Null)
}

/// `POST /passkeys/register/options` (Bearer, fresh) → `{publicKey}` for
/// `navigator.credentials.create`.
pub(super) async fn register_options<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
) -> Result<Response, Rejection> {
    let options = state.auth.passkey_registration_options(user.id()).await?;
    Ok(no_store(StatusCode::OK, options_json(&options, false)))
}

/// `POST /passkeys/register` (Bearer, fresh) with the credential (`id`, `rawId`, `type`,
/// `response`) and an optional `name`, or `{credential, name}` → 201 the passkey.
pub(super) async fn register<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, Rejection> {
    let name = match body.as_object_mut().and_then(|m| m.remove("name")) {
        Some(Value::String(name)) => Some(name),
        None | Some(Value::Null) => None,
        Some(_) => return Err(Error::invalid("name", "invalid_name", "name is a string").into()),
    };
    let credential = match body.as_object_mut().and_then(|m| m.remove("credential")) {
        Some(credential) => credential,
        None => body,
    };
    let info = state
        .auth
        .register_passkey(user.id(), &credential, name.as_deref())
        .await?;
    Ok(no_store(StatusCode::CREATED, passkey_json(&info)))
}

/// `POST /passkeys/login/options {email?, mfa_token?}` → `{challenge_id, publicKey,
/// mediation?}`: without `email`, any discoverable passkey (conditional UI); with
/// `mfa_token`, the passkeys of the account whose password just checked.
pub(super) async fn login_options<U: AuthUser>(
    State(state): State<RouterState<U>>,
    body: Bytes,
) -> Result<Response, Rejection> {
    let body: LoginOptionsBody = if body.iter().all(u8::is_ascii_whitespace) {
        LoginOptionsBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| Rejection::InvalidBody {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: "expected {\"email\": \"…\"}, {\"mfa_token\": \"…\"} or {}",
        })?
    };
    let options = match (&body.mfa_token, &body.email) {
        (Some(token), _) => state.auth.passkey_second_factor_options(token).await?,
        (None, email) => state.auth.passkey_login_options(email.as_deref()).await?,
    };
    Ok(no_store(StatusCode::OK, options_json(&options, true)))
}

/// `POST /passkeys/login {challenge_id, credential, mfa_token?}` → the login answer (tokens,
/// or `{mfa_required, mfa_token}` for a passkey that did not verify its user on an account
/// with a second factor).
pub(super) async fn login<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, Rejection> {
    let options = state.fresh_login(meta);
    match &body.mfa_token {
        Some(token) => {
            let login = state
                .auth
                .complete_sign_in_with_passkey(token, &body.challenge_id, &body.credential, options)
                .await?;
            Ok(state.tokens(StatusCode::OK, Some(login.user.id()), &login.tokens))
        }
        None => {
            let outcome = state
                .auth
                .sign_in_with_passkey(&body.challenge_id, &body.credential, options)
                .await?;
            state.login_answer(outcome)
        }
    }
}

/// `GET /passkeys` (Bearer) → `{passkeys: [{id, name, created_at, last_used_at,
/// backup_eligible, backed_up}]}`.
pub(super) async fn list<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let passkeys = state.auth.list_passkeys(user.id()).await?;
    let passkeys: Vec<Value> = passkeys.iter().map(passkey_json).collect();
    Ok(axum::Json(json!({ "passkeys": passkeys })).into_response())
}

/// `PATCH /passkeys/{id} {name}` (Bearer, fresh) → 200 the passkey, or 404.
pub(super) async fn rename<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NameBody>,
) -> Result<Response, Rejection> {
    if !state
        .auth
        .rename_passkey(user.id(), &id, &body.name)
        .await?
    {
        return Err(Error::UserNotFound.into());
    }
    let passkeys = state.auth.list_passkeys(user.id()).await?;
    let info = passkeys
        .iter()
        .find(|p| p.id == id)
        .ok_or(Error::UserNotFound)?;
    Ok(axum::Json(passkey_json(info)).into_response())
}

/// `DELETE /passkeys/{id}` (Bearer, fresh) → 204, 404, or 422 `last_sign_in_method`.
pub(super) async fn remove<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    if state.auth.delete_passkey(user.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::UserNotFound.into())
    }
}
