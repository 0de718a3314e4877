//! The route handlers: each calls one `AuthService` method and answers with a [`Rejection`]
//! when it refuses.

use auth_service::{AuthService, AuthUser};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::dto::{
    ApiJson, ChangePassword, Credentials, EmailBody, RefreshBody, ResetConfirm, TokenBody,
};
use super::state::{Device, Meta, RouterState};
use crate::error::{Rejection, refused_because};
use crate::extract::{Authenticated, Fresh, bearer};
use auth_service::SignedIn;

pub(super) async fn register<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, Rejection> {
    // Throttled per client address (`signup:`) inside the service.
    let login = state
        .auth
        .sign_up(&body.email, &body.password, state.fresh_login(meta))
        .await?;
    Ok(state.tokens(StatusCode::CREATED, Some(login.user.id()), &login.tokens))
}

pub(super) async fn login<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    Device(device): Device,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, Rejection> {
    let options = state.fresh_login(meta).with_device(device);
    // One login path: the service asks its second-factor gate, if it has one.
    let outcome = state
        .auth
        .sign_in(&body.email, &body.password, options)
        .await?;
    state.login_answer(outcome)
}

fn no_refresh_token() -> Rejection {
    Rejection::InvalidBody {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        detail: "expected {\"refresh_token\": \"…\"}",
    }
}

pub(super) async fn refresh<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Rejection> {
    let parsed: RefreshBody = if body.is_empty() {
        RefreshBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| no_refresh_token())?
    };
    let token = match (&parsed.refresh_token, &state.options.cookie) {
        (Some(t), _) => t.as_str(),
        (None, Some(cookie)) => cookie
            .read(&headers)
            .ok_or(Rejection::Service(auth_service::Error::TokenInvalid))?,
        (None, None) => return Err(no_refresh_token()),
    };
    let pair = state.auth.refresh_with(token, meta).await?;
    Ok(state.tokens(StatusCode::OK, None, &pair))
}

/// The authenticated user; with an API key (`X-API-Key`, or a Bearer value with the key
/// prefix), the key's owner and `api_key: {id, name, scopes}`.
pub(super) async fn me<U: AuthUser>(
    State(state): State<RouterState<U>>,
    meta: Meta,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
    match crate::schemes::api_key(&state.auth, &headers) {
        Some(Ok(key)) => return super::api_keys::me_by_key(&state, key, &meta).await,
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    let token = bearer(&headers)
        .ok()
        .flatten()
        .ok_or(Rejection::Service(auth_service::Error::TokenInvalid))?;
    let user = state.auth.authenticate(token).await?;
    let fmt = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    Ok(Json(json!({
        "id": user.id().to_string(),
        "email": user.email(),
        "is_verified": user.is_verified(),
        "is_active": user.is_active(),
        "last_login": fmt(user.last_login()),
    }))
    .into_response())
}

/// The access token checked without loading its user: signature, expiry and revocation (from
/// memory with a revocation mirror). 204 with the user id in `x-auth-user-id`, for gateways
/// doing forward authentication (nginx `auth_request`, Traefik `forwardAuth`) and services that
/// need only the claims. An API key is checked fully (owner, limits) and answered with
/// `x-auth-api-key-id`, `x-auth-scopes`, the owner (`x-auth-user-id` or
/// `x-auth-service-account`) and whose authority the key carries (`x-auth-authority`:
/// `user:<id>` or `service_account:<name>`); `?scope=` makes a key without that scope a 403,
/// and a scope naming a role (`admin`) is carried by a user's key only while its owner holds
/// the role.
pub(super) async fn verify<U: AuthUser>(
    State(state): State<RouterState<U>>,
    meta: Meta,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<VerifyQuery>,
) -> Result<Response, Rejection> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            response.headers_mut().insert(name, v);
        }
    };
    // An API key (X-API-Key, or Bearer with the key prefix): its owner, id and scopes, and
    // 403 when `?scope=` names a scope it lacks.
    match crate::schemes::api_key(&state.auth, &headers) {
        Some(Ok(key)) => {
            let caller = state.auth.authenticate_api_key(key, meta.0.ip).await?;
            // A scope naming a role (`admin`) is carried only while the key's owner holds the
            // role: the key lends its owner's authority, never more.
            if let Some(scope) = query.scope.as_deref()
                && !state.auth.api_key_carries(&caller, scope).await?
            {
                return Ok((
                    StatusCode::FORBIDDEN,
                    Json(json!({"error": "insufficient_scope", "scope": scope})),
                )
                    .into_response());
            }
            match (&caller.user, &caller.key.owner) {
                (Some(user), _) => {
                    set("x-auth-user-id", user.id().as_str());
                    set("x-auth-authority", &format!("user:{}", user.id()));
                }
                (None, auth_service::ApiKeyOwner::Service(name)) => {
                    set("x-auth-service-account", name);
                    set("x-auth-authority", &format!("service_account:{name}"));
                }
                _ => {}
            }
            set("x-auth-api-key-id", &caller.key.id);
            set("x-auth-scopes", &caller.key.scopes.join(" "));
            return Ok(response);
        }
        Some(Err(e)) => return Err(e.into()),
        None => {}
    }
    let token = crate::extract::bearer(&headers)
        .ok()
        .flatten()
        .ok_or(Rejection::Service(auth_service::Error::TokenInvalid))?;
    let claims = state.auth.verify_access(token).await?;
    set("x-auth-user-id", &claims.sub);
    Ok(response)
}

/// `GET /verify?scope=…`: the scope an API key must have.
#[derive(Debug, serde::Deserialize)]
pub(super) struct VerifyQuery {
    scope: Option<String>,
}

pub(super) async fn logout<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(_user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
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

pub(super) async fn logout_all<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let ended = auth.logout_all(user.id()).await?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

/// The session (refresh family) of the request's access token.
pub(super) async fn current_session<U: AuthUser>(
    auth: &AuthService<U>,
    headers: &HeaderMap,
) -> Result<Option<String>, Rejection> {
    match bearer(headers) {
        Ok(Some(token)) => Ok(auth.verify_access(token).await?.family),
        _ => Ok(None),
    }
}

pub(super) async fn sessions<U: AuthUser>(
    State(auth): State<AuthService<U>>,
    Authenticated(user): Authenticated<U>,
    headers: HeaderMap,
) -> Result<Response, Rejection> {
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

pub(super) async fn revoke_session<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    if state.auth.revoke_session(user.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(auth_service::Error::UserNotFound.into())
    }
}

pub(super) async fn revoke_other_sessions<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, claims, .. }): Fresh<U>,
) -> Result<Response, Rejection> {
    let current = claims.family.clone();
    let ended = state
        .auth
        .revoke_other_sessions(user.id(), current.as_deref())
        .await?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

/// `{keep_passkeys, keep_identities}`: the ways in the owner keeps when securing the account.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct SecureBody {
    #[serde(default)]
    keep_passkeys: Vec<String>,
    #[serde(default)]
    keep_identities: Vec<String>,
}

/// `POST /account/secure` (Bearer, fresh): "secure my account". Every other session ends, every
/// API key is revoked, the passkeys and identities not kept are removed.
pub(super) async fn secure_account<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, claims, .. }): Fresh<U>,
    ApiJson(body): ApiJson<SecureBody>,
) -> Result<Response, Rejection> {
    let current = claims.family.clone();
    let report = state
        .auth
        .secure_account(
            user.id(),
            current.as_deref(),
            &body.keep_passkeys,
            &body.keep_identities,
        )
        .await?;
    Ok(Json(json!({
        "sessions_ended": report.sessions,
        "api_keys_revoked": report.api_keys,
        "passkeys_removed": report.passkeys,
        "identities_removed": report.identities,
    }))
    .into_response())
}

pub(super) async fn change_password<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, claims, .. }): Fresh<U>,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<StatusCode, Rejection> {
    let current = claims.family.clone();
    state
        .auth
        .change_password(
            user.id(),
            &body.current_password,
            &body.new_password,
            current.as_deref(),
        )
        .await
        .map_err(|e| refused_because(e, "wrong_current_password"))?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_configured(what: &'static str) -> Rejection {
    Rejection::Service(auth_service::Error::Unsupported(what.into()))
}

pub(super) async fn reset_request<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, Rejection> {
    let reset = state
        .reset
        .as_ref()
        .ok_or_else(|| not_configured("password reset is not configured"))?;
    reset.request(&body.email).await?;
    // The same answer whether or not the account exists.
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response())
}

pub(super) async fn reset_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<StatusCode, Rejection> {
    let reset = state
        .reset
        .as_ref()
        .ok_or_else(|| not_configured("password reset is not configured"))?;
    reset
        .confirm(&body.token, &body.new_password)
        .await
        .map_err(|e| refused_because(e, "link_used_or_expired"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The cookie binding the browser that asked for a verification link to its account.
const VERIFY_BINDING_COOKIE: &str = "auth_verify_binding";

pub(super) async fn verify_request<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let verification = state
        .verification
        .as_ref()
        .ok_or_else(|| not_configured("email verification is not configured"))?;
    verification.request(user.id()).await?;
    let mut response = (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response();
    // The link, opened in any tab of this browser, counts as opened in this account's session.
    if let Ok(binding) = state.auth.browser_binding("verify-email", user.id())
        && let Some(v) = super::cookie::flow_cookie(
            VERIFY_BINDING_COOKIE,
            &binding,
            &format!("{}/email/verify", state.options.mount),
            24 * 3600,
            "Lax",
            state.options.secure_cookies,
        )
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

pub(super) async fn verify_confirm<U: AuthUser>(
    State(state): State<RouterState<U>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Response, Rejection> {
    let verification = state
        .verification
        .as_ref()
        .ok_or_else(|| not_configured("email verification is not configured"))?;
    // Opened inside a session of the account itself, or in the browser that asked for the link
    // (its binding cookie), what the account holds stays; any other way (another browser,
    // another account's session, none), the mailbox alone proved it.
    let session_user = match bearer(&headers) {
        Ok(Some(token)) => state
            .auth
            .verify_access(token)
            .await
            .ok()
            .map(|c| auth_service::UserId::new(c.sub)),
        _ => super::cookie::read_cookie(&headers, VERIFY_BINDING_COOKIE)
            .and_then(|b| state.auth.binding_user("verify-email", b)),
    };
    let (user, report) = verification
        .confirm_in_session(&body.token, session_user.as_ref())
        .await
        .map_err(|e| refused_because(e, "link_used_or_expired"))?;
    let mut answer = json!({
        "id": user.id().to_string(),
        "is_verified": true,
        "claimed": report.claimed,
        "password_removed": report.password,
        "removed": report.removed(),
    });
    // The owner of the mailbox just proved it and the password set before is gone: they may
    // choose one now, as a reset link would let them.
    if report.password
        && let Some(reset) = &state.reset
    {
        answer["reset_token"] = json!(reset.tokens().make(&user));
    }
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
