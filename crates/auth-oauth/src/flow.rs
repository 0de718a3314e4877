//! [`OAuth`]: the redirect to a provider and the check of its answer, up to a
//! [`ProviderIdentity`] that `AuthService::sign_in_with_provider` turns into a session.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::ephemeral::{CeremonyRecord, CeremonyStore};
use auth_core::{
    Clock, ConfigError, Error, ProviderIdentity, Result, SharedClock, SystemClock, UserId,
    add_saturating, constant_time_eq, random,
};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::url::Url;
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::error::OAuthFailure;
use crate::http::{HttpClient, HttpError, HttpSend};
use crate::provider::{Protocol, Provider};

/// How long a user has at the provider (between the redirect and the callback).
pub const STATE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// How long the single-use code handed to the application lives.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// Longest state or code accepted from a client.
const MAX_TOKEN: usize = 256;

/// The state of one redirect, stored server side under the SHA-256 of its `state`.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    verifier: String,
    nonce: String,
    redirect_to: String,
    link_user: Option<String>,
    /// SHA-256 of the browser cookie set with the redirect.
    binding: String,
}

/// What the provider vouched for, waiting for the application to redeem its code.
#[derive(Serialize, Deserialize)]
struct Vouched {
    provider: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    /// SHA-256 of the binding of the browser that started the flow.
    binding: String,
}

/// A redirect to a provider: where to send the browser, and the value of the cookie that
/// binds the answer to this browser (set it HttpOnly, for the callback path).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Started {
    /// The provider's authorization URL.
    pub url: String,
    /// The browser-binding cookie's value.
    pub binding: String,
}

/// A checked answer: who the provider says the user is, where to send them, and, for a link
/// started by a signed-in user, whose account to link.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Finished {
    /// What the provider vouched for.
    pub identity: ProviderIdentity,
    /// The application's page to return to.
    pub redirect_to: String,
    /// The account to link the identity to (a link flow), or `None` (a sign-in).
    pub link_user: Option<UserId>,
}

/// A failed answer, and where to report it when the state said (`?error=`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failed {
    /// What went wrong.
    pub failure: OAuthFailure,
    /// The application's page to return to, when the state was known.
    pub redirect_to: Option<String>,
}

impl Failed {
    fn new(failure: OAuthFailure, redirect_to: Option<String>) -> Self {
        Self {
            failure,
            redirect_to,
        }
    }
}

/// The query (or form) the provider sends back to the callback.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state given with the redirect.
    pub state: Option<String>,
    /// The provider's error (`access_denied`…).
    pub error: Option<String>,
}

impl CallbackParams {
    /// Parameters from their values.
    ///
    /// ```
    /// let p = auth_oauth::CallbackParams::new(Some("c".into()), Some("s".into()), None);
    /// assert_eq!(p.code.as_deref(), Some("c"));
    /// ```
    #[must_use]
    pub fn new(code: Option<String>, state: Option<String>, error: Option<String>) -> Self {
        Self { code, state, error }
    }
}

struct Configured {
    provider: Provider,
    /// The OpenID provider's metadata, fetched on first use (and again after a failure).
    metadata: RwLock<Option<CoreProviderMetadata>>,
}

/// Sign-in through OpenID Connect and OAuth 2.0 providers: PKCE (S256) always, `state` stored
/// server side (single use, [`STATE_LIFETIME`]) and bound to the browser by a cookie, a nonce
/// checked in the ID token, the ID token's signature, issuer, audience and expiry checked by
/// openidconnect; GitHub's verified emails from its API. The result is a
/// [`ProviderIdentity`]; the application's page then gets a single-use code
/// ([`CODE_LIFETIME`]) to redeem, never tokens in a URL.
///
/// ```
/// use auth_service::ephemeral::MemoryCeremonyStore;
/// use auth_oauth::{OAuth, Provider};
/// let oauth = OAuth::new("https://app.example.com/auth/oauth", MemoryCeremonyStore::new())?
///     .with_provider(Provider::google("id.apps.googleusercontent.com", "secret"))
///     .allow_redirects(["https://app.example.com/"])?;
/// assert!(oauth.redirect_allowed("https://app.example.com/welcome"));
/// assert!(!oauth.redirect_allowed("https://evil.example/"));
/// assert_eq!(oauth.callback_url("google"), "https://app.example.com/auth/oauth/google/callback");
/// # Ok::<(), auth_service::Error>(())
/// ```
#[derive(Clone)]
pub struct OAuth {
    callback_base: String,
    providers: Arc<HashMap<String, Arc<Configured>>>,
    ceremonies: Arc<dyn CeremonyStore>,
    http: Arc<dyn HttpSend>,
    clock: SharedClock,
    allowed: Arc<Vec<Url>>,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("callback_base", &self.callback_base)
            .field("providers", &self.provider_names())
            .field(
                "allowed",
                &self.allowed.iter().map(Url::as_str).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn sha(value: &str) -> String {
    random::sha256_hex(value)
}

fn unavailable(redirect_to: &str) -> impl Fn(String) -> Failed + '_ {
    move |detail| {
        tracing::warn!(%detail, "sign-in provider unavailable");
        Failed::new(
            OAuthFailure::ProviderUnavailable,
            Some(redirect_to.to_owned()),
        )
    }
}

impl OAuth {
    /// Sign-in whose callbacks are `{callback_base}/{provider}/callback` (the public URL where
    /// the router is mounted, e.g. `https://app.example.com/auth/oauth`), with redirect
    /// states in `ceremonies` (memory, SQL, Redis: shared by every instance).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the HTTP client cannot be built.
    ///
    /// ```
    /// let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth/", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// assert_eq!(oauth.callback_url("x"), "https://a.example/auth/oauth/x/callback");
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    pub fn new(callback_base: &str, ceremonies: impl CeremonyStore) -> Result<Self> {
        Ok(Self {
            callback_base: callback_base.trim_end_matches('/').to_owned(),
            providers: Arc::new(HashMap::new()),
            ceremonies: Arc::new(ceremonies),
            http: Arc::new(HttpClient::new()?),
            clock: Arc::new(SystemClock),
            allowed: Arc::new(Vec::new()),
        })
    }

    /// Adds a provider (replacing one of the same name).
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// let oauth = oauth.with_provider(auth_oauth::Provider::github("id", "s"));
    /// assert_eq!(oauth.provider_names(), ["github"]);
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_provider(mut self, provider: Provider) -> Self {
        Arc::make_mut(&mut self.providers).insert(
            provider.name().to_owned(),
            Arc::new(Configured {
                provider,
                metadata: RwLock::new(None),
            }),
        );
        self
    }

    /// Talks to providers through `http` (a proxy, a test double).
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// let oauth = oauth.with_http(auth_oauth::HttpClient::new()?.with_timeout(std::time::Duration::from_secs(3)));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_http(mut self, http: impl HttpSend) -> Self {
        self.http = Arc::new(http);
        self
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// let oauth = oauth.with_clock(auth_service::FixedClock::from_unix(1_700_000_000));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The application pages users may be sent back to: each an absolute URL prefix (origin
    /// and optional path); a `redirect_to` must have its origin and start with its path.
    /// Relative paths (`/welcome`) are never accepted: name the origin.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an entry that is not an absolute http(s) URL.
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// let oauth = oauth.allow_redirects(["https://app.example.com/account"])?;
    /// assert!(oauth.redirect_allowed("https://app.example.com/account/done?x=1"));
    /// assert!(!oauth.redirect_allowed("https://app.example.com/accounting"));
    /// assert!(!oauth.redirect_allowed("https://app.example.com.evil.example/account"));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    pub fn allow_redirects<S: AsRef<str>>(
        mut self,
        prefixes: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let mut allowed = Vec::new();
        for prefix in prefixes {
            let prefix = prefix.as_ref();
            let url = Url::parse(prefix)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Error::Configuration(ConfigError::invalid(
                        "AUTH_OAUTH_REDIRECT_ALLOWLIST",
                        format!("{prefix:?} is not an absolute http(s) URL"),
                    ))
                })?;
            allowed.push(url);
        }
        self.allowed = Arc::new(allowed);
        Ok(self)
    }

    /// Whether `redirect_to` is on the allow-list.
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?
    /// #     .allow_redirects(["https://app.example.com"])?;
    /// assert!(oauth.redirect_allowed("https://app.example.com/"));
    /// assert!(!oauth.redirect_allowed("//evil.example"));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn redirect_allowed(&self, redirect_to: &str) -> bool {
        let Ok(url) = Url::parse(redirect_to) else {
            return false;
        };
        if url.username() != "" || url.password().is_some() || url.fragment().is_some() {
            return false;
        }
        self.allowed.iter().any(|prefix| {
            prefix.scheme() == url.scheme()
                && prefix.host_str() == url.host_str()
                && prefix.port_or_known_default() == url.port_or_known_default()
                && {
                    let base = prefix.path().trim_end_matches('/');
                    let path = url.path();
                    path == base || path.starts_with(&format!("{base}/")) || base.is_empty()
                }
        })
    }

    /// The configured providers' names, sorted.
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// assert!(oauth.provider_names().is_empty());
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn provider_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Whether `provider` answers with a form POST (its binding cookie must then be
    /// `SameSite=None; Secure`).
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?
    /// #     .with_provider(auth_oauth::Provider::oidc("x", "https://x.example", "id", None).with_form_post());
    /// assert!(oauth.posts_back("x"));
    /// assert!(!oauth.posts_back("unknown"));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn posts_back(&self, provider: &str) -> bool {
        self.providers
            .get(provider)
            .is_some_and(|c| c.provider.form_post())
    }

    /// The callback URL of `provider` (register it at the provider).
    ///
    /// ```
    /// # let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// assert_eq!(oauth.callback_url("google"), "https://a.example/auth/oauth/google/callback");
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/{provider}/callback", self.callback_base)
    }

    fn configured(&self, provider: &str) -> std::result::Result<&Arc<Configured>, Failed> {
        self.providers
            .get(provider)
            .ok_or_else(|| Failed::new(OAuthFailure::UnknownProvider, None))
    }

    /// Calls the HTTP client as openidconnect wants it.
    fn oidc_http(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<
            dyn Future<Output = std::result::Result<openidconnect::HttpResponse, HttpError>> + Send,
        >,
    > + '_ {
        move |request| {
            let http = Arc::clone(&self.http);
            Box::pin(async move {
                http.send(request)
                    .await
                    .map_err(|e| HttpError(e.to_string()))
            })
        }
    }

    async fn metadata(
        &self,
        configured: &Configured,
        issuer: &str,
    ) -> std::result::Result<CoreProviderMetadata, String> {
        if let Some(metadata) = configured.metadata.read().await.as_ref() {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.oidc_http())
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        *configured.metadata.write().await = Some(metadata.clone());
        Ok(metadata)
    }

    /// Starts a sign-in (or, with `link_user`, a link) at `provider`, returning to
    /// `redirect_to` (which must be on the allow-list).
    ///
    /// # Errors
    ///
    /// [`Failed`] with `UnknownProvider`, `InvalidState` (a `redirect_to` off the list: no
    /// `redirect_to` is reported), or `ProviderUnavailable` (discovery failed).
    pub async fn start(
        &self,
        provider: &str,
        redirect_to: &str,
        link_user: Option<&UserId>,
    ) -> std::result::Result<Started, Failed> {
        let configured = self.configured(provider)?;
        if !self.redirect_allowed(redirect_to) {
            tracing::info!(
                provider,
                "sign-in refused: redirect_to is not on the allow-list"
            );
            return Err(Failed::new(OAuthFailure::InvalidState, None));
        }
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let p = &configured.provider;
        let (url, state, nonce) = match p.protocol() {
            Protocol::Oidc { issuer } => {
                let metadata = self
                    .metadata(configured, issuer)
                    .await
                    .map_err(unavailable(redirect_to))?;
                let client = self
                    .oidc_client(p, metadata)
                    .map_err(unavailable(redirect_to))?;
                let mut request = client.authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                );
                for scope in p.scopes().iter().filter(|s| *s != "openid") {
                    request = request.add_scope(Scope::new(scope.clone()));
                }
                if p.form_post() {
                    request = request.add_extra_param("response_mode", "form_post");
                }
                let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
                (
                    url.to_string(),
                    state.secret().clone(),
                    nonce.secret().clone(),
                )
            }
            Protocol::GitHub { authorize_url, .. } => {
                let state = random::token(32);
                let mut url = Url::parse(authorize_url)
                    .map_err(|e| unavailable(redirect_to)(e.to_string()))?;
                url.query_pairs_mut()
                    .append_pair("client_id", p.client_id())
                    .append_pair("redirect_uri", &self.callback_url(provider))
                    .append_pair("scope", &p.scopes().join(" "))
                    .append_pair("state", &state)
                    .append_pair("code_challenge", challenge.as_str())
                    .append_pair("code_challenge_method", "S256")
                    .append_pair("allow_signup", "true");
                (url.to_string(), state, String::new())
            }
        };
        let binding = random::token(32);
        let pending = Pending {
            provider: provider.to_owned(),
            verifier: verifier.secret().clone(),
            nonce,
            redirect_to: redirect_to.to_owned(),
            link_user: link_user.map(ToString::to_string),
            binding: sha(&binding),
        };
        let stored =
            serde_json::to_string(&pending).map_err(|e| unavailable(redirect_to)(e.to_string()))?;
        self.ceremonies
            .put(&CeremonyRecord::new(
                sha(&format!("oauth-state:{state}")),
                link_user.cloned(),
                stored,
                add_saturating(self.clock.now(), STATE_LIFETIME),
            ))
            .await
            .map_err(|e| unavailable(redirect_to)(e.to_string()))?;
        Ok(Started { url, binding })
    }

    fn oidc_client(
        &self,
        p: &Provider,
        metadata: CoreProviderMetadata,
    ) -> std::result::Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect = RedirectUrl::new(self.callback_url(p.name())).map_err(|e| e.to_string())?;
        // Apple: a fresh signed secret, sent in the request body.
        let (secret, auth_type) = match p.apple_key() {
            Some(key) => (
                Some(ClientSecret::new(
                    key.client_secret(p.client_id(), self.clock.now().unix_timestamp())
                        .map_err(|e| e.to_string())?,
                )),
                openidconnect::AuthType::RequestBody,
            ),
            None => (
                p.client_secret()
                    .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
                openidconnect::AuthType::BasicAuth,
            ),
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(p.client_id().to_owned()),
            secret,
        )
        .set_redirect_uri(redirect)
        .set_auth_type(auth_type))
    }

    /// Checks the provider's answer on `provider`'s callback: the state (once, this browser's
    /// `binding` cookie, this provider), the provider's error, the code (with the PKCE
    /// verifier), the ID token (nonce, signature, issuer, audience, expiry) or GitHub's user.
    ///
    /// # Errors
    ///
    /// [`Failed`] with the reason, and `redirect_to` once the state is known.
    pub async fn finish(
        &self,
        provider: &str,
        params: &CallbackParams,
        binding: Option<&str>,
    ) -> std::result::Result<Finished, Failed> {
        let configured = self.configured(provider)?;
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= MAX_TOKEN)
            .ok_or_else(|| Failed::new(OAuthFailure::InvalidState, None))?;
        let record = self
            .ceremonies
            .take(&sha(&format!("oauth-state:{state}")), self.clock.now())
            .await
            .map_err(|_| Failed::new(OAuthFailure::ProviderUnavailable, None))?
            .ok_or_else(|| Failed::new(OAuthFailure::InvalidState, None))?;
        let pending: Pending = serde_json::from_str(&record.state)
            .map_err(|_| Failed::new(OAuthFailure::InvalidState, None))?;
        let back = Some(pending.redirect_to.clone());
        let bound = binding
            .is_some_and(|b| constant_time_eq(sha(b).as_bytes(), pending.binding.as_bytes()));
        if pending.provider != provider || !bound {
            tracing::info!(
                provider,
                "provider answer refused: the state belongs to another provider or browser"
            );
            return Err(Failed::new(OAuthFailure::InvalidState, back));
        }
        if let Some(error) = &params.error {
            tracing::info!(provider, %error, "the provider reports an error");
            let failure = if error == "access_denied" {
                OAuthFailure::AccessDenied
            } else {
                OAuthFailure::InvalidResponse
            };
            return Err(Failed::new(failure, back));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| Failed::new(OAuthFailure::InvalidResponse, back.clone()))?;
        let p = &configured.provider;
        let identity = match p.protocol() {
            Protocol::Oidc { issuer } => self
                .oidc_identity(configured, issuer, code, &pending)
                .await
                .map_err(|f| Failed::new(f, back.clone()))?,
            Protocol::GitHub {
                token_url, api_url, ..
            } => crate::github::identity(self, p, token_url, api_url, code, &pending.verifier)
                .await
                .map_err(|f| Failed::new(f, back.clone()))?,
        };
        Ok(Finished {
            identity,
            redirect_to: pending.redirect_to,
            link_user: pending.link_user.map(UserId::new),
        })
    }

    async fn oidc_identity(
        &self,
        configured: &Configured,
        issuer: &str,
        code: &str,
        pending: &Pending,
    ) -> std::result::Result<ProviderIdentity, OAuthFailure> {
        let p = &configured.provider;
        let metadata = self.metadata(configured, issuer).await.map_err(|e| {
            tracing::warn!(provider = p.name(), error = %e, "sign-in provider unavailable");
            OAuthFailure::ProviderUnavailable
        })?;
        let client = self
            .oidc_client(p, metadata)
            .map_err(|_| OAuthFailure::ProviderUnavailable)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| OAuthFailure::ProviderUnavailable)?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()));
        let http = self.oidc_http();
        let response = request.request_async(&http).await.map_err(|e| {
            tracing::info!(provider = p.name(), error = %e, "the provider refused the code");
            match e {
                openidconnect::RequestTokenError::Request(_) => OAuthFailure::ProviderUnavailable,
                _ => OAuthFailure::InvalidResponse,
            }
        })?;
        let id_token = response.id_token().ok_or_else(|| {
            tracing::info!(provider = p.name(), "the provider sent no ID token");
            OAuthFailure::InvalidResponse
        })?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce.clone()))
            .map_err(|e| {
                tracing::info!(provider = p.name(), error = %e, "ID token refused");
                OAuthFailure::InvalidResponse
            })?;
        let mut identity = ProviderIdentity::new(p.name(), claims.subject().as_str());
        if let Some(email) = claims.email() {
            identity =
                identity.with_email(email.as_str(), claims.email_verified().unwrap_or(false));
            return Ok(identity);
        }
        // No email in the ID token (providers that keep it small): ask the userinfo endpoint,
        // for this subject only.
        let Ok(request) = client.user_info(
            response.access_token().clone(),
            Some(claims.subject().clone()),
        ) else {
            return Ok(identity);
        };
        let info: openidconnect::core::CoreUserInfoClaims =
            request.request_async(&http).await.map_err(|e| {
                tracing::info!(provider = p.name(), error = %e, "userinfo refused");
                OAuthFailure::InvalidResponse
            })?;
        if let Some(email) = info.email() {
            identity = identity.with_email(email.as_str(), info.email_verified().unwrap_or(false));
        }
        Ok(identity)
    }

    pub(crate) async fn http_send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>> {
        self.http.send(request).await
    }

    /// A single-use code for what the provider vouched for, redeemed by
    /// [`redeem_code`](Self::redeem_code) within [`CODE_LIFETIME`]: what the callback hands to
    /// the application's page instead of tokens.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let oauth = auth_oauth::OAuth::new("https://a.example/auth/oauth", auth_service::ephemeral::MemoryCeremonyStore::new())?;
    /// let id = auth_service::ProviderIdentity::new("google", "1").with_email("a@example.com", true);
    /// let code = oauth.issue_code(&id, "the-browsers-binding").await?;
    /// // Another browser (another binding, or none) cannot redeem it, and that ends it.
    /// assert!(oauth.redeem_code(&code, Some("a-bystanders-binding")).await.is_err());
    /// let code = oauth.issue_code(&id, "the-browsers-binding").await?;
    /// assert_eq!(oauth.redeem_code(&code, Some("the-browsers-binding")).await?, id);
    /// assert!(oauth.redeem_code(&code, Some("the-browsers-binding")).await.is_err(), "once");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn issue_code(&self, identity: &ProviderIdentity, binding: &str) -> Result<String> {
        if binding.is_empty() {
            return Err(Error::TokenInvalid);
        }
        let code = random::token(32);
        let vouched = Vouched {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            email_verified: identity.email_verified,
            binding: sha(binding),
        };
        self.ceremonies
            .put(&CeremonyRecord::new(
                sha(&format!("oauth-code:{code}")),
                None,
                serde_json::to_string(&vouched)
                    .map_err(|e| Error::backend("storing a sign-in code", e))?,
                add_saturating(self.clock.now(), CODE_LIFETIME),
            ))
            .await?;
        Ok(code)
    }

    /// What a code stands for, once, for the browser that started the flow: `binding` must be
    /// the value of its binding cookie ([`Started::binding`]). A code presented by any other
    /// browser (a link sent to a victim: login CSRF) is refused, and spent.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, spent or expired code, or another browser's;
    /// [`Error::Backend`].
    pub async fn redeem_code(&self, code: &str, binding: Option<&str>) -> Result<ProviderIdentity> {
        if code.is_empty() || code.len() > MAX_TOKEN {
            return Err(Error::TokenInvalid);
        }
        let record = self
            .ceremonies
            .take(&sha(&format!("oauth-code:{code}")), self.clock.now())
            .await?
            .ok_or(Error::TokenInvalid)?;
        let v: Vouched = serde_json::from_str(&record.state).map_err(|_| Error::TokenInvalid)?;
        let bound = binding.is_some_and(|b| {
            !b.is_empty() && constant_time_eq(sha(b).as_bytes(), v.binding.as_bytes())
        });
        if !bound {
            tracing::info!(provider = %v.provider, "a sign-in code presented by another browser was refused");
            return Err(Error::TokenInvalid);
        }
        let mut identity = ProviderIdentity::new(v.provider, v.subject);
        if let Some(email) = v.email {
            identity = identity.with_email(email, v.email_verified);
        }
        Ok(identity)
    }
}
