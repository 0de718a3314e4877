//! `AuthService`: the one orchestrator. Every flow that checks a credential or changes a
//! session is a method here, written only against traits, so every entry point (router, Basic,
//! second factor, onboarding, reset links, CLI) inherits the same throttle, timing equality,
//! gates and events. One module per flow:
//!
//! - `login`: password, second-factor challenge, session start;
//! - `account`: sign-up (throttled per client), onboarding accounts, email confirmation;
//! - `password`: policy, the one compare-and-set password replace (set, change, reset);
//! - `session`: authenticate, refresh, logout, revoke;
//! - `throttle`: namespaced limiter keys and attempts reserved before the work;
//! - `admin`: what an operator does to an account (list, status, unlock, reset the second
//!   factor, delete).

mod account;
mod admin;
mod api_keys;
mod devices;
mod email_change;
mod fresh;
mod gate;
mod identity;
mod links;
mod login;
mod magic_link;
mod ownership;
mod passkey;
pub use passkey::MAX_PASSKEY_NAME;
mod password;
mod session;
mod throttle;
mod ways_in;

pub use admin::AccountStatus;
pub use api_keys::{ApiKeyAuth, IssuedApiKey, NewApiKey};
pub use fresh::{AUTH_TIME_CLAIM, DEFAULT_FRESH_LOGIN_WINDOW, SignedIn};
pub use gate::{Challenge, LoginOutcome, SecondFactorGate};
pub use magic_link::{MAGIC_CODE_GUESSES, MAGIC_LINK_LIFETIME};
pub use ownership::{AddressProof, ClaimReport};
pub use throttle::{Grant, Throttle, client_bucket, redact_identifier};

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::AuthConfig;
use crate::{Error, Result};
use crate::{SharedClock, SystemClock};
use std::time::Duration;

use crate::EventBus;
use crate::user_cache::{CachingUserStore, UserCache};
use crate::{AuthUser, User, UserId, UserStore, normalize_email};
use crate::{
    Claims, ExtraClaims, RefreshGuard, SessionMeta, TokenBackend, TokenPair, TokenUserLookup,
};
use crate::{MemoryRateLimiter, RateLimitPolicy, RateLimiter};
use crate::{PasswordHasher, PasswordHashing};

/// A successful login: the user and their tokens. `Debug` redacts the tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthResult<U> {
    /// The user who logged in.
    pub user: U,
    /// Their new token pair.
    pub tokens: TokenPair,
    /// The credential of the device trusted at this sign-in
    /// ([`LoginOptions::trusting_this_device`]), to keep in the client (a cookie); `None`
    /// otherwise. Redacted in `Debug`.
    pub trusted_device: Option<crate::SecretString>,
}

impl<U> AuthResult<U> {
    /// The access token.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("a@example.com", "violet-otter-sings-42").await?;
    /// let result = auth.login("a@example.com", "violet-otter-sings-42").await?;
    /// assert!(!result.access_token().is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn access_token(&self) -> &str {
        self.tokens.access_token.expose_secret()
    }

    /// The refresh token.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("a@example.com", "violet-otter-sings-42").await?;
    /// let result = auth.login("a@example.com", "violet-otter-sings-42").await?;
    /// assert_ne!(result.refresh_token(), result.access_token());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn refresh_token(&self) -> &str {
        self.tokens.refresh_token.expose_secret()
    }
}

/// Options for one login: claims to embed and where the client is.
///
/// ```
/// use auth_service::{LoginOptions, SessionMeta};
/// let mut extra = serde_json::Map::new();
/// extra.insert("tenant".into(), "acme".into());
/// let opts = LoginOptions::new().with_extra(extra).with_meta(SessionMeta::new().with_user_agent("app/1.0"));
/// assert_eq!(opts.extra.len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoginOptions {
    /// Extra claims for the tokens (they survive refresh).
    pub extra: ExtraClaims,
    /// Client metadata for the session list.
    pub meta: SessionMeta,
    /// The trusted-device credential the client presented (its cookie), if any.
    pub device: Option<crate::SecretString>,
    /// Trust this device after the second factor of this sign-in.
    pub trust_device: bool,
}

impl LoginOptions {
    /// No extras, no metadata.
    ///
    /// ```
    /// assert!(auth_service::LoginOptions::new().extra.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets extra claims.
    ///
    /// ```
    /// # use auth_service::LoginOptions;
    /// assert!(LoginOptions::new().with_extra(serde_json::Map::new()).extra.is_empty());
    /// ```
    #[must_use]
    pub fn with_extra(mut self, extra: ExtraClaims) -> Self {
        self.extra = extra;
        self
    }

    /// Sets client metadata.
    ///
    /// ```
    /// # use auth_service::{LoginOptions, SessionMeta};
    /// assert!(LoginOptions::new().with_meta(SessionMeta::new().with_user_agent("x")).meta.user_agent.is_some());
    /// ```
    #[must_use]
    pub fn with_meta(mut self, meta: SessionMeta) -> Self {
        self.meta = meta;
        self
    }

    /// The trusted-device credential the client presented: with trusted devices on
    /// ([`AuthService::with_trusted_devices`]), a live credential of the signing-in account
    /// skips its second factor.
    ///
    /// ```
    /// # use auth_service::LoginOptions;
    /// assert!(LoginOptions::new().with_device(Some("credential".into())).device.is_some());
    /// ```
    #[must_use]
    pub fn with_device(mut self, device: Option<String>) -> Self {
        self.device = device.map(crate::SecretString::new);
        self
    }

    /// Asks [`AuthService::complete_sign_in`] to trust this device once the second factor is
    /// answered: the result then carries [`AuthResult::trusted_device`].
    ///
    /// ```
    /// # use auth_service::LoginOptions;
    /// assert!(LoginOptions::new().trusting_this_device().trust_device);
    /// ```
    #[must_use]
    pub fn trusting_this_device(mut self) -> Self {
        self.trust_device = true;
        self
    }
}

/// The service's parts, for backend implementers, migrations and administrative tools that
/// must reach a store directly. Everything done through them bypasses the service's rules
/// (throttle, gates, events, revocation): an application's flows use the service's methods.
#[non_exhaustive]
pub struct ServiceParts<'a, U: AuthUser> {
    /// The user store.
    pub users: &'a Arc<dyn UserStore<User = U>>,
    /// The token backend.
    pub tokens: &'a Arc<dyn TokenBackend>,
    /// The password hashing wrapper (off-runtime, bounded).
    pub hashing: &'a PasswordHashing,
    /// The login rate limiter.
    pub limiter: &'a Arc<dyn RateLimiter>,
}

impl<U: AuthUser> fmt::Debug for ServiceParts<'_, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceParts")
            .field("hashing", self.hashing)
            .finish_non_exhaustive()
    }
}

/// Authentication flows over pluggable parts: a [`UserStore`], a [`PasswordHasher`], a
/// [`TokenBackend`], a [`RateLimiter`] (in memory by default), an [`EventBus`] and a
/// [`crate::Clock`].
///
/// Cheap to clone, `Send + Sync`, usable as axum state. Several differently configured services
/// can live in one process: there is no global state.
///
/// ```
/// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
/// use auth_testkit::TestHasher;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let auth = AuthService::new(
///     AuthConfig::default(),
///     MemoryUserStore::new(),
///     TestHasher::fast(), // use auth_hash::Argon2Hasher in production
///     MemoryTokenBackend::new(),
/// )?;
/// let user = auth.register("alice@example.com", "SecurePass123!").await?;
/// let login = auth.login("ALICE@example.com", "SecurePass123!").await?;
/// let me = auth.authenticate(login.access_token()).await?;
/// assert_eq!(me.id, user.id);
/// let next = auth.refresh(login.refresh_token()).await?;
/// auth.logout(next.access_token.expose_secret()).await?;
/// assert!(auth.authenticate(next.access_token.expose_secret()).await.is_err());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
pub struct AuthService<U: AuthUser = User> {
    /// Everything, behind one reference count: a clone (axum clones its state for every
    /// request) is one atomic increment, not one per part.
    parts: Arc<Parts<U>>,
}

/// What an [`AuthService`] holds. Reached through `Deref`; builders change it through
/// `DerefMut`, which copies it first only if it is shared (never, while building). Public only
/// because `Deref` names it; it cannot be named or used outside this crate.
#[allow(unreachable_pub)]
pub struct Parts<U: AuthUser> {
    config: Arc<AuthConfig>,
    users: Arc<dyn UserStore<User = U>>,
    hashing: PasswordHashing,
    tokens: Arc<dyn TokenBackend>,
    limiter: Arc<dyn RateLimiter>,
    /// Whether `limiter` is the in-memory default (which then follows `with_clock`).
    default_limiter: bool,
    ip_limiter: Option<Arc<dyn RateLimiter>>,
    /// Successful logins per client address (`with_login_rate_limiter`).
    login_limiter: Option<Arc<dyn RateLimiter>>,
    signup_limiter: Arc<dyn RateLimiter>,
    /// Whether `signup_limiter` is the in-memory default (which then follows `with_clock`).
    default_signup_limiter: bool,
    mail_limiter: Arc<dyn RateLimiter>,
    /// Whether `mail_limiter` is the in-memory default (which then follows `with_clock`).
    default_mail_limiter: bool,
    ceremonies: Option<Arc<dyn crate::ephemeral::CeremonyStore>>,
    second_factor: Option<Arc<dyn SecondFactorGate>>,
    lookup: Option<Arc<dyn TokenUserLookup<U>>>,
    user_cache: Option<UserCache<U>>,
    /// The store under the cache's wrapper (the same as `users` without a cache).
    uncached_users: Arc<dyn UserStore<User = U>>,
    events: EventBus,
    clock: SharedClock,
    api_keys: Option<api_keys::ApiKeys>,
    challenges: Option<Arc<dyn crate::ephemeral::ChallengeStore>>,
    passkeys: Option<Arc<dyn crate::PasskeyBackend>>,
    identities: Option<Arc<dyn crate::IdentityStore>>,
    grants: Arc<dyn crate::GrantStore>,
    /// Roles given to an address when its owner proves it ([`AuthService::with_role_on_proof`]).
    proof_grants: Arc<std::collections::BTreeMap<String, crate::Role>>,
    /// Trusted devices and how long a trust lasts ([`AuthService::with_trusted_devices`]).
    devices: Option<(Arc<dyn crate::TrustedDeviceStore>, std::time::Duration)>,
    /// How recent a sign-in the sensitive actions need ([`AuthService::with_fresh_login_window`]).
    fresh_window: std::time::Duration,
}

impl<U: AuthUser> Clone for AuthService<U> {
    fn clone(&self) -> Self {
        Self {
            parts: Arc::clone(&self.parts),
        }
    }
}

impl<U: AuthUser> std::ops::Deref for AuthService<U> {
    type Target = Parts<U>;

    fn deref(&self) -> &Parts<U> {
        &self.parts
    }
}

impl<U: AuthUser> std::ops::DerefMut for AuthService<U> {
    fn deref_mut(&mut self) -> &mut Parts<U> {
        Arc::make_mut(&mut self.parts)
    }
}

impl<U: AuthUser> Clone for Parts<U> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            users: Arc::clone(&self.users),
            hashing: self.hashing.clone(),
            tokens: Arc::clone(&self.tokens),
            limiter: Arc::clone(&self.limiter),
            default_limiter: self.default_limiter,
            ip_limiter: self.ip_limiter.clone(),
            login_limiter: self.login_limiter.clone(),
            signup_limiter: Arc::clone(&self.signup_limiter),
            default_signup_limiter: self.default_signup_limiter,
            mail_limiter: Arc::clone(&self.mail_limiter),
            default_mail_limiter: self.default_mail_limiter,
            ceremonies: self.ceremonies.clone(),
            second_factor: self.second_factor.clone(),
            lookup: self.lookup.clone(),
            user_cache: self.user_cache.clone(),
            uncached_users: Arc::clone(&self.uncached_users),
            events: self.events.clone(),
            clock: Arc::clone(&self.clock),
            api_keys: self.api_keys.clone(),
            challenges: self.challenges.clone(),
            passkeys: self.passkeys.clone(),
            identities: self.identities.clone(),
            grants: Arc::clone(&self.grants),
            proof_grants: Arc::clone(&self.proof_grants),
            devices: self.devices.clone(),
            fresh_window: self.fresh_window,
        }
    }
}

impl<U: AuthUser> fmt::Debug for AuthService<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("config", &self.config)
            .field("hashing", &self.hashing)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> AuthService<U> {
    /// A service from its required parts. Hashes one dummy password to prepare timing
    /// equality, so build it once at startup. Logins are rate limited in memory with
    /// `config.rate_limit()` unless [`with_rate_limiter`](Self::with_rate_limiter) says otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the hasher cannot hash.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let _clone = auth.clone();
    /// ```
    pub fn new(
        config: AuthConfig,
        users: impl UserStore<User = U>,
        hasher: impl PasswordHasher,
        tokens: impl TokenBackend,
    ) -> Result<Self> {
        Self::from_parts(config, Arc::new(users), Arc::new(hasher), Arc::new(tokens))
    }

    /// Like [`new`](Self::new), from parts already shared (for example a token backend also
    /// used elsewhere).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the hasher cannot hash.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_service::*;
    /// let tokens: Arc<dyn TokenBackend> = Arc::new(MemoryTokenBackend::new());
    /// let auth = AuthService::<User>::from_parts(AuthConfig::default(), Arc::new(MemoryUserStore::new()),
    ///     Arc::new(auth_testkit::TestHasher::fast()), Arc::clone(&tokens)).unwrap();
    /// # let _ = auth;
    /// ```
    pub fn from_parts(
        config: AuthConfig,
        users: Arc<dyn UserStore<User = U>>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenBackend>,
    ) -> Result<Self> {
        let mut hashing = PasswordHashing::from_arc(hasher)?
            .with_max_password_length(config.max_password_length());
        if let Some(n) = config.hash_concurrency() {
            hashing = hashing.with_concurrency(n);
        }
        let clock: SharedClock = Arc::new(SystemClock);
        let parts = Parts {
            uncached_users: Arc::clone(&users),
            limiter: Arc::new(MemoryRateLimiter::new(config.rate_limit())),
            config: Arc::new(config),
            users,
            hashing,
            tokens,
            default_limiter: true,
            ip_limiter: None,
            login_limiter: None,
            signup_limiter: Arc::new(MemoryRateLimiter::new(RateLimitPolicy::SIGNUP)),
            default_signup_limiter: true,
            mail_limiter: Arc::new(MemoryRateLimiter::new(RateLimitPolicy::MAIL)),
            default_mail_limiter: true,
            ceremonies: None,
            second_factor: None,
            lookup: None,
            user_cache: None,
            events: EventBus::new(),
            clock,
            api_keys: None,
            challenges: None,
            passkeys: None,
            identities: None,
            grants: Arc::new(crate::MemoryGrantStore::new()),
            proof_grants: Arc::default(),
            devices: None,
            fresh_window: DEFAULT_FRESH_LOGIN_WINDOW,
        };
        Ok(Self {
            parts: Arc::new(parts),
        })
    }

    /// Uses another rate limiter (a SQL or Redis one, shared by all instances).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_rate_limiter(MemoryRateLimiter::new(RateLimitPolicy::default()));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.limiter = Arc::new(limiter);
        self.default_limiter = false;
        self
    }

    /// Also limits failed logins per client IP address (taken from
    /// [`LoginOptions::meta`]), with its own policy: one address trying many accounts is
    /// locked out like one account tried many times. A success does not reset an address's
    /// count, so one valid account cannot launder an attack on others.
    ///
    /// ```
    /// # use auth_service::*;
    /// # use std::time::Duration;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_ip_rate_limiter(MemoryRateLimiter::new(
    ///         RateLimitPolicy::new(50, Duration::from_secs(300), Duration::from_secs(900)).unwrap()));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_ip_rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.ip_limiter = Some(Arc::new(limiter));
        self
    }

    /// Counts sign-ups per client address (`signup:` keys, from the metadata given to
    /// [`register_with`](Self::register_with)) in `limiter` instead of in memory with
    /// [`RateLimitPolicy::SIGNUP`]. Every sign-up counts, successful or not: each costs a
    /// password hash and says whether an address is taken.
    ///
    /// ```
    /// # use auth_service::*;
    /// # use std::time::Duration;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_signup_rate_limiter(MemoryRateLimiter::new(
    ///         RateLimitPolicy::new(3, Duration::from_secs(3600), Duration::from_secs(3600)).unwrap()));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_signup_rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.signup_limiter = Arc::new(limiter);
        self.default_signup_limiter = false;
        self
    }

    /// Bounds the queue in front of the password hasher ([`PasswordHashing::with_queue`]): at
    /// most `max_waiting` callers wait, one client address holds at most `per_client` places
    /// (waiting or running), nobody waits longer than `max_wait`; past that a login, sign-up or
    /// password change fails at once with [`Error::Overloaded`] (HTTP 503 + `Retry-After`), and
    /// a refused login gives its throttle attempt back. auth-server turns it on
    /// (`AUTH_HASH_QUEUE*`).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_hash_queue(8, 2, std::time::Duration::from_secs(5));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_hash_queue(
        mut self,
        max_waiting: usize,
        per_client: usize,
        max_wait: Duration,
    ) -> Self {
        self.hashing = self
            .hashing
            .clone()
            .with_queue(max_waiting, per_client, max_wait);
        self
    }

    /// Counts successful logins per client address (`ok:` keys, across accounts) in `limiter`
    /// ([`RateLimitPolicy::LOGINS`] is a generous policy): a client past it is refused (429)
    /// before any password is checked. Failures are the per-address limiter's
    /// ([`with_ip_rate_limiter`](Self::with_ip_rate_limiter)).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_login_rate_limiter(MemoryRateLimiter::new(
    ///         RateLimitPolicy::new(2, std::time::Duration::from_secs(60), std::time::Duration::from_secs(60))?));
    /// auth.register("lo@example.com", "violet-otter-sings-42").await?;
    /// let from = LoginOptions::new().with_meta(SessionMeta::new().with_ip("203.0.113.4".parse().unwrap()));
    /// for _ in 0..2 { auth.login_with("lo@example.com", "violet-otter-sings-42", from.clone()).await?; }
    /// assert!(matches!(auth.login_with("lo@example.com", "violet-otter-sings-42", from).await, Err(Error::RateLimited { .. })));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_login_rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.login_limiter = Some(Arc::new(limiter));
        self
    }

    /// Counts the mail a client makes the service send (sign-in links, resets, verifications,
    /// email changes; `mail:` keys per client address, across the addresses mailed) in
    /// `limiter` instead of in memory with [`RateLimitPolicy::MAIL`].
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_mail_rate_limiter(MemoryRateLimiter::new(RateLimitPolicy::MAIL));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_mail_rate_limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.mail_limiter = Arc::new(limiter);
        self.default_mail_limiter = false;
        self
    }

    /// Keeps short-lived single-use records that are replaced by the next request for the same
    /// address (sign-in links and codes) in `store`: memory, SQL
    /// (`auth_webauthn::db::DbCeremonyStore`) or Redis (`auth_redis::RedisCeremonyStore`),
    /// shared by every instance.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_ceremony_store(ephemeral::MemoryCeremonyStore::new());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_ceremony_store(mut self, store: impl crate::ephemeral::CeremonyStore) -> Self {
        self.ceremonies = Some(Arc::new(store));
        self
    }

    /// Makes [`login`](Self::login) refuse, with [`Error::MfaRequired`], accounts that `gate`
    /// says have a second factor: no tokens are issued on a password alone. auth-mfa's `Mfa`
    /// is such a gate and runs the two-step login.
    ///
    /// ```
    /// # use auth_service::*;
    /// struct Everyone;
    /// #[async_trait]
    /// impl SecondFactorGate for Everyone {
    ///     async fn is_required(&self, _user: &UserId) -> Result<bool> { Ok(true) }
    /// }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_second_factor(Everyone);
    /// auth.register("fay@example.com", "violet-otter-sings-42").await?;
    /// let err = auth.login("fay@example.com", "violet-otter-sings-42").await.unwrap_err();
    /// assert!(matches!(err, Error::MfaRequired));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_second_factor(mut self, gate: impl SecondFactorGate) -> Self {
        self.second_factor = Some(Arc::new(gate));
        self
    }

    /// Authenticates with one round trip through `lookup` (a backend that joins tokens with
    /// users, such as `auth_tokens_db::DbTokenBackend`) instead of verifying the token and then
    /// loading the user. Give the same storage as the token backend.
    ///
    /// ```
    /// # use auth_service::*;
    /// struct Lookup(MemoryTokenBackend, MemoryUserStore);
    /// #[async_trait]
    /// impl TokenUserLookup<User> for Lookup {
    ///     async fn authenticate(&self, token: &str) -> Result<(Claims, User)> {
    ///         let claims = self.0.verify(token, TokenKind::Access).await?;
    ///         let user = self.1.find_by_id(&claims.user_id()).await?.ok_or(Error::TokenInvalid)?;
    ///         Ok((claims, user))
    ///     }
    /// }
    /// let (tokens, users) = (MemoryTokenBackend::new(), MemoryUserStore::new());
    /// let auth = AuthService::new(AuthConfig::default(), users.clone(),
    ///     auth_testkit::TestHasher::fast(), tokens.clone()).unwrap()
    ///     .with_token_user_lookup(Lookup(tokens, users));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_token_user_lookup(mut self, lookup: impl TokenUserLookup<U>) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// Serves [`authenticate`](Self::authenticate) and refresh's user check from `cache`
    /// instead of a user query per request. Every change to a user made through this service
    /// (or its [`parts`](Self::parts)) invalidates the user in the cache and, through the
    /// cache's feed, on every instance; flows that check a credential still read the store.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_user_cache(UserCache::new(LocalFeed::new()).with_capacity(50_000));
    /// assert_eq!(auth.user_cache().unwrap().status().capacity, 50_000);
    /// ```
    #[must_use]
    pub fn with_user_cache(mut self, cache: UserCache<U>) -> Self {
        let inner = match &self.user_cache {
            // Replacing a cache: wrap the original store, not the previous wrapper.
            Some(_) => Arc::clone(&self.uncached_users),
            None => Arc::clone(&self.users),
        };
        self.uncached_users = Arc::clone(&inner);
        self.users = Arc::new(CachingUserStore {
            inner,
            cache: cache.clone(),
        });
        self.user_cache = Some(cache);
        self
    }

    /// The user cache, if one is set.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth.user_cache().is_none());
    /// ```
    #[must_use]
    pub fn user_cache(&self) -> Option<&UserCache<U>> {
        self.user_cache.as_ref()
    }

    /// Keeps the single-use records of email changes and sign-in links in `store` (in memory,
    /// SQL through auth-mfa's `DbMfaStore`, or Redis): what makes each link work once and
    /// lets a pending email change be cancelled. Those flows answer [`Error::Unsupported`]
    /// without one.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_challenge_store(auth_service::ephemeral::MemoryChallengeStore::new());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_challenge_store(mut self, store: impl crate::ephemeral::ChallengeStore) -> Self {
        self.challenges = Some(Arc::new(store));
        self
    }

    /// Emits events on `events` (share one bus between services to share handlers).
    ///
    /// ```
    /// # use auth_service::*;
    /// let bus = EventBus::new();
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_events(bus.clone());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_events(mut self, events: EventBus) -> Self {
        self.events = events;
        self
    }

    /// Reads time (for `last_login` and revocation instants) from `clock`. Stores and backends
    /// take their own clock: give them clones of the same [`crate::FixedClock`] in tests.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_clock(FixedClock::from_unix(1_700_000_000));
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        if self.default_limiter {
            self.limiter = Arc::new(
                MemoryRateLimiter::new(self.config.rate_limit())
                    .with_clock(Arc::clone(&self.clock)),
            );
        }
        if self.default_signup_limiter {
            self.signup_limiter = Arc::new(
                MemoryRateLimiter::new(RateLimitPolicy::SIGNUP).with_clock(Arc::clone(&self.clock)),
            );
        }
        if self.default_mail_limiter {
            self.mail_limiter = Arc::new(
                MemoryRateLimiter::new(RateLimitPolicy::MAIL).with_clock(Arc::clone(&self.clock)),
            );
        }
        self
    }

    /// The configuration.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert_eq!(auth.config().lifetimes().access().as_secs(), 900);
    /// ```
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The event bus, to register handlers.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// auth.events().on_fn(AuthEventKind::UserLogin, |_e| async { Ok(()) });
    /// ```
    #[must_use]
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The user with this id, if any (a read: no rule applies). It reads the store itself,
    /// never the [user cache](Self::with_user_cache): what it returns reflects every change
    /// already made, on any instance, so decisions taken on it (a gate on a write route, an
    /// onboarding step) never act on a copy an invalidation has not reached yet.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("ada@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.find_user(&user.id).await?.unwrap().email, "ada@example.com");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn find_user(&self, id: &UserId) -> Result<Option<U>> {
        self.uncached_users.find_by_id(id).await
    }

    /// The user with this email (canonicalised first), if any; read from the store, as
    /// [`find_user`](Self::find_user).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a value that is not an address; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("ada@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.find_user_by_email(" ADA@example.com").await?.is_some());
    /// assert!(auth.find_user_by_email("nobody@example.com").await?.is_none());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<U>> {
        self.uncached_users
            .find_by_email(&normalize_email(email)?)
            .await
    }

    /// The parts this service was built from, for backend implementers and administrative
    /// tools. What is done through them bypasses every rule of the service.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert_eq!(auth.parts().hashing.max_password_length(), 4096);
    /// ```
    #[must_use]
    pub fn parts(&self) -> ServiceParts<'_, U> {
        ServiceParts {
            users: &self.users,
            tokens: &self.tokens,
            hashing: &self.hashing,
            limiter: &self.limiter,
        }
    }

    /// The clock this service reads.
    ///
    /// ```
    /// # use auth_service::*;
    /// let clock = FixedClock::from_unix(1_800_000_000);
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap().with_clock(clock);
    /// assert_eq!(auth.clock().now().unix_timestamp(), 1_800_000_000);
    /// ```
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

/// Loads the token's user (from the cache when there is one) and refuses missing or inactive
/// ones.
async fn active_user<U: AuthUser>(
    users: &dyn UserStore<User = U>,
    cache: Option<&UserCache<U>>,
    claims: &Claims,
) -> Result<U> {
    active_user_by_id(users, cache, &claims.user_id()).await
}

/// The user `id` if it exists and is active (from the cache when there is one).
async fn active_user_by_id<U: AuthUser>(
    users: &dyn UserStore<User = U>,
    cache: Option<&UserCache<U>>,
    id: &UserId,
) -> Result<U> {
    let user = match cache {
        Some(cache) => cache.load(users, id).await?,
        None => users.find_by_id(id).await?,
    };
    match user {
        None => Err(Error::TokenInvalid),
        Some(u) if !u.is_active() => Err(Error::InactiveUser),
        Some(u) => Ok(u),
    }
}

struct ActiveUserGuard<'a, U: AuthUser> {
    users: &'a dyn UserStore<User = U>,
    cache: Option<&'a UserCache<U>>,
}

#[async_trait]
impl<U: AuthUser> RefreshGuard for ActiveUserGuard<'_, U> {
    async fn allow(&self, claims: &Claims) -> Result<()> {
        active_user(self.users, self.cache, claims)
            .await
            .map(|_| ())
    }
}
