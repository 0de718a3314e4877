//! Provider sign-in routes (feature `oauth`, with [`super::AuthRouter::with_oauth`]): the
//! redirect, the callback (GET and form POST), the exchange of the single-use code, the link
//! of a provider to a signed-in account, and the account's identities.

use auth_oauth::{CallbackParams, Failed};
use auth_service::{AuthUser, Error};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::cookie::read_cookie;
use super::dto::{ApiJson, no_store};
use super::state::{Device, Meta, RouterState};
use crate::error::Rejection;
use crate::extract::{Authenticated, Fresh};
use auth_service::SignedIn;

#[derive(Debug, Deserialize)]
pub(super) struct StartQuery {
    redirect_to: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct CodeBody {
    code: String,
    /// The binding of the browser that started the flow, for clients that keep cookies
    /// themselves; browsers send it as the `auth_oauth_exchange` cookie.
    binding: Option<String>,
}

/// The cookie the callback leaves for the exchange: the starting browser's binding, so the
/// code it hands the page is redeemable by that browser alone.
const EXCHANGE_COOKIE: &str = "auth_oauth_exchange";

fn exchange_cookie<U: AuthUser>(
    state: &RouterState<U>,
    provider: &str,
    value: &str,
    max_age: u32,
) -> Option<HeaderValue> {
    let oauth = state.oauth.as_ref()?;
    super::cookie::flow_cookie(
        EXCHANGE_COOKIE,
        value,
        &format!("{}/oauth/exchange", state.options.mount),
        u64::from(max_age),
        "Lax",
        oauth.callback_url(provider).starts_with("https://"),
    )
}

fn cookie_name(provider: &str) -> String {
    let safe: String = provider
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("auth_oauth_{safe}")
}

fn binding_cookie<U: AuthUser>(
    state: &RouterState<U>,
    provider: &str,
    value: &str,
    max_age: u32,
) -> Option<HeaderValue> {
    let oauth = state.oauth.as_ref()?;
    let https = oauth.callback_url(provider).starts_with("https://");
    // A provider that answers with a cross-site form POST (Apple) gets the cookie only with
    // SameSite=None, which browsers accept only with Secure.
    let same_site = if oauth.posts_back(provider) && https {
        "None"
    } else {
        "Lax"
    };
    super::cookie::flow_cookie(
        &cookie_name(provider),
        value,
        &format!("{}/oauth/{provider}", state.options.mount),
        u64::from(max_age),
        same_site,
        https,
    )
}

/// `redirect_to` with `key=value` added to its query.
fn with_param(redirect_to: &str, key: &str, value: &str) -> String {
    let mut out = redirect_to.to_owned();
    let fragment = out.find('#').map(|i| out.split_off(i)).unwrap_or_default();
    out.push(if out.contains('?') { '&' } else { '?' });
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    out.push_str(&format!("{key}={encoded}"));
    out + &fragment
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// A failure: back to the application's page with `?error=`, or, when no page is known (an
/// unknown state, a `redirect_to` off the allow-list), a 400 with the code.
fn failed(f: &Failed) -> Response {
    match &f.redirect_to {
        Some(to) => redirect(&with_param(to, "error", f.failure.code())),
        None => no_store(StatusCode::BAD_REQUEST, json!({"error": f.failure.code()})),
    }
}

fn oauth<U: AuthUser>(state: &RouterState<U>) -> Result<&auth_oauth::OAuth, Rejection> {
    state
        .oauth
        .as_ref()
        .ok_or_else(|| Error::Unsupported("provider sign-in is not configured".into()).into())
}

/// `GET /oauth/{provider}/start?redirect_to=` → 302 to the provider, with the cookie binding
/// the answer to this browser.
pub(super) async fn start<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Path(provider): Path<String>,
    Query(q): Query<StartQuery>,
) -> Result<Response, Rejection> {
    let oauth = oauth(&state)?;
    match oauth.start(&provider, &q.redirect_to, None).await {
        Ok(started) => {
            let mut r = redirect(&started.url);
            if let Some(c) = binding_cookie(&state, &provider, &started.binding, 600) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(r)
        }
        Err(f) => Ok(failed(&f)),
    }
}

/// `POST /oauth/{provider}/link/start {redirect_to}` (Bearer, fresh) → `{url}`: open it in
/// this browser to link the provider to the signed-in account.
pub(super) async fn link_start<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(provider): Path<String>,
    ApiJson(q): ApiJson<StartQuery>,
) -> Result<Response, Rejection> {
    state.auth.require_proven(user.id()).await?;
    let oauth = oauth(&state)?;
    match oauth
        .start(&provider, &q.redirect_to, Some(user.id()))
        .await
    {
        Ok(started) => {
            let mut r = no_store(StatusCode::OK, json!({"url": started.url}));
            if let Some(c) = binding_cookie(&state, &provider, &started.binding, 600) {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            Ok(r)
        }
        Err(f) => Ok(no_store(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": f.failure.code()}),
        )),
    }
}

async fn callback<U: AuthUser>(
    state: &RouterState<U>,
    provider: &str,
    headers: &HeaderMap,
    params: CallbackParams,
) -> Result<Response, Rejection> {
    let oauth = oauth(state)?;
    let binding = read_cookie(headers, &cookie_name(provider)).map(str::to_owned);
    let mut response = match oauth.finish(provider, &params, binding.as_deref()).await {
        Ok(finished) => match &finished.link_user {
            Some(user) => match state.auth.link_identity(user, finished.identity).await {
                Ok(_) => redirect(&with_param(&finished.redirect_to, "linked", provider)),
                Err(Error::EmailTaken) => redirect(&with_param(
                    &finished.redirect_to,
                    "error",
                    "identity_in_use",
                )),
                Err(e) => return Err(e.into()),
            },
            None => {
                // `finish` checked the binding: it is this browser's.
                let bound = binding.as_deref().unwrap_or_default();
                let code = oauth.issue_code(&finished.identity, bound).await?;
                let mut r = redirect(&with_param(&finished.redirect_to, "code", &code));
                let lifetime = u32::try_from(auth_oauth::CODE_LIFETIME.as_secs()).unwrap_or(60);
                if let Some(c) = exchange_cookie(state, provider, bound, lifetime) {
                    r.headers_mut().append(header::SET_COOKIE, c);
                }
                r
            }
        },
        Err(f) => failed(&f),
    };
    if let Some(c) = binding_cookie(state, provider, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// `GET /oauth/{provider}/callback?code=&state=` → 302 to `redirect_to` with `?code=` (or
/// `?linked=`, or `?error=`).
pub(super) async fn callback_get<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Result<Response, Rejection> {
    callback(&state, &provider, &headers, params).await
}

/// `POST /oauth/{provider}/callback` (a form post, as `response_mode=form_post` providers send).
pub(super) async fn callback_post<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let text = std::str::from_utf8(&body).unwrap_or_default();
    let mut params = CallbackParams::default();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "code" => params.code = Some(v),
            "state" => params.state = Some(v),
            "error" => params.error = Some(v),
            _ => {}
        }
    }
    callback(&state, &provider, &headers, params).await
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /oauth/exchange {code}` (with the `auth_oauth_exchange` cookie the callback left in
/// the browser that started the flow, or `{binding}`) → the login answer (tokens, or the
/// second factor's challenge); 401 for an unknown, spent or expired code, or one presented by
/// another browser; 409 `email_taken` when the address belongs to an account the provider
/// cannot be linked to silently.
pub(super) async fn exchange<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Meta(meta): Meta,
    Device(device): Device,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Response, Rejection> {
    let oauth = oauth(&state)?;
    let binding = body
        .binding
        .clone()
        .or_else(|| read_cookie(&headers, EXCHANGE_COOKIE).map(str::to_owned));
    let identity = oauth.redeem_code(&body.code, binding.as_deref()).await?;
    let provider = identity.provider.clone();
    let outcome = state
        .auth
        .sign_in_with_provider(identity, state.fresh_login(meta).with_device(device))
        .await?;
    let mut response = state.login_answer(outcome)?;
    if let Some(c) = exchange_cookie(&state, &provider, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(response)
}

/// `GET /identities` (Bearer) → `{identities: [{id, provider, subject, email, created_at,
/// last_used_at}]}`.
pub(super) async fn identities<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Authenticated(user): Authenticated<U>,
) -> Result<Response, Rejection> {
    let list = state.auth.list_identities(user.id()).await?;
    Ok(axum::Json(json!({ "identities": list })).into_response())
}

/// `DELETE /identities/{id}` (Bearer, fresh) → 204, 404, or 422 `last_sign_in_method`.
pub(super) async fn unlink<U: AuthUser>(
    State(state): State<RouterState<U>>,
    Fresh(SignedIn { user, .. }): Fresh<U>,
    Path(id): Path<String>,
) -> Result<Response, Rejection> {
    if state.auth.unlink_identity(user.id(), &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::UserNotFound.into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn params_are_appended_and_encoded() {
        assert_eq!(
            super::with_param("https://a/x", "code", "a b"),
            "https://a/x?code=a%20b"
        );
        assert_eq!(
            super::with_param("https://a/x?y=1#f", "error", "access_denied"),
            "https://a/x?y=1&error=access_denied#f"
        );
        assert_eq!(super::percent_decode("a%2Fb+c"), "a/b c");
    }
}
