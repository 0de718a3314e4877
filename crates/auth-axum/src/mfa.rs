//! The two-factor routes (feature `mfa`).

use auth_service::{AuthUser, Error};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::error::{Rejection, refused_because};
use crate::extract::{Authenticated, Fresh};
use crate::router::{ApiJson, Meta, RouterState, no_store};
use auth_service::SignedIn;

#[derive(Deserialize)]
struct VerifyBody {
    mfa_token: String,
    code: String,
    /// Trust this device: later sign-ins from it skip the second factor (when trusted
    /// devices are on).
    #[serde(default)]
    trust_device: bool,
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

fn mfa_of<U: AuthUser>(state: &RouterState<U>) -> Result<&auth_mfa::Mfa, Rejection> {
    state.mfa.as_ref().ok_or_else(|| {
        Rejection::Service(Error::Unsupported("two-factor is not configured".into()))
    })
}

async fn verify<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, Rejection> {
    mfa_of(&state)?;
    let mut options = state.fresh_login(meta);
    if body.trust_device {
        options = options.trusting_this_device();
    }
    let login = state
        .auth
        .complete_sign_in(&body.mfa_token, &body.code, options)
        .await?;
    Ok(state.tokens_and_device(
        StatusCode::OK,
        Some(login.user.id()),
        &login.tokens,
        login.trusted_device.as_ref(),
    ))
}

/// `GET /devices`: the devices the user trusts (never their credentials).
async fn devices<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let devices = state.auth.trusted_devices(user.id()).await?;
    Ok(no_store(StatusCode::OK, json!({ "devices": devices })))
}

/// `DELETE /devices/{id}`: stop trusting one device (needs a fresh login).
async fn forget_device<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, Rejection> {
    if state.auth.forget_trusted_device(user.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::UserNotFound.into())
    }
}

async fn status<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let s = mfa_of(&state)?.status(user.id()).await?;
    Ok(no_store(
        StatusCode::OK,
        json!({
            "enabled": s.enabled,
            "pending": s.pending,
            "recovery_codes_left": s.recovery_codes_left,
        }),
    ))
}

async fn setup<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
) -> Result<Response, Rejection> {
    // Enrolling a factor is as sensitive as removing one: a fresh login, like disable.
    // The address may have been confirmed a moment ago on another instance: decide on the
    // stored account, not on the copy the access token was checked against.
    let user = state
        .auth
        .find_user(user.id())
        .await?
        .ok_or(Error::UserNotFound)?;
    let enrollment = mfa_of(&state)?.begin_enrollment(&user).await?;
    Ok(no_store(
        StatusCode::OK,
        json!({
            "secret": enrollment.secret_base32().expose_secret(),
            "otpauth_uri": enrollment.otpauth_uri().expose_secret(),
            "qr_svg": enrollment.qr_svg()?,
        }),
    ))
}

async fn confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, Rejection> {
    let codes = mfa_of(&state)?
        .confirm_enrollment(user.id(), &body.code)
        .await
        .map_err(|e| refused_because(e, "invalid_code"))?;
    Ok(no_store(
        StatusCode::OK,
        json!({"recovery_codes": codes.expose()}),
    ))
}

async fn disable<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<StatusCode, Rejection> {
    mfa_of(&state)?
        .disable(user.id(), &body.code)
        .await
        .map_err(|e| refused_because(e, "invalid_code"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn regenerate<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, Rejection> {
    let codes = mfa_of(&state)?
        .regenerate_recovery_codes(user.id(), &body.code)
        .await?;
    Ok(no_store(
        StatusCode::OK,
        json!({"recovery_codes": codes.expose()}),
    ))
}

pub(crate) fn routes<U: AuthUser>(router: Router<RouterState<U>>) -> Router<RouterState<U>> {
    router
        .route("/mfa", get(status::<U>))
        .route("/mfa/verify", post(verify::<U>))
        .route("/mfa/totp/setup", post(setup::<U>))
        .route("/mfa/totp/confirm", post(confirm::<U>))
        .route("/mfa/totp/disable", post(disable::<U>))
        .route("/mfa/recovery-codes", post(regenerate::<U>))
        .route("/devices", get(devices::<U>))
        .route("/devices/{id}", axum::routing::delete(forget_device::<U>))
}
