//! The routers' state, the request metadata extractor and token answers.

use std::sync::Arc;

use auth_service::{AuthService, AuthUser, LoginOptions, SessionMeta, TokenPair, UserId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::cookie::RefreshCookie;
use super::dto::no_store;
use crate::client::TrustedProxies;
use crate::error::Rejection;

/// The routers' state: the service, and the optional parts, behind one reference count
/// (axum clones the state for every request).
pub(crate) struct RouterState<U: AuthUser>(Arc<RouterParts<U>>);

impl<U: AuthUser> RouterState<U> {
    pub(crate) fn new(parts: RouterParts<U>) -> Self {
        Self(Arc::new(parts))
    }
}

impl<U: AuthUser> Clone for RouterState<U> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<U: AuthUser> std::ops::Deref for RouterState<U> {
    type Target = RouterParts<U>;

    fn deref(&self) -> &RouterParts<U> {
        &self.0
    }
}

/// What [`RouterState`] holds.
pub(crate) struct RouterParts<U: AuthUser> {
    pub(crate) auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    pub(crate) mfa: Option<auth_mfa::Mfa>,
    pub(crate) reset: Option<auth_service::PasswordResetService<U>>,
    pub(crate) verification: Option<auth_service::EmailVerificationService<U>>,
    pub(crate) audit: Option<Arc<dyn auth_service::AuditStore>>,
    #[cfg(feature = "oauth")]
    pub(crate) oauth: Option<auth_oauth::OAuth>,
    pub(crate) options: Arc<Options>,
}

/// Settings shared by every route.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) mount: String,
    pub(crate) cookie: Option<RefreshCookie>,
    pub(crate) proxies: TrustedProxies,
    pub(crate) secure_cookies: bool,
}

impl<U: AuthUser> axum::extract::FromRef<RouterState<U>> for AuthService<U> {
    fn from_ref(state: &RouterState<U>) -> Self {
        state.auth.clone()
    }
}

/// Client metadata of a request: user agent, and the address (through trusted proxies only).
pub(crate) struct Meta(pub(crate) SessionMeta);

impl<U: AuthUser> FromRequestParts<RouterState<U>> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &RouterState<U>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Meta(state.options.proxies.meta(parts)))
    }
}

/// The trusted-device cookie (HttpOnly, `SameSite=Strict`, under the router's mount).
pub(crate) const DEVICE_COOKIE: &str = "auth_device";

/// The trusted-device credential a sign-in presents: the `auth_device` cookie, or the
/// `X-Auth-Device` header (API clients, which keep the `device_token` they were given).
pub(crate) struct Device(pub(crate) Option<String>);

impl<U: AuthUser> FromRequestParts<RouterState<U>> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &RouterState<U>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get("x-auth-device")
            .and_then(|v| v.to_str().ok());
        let cookie = super::cookie::read_cookie(&parts.headers, DEVICE_COOKIE);
        Ok(Device(
            header
                .or(cookie)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        ))
    }
}

impl<U: AuthUser> RouterState<U> {
    /// The `Set-Cookie` value that keeps a trusted-device credential in this browser.
    pub(crate) fn device_cookie(&self, credential: &str, max_age: i64) -> Option<HeaderValue> {
        let path: String = self
            .options
            .mount
            .chars()
            .filter(|c| !matches!(c, ';' | ',' | ' '))
            .collect();
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        HeaderValue::from_str(&format!(
            "{DEVICE_COOKIE}={credential}; Max-Age={max_age}; Path={path}; HttpOnly{}; SameSite=Strict",
            if self.options.secure_cookies { "; Secure" } else { "" },
        ))
        .ok()
    }

    /// The answer to a sign-in: the token pair, or `{mfa_required, mfa_token, expires_in}`.
    pub(crate) fn login_answer(
        &self,
        outcome: auth_service::LoginOutcome<U>,
    ) -> Result<Response, Rejection> {
        match outcome {
            auth_service::LoginOutcome::Session(login) => {
                Ok(self.tokens(StatusCode::OK, Some(login.user.id()), &login.tokens))
            }
            auth_service::LoginOutcome::Challenge(challenge) => Ok(no_store(
                StatusCode::OK,
                json!({
                    "mfa_required": true,
                    "mfa_token": challenge.token.expose_secret(),
                    "expires_in": challenge.expires_in.as_secs(),
                }),
            )),
            _ => Err(auth_service::Error::Unsupported("unknown login outcome".into()).into()),
        }
    }

    /// Login options for a fresh password (or second-factor) entry: the service's
    /// ([`AuthService::fresh_login_options`]).
    pub(crate) fn fresh_login(&self, meta: SessionMeta) -> LoginOptions {
        self.auth.fresh_login_options(meta)
    }

    /// A token response: the pair (the refresh token in a cookie in cookie mode), never cached.
    pub(crate) fn tokens(
        &self,
        status: StatusCode,
        user_id: Option<&UserId>,
        pair: &TokenPair,
    ) -> Response {
        self.tokens_and_device(status, user_id, pair, None)
    }

    /// [`tokens`](Self::tokens), and the credential of a device trusted at this sign-in: in
    /// the `auth_device` cookie for browsers and as `device_token` for API clients (which
    /// send it back in `X-Auth-Device`).
    pub(crate) fn tokens_and_device(
        &self,
        status: StatusCode,
        user_id: Option<&UserId>,
        pair: &TokenPair,
        device: Option<&auth_service::SecretString>,
    ) -> Response {
        let now = self.auth.clock().now();
        let mut body = json!({
            "access_token": pair.access_token.expose_secret(),
            "token_type": pair.token_type,
            "expires_in": (pair.access_expires_at - now).whole_seconds().max(0),
            "refresh_expires_in": (pair.refresh_expires_at - now).whole_seconds().max(0),
        });
        let map = body.as_object_mut();
        if let Some(map) = map {
            if self.options.cookie.is_none() {
                map.insert(
                    "refresh_token".into(),
                    Value::String(pair.refresh_token.expose_secret().to_owned()),
                );
            }
            if let Some(id) = user_id {
                map.insert("user_id".into(), Value::String(id.to_string()));
            }
            if let Some(device) = device {
                map.insert(
                    "device_token".into(),
                    Value::String(device.expose_secret().to_owned()),
                );
            }
        }
        let mut response = no_store(status, body);
        if let Some(device) = device
            && let Some(cookie) = self.device_cookie(
                device.expose_secret(),
                i64::try_from(self.auth.trusted_device_lifetime().as_secs()).unwrap_or(i64::MAX),
            )
        {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        if let Some(cookie) = &self.options.cookie {
            let max_age = (pair.refresh_expires_at - now).whole_seconds().max(0);
            if let Ok(v) =
                HeaderValue::from_str(&cookie.set(pair.refresh_token.expose_secret(), max_age))
            {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}
