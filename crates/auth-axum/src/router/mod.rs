//! The ready-made auth router, one module per concern: `state` (the routers' state, request
//! metadata, token answers, the fresh-login check), `cookie` (refresh cookie and CSRF guard),
//! `dto` (bodies), `routes` (the handlers); refusals are `crate::error::Rejection`.

pub(crate) mod activity;
mod api_keys;
mod cookie;
mod dto;
mod lifecycle;
#[cfg(feature = "oauth")]
mod oauth;
mod passkeys;
mod routes;
mod state;

use std::sync::Arc;
use std::time::Duration;

use auth_service::{AuthService, AuthUser};
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};

pub use self::cookie::RefreshCookie;
use self::cookie::csrf_guard;
pub use self::dto::MAX_BODY_BYTES;
#[cfg(any(feature = "mfa", feature = "onboarding"))]
pub(crate) use self::dto::{ApiJson, no_store};
use self::routes::{
    change_password, login, logout, logout_all, me, refresh, register, reset_confirm,
    reset_request, revoke_other_sessions, revoke_session, sessions, verify_confirm, verify_request,
};
pub(crate) use self::state::{Device, Meta, Options, RouterState};
use crate::client::TrustedProxies;

pub use auth_service::AUTH_TIME_CLAIM;

/// The auth routes, to mount under a prefix of your choice (`auth-server` uses `/auth`):
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /register` | `{email, password}` | 201 `{user_id, access_token, refresh_token, token_type, expires_in, refresh_expires_in}` |
/// | `POST /login` | `{email, password}` | 200 the same (or `{mfa_required, mfa_token}`, see [`AuthRouter::with_mfa`]) |
/// | `POST /refresh` | `{refresh_token}` | 200 the new pair |
/// | `GET /me` | Bearer | 200 `{id, email, is_verified, is_active, last_login}` |
/// | `POST /logout` | Bearer | 204 (the session ends) |
/// | `POST /logout-all` | Bearer | 200 `{sessions_ended}` |
/// | `GET /sessions` | Bearer | 200 `{sessions: [{id, current, created_at, last_used_at, expires_at, ip, user_agent}]}` (501 only for a token backend that keeps no sessions: JWTs over a revocation store that does not track them) |
/// | `DELETE /sessions/{id}` | Bearer, fresh | 204, or 404 when not one of the user's sessions |
/// | `POST /sessions/revoke-others` | Bearer, fresh | 200 `{sessions_ended}` (the current session stays) |
/// | `POST /account/secure` | Bearer, fresh, `{keep_passkeys, keep_identities}` | 200 `{sessions_ended, api_keys_revoked, passkeys_removed, identities_removed}`: "secure my account" (the current session stays); 422 `last_sign_in_method` when nothing would be left |
/// | `POST /password/change` | Bearer, fresh, `{current_password, new_password}` | 204; every other session ends |
/// | `POST /password/reset/request` | `{email}` | 202, whether or not the account exists (with [`AuthRouter::with_password_reset`]) |
/// | `POST /password/reset/confirm` | `{token, new_password}` | 204; every session ends |
/// | `POST /email/verify/request` | Bearer | 202 (with [`AuthRouter::with_email_verification`]) |
/// | `POST /email/verify/confirm` | `{token}` | 200 `{id, is_verified}` |
/// | `POST /email/change` | Bearer, `{new_email, password}` | 202 (with [`AuthRouter::with_email_change`]); `/email/change/confirm` `{token}` → 200 `{id, email, is_verified}`; `/email/change/cancel` `{token}` → 204 |
/// | `POST /magic-link/request` | `{email}` | 202 always (with [`AuthRouter::with_magic_link`]); `/magic-link/verify` `{token}` or `{email, code}` → the login answer |
/// | `POST /passkeys/register/options` | Bearer, fresh | 200 `{publicKey}` for `navigator.credentials.create` (with [`AuthService::with_passkeys`]) |
/// | `POST /passkeys/register` | Bearer, fresh, the credential (`id`, `rawId`, `type`, `response`) and `name?` | 201 `{id, name, created_at, last_used_at, backup_eligible, backed_up}` |
/// | `POST /passkeys/login/options` | `{email?}` or `{mfa_token}` | 200 `{challenge_id, publicKey, mediation?}` |
/// | `POST /passkeys/login` | `{challenge_id, credential, mfa_token?}` | 200 the login answer |
/// | `GET /passkeys` | Bearer | 200 `{passkeys: [...]}`; `PATCH /passkeys/{id}` `{name}` → 200; `DELETE /passkeys/{id}` (fresh) → 204, or 422 `last_sign_in_method` |
/// | `GET /activity` | Bearer, `?limit=&before=` | 200 `{entries: [{kind, time, ip, user_agent, detail, by_admin}]}`, newest first: the account's audit log (with [`AuthRouter::with_audit`]) |
///
/// Every request runs inside an [`auth_service::RequestContext`] with the client's address and
/// user agent, so the audit log records where each event came from.
///
/// "Fresh" routes need a token from a password entry within the fresh-authentication window
/// ([`AuthRouter::fresh_auth_window`], 15 minutes by default), else 403
/// `{"error": "reauthentication_required"}`: a stolen long-lived session cannot change the
/// password or end the owner's other sessions.
///
/// Errors follow [`ApiError`](crate::ApiError): every credential or token failure is the same 401. Bodies are
/// limited to [`MAX_BODY_BYTES`]; token responses carry `Cache-Control: no-store`.
///
/// ```
/// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let app: axum::Router = axum::Router::new().nest("/auth", auth_axum::auth_router(auth));
/// # let _ = app;
/// ```
pub fn auth_router<U: AuthUser>(auth: AuthService<U>) -> Router {
    AuthRouter::new(auth).build()
}

/// Builds the auth router with optional parts: [`auth_router`] is `AuthRouter::new(auth).build()`.
///
/// With [`with_mfa`](Self::with_mfa) (feature `mfa`), `POST /login` answers
/// `{mfa_required: true, mfa_token, expires_in}` (and no tokens) for users with a second
/// factor, and these routes join:
///
/// | route | body | answer |
/// |---|---|---|
/// | `POST /mfa/verify` | `{mfa_token, code}` (TOTP or recovery code) | 200 the token pair; 401 for a wrong or replayed code; 429 when locked |
/// | `GET /mfa` | Bearer | 200 `{enabled, pending, recovery_codes_left}` |
/// | `POST /mfa/totp/setup` | Bearer | 200 `{secret, otpauth_uri, qr_svg}` (pending until confirmed) |
/// | `POST /mfa/totp/confirm` | Bearer, `{code}` | 200 `{recovery_codes: [...]}` |
/// | `POST /mfa/totp/disable` | Bearer, fresh, `{code}` | 204 |
/// | `POST /mfa/recovery-codes` | Bearer, `{code}` | 200 `{recovery_codes: [...]}` (the old ones stop working) |
///
/// ```
/// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// let auth = AuthService::new(AuthConfig::builder().signing_secret("a-signing-secret-of-32-bytes-or-more!").build().unwrap(),
///     MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
/// let app: axum::Router = axum::Router::new().nest(
///     "/auth",
///     auth_axum::AuthRouter::new(auth.clone())
///         .with_password_reset(auth_service::PasswordResetService::new(auth.clone()).unwrap())
///         .with_email_verification(auth_service::EmailVerificationService::new(auth).unwrap())
///         .refresh_cookie(auth_axum::RefreshCookie::new().path("/auth"))
///         .fresh_auth_window(std::time::Duration::from_secs(300))
///         .build(),
/// );
/// # let _ = app;
/// ```
pub struct AuthRouter<U: AuthUser> {
    auth: AuthService<U>,
    #[cfg(feature = "mfa")]
    mfa: Option<auth_mfa::Mfa>,
    reset: Option<auth_service::PasswordResetService<U>>,
    verification: Option<auth_service::EmailVerificationService<U>>,
    audit: Option<Arc<dyn auth_service::AuditStore>>,
    email_change: bool,
    magic_link: bool,
    #[cfg(feature = "oauth")]
    oauth: Option<auth_oauth::OAuth>,
    options: Options,
}

impl<U: AuthUser> std::fmt::Debug for AuthRouter<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRouter")
            .field("options", &self.options)
            .field("password_reset", &self.reset.is_some())
            .field("email_verification", &self.verification.is_some())
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> AuthRouter<U> {
    /// The routes over `auth`.
    #[must_use]
    pub fn new(auth: AuthService<U>) -> Self {
        Self {
            auth,
            #[cfg(feature = "mfa")]
            mfa: None,
            reset: None,
            verification: None,
            audit: None,
            email_change: false,
            magic_link: false,
            #[cfg(feature = "oauth")]
            oauth: None,
            options: Options {
                mount: String::new(),
                cookie: None,
                proxies: TrustedProxies::none(),
                secure_cookies: true,
            },
        }
    }

    /// Adds the two-factor routes and the two-step login (feature `mfa`). Give the service the
    /// same `Mfa` as its second-factor gate ([`AuthService::with_second_factor`]).
    ///
    /// ```
    /// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
    /// use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
    /// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k1", &[1u8; 32]).unwrap(),
    ///     MfaConfig::new("Example")).unwrap();
    /// let auth = AuthService::new(AuthConfig::builder().signing_secret("a-signing-secret-of-32-bytes-or-more!").build().unwrap(),
    ///     MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_second_factor(mfa.clone());
    /// let router: axum::Router = auth_axum::AuthRouter::new(auth).with_mfa(mfa).build();
    /// # let _ = router;
    /// ```
    #[cfg(feature = "mfa")]
    #[must_use]
    pub fn with_mfa(mut self, mfa: auth_mfa::Mfa) -> Self {
        self.mfa = Some(mfa);
        self
    }

    /// Adds `POST /password/reset/request` and `/password/reset/confirm`. The link's token
    /// reaches your mailer through the `PasswordResetRequested` event.
    #[must_use]
    pub fn with_password_reset(mut self, reset: auth_service::PasswordResetService<U>) -> Self {
        self.reset = Some(reset);
        self
    }

    /// Adds `POST /email/verify/request` and `/email/verify/confirm`. The token reaches your
    /// mailer through the `EmailVerificationRequested` event.
    #[must_use]
    pub fn with_email_verification(
        mut self,
        verification: auth_service::EmailVerificationService<U>,
    ) -> Self {
        self.verification = Some(verification);
        self
    }

    /// Adds `GET /activity`: the caller's own entries of `audit` (logins and failures with
    /// address and user agent, password and factor changes), newest first. Install an
    /// [`auth_service::AuditLog`] on the service's events writing to the same store.
    ///
    /// ```
    /// # use auth_service::*;
    /// # use std::sync::Arc;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let audit = MemoryAuditStore::new();
    /// AuditLog::new(audit.clone()).install(auth.events());
    /// let app: axum::Router = axum::Router::new()
    ///     .nest("/auth", auth_axum::AuthRouter::new(auth).with_audit(Arc::new(audit)).build());
    /// # let _ = app;
    /// ```
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn auth_service::AuditStore>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Adds `POST /email/change` (Bearer, `{new_email, password}` → 202),
    /// `/email/change/confirm` (`{token}` → 200 `{id, email, is_verified}`) and
    /// `/email/change/cancel` (`{token}` → 204). The service needs a challenge store and a
    /// signing secret; the links reach your mailer through `EmailChangeRequested`.
    #[must_use]
    pub fn with_email_change(mut self) -> Self {
        self.email_change = true;
        self
    }

    /// Adds `POST /magic-link/request` (`{email}` → 202 `{status, flow}` always, and the flow
    /// in an HttpOnly cookie `auth_magic_flow`) and `/magic-link/verify` (`{token}` or
    /// `{email, code}`, with the flow from that cookie or `{flow}` in the body → the login
    /// answer: tokens, or the second factor's challenge). A link or code works only with the
    /// flow of the request that asked for it. The service needs a ceremony store and a signing
    /// secret; the link and code reach your mailer through `MagicLinkRequested`.
    #[must_use]
    pub fn with_magic_link(mut self) -> Self {
        self.magic_link = true;
        self
    }

    /// Whether the cookies this router sets besides the refresh cookie (the sign-in flow's)
    /// are `Secure` (the default; `false` only for plain-HTTP development).
    #[must_use]
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.options.secure_cookies = secure;
        self
    }

    /// Adds sign-in with OpenID Connect and OAuth 2.0 providers (feature `oauth`; the service
    /// needs `with_identities`):
    ///
    /// | route | body | answer |
    /// |---|---|---|
    /// | `GET /oauth/{provider}/start?redirect_to=` | | 302 to the provider (and an HttpOnly cookie binding the answer to this browser); 400 `{error}` for an unknown provider or a `redirect_to` off the allow-list |
    /// | `GET\|POST /oauth/{provider}/callback` | the provider's answer | 302 to `redirect_to` with `?code=` (single use, 60 s), `?linked={provider}`, or `?error=` (`access_denied`, `invalid_state`, `invalid_response`, `provider_unavailable`, `identity_in_use`) |
    /// | `POST /oauth/exchange` | `{code}` | 200 the login answer; 401 for a spent code; 409 `email_taken` when the address is an account's that cannot be linked silently (sign in, then link) |
    /// | `POST /oauth/{provider}/link/start` | Bearer, fresh, `{redirect_to}` | 200 `{url}` to open in this browser |
    /// | `GET /identities` | Bearer | 200 `{identities: [{id, provider, subject, email, created_at, last_used_at}]}` |
    /// | `DELETE /identities/{id}` | Bearer, fresh | 204, 404, 422 `last_sign_in_method` |
    #[cfg(feature = "oauth")]
    #[must_use]
    pub fn with_oauth(mut self, oauth: auth_oauth::OAuth) -> Self {
        self.oauth = Some(oauth);
        self
    }

    /// How recent a password entry the sensitive routes need (15 minutes by default): sets
    /// the window of this router's service (`AuthService::with_fresh_login_window`), which
    /// decides.
    #[must_use]
    pub fn fresh_auth_window(mut self, window: Duration) -> Self {
        self.auth = self.auth.with_fresh_login_window(window);
        self
    }

    /// Refresh tokens in an HttpOnly cookie, with CSRF checks (see [`RefreshCookie`]).
    #[must_use]
    pub fn refresh_cookie(mut self, cookie: RefreshCookie) -> Self {
        self.options.cookie = Some(cookie);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies only (see [`TrustedProxies`]). The
    /// client address goes into session metadata and the per-IP rate limiter; serve the app
    /// with `into_make_service_with_connect_info::<SocketAddr>()` so the peer is known.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.options.proxies = proxies;
        self
    }

    /// Where the router is mounted (`/auth`): the OpenAPI document's server URL.
    #[must_use]
    pub fn mounted_at(mut self, path: &str) -> Self {
        self.options.mount = path.trim_end_matches('/').to_owned();
        self
    }

    /// The OpenAPI 3.1 document of the routes this router serves (also at `GET
    /// /openapi.json`).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let doc = auth_axum::AuthRouter::new(auth).mounted_at("/auth").openapi();
    /// assert!(doc.paths.paths.contains_key("/login"));
    /// assert!(!doc.paths.paths.contains_key("/mfa/verify"));
    /// ```
    #[must_use]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        crate::openapi::openapi(&self.openapi_parts())
    }

    fn openapi_parts(&self) -> crate::openapi::Parts {
        crate::openapi::Parts {
            mount: self.options.mount.clone(),
            #[cfg(feature = "mfa")]
            mfa: self.mfa.is_some(),
            #[cfg(not(feature = "mfa"))]
            mfa: false,
            reset: self.reset.is_some(),
            verification: self.verification.is_some(),
            cookie: self.options.cookie.is_some(),
            audit: self.audit.is_some(),
            email_change: self.email_change,
            magic_link: self.magic_link,
            passkeys: self.auth.has_passkeys(),
            #[cfg(feature = "oauth")]
            oauth: self.oauth.is_some(),
            #[cfg(not(feature = "oauth"))]
            oauth: false,
        }
    }

    /// The router, to mount under a prefix with [`Router::nest`].
    pub fn build(self) -> Router {
        let document = Arc::new(crate::openapi::document(&self.openapi_parts()));
        let router = Router::new()
            .route("/register", post(register::<U>))
            .route("/login", post(login::<U>))
            .route("/refresh", post(refresh::<U>))
            .route("/me", get(me::<U>))
            .route("/verify", get(routes::verify::<U>))
            .route("/logout", post(logout::<U>))
            .route("/logout-all", post(logout_all::<U>))
            .route("/sessions", get(sessions::<U>))
            .route("/sessions/{id}", delete(revoke_session::<U>))
            .route("/sessions/revoke-others", post(revoke_other_sessions::<U>))
            .route("/account/secure", post(routes::secure_account::<U>))
            .route("/password/change", post(change_password::<U>))
            .route(
                "/api-keys",
                post(api_keys::create::<U>).get(api_keys::list::<U>),
            )
            .route("/api-keys/{id}", delete(api_keys::revoke::<U>))
            .route("/api-keys/{id}/roll", post(api_keys::roll::<U>))
            .route(
                "/openapi.json",
                get(move || {
                    let document = Arc::clone(&document);
                    async move { Json((*document).clone()) }
                }),
            );
        let router = if self.reset.is_some() {
            router
                .route("/password/reset/request", post(reset_request::<U>))
                .route("/password/reset/confirm", post(reset_confirm::<U>))
        } else {
            router
        };
        let router = if self.verification.is_some() {
            router
                .route("/email/verify/request", post(verify_request::<U>))
                .route("/email/verify/confirm", post(verify_confirm::<U>))
        } else {
            router
        };
        let router = if self.email_change {
            router
                .route("/email/change", post(lifecycle::email_change::<U>))
                .route(
                    "/email/change/confirm",
                    post(lifecycle::email_change_confirm::<U>),
                )
                .route(
                    "/email/change/cancel",
                    post(lifecycle::email_change_cancel::<U>),
                )
        } else {
            router
        };
        let router = if self.magic_link {
            router
                .route("/magic-link/request", post(lifecycle::magic_request::<U>))
                .route("/magic-link/verify", post(lifecycle::magic_verify::<U>))
        } else {
            router
        };
        let router = if self.auth.has_passkeys() {
            router
                .route(
                    "/passkeys/register/options",
                    post(passkeys::register_options::<U>),
                )
                .route("/passkeys/register", post(passkeys::register::<U>))
                .route(
                    "/passkeys/login/options",
                    post(passkeys::login_options::<U>),
                )
                .route("/passkeys/login", post(passkeys::login::<U>))
                .route("/passkeys", get(passkeys::list::<U>))
                .route(
                    "/passkeys/{id}",
                    patch(passkeys::rename::<U>).delete(passkeys::remove::<U>),
                )
        } else {
            router
        };
        #[cfg(feature = "oauth")]
        let router = if self.oauth.is_some() {
            router
                .route("/oauth/{provider}/start", get(oauth::start::<U>))
                .route(
                    "/oauth/{provider}/callback",
                    get(oauth::callback_get::<U>).post(oauth::callback_post::<U>),
                )
                .route("/oauth/{provider}/link/start", post(oauth::link_start::<U>))
                .route("/oauth/exchange", post(oauth::exchange::<U>))
                .route("/identities", get(oauth::identities::<U>))
                .route("/identities/{id}", delete(oauth::unlink::<U>))
        } else {
            router
        };
        let router = if self.audit.is_some() {
            router.route("/activity", get(activity::activity::<U>))
        } else {
            router
        };
        #[cfg(feature = "mfa")]
        let router = if self.mfa.is_some() {
            crate::mfa::routes::<U>(router)
        } else {
            router
        };
        let cookie = self.options.cookie.clone();
        let proxies = self.options.proxies.clone();
        let router = router
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(RouterState::new(state::RouterParts {
                auth: self.auth,
                #[cfg(feature = "mfa")]
                mfa: self.mfa,
                reset: self.reset,
                verification: self.verification,
                audit: self.audit,
                #[cfg(feature = "oauth")]
                oauth: self.oauth,
                options: Arc::new(self.options),
            }));
        let router = crate::client::with_request_context(router, proxies);
        match cookie {
            Some(cookie) => {
                let cookie = Arc::new(cookie);
                router.layer(axum::middleware::from_fn(move |req, next| {
                    csrf_guard(Arc::clone(&cookie), req, next)
                }))
            }
            None => router,
        }
    }
}
