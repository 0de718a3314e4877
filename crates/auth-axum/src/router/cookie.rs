//! Refresh tokens in an HttpOnly cookie, and the CSRF guard that comes with them.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Rejection;

/// Refresh tokens in an HttpOnly cookie instead of the response body, for browser clients.
/// With it, `POST /refresh` reads the cookie when the body has no `refresh_token`, `POST
/// /logout` clears it, and every state-changing request passes a CSRF check: a
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is neither the
/// request's host nor an allowed origin, is refused with 403.
///
/// ```
/// let cookie = auth_axum::RefreshCookie::new().path("/auth").allow_origin("https://app.example.com");
/// assert!(cookie.set("tok", 60).starts_with("auth_refresh=tok; Max-Age=60; Path=/auth; HttpOnly; Secure; SameSite=Strict"));
/// ```
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
    secure: bool,
    same_site: &'static str,
    origins: Vec<String>,
}

impl Default for RefreshCookie {
    fn default() -> Self {
        Self::new()
    }
}

impl RefreshCookie {
    /// `auth_refresh`, path `/`, `Secure`, `SameSite=Strict`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            name: "auth_refresh".into(),
            path: "/".into(),
            secure: true,
            same_site: "Strict",
            origins: Vec::new(),
        }
    }

    /// The cookie's path (the router's mount point, such as `/auth`).
    #[must_use]
    pub fn path(mut self, path: &str) -> Self {
        self.path = path
            .chars()
            .filter(|c| !matches!(c, ';' | ',' | ' '))
            .collect();
        self
    }

    /// Drops `Secure` (plain-HTTP development only).
    #[must_use]
    pub fn insecure(mut self) -> Self {
        self.secure = false;
        self
    }

    /// `SameSite=Lax` instead of `Strict`.
    #[must_use]
    pub fn same_site_lax(mut self) -> Self {
        self.same_site = "Lax";
        self
    }

    /// Another origin (`https://app.example.com`) allowed to make state-changing requests.
    #[must_use]
    pub fn allow_origin(mut self, origin: &str) -> Self {
        self.origins.push(origin.trim_end_matches('/').to_owned());
        self
    }

    /// The `Set-Cookie` value for `token`.
    #[must_use]
    pub fn set(&self, token: &str, max_age: i64) -> String {
        format!(
            "{}={token}; Max-Age={max_age}; Path={}; HttpOnly{}; SameSite={}",
            self.name,
            self.path,
            if self.secure { "; Secure" } else { "" },
            self.same_site
        )
    }

    pub(super) fn clear(&self) -> String {
        self.set("", 0)
    }

    pub(super) fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        read_cookie(headers, &self.name).filter(|v| !v.is_empty())
    }

    /// Whether a state-changing request passes the CSRF check.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin.is_some_and(|o| self.origins.iter().any(|a| a == o)) {
            return true;
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            return matches!(site, "same-origin" | "none");
        }
        match origin {
            None => true, // not a browser: no ambient cookie risk beyond what the client sends
            Some(o) => {
                let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                let origin_host = o.split_once("://").map(|(_, h)| h);
                host.is_some() && origin_host == host
            }
        }
    }
}

pub(super) async fn csrf_guard(
    cookie: Arc<RefreshCookie>,
    request: Request,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || cookie.allows(request.headers()) {
        next.run(request).await
    } else {
        tracing::info!(path = %request.uri().path(), "cross-site request refused");
        Rejection::Csrf.into_response()
    }
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub(super) fn read_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// An HttpOnly cookie for this router's own flows (`SameSite`, path under the mount, `Secure`
/// unless the router was told the site is plain HTTP).
pub(super) fn flow_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    same_site: &str,
    secure: bool,
) -> Option<axum::http::HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    axum::http::HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .ok()
}
