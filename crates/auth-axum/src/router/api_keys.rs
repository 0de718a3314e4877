//! API key routes: create (fresh login), list, roll (fresh login), revoke; and `/me` by key.

use std::time::Duration;

use auth_service::{
    ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, AuthUser, Error, IssuedApiKey, NewApiKey,
};
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

fn rfc3339(t: Option<time::OffsetDateTime>) -> Option<String> {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
}

/// A key as listed: never its secret.
pub(super) fn key_json(r: &ApiKeyRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "start": r.start,
        "scopes": r.scopes,
        "created_at": rfc3339(Some(r.created_at)),
        "expires_at": rfc3339(r.expires_at),
        "last_used_at": rfc3339(r.last_used_at),
        "last_ip": r.last_ip,
        "enabled": r.enabled,
        "rate_limit": r.rate_limit.map(|l| json!({"requests": l.requests, "window_seconds": l.window_secs})),
        "metadata": r.metadata,
    })
}

fn issued_json(issued: &IssuedApiKey) -> Value {
    let mut body = key_json(&issued.record);
    body["key"] = Value::from(issued.key.expose_secret());
    if issued.previous_expires_at.is_some() {
        body["previous_expires_at"] = Value::from(rfc3339(issued.previous_expires_at));
    }
    body
}

#[derive(Debug, Deserialize)]
pub(super) struct RateLimitBody {
    requests: u32,
    window_seconds: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    expires_in: Option<u64>,
    rate_limit: Option<RateLimitBody>,
    metadata: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RollBody {
    grace_seconds: Option<u64>,
}

/// `POST /api-keys` (Bearer, fresh login) → 201 with the key, shown this once.
pub(super) async fn create<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, Rejection> {
    let mut new = NewApiKey::new(body.name).with_scopes(body.scopes);
    if let Some(secs) = body.expires_in {
        new = new.expires_in(Duration::from_secs(secs));
    }
    if let Some(limit) = body.rate_limit {
        new = new.with_rate_limit(ApiKeyRateLimit::new(
            limit.requests,
            Duration::from_secs(limit.window_seconds),
        )?);
    }
    if let Some(metadata) = body.metadata {
        new = new.with_metadata(metadata);
    }
    let issued = state
        .auth
        .create_api_key(&ApiKeyOwner::User(user.id().clone()), new)
        .await?;
    Ok(no_store(StatusCode::CREATED, issued_json(&issued)))
}

/// `GET /api-keys` → the caller's keys, without secrets.
pub(super) async fn list<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let keys = state
        .auth
        .list_api_keys(&ApiKeyOwner::User(user.id().clone()))
        .await?;
    let keys: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(axum::Json(json!({"api_keys": keys})).into_response())
}

/// `POST /api-keys/{id}/roll {grace_seconds?}` (Bearer, fresh login) → the new key; the old
/// one works until `previous_expires_at`.
pub(super) async fn roll<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Rejection> {
    let body: RollBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|_| Rejection::InvalidBody {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: "expected {\"grace_seconds\": <seconds>}",
        })?
    };
    let grace = Duration::from_secs(body.grace_seconds.unwrap_or(0));
    match state
        .auth
        .roll_api_key(&ApiKeyOwner::User(user.id().clone()), &id, grace)
        .await
    {
        Ok(issued) => Ok(no_store(StatusCode::OK, issued_json(&issued))),
        Err(Error::TokenInvalid) => Err(Error::UserNotFound.into()),
        Err(e) => Err(e.into()),
    }
}

/// `DELETE /api-keys/{id}` → 204, or 404 when the caller has no such key.
pub(super) async fn revoke<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    if state
        .auth
        .revoke_api_key(&ApiKeyOwner::User(user.id().clone()), &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::UserNotFound.into())
    }
}

/// `GET /me` with an API key (`X-API-Key`, or Bearer with the key prefix): the owner and the
/// key (`api_key: {id, scopes}`), or the service account.
pub(super) async fn me_by_key<U: AuthUser>(
    state: &RouterState<U>,
    key: &str,
    meta: &Meta,
) -> Result<Response, Rejection> {
    let caller = state.auth.authenticate_api_key(key, meta.0.ip).await?;
    let key = json!({"id": caller.key.id, "name": caller.key.name, "scopes": caller.key.scopes});
    let body = match (&caller.user, &caller.key.owner) {
        (Some(user), _) => json!({
            "id": user.id().to_string(),
            "email": user.email(),
            "is_verified": user.is_verified(),
            "is_active": user.is_active(),
            "last_login": rfc3339(user.last_login()),
            "api_key": key,
        }),
        (None, ApiKeyOwner::Service(name)) => json!({"service_account": name, "api_key": key}),
        (None, _) => json!({"api_key": key}),
    };
    Ok(axum::Json(body).into_response())
}
