//! Authentication schemes (Bearer, Token, Basic, S2S), the `MultiAuth` chain, the layer that
//! authenticates once per request, and the route layer that requires it.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_service::{
    ApiKeyAuth, AuthService, AuthUser, Error, LoginOptions, MAX_TOKEN_LENGTH, Result, S2SService,
    S2sIdentity, async_trait,
};
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::client::TrustedProxies;
use crate::error::{ApiError, unauthorized};

/// Who a request comes from, as the [`AuthLayer`] found it: a user, another service, or an
/// API key (acting for a user or a service account).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Principal<U> {
    /// A user, by token or password.
    User(U),
    /// A service, by S2S token.
    Service(S2sIdentity),
    /// An API key: its record (scopes) and its owner when that is a user.
    ApiKey(Box<ApiKeyAuth<U>>),
}

impl<U> Principal<U> {
    /// The user, if it is one (for an API key: its owning user).
    ///
    /// ```
    /// let p = auth_axum::Principal::User(7);
    /// assert_eq!(p.user(), Some(&7));
    /// ```
    pub fn user(&self) -> Option<&U> {
        match self {
            Self::User(u) => Some(u),
            Self::Service(_) => None,
            Self::ApiKey(k) => k.user.as_ref(),
        }
    }

    /// Whether the principal may act within `scope`: an API key only with that scope (or
    /// `*`); a user's own session or an S2S service always.
    ///
    /// ```
    /// assert!(auth_axum::Principal::User(7).has_scope("deploy"));
    /// ```
    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::ApiKey(k) => k.key.has_scope(scope),
            Self::User(_) | Self::Service(_) => true,
        }
    }
}

/// One way to authenticate a request. `None` means "no credentials of mine here" (the chain
/// goes on); `Some(Err(_))` means credentials were presented and are wrong, which stops a
/// [`MultiAuth`] chain (starlette-auth-toolkit's semantics): presented-but-invalid never falls
/// through to another scheme or to anonymous.
#[async_trait]
pub trait AuthScheme<U>: Send + Sync + 'static {
    /// The challenge for `WWW-Authenticate` (`Bearer`, `Basic realm="…"`).
    fn challenge(&self) -> &str;
    /// Authenticates from the request headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>>;

    /// Authenticates from the whole request head (headers, and extensions such as the peer
    /// address); [`AuthLayer`] and [`MultiAuth`] call this. The default reads the headers only;
    /// schemes that check a password override it so the service's per-address throttle sees
    /// the client.
    async fn authenticate_parts(&self, parts: &Parts) -> Option<Result<Principal<U>>> {
        self.authenticate(&parts.headers).await
    }
}

/// The credentials after `Authorization: <scheme> `: `None` when the header is absent or names
/// another scheme; `Err` when it is this scheme but unusable.
fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<Result<&'h str>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(Error::TokenInvalid));
    };
    let (name, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !name.eq_ignore_ascii_case(scheme) {
        return None;
    }
    let rest = rest.trim();
    if rest.is_empty() || rest.len() > MAX_TOKEN_LENGTH {
        return Some(Err(Error::TokenInvalid));
    }
    Some(Ok(rest))
}

/// An access token after `Authorization: <scheme> `, checked by [`AuthService::authenticate`]
/// (Bearer and Token differ only in the scheme's name).
async fn access_token<U: AuthUser>(
    auth: &AuthService<U>,
    headers: &HeaderMap,
    scheme: &str,
) -> Option<Result<Principal<U>>> {
    Some(match credentials(headers, scheme)? {
        Ok(token) => auth.authenticate(token).await.map(Principal::User),
        Err(e) => Err(e),
    })
}

/// `Authorization: Bearer <access token>`, checked by [`AuthService::authenticate`].
///
/// ```
/// # use auth_service::*;
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let chain = auth_axum::MultiAuth::new().with(auth_axum::BearerScheme::new(auth));
/// # let _ = chain;
/// ```
#[derive(Debug, Clone)]
pub struct BearerScheme<U: AuthUser> {
    auth: AuthService<U>,
}

impl<U: AuthUser> BearerScheme<U> {
    /// The scheme over `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self { auth }
    }
}

#[async_trait]
impl<U: AuthUser> AuthScheme<U> for BearerScheme<U> {
    fn challenge(&self) -> &str {
        "Bearer"
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        access_token(&self.auth, headers, "Bearer").await
    }
}

/// `Authorization: Token <access token>` (the "Token" scheme of Django REST framework and
/// starlette-auth-toolkit), same tokens as Bearer.
#[derive(Debug, Clone)]
pub struct TokenScheme<U: AuthUser> {
    auth: AuthService<U>,
}

impl<U: AuthUser> TokenScheme<U> {
    /// The scheme over `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self { auth }
    }
}

#[async_trait]
impl<U: AuthUser> AuthScheme<U> for TokenScheme<U> {
    fn challenge(&self) -> &str {
        "Token"
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        access_token(&self.auth, headers, "Token").await
    }
}

/// HTTP Basic with `email:password`, checked like a login ([`AuthService::check_password`]:
/// hashing off the runtime, rate limits, equal cost for every failure). An account with a
/// second factor is refused: Basic cannot carry one.
#[derive(Clone)]
pub struct BasicScheme<U: AuthUser> {
    auth: AuthService<U>,
    challenge: String,
    proxies: TrustedProxies,
}

impl<U: AuthUser> fmt::Debug for BasicScheme<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicScheme")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> BasicScheme<U> {
    /// The scheme over `auth`, with realm `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self {
            auth,
            challenge: "Basic realm=\"auth\", charset=\"UTF-8\"".into(),
            proxies: TrustedProxies::none(),
        }
    }

    /// Which proxies' `X-Forwarded-For` to believe when finding the client address (the
    /// socket peer otherwise), for the service's per-address throttle. Give the router's.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Another realm in the challenge (quotes and backslashes are dropped).
    #[must_use]
    pub fn realm(mut self, realm: &str) -> Self {
        let clean: String = realm.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
        self.challenge = format!("Basic realm=\"{clean}\", charset=\"UTF-8\"");
        self
    }
}

#[async_trait]
impl<U: AuthUser> AuthScheme<U> for BasicScheme<U> {
    fn challenge(&self) -> &str {
        &self.challenge
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        self.check(headers, LoginOptions::new()).await
    }

    async fn authenticate_parts(&self, parts: &Parts) -> Option<Result<Principal<U>>> {
        let mut options = LoginOptions::new();
        options.meta.ip = self.proxies.from_parts(parts);
        self.check(&parts.headers, options).await
    }
}

impl<U: AuthUser> BasicScheme<U> {
    async fn check(
        &self,
        headers: &HeaderMap,
        options: LoginOptions,
    ) -> Option<Result<Principal<U>>> {
        let encoded = match credentials(headers, "Basic")? {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let decoded = match STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(d) => zeroize::Zeroizing::new(d),
            None => return Some(Err(Error::InvalidCredentials)),
        };
        let Some((email, password)) = decoded.split_once(':') else {
            return Some(Err(Error::InvalidCredentials));
        };
        let outcome = async {
            let user = self.auth.check_password(email, password, &options).await?;
            if self.auth.requires_second_factor(user.id()).await? {
                return Err(Error::MfaRequired);
            }
            Ok(Principal::User(user))
        }
        .await;
        Some(outcome)
    }
}

/// An API key in `X-API-Key`, or in `Authorization: Bearer` when it has the service's key
/// prefix (`ak_live_…`), checked by [`AuthService::authenticate_api_key`] (checksum first,
/// one lookup, expiry, owner, per-key limit). A Bearer value without the prefix is not this
/// scheme's: put it before [`BearerScheme`] in a [`MultiAuth`] chain.
///
/// ```
/// # use auth_service::*;
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
///     .with_api_keys(MemoryApiKeyStore::new());
/// let chain = auth_axum::MultiAuth::new()
///     .with(auth_axum::ApiKeyScheme::new(auth.clone()))
///     .with(auth_axum::BearerScheme::new(auth));
/// assert_eq!(chain.challenges(), "ApiKey, Bearer");
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeyScheme<U: AuthUser> {
    auth: AuthService<U>,
    proxies: TrustedProxies,
}

impl<U: AuthUser> ApiKeyScheme<U> {
    /// The scheme over `auth` (which has [`AuthService::with_api_keys`]).
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self {
            auth,
            proxies: TrustedProxies::none(),
        }
    }

    /// Reads the client address (recorded as the key's last use) through these proxies.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }
}

/// The API key of a request, if it carries one: `X-API-Key`, or a Bearer value with the key
/// prefix. `Err` when `X-API-Key` is present but unreadable.
pub(crate) fn api_key<'h, U: AuthUser>(
    auth: &AuthService<U>,
    headers: &'h HeaderMap,
) -> Option<Result<&'h str>> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= MAX_TOKEN_LENGTH => Ok(k.trim()),
            _ => Err(Error::TokenInvalid),
        });
    }
    match credentials(headers, "Bearer")? {
        Ok(token) if auth.looks_like_api_key(token) => Some(Ok(token)),
        _ => None,
    }
}

#[async_trait]
impl<U: AuthUser> AuthScheme<U> for ApiKeyScheme<U> {
    fn challenge(&self) -> &str {
        "ApiKey"
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        Some(match api_key(&self.auth, headers)? {
            Ok(key) => self
                .auth
                .authenticate_api_key(key, None)
                .await
                .map(|k| Principal::ApiKey(Box::new(k))),
            Err(e) => Err(e),
        })
    }

    async fn authenticate_parts(&self, parts: &Parts) -> Option<Result<Principal<U>>> {
        let key = match api_key(&self.auth, &parts.headers)? {
            Ok(key) => key,
            Err(e) => return Some(Err(e)),
        };
        let client = self.proxies.from_parts(parts);
        Some(
            self.auth
                .authenticate_api_key(key, client)
                .await
                .map(|k| Principal::ApiKey(Box::new(k))),
        )
    }
}

/// A service token in `X-S2S-Token` (configurable), checked by [`S2SService`]; the caller's
/// name from `X-Service-Name`. A separate header keeps user Bearer tokens and service tokens
/// apart in one chain.
#[derive(Debug, Clone)]
pub struct S2sScheme {
    s2s: S2SService,
    header: &'static str,
    name_header: &'static str,
}

impl S2sScheme {
    /// Tokens in `X-S2S-Token`, names in `X-Service-Name`.
    #[must_use]
    pub fn new(s2s: S2SService) -> Self {
        Self {
            s2s,
            header: "x-s2s-token",
            name_header: "x-service-name",
        }
    }

    /// Reads the token from another header (lowercase name).
    #[must_use]
    pub fn header(mut self, name: &'static str) -> Self {
        self.header = name;
        self
    }
}

#[async_trait]
impl<U: AuthUser> AuthScheme<U> for S2sScheme {
    fn challenge(&self) -> &str {
        "S2S"
    }

    async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        let token = headers.get(self.header)?;
        let Ok(token) = token.to_str() else {
            return Some(Err(Error::InvalidCredentials));
        };
        let name = headers.get(self.name_header).and_then(|v| v.to_str().ok());
        Some(
            self.s2s
                .authenticate(token.trim(), name)
                .await
                .map(Principal::Service),
        )
    }
}

/// Schemes tried in order until one finds its credentials: the first scheme whose credentials
/// are present decides (success, or a 401 that no later scheme can override); no credentials
/// at all is anonymous.
///
/// ```
/// # use auth_service::*;
/// use auth_axum::{BasicScheme, BearerScheme, MultiAuth, S2sScheme, TokenScheme};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let chain = MultiAuth::new()
///     .with(BearerScheme::new(auth.clone()))
///     .with(TokenScheme::new(auth.clone()))
///     .with(BasicScheme::new(auth))
///     .with(S2sScheme::new(S2SService::new(["a-service-token-0123456789abcdef"], EventBus::new())));
/// assert_eq!(chain.challenges(), "Bearer, Token, Basic realm=\"auth\", charset=\"UTF-8\", S2S");
/// ```
pub struct MultiAuth<U> {
    schemes: Vec<Arc<dyn AuthScheme<U>>>,
    challenges: Vec<String>,
}

impl<U> Clone for MultiAuth<U> {
    fn clone(&self) -> Self {
        Self {
            schemes: self.schemes.clone(),
            challenges: self.challenges.clone(),
        }
    }
}

impl<U> fmt::Debug for MultiAuth<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiAuth")
            .field("schemes", &self.challenges)
            .finish()
    }
}

impl<U: AuthUser> Default for MultiAuth<U> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U: AuthUser> MultiAuth<U> {
    /// An empty chain.
    #[must_use]
    pub fn new() -> Self {
        Self {
            schemes: Vec::new(),
            challenges: Vec::new(),
        }
    }

    /// Appends a scheme.
    #[must_use]
    pub fn with(mut self, scheme: impl AuthScheme<U>) -> Self {
        self.challenges.push(scheme.challenge().to_owned());
        self.schemes.push(Arc::new(scheme));
        self
    }

    /// The `WWW-Authenticate` value: every scheme's challenge.
    #[must_use]
    pub fn challenges(&self) -> String {
        self.challenges.join(", ")
    }

    /// Runs the chain.
    ///
    /// # Errors
    ///
    /// The first scheme with credentials present decides; its error is returned as is.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Option<Result<Principal<U>>> {
        for scheme in &self.schemes {
            if let Some(outcome) = scheme.authenticate(headers).await {
                return Some(outcome);
            }
        }
        None
    }

    /// Runs the chain over the whole request head (what [`AuthLayer`] does), so schemes see
    /// the client address.
    ///
    /// # Errors
    ///
    /// As [`authenticate`](Self::authenticate).
    pub async fn authenticate_parts(&self, parts: &Parts) -> Option<Result<Principal<U>>> {
        for scheme in &self.schemes {
            if let Some(outcome) = scheme.authenticate_parts(parts).await {
                return Some(outcome);
            }
        }
        None
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = std::result::Result<Response, Infallible>> + Send>>;

/// A tower layer that authenticates every request once with a [`MultiAuth`] and puts the
/// [`Principal`] in the request extensions, where [`Principal`], [`S2sCaller`] and
/// [`crate::Authenticated`] find it. No credentials: the request goes on anonymous. Wrong
/// credentials: a 401 with `WWW-Authenticate` naming the chain's schemes, right away.
///
/// ```
/// # use auth_service::*;
/// use auth_axum::{AuthLayer, BearerScheme, MultiAuth, Principal, RequireAuth};
/// use axum::{Router, routing::get};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// async fn hello(p: Principal<User>) -> String { format!("{p:?}") }
/// let app: Router = Router::new()
///     .route("/hello", get(hello))
///     .route_layer(RequireAuth::<User>::login())
///     .layer(AuthLayer::new(MultiAuth::new().with(BearerScheme::new(auth))));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct AuthLayer<U> {
    chain: Arc<MultiAuth<U>>,
}

impl<U: AuthUser> AuthLayer<U> {
    /// A layer running `chain`.
    #[must_use]
    pub fn new(chain: MultiAuth<U>) -> Self {
        Self {
            chain: Arc::new(chain),
        }
    }
}

impl<S, U> tower::Layer<S> for AuthLayer<U> {
    type Service = AuthMiddleware<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware {
            inner,
            chain: Arc::clone(&self.chain),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthMiddleware<S, U> {
    inner: S,
    chain: Arc<MultiAuth<U>>,
}

impl<S, U> tower::Service<Request> for AuthMiddleware<S, U>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    U: AuthUser,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let chain = Arc::clone(&self.chain);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match chain.authenticate_parts(&parts).await {
                None => {}
                Some(Ok(principal)) => {
                    if let Principal::Service(id) = &principal {
                        parts.extensions.insert(ServiceMarker(id.clone()));
                    }
                    parts.extensions.insert(principal);
                }
                Some(Err(e)) => {
                    let mut response = ApiError(e).into_response();
                    if response.status() == StatusCode::UNAUTHORIZED
                        && let Ok(v) = HeaderValue::from_str(&chain.challenges())
                    {
                        response.headers_mut().insert(WWW_AUTHENTICATE, v);
                    }
                    return Ok(response);
                }
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

type Predicate<U> = Arc<dyn Fn(&Principal<U>) -> bool + Send + Sync>;

/// A route layer that requires an authenticated principal (from an [`AuthLayer`] outside it):
/// 401 for APIs, or a redirect to a login page when configured; 403 when authenticated but the
/// predicate says no.
///
/// ```
/// use auth_axum::{Principal, RequireAuth};
/// use auth_service::{AuthUser, User};
/// let _api = RequireAuth::<User>::login();
/// let _pages = RequireAuth::<User>::login().redirect_to("/login");
/// let _verified = RequireAuth::<User>::login()
///     .allow(|p| p.user().is_some_and(|u| u.is_verified()));
/// let _services = RequireAuth::<User>::login().allow(|p| matches!(p, Principal::Service(_)));
/// ```
pub struct RequireAuth<U> {
    redirect: Option<Arc<str>>,
    predicate: Option<Predicate<U>>,
}

impl<U> Clone for RequireAuth<U> {
    fn clone(&self) -> Self {
        Self {
            redirect: self.redirect.clone(),
            predicate: self.predicate.clone(),
        }
    }
}

impl<U> fmt::Debug for RequireAuth<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAuth")
            .field("redirect", &self.redirect)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl<U: AuthUser> RequireAuth<U> {
    /// Requires any principal.
    #[must_use]
    pub fn login() -> Self {
        Self {
            redirect: None,
            predicate: None,
        }
    }

    /// Redirects anonymous requests (303) to `url?next=<path>` instead of answering 401.
    #[must_use]
    pub fn redirect_to(mut self, url: &str) -> Self {
        self.redirect = Some(Arc::from(url));
        self
    }

    /// Requires a principal within `scope` ([`Principal::has_scope`]): an API key without
    /// it gets 403; a user's own session passes.
    ///
    /// ```
    /// let _deploy = auth_axum::RequireAuth::<auth_service::User>::scope("deploy:write");
    /// ```
    #[must_use]
    pub fn scope(scope: &str) -> Self {
        let scope: Arc<str> = Arc::from(scope);
        Self::login().allow(move |p| p.has_scope(&scope))
    }

    /// Answers 403 to principals `allowed` refuses.
    #[must_use]
    pub fn allow(
        mut self,
        allowed: impl Fn(&Principal<U>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(allowed));
        self
    }
}

impl<S, U> tower::Layer<S> for RequireAuth<U> {
    type Service = RequireAuthService<S, U>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuthService {
            inner,
            rule: Self {
                redirect: self.redirect.clone(),
                predicate: self.predicate.clone(),
            },
        }
    }
}

/// The service [`RequireAuth`] makes.
pub struct RequireAuthService<S, U> {
    inner: S,
    rule: RequireAuth<U>,
}

impl<S: Clone, U> Clone for RequireAuthService<S, U> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            rule: self.rule.clone(),
        }
    }
}

impl<S, U> fmt::Debug for RequireAuthService<S, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.rule.fmt(f)
    }
}

/// Percent-encodes a path for a `next` parameter.
fn encode_next(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl<S, U> tower::Service<Request> for RequireAuthService<S, U>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    U: AuthUser,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let principal = request.extensions().get::<Principal<U>>();
        let refusal = match (principal, &self.rule.predicate) {
            (None, _) => Some(match &self.rule.redirect {
                Some(url) => {
                    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    let sep = if url.contains('?') { '&' } else { '?' };
                    let location = format!("{url}{sep}next={}", encode_next(path));
                    let mut r = StatusCode::SEE_OTHER.into_response();
                    if let Ok(v) = HeaderValue::from_str(&location) {
                        r.headers_mut().insert(LOCATION, v);
                    }
                    r
                }
                None => unauthorized(),
            }),
            (Some(p), Some(allowed)) if !allowed(p) => Some(
                (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"error": "forbidden"})),
                )
                    .into_response(),
            ),
            _ => None,
        };
        if let Some(response) = refusal {
            return Box::pin(async move { Ok(response) });
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}

/// The request's principal, put there by an [`AuthLayer`]: 401 when anonymous.
/// `Option<Principal<U>>` is `None` instead.
impl<U: AuthUser, S: Send + Sync> FromRequestParts<S> for Principal<U> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Response> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(unauthorized)
    }
}

impl<U: AuthUser, S: Send + Sync> OptionalFromRequestParts<S> for Principal<U> {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}

/// The calling service, authenticated by an [`S2sScheme`] in an [`AuthLayer`]: 401 otherwise
/// (a user is not a service).
///
/// ```
/// use auth_axum::S2sCaller;
/// async fn internal(S2sCaller(caller): S2sCaller) -> String {
///     format!("hello, {}", caller.display_name())
/// }
/// # let _ = internal;
/// ```
#[derive(Debug, Clone)]
pub struct S2sCaller(pub S2sIdentity);

impl<S: Send + Sync> FromRequestParts<S> for S2sCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> std::result::Result<Self, Response> {
        // The principal type is unknown here; look for the service identity under any user
        // type the application uses through a marker the layer also stores.
        parts
            .extensions
            .get::<ServiceMarker>()
            .map(|m| S2sCaller(m.0.clone()))
            .ok_or_else(unauthorized)
    }
}

/// Stored beside a service principal so [`S2sCaller`] needs no user type.
#[derive(Debug, Clone)]
pub(crate) struct ServiceMarker(pub(crate) S2sIdentity);
