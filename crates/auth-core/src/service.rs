//! `AuthService`: registration, login, tokens, logout and passwords, written only against traits.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::{SharedClock, SystemClock};
use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::events::{AuthEvent, EventBus, LoginFailureReason};
use crate::password::{
    PasswordContext, PasswordHasher, PasswordHashing, is_password_usable, make_unusable_password,
};
use crate::rate_limit::{MemoryRateLimiter, RateLimitStatus, RateLimiter};
use crate::token::{
    Claims, ExtraClaims, IssueRequest, RefreshGuard, RotateOutcome, RotateRequest, SessionInfo,
    SessionMeta, TokenBackend, TokenKind, TokenPair, TokenUserLookup,
};
use crate::user::{AuthUser, NewUser, User, UserId, UserStore, normalize_email};

/// A successful login: the user and their tokens. `Debug` redacts the tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthResult<U> {
    /// The user who logged in.
    pub user: U,
    /// Their new token pair.
    pub tokens: TokenPair,
}

impl<U> AuthResult<U> {
    /// The access token.
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("a@example.com", "violet-otter-sings-42").await?;
    /// let result = auth.login("a@example.com", "violet-otter-sings-42").await?;
    /// assert!(!result.access_token().is_empty());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn access_token(&self) -> &str {
        self.tokens.access_token.expose_secret()
    }

    /// The refresh token.
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("a@example.com", "violet-otter-sings-42").await?;
    /// let result = auth.login("a@example.com", "violet-otter-sings-42").await?;
    /// assert_ne!(result.refresh_token(), result.access_token());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn refresh_token(&self) -> &str {
        self.tokens.refresh_token.expose_secret()
    }
}

/// Options for one login: claims to embed and where the client is.
///
/// ```
/// use auth_core::{LoginOptions, SessionMeta};
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
}

impl LoginOptions {
    /// No extras, no metadata.
    ///
    /// ```
    /// assert!(auth_core::LoginOptions::new().extra.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets extra claims.
    ///
    /// ```
    /// # use auth_core::LoginOptions;
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
    /// # use auth_core::{LoginOptions, SessionMeta};
    /// assert!(LoginOptions::new().with_meta(SessionMeta::new().with_user_agent("x")).meta.user_agent.is_some());
    /// ```
    #[must_use]
    pub fn with_meta(mut self, meta: SessionMeta) -> Self {
        self.meta = meta;
        self
    }
}

/// Says whether an account must present a second factor after its password. Set with
/// [`AuthService::with_second_factor`]; auth-mfa's `Mfa` implements it from its store.
///
/// ```
/// use auth_core::{async_trait, Result, SecondFactorGate, UserId};
/// struct AdminsOnly;
/// #[async_trait]
/// impl SecondFactorGate for AdminsOnly {
///     async fn is_required(&self, user: &UserId) -> Result<bool> {
///         Ok(user.as_str() == "1")
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(AdminsOnly.is_required(&UserId::new("1")).await?);
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait SecondFactorGate: Send + Sync + 'static {
    /// Whether `user` has a second factor that login must ask for.
    async fn is_required(&self, user: &UserId) -> Result<bool>;
}

#[async_trait]
impl<T: SecondFactorGate + ?Sized> SecondFactorGate for Arc<T> {
    async fn is_required(&self, user: &UserId) -> Result<bool> {
        (**self).is_required(user).await
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
/// use auth_core::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
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
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
pub struct AuthService<U: AuthUser = User> {
    config: Arc<AuthConfig>,
    users: Arc<dyn UserStore<User = U>>,
    hashing: PasswordHashing,
    tokens: Arc<dyn TokenBackend>,
    limiter: Arc<dyn RateLimiter>,
    /// Whether `limiter` is the in-memory default (which then follows `with_clock`).
    default_limiter: bool,
    ip_limiter: Option<Arc<dyn RateLimiter>>,
    second_factor: Option<Arc<dyn SecondFactorGate>>,
    lookup: Option<Arc<dyn TokenUserLookup<U>>>,
    events: EventBus,
    clock: SharedClock,
}

impl<U: AuthUser> Clone for AuthService<U> {
    fn clone(&self) -> Self {
        Self {
            config: Arc::clone(&self.config),
            users: Arc::clone(&self.users),
            hashing: self.hashing.clone(),
            tokens: Arc::clone(&self.tokens),
            limiter: Arc::clone(&self.limiter),
            default_limiter: self.default_limiter,
            ip_limiter: self.ip_limiter.clone(),
            second_factor: self.second_factor.clone(),
            lookup: self.lookup.clone(),
            events: self.events.clone(),
            clock: Arc::clone(&self.clock),
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
    /// # use auth_core::*;
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
    /// # use auth_core::*;
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
        Ok(Self {
            limiter: Arc::new(MemoryRateLimiter::new(config.rate_limit())),
            config: Arc::new(config),
            users,
            hashing,
            tokens,
            default_limiter: true,
            ip_limiter: None,
            second_factor: None,
            lookup: None,
            events: EventBus::new(),
            clock,
        })
    }

    /// Uses another rate limiter (a SQL or Redis one, shared by all instances).
    ///
    /// ```
    /// # use auth_core::*;
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
    /// # use auth_core::*;
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

    /// Makes [`login`](Self::login) refuse, with [`Error::MfaRequired`], accounts that `gate`
    /// says have a second factor: no tokens are issued on a password alone. auth-mfa's `Mfa`
    /// is such a gate and runs the two-step login.
    ///
    /// ```
    /// # use auth_core::*;
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
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
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
    /// # use auth_core::*;
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

    /// Emits events on `events` (share one bus between services to share handlers).
    ///
    /// ```
    /// # use auth_core::*;
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
    /// # use auth_core::*;
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
        self
    }

    /// The configuration.
    ///
    /// ```
    /// # use auth_core::*;
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
    /// # use auth_core::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// auth.events().on_fn(AuthEventKind::UserLogin, |_e| async { Ok(()) });
    /// ```
    #[must_use]
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The user store.
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.users().find_by_email("nobody@example.com").await?.is_none());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn users(&self) -> &Arc<dyn UserStore<User = U>> {
        &self.users
    }

    /// The token backend.
    ///
    /// ```
    /// # use auth_core::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let _backend = auth.tokens();
    /// ```
    #[must_use]
    pub fn tokens(&self) -> &Arc<dyn TokenBackend> {
        &self.tokens
    }

    /// The password hashing wrapper (off-runtime, bounded).
    ///
    /// ```
    /// # use auth_core::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert_eq!(auth.hashing().max_password_length(), 4096);
    /// ```
    #[must_use]
    pub fn hashing(&self) -> &PasswordHashing {
        &self.hashing
    }

    /// The rate limiter.
    ///
    /// ```
    /// # use auth_core::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let _limiter = auth.rate_limiter();
    /// ```
    #[must_use]
    pub fn rate_limiter(&self) -> &Arc<dyn RateLimiter> {
        &self.limiter
    }

    /// Checks a new password against the configured policy, with the email for the
    /// similarity rule.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every failure (field `password`).
    ///
    /// ```
    /// # use auth_core::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth.validate_password("password", Some("a@b.c")).is_err());
    /// ```
    pub fn validate_password(&self, password: &str, email: Option<&str>) -> Result<()> {
        if password.len() > self.config.max_password_length() {
            return Err(Error::invalid(
                "password",
                "password_too_long",
                format!(
                    "This password is too long. It must contain at most {} bytes.",
                    self.config.max_password_length()
                ),
            ));
        }
        let mut ctx = PasswordContext::new();
        if let Some(email) = email {
            ctx = ctx.with_email(email);
        }
        self.config.password_policy().validate(password, &ctx)
    }

    /// Creates an account with a validated password.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a bad email or a password the policy rejects (every failure at
    /// once); [`Error::EmailTaken`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("  Bob@Example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(user.email, "bob@example.com");
    /// assert!(matches!(auth.register("bob@example.com", "violet-otter-sings-42").await, Err(Error::EmailTaken)));
    /// assert!(matches!(auth.register("carl@example.com", "123").await, Err(Error::Validation(_))));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn register(&self, email: &str, password: &str) -> Result<U> {
        let email = normalize_email(email)?;
        self.validate_password(password, Some(&email))?;
        if self.users.find_by_email(&email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let hash = self.hashing.hash(password).await?;
        let user = self
            .users
            .create(NewUser::new(email.clone()).with_password_hash(hash))
            .await?;
        self.events
            .emit(AuthEvent::UserRegistered {
                user_id: user.id().clone(),
                email,
            })
            .await;
        Ok(user)
    }

    /// Logs in with email and password.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] while the email is locked out; [`Error::InvalidCredentials`] for
    /// every other failure (missing, inactive, unusable password, wrong or over-long password),
    /// all taking the same time; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("dora@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.login("dora@example.com", "violet-otter-sings-42").await.is_ok());
    /// assert!(matches!(auth.login("dora@example.com", "wrong").await, Err(Error::InvalidCredentials)));
    /// assert!(matches!(auth.login("nobody@example.com", "x").await, Err(Error::InvalidCredentials)));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn login(&self, email: &str, password: &str) -> Result<AuthResult<U>> {
        self.login_with(email, password, LoginOptions::default())
            .await
    }

    /// Logs in with extra claims and client metadata.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login).
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("eve@example.com", "violet-otter-sings-42").await?;
    /// let mut extra = serde_json::Map::new();
    /// extra.insert("role".into(), "admin".into());
    /// let r = auth.login_with("eve@example.com", "violet-otter-sings-42", LoginOptions::new().with_extra(extra)).await?;
    /// let claims = auth.verify_access(r.access_token()).await?;
    /// assert_eq!(claims.extra.unwrap()["role"], "admin");
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn login_with(
        &self,
        email: &str,
        password: &str,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        let user = self.check_password(email, password, &options).await?;
        if let Some(gate) = &self.second_factor
            && gate.is_required(user.id()).await?
        {
            return Err(Error::MfaRequired);
        }
        self.start_session(user, options).await
    }

    /// The first factor of a login, without issuing anything: rate limits (per email, and per
    /// IP when [`with_ip_rate_limiter`](Self::with_ip_rate_limiter) is set and `options.meta`
    /// has one), the password check at equal cost for every failure, the failure events and the
    /// hash upgrade. Two-step logins call this, then [`start_session`](Self::start_session)
    /// once the second factor is in.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login), except [`Error::MfaRequired`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("gus@example.com", "violet-otter-sings-42").await?;
    /// let user = auth.check_password("gus@example.com", "violet-otter-sings-42", &LoginOptions::new()).await?;
    /// assert_eq!(user.email, "gus@example.com");
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn check_password(
        &self,
        email: &str,
        password: &str,
        options: &LoginOptions,
    ) -> Result<U> {
        // A malformed email cannot match an account, but it is handled like a missing one
        // (same time, same error), and rate limited under a bounded key.
        let normalized = normalize_email(email).ok();
        let key = normalized.clone().unwrap_or_else(|| {
            email
                .trim()
                .chars()
                .take(254)
                .collect::<String>()
                .to_lowercase()
        });
        let ip_key = match (&self.ip_limiter, options.meta.ip) {
            (Some(limiter), Some(ip)) => Some((limiter, format!("ip:{ip}"))),
            _ => None,
        };

        if let Some((limiter, ip_key)) = &ip_key {
            self.refuse_if_limited(limiter.as_ref(), ip_key).await?;
        }
        self.refuse_if_limited(self.limiter.as_ref(), &key).await?;

        let user = match &normalized {
            Some(e) => self.users.find_by_email(e).await?,
            None => None,
        };
        let reason = match &user {
            None => Some(LoginFailureReason::NotFound),
            Some(u) if !u.is_active() => Some(LoginFailureReason::Inactive),
            Some(_) => None,
        };
        // Missing and inactive accounts are checked against the dummy hash, like unusable and
        // over-long passwords inside `verify`: every failure costs one verification.
        let stored = if reason.is_none() {
            user.as_ref().and_then(|u| u.password_hash())
        } else {
            None
        };
        let verified = self.hashing.verify(password, stored).await?;

        let user = match (user, verified.valid) {
            (Some(user), true) if reason.is_none() => user,
            _ => {
                self.events
                    .emit(AuthEvent::UserLoginFailed {
                        identifier: key.clone(),
                        reason: reason.unwrap_or(LoginFailureReason::BadPassword),
                    })
                    .await;
                self.record_failure(self.limiter.as_ref(), key).await?;
                if let Some((limiter, ip_key)) = ip_key {
                    self.record_failure(limiter.as_ref(), ip_key).await?;
                }
                return Err(Error::InvalidCredentials);
            }
        };

        self.limiter.reset(&key).await?;
        if verified.needs_update {
            self.upgrade_hash(user.id(), user.password_hash(), password)
                .await;
        }
        Ok(user)
    }

    /// Refuses with [`Error::RateLimited`] (and a `RateLimitExceeded` event) while `key` is
    /// locked out.
    async fn refuse_if_limited(&self, limiter: &dyn RateLimiter, key: &str) -> Result<()> {
        if let RateLimitStatus::Limited { retry_after } = limiter.check(key).await? {
            self.events
                .emit(AuthEvent::RateLimitExceeded {
                    identifier: key.to_owned(),
                    retry_after,
                })
                .await;
            return Err(Error::RateLimited { retry_after });
        }
        Ok(())
    }

    /// Counts a failure for `key`; the failure that starts a lockout emits `AccountLocked`.
    async fn record_failure(&self, limiter: &dyn RateLimiter, key: String) -> Result<()> {
        if let RateLimitStatus::Limited { retry_after } = limiter.record(&key).await? {
            tracing::warn!(identifier = %key, retry_after_s = retry_after.as_secs(), "login identifier locked");
            self.events
                .emit(AuthEvent::AccountLocked {
                    identifier: key.clone(),
                    retry_after,
                })
                .await;
            self.events
                .emit(AuthEvent::RateLimitExceeded {
                    identifier: key,
                    retry_after,
                })
                .await;
        }
        Ok(())
    }

    /// Starts a session for a user whose credentials were checked elsewhere (the second step of
    /// a two-step login, an onboarding flow's end, a magic link): issues the token pair,
    /// records the login and emits `UserLogin`. Like Django's `login(request, user)`, it trusts
    /// the caller; it refuses only inactive users.
    ///
    /// # Errors
    ///
    /// [`Error::InactiveUser`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("hal@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.start_session(user, LoginOptions::new()).await?;
    /// assert_eq!(auth.authenticate(session.access_token()).await?.email, "hal@example.com");
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn start_session(&self, user: U, options: LoginOptions) -> Result<AuthResult<U>> {
        if !user.is_active() {
            return Err(Error::InactiveUser);
        }
        let request = IssueRequest::new(user.id().clone())
            .with_extra(options.extra)
            .with_meta(options.meta)
            .with_lifetimes(self.config.lifetimes());
        let tokens = self.tokens.issue(&request).await?;
        self.users.record_login(user.id(), self.clock.now()).await?;
        self.events
            .emit(AuthEvent::UserLogin {
                user_id: user.id().clone(),
                email: user.email().to_owned(),
            })
            .await;
        Ok(AuthResult { user, tokens })
    }

    /// Whether `user` has a second factor (per the gate given to
    /// [`with_second_factor`](Self::with_second_factor); `false` without one). Schemes that
    /// cannot carry a second factor, such as HTTP Basic, refuse such users.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(!auth.requires_second_factor(&UserId::new("1")).await?);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn requires_second_factor(&self, user: &UserId) -> Result<bool> {
        match &self.second_factor {
            Some(gate) => gate.is_required(user).await,
            None => Ok(false),
        }
    }

    /// The clock this service reads.
    ///
    /// ```
    /// # use auth_core::*;
    /// let clock = FixedClock::from_unix(1_800_000_000);
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap().with_clock(clock);
    /// assert_eq!(auth.clock().now().unix_timestamp(), 1_800_000_000);
    /// ```
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Replaces a legacy or weaker hash after a successful login, only if the stored hash is
    /// still the one that verified (a password changed meanwhile is never overwritten). A failure
    /// here is logged and does not fail the login: the old hash still verifies.
    async fn upgrade_hash(&self, id: &UserId, old_hash: Option<&str>, password: &str) {
        let outcome = async {
            let hash = self.hashing.hash(password).await?;
            self.users.replace_password_hash(id, old_hash, &hash).await
        }
        .await;
        match outcome {
            Ok(true) => {
                self.events
                    .emit(AuthEvent::PasswordRehashed {
                        user_id: id.clone(),
                        algorithm: self.hashing.algorithm(),
                    })
                    .await;
            }
            Ok(false) => {
                tracing::info!(user_id = %id, "password changed during login; hash upgrade skipped")
            }
            Err(error) => tracing::warn!(%error, user_id = %id, "password hash upgrade failed"),
        }
    }

    /// Verifies an access token and loads its user.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] (also when the user no longer exists), [`Error::TokenExpired`],
    /// [`Error::TokenRevoked`], [`Error::InactiveUser`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(matches!(auth.authenticate("not-a-token").await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn authenticate(&self, access_token: &str) -> Result<U> {
        if let Some(lookup) = &self.lookup {
            let (_, user) = lookup.authenticate(access_token).await?;
            return if user.is_active() {
                Ok(user)
            } else {
                Err(Error::InactiveUser)
            };
        }
        let claims = self.tokens.verify(access_token, TokenKind::Access).await?;
        active_user(self.users.as_ref(), &claims).await
    }

    /// Verifies an access token without loading the user (no user-store access).
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`], [`Error::TokenExpired`], [`Error::TokenRevoked`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("f@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("f@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.verify_access(r.access_token()).await?.sub, r.user.id.as_str());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn verify_access(&self, access_token: &str) -> Result<Claims> {
        self.tokens.verify(access_token, TokenKind::Access).await
    }

    /// Exchanges a refresh token for a new pair in the same session. The presented token is
    /// consumed atomically; presenting it again revokes the whole session. Inactive or deleted
    /// users are refused; extra claims are kept; the session never outlives its absolute lifetime.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`], [`Error::TokenExpired`], [`Error::TokenRevoked`] (also on reuse),
    /// [`Error::InactiveUser`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("g@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("g@example.com", "violet-otter-sings-42").await?;
    /// let next = auth.refresh(r.refresh_token()).await?;
    /// // Replaying the old refresh token is reuse: the session ends.
    /// assert!(matches!(auth.refresh(r.refresh_token()).await, Err(Error::TokenRevoked)));
    /// assert!(auth.refresh(next.refresh_token.expose_secret()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        self.refresh_with(refresh_token, SessionMeta::default())
            .await
    }

    /// Like [`refresh`](Self::refresh), recording the client's metadata on the session.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh).
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("h@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("h@example.com", "violet-otter-sings-42").await?;
    /// let meta = SessionMeta::new().with_user_agent("app/2.0");
    /// auth.refresh_with(r.refresh_token(), meta).await?;
    /// let sessions = auth.sessions(&r.user.id).await?;
    /// assert_eq!(sessions[0].meta.user_agent.as_deref(), Some("app/2.0"));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn refresh_with(&self, refresh_token: &str, meta: SessionMeta) -> Result<TokenPair> {
        let request = RotateRequest::new()
            .with_meta(meta)
            .with_lifetimes(self.config.lifetimes());
        let guard = ActiveUserGuard {
            users: self.users.as_ref(),
        };
        match self.tokens.rotate(refresh_token, &request, &guard).await? {
            RotateOutcome::Rotated { previous, pair } => {
                self.events
                    .emit(AuthEvent::TokenRefreshed {
                        user_id: previous.user_id(),
                        family: previous.family,
                    })
                    .await;
                Ok(pair)
            }
            RotateOutcome::Reused { user_id, family } => {
                tracing::warn!(user_id = %user_id, "refresh token reuse detected; session revoked");
                self.events
                    .emit(AuthEvent::RefreshReuseDetected { user_id, family })
                    .await;
                Err(Error::TokenRevoked)
            }
        }
    }

    /// Ends the session of a token (access or refresh): the token and its pair stop working.
    /// An unknown, expired or already revoked token is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot revoke; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("i@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("i@example.com", "violet-otter-sings-42").await?;
    /// auth.logout(r.access_token()).await?;
    /// assert!(matches!(auth.refresh(r.refresh_token()).await, Err(Error::TokenRevoked)));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn logout(&self, token: &str) -> Result<()> {
        // Learn whose session it is before revoking, for the event; a token that no longer
        // verifies is still revoked (an expired token's pair may be alive).
        let owner = match self.tokens.verify(token, TokenKind::Access).await {
            Ok(c) => Some(c.user_id()),
            Err(_) => self
                .tokens
                .verify(token, TokenKind::Refresh)
                .await
                .ok()
                .map(|c| c.user_id()),
        };
        self.tokens.revoke(token).await?;
        if let Some(user_id) = owner {
            self.events
                .emit(AuthEvent::UserLogout {
                    user_id,
                    all: false,
                })
                .await;
        }
        Ok(())
    }

    /// Ends every session of a user ("log out everywhere"); returns how many ended.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot revoke; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("j@example.com", "violet-otter-sings-42").await?;
    /// let phone = auth.login("j@example.com", "violet-otter-sings-42").await?;
    /// let laptop = auth.login("j@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.logout_all(&phone.user.id).await?, 2);
    /// assert!(auth.authenticate(laptop.access_token()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn logout_all(&self, user_id: &UserId) -> Result<u64> {
        let ended = self.tokens.revoke_all(user_id, None).await?;
        self.events
            .emit(AuthEvent::UserLogout {
                user_id: user_id.clone(),
                all: true,
            })
            .await;
        Ok(ended)
    }

    /// The user's live sessions (devices), newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for backends without session state; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("k@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("k@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.sessions(&r.user.id).await?.len(), 1);
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        self.tokens.sessions(user_id).await
    }

    /// Ends one of the user's sessions; `false` if it was not theirs or did not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] or [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("l@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("l@example.com", "violet-otter-sings-42").await?;
    /// let id = auth.sessions(&r.user.id).await?[0].id.clone();
    /// assert!(auth.revoke_session(&r.user.id, &id).await?);
    /// assert!(auth.authenticate(r.access_token()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        self.tokens.revoke_session(user_id, session_id).await
    }

    /// Sets a user's password (an administrative action: no current password needed), after
    /// the policy accepts it, and ends every session of the user.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`], [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.users().create(NewUser::new("alice@example.com")).await?;
    /// auth.set_password(&user.id, "SecurePass123!").await?;
    /// assert!(auth.login("alice@example.com", "SecurePass123!").await.is_ok());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_password(&self, user_id: &UserId, new_password: &str) -> Result<()> {
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.validate_password(new_password, Some(user.email()))?;
        let hash = self.hashing.hash(new_password).await?;
        self.users.set_password_hash(user_id, &hash).await?;
        self.tokens.revoke_all(user_id, None).await?;
        self.events
            .emit(AuthEvent::PasswordChanged {
                user_id: user_id.clone(),
            })
            .await;
        Ok(())
    }

    /// Changes a password on the user's own request: the current password is required, the new
    /// one must pass the policy, and every other session ends (`keep_session` survives: pass the
    /// id of the session making the request).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] when the current password is wrong; [`Error::Validation`];
    /// [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("m@example.com", "violet-otter-sings-42").await?;
    /// let here = auth.login("m@example.com", "violet-otter-sings-42").await?;
    /// let elsewhere = auth.login("m@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.verify_access(here.access_token()).await?.family;
    /// auth.change_password(&here.user.id, "violet-otter-sings-42", "amber-heron-dances-7", session.as_deref()).await?;
    /// assert!(auth.authenticate(here.access_token()).await.is_ok());
    /// assert!(auth.authenticate(elsewhere.access_token()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn change_password(
        &self,
        user_id: &UserId,
        current_password: &str,
        new_password: &str,
        keep_session: Option<&str>,
    ) -> Result<()> {
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        let stored = if user.is_active() {
            user.password_hash()
        } else {
            None
        };
        if !self.hashing.verify(current_password, stored).await?.valid {
            return Err(Error::InvalidCredentials);
        }
        self.validate_password(new_password, Some(user.email()))?;
        let hash = self.hashing.hash(new_password).await?;
        self.users.set_password_hash(user_id, &hash).await?;
        self.tokens.revoke_all(user_id, keep_session).await?;
        self.events
            .emit(AuthEvent::PasswordChanged {
                user_id: user_id.clone(),
            })
            .await;
        Ok(())
    }

    /// Makes the password unusable (no password verifies) and ends every session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("n@example.com", "violet-otter-sings-42").await?;
    /// auth.set_unusable_password(&user.id).await?;
    /// let user = auth.users().find_by_id(&user.id).await?.unwrap();
    /// assert!(!AuthService::<User>::has_usable_password(&user));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_unusable_password(&self, user_id: &UserId) -> Result<()> {
        self.users
            .set_password_hash(user_id, &make_unusable_password())
            .await?;
        self.tokens.revoke_all(user_id, None).await?;
        Ok(())
    }

    /// Whether the user has a password that could verify.
    ///
    /// ```
    /// # use auth_core::*;
    /// let user = User::new(UserId::new("1"), "a@b.c");
    /// assert!(!AuthService::<User>::has_usable_password(&user));
    /// ```
    #[must_use]
    pub fn has_usable_password(user: &U) -> bool {
        is_password_usable(user.password_hash())
    }

    /// Activates or deactivates an account; deactivating ends every session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("o@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("o@example.com", "violet-otter-sings-42").await?;
    /// auth.set_active(&r.user.id, false).await?;
    /// assert!(auth.authenticate(r.access_token()).await.is_err());
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn set_active(&self, user_id: &UserId, active: bool) -> Result<()> {
        self.users.set_active(user_id, active).await?;
        if !active {
            self.tokens.revoke_all(user_id, None).await?;
        }
        Ok(())
    }
}

/// Loads the token's user and refuses missing or inactive ones.
async fn active_user<U: AuthUser>(users: &dyn UserStore<User = U>, claims: &Claims) -> Result<U> {
    match users.find_by_id(&claims.user_id()).await? {
        None => Err(Error::TokenInvalid),
        Some(u) if !u.is_active() => Err(Error::InactiveUser),
        Some(u) => Ok(u),
    }
}

struct ActiveUserGuard<'a, U> {
    users: &'a dyn UserStore<User = U>,
}

#[async_trait]
impl<U: AuthUser> RefreshGuard for ActiveUserGuard<'_, U> {
    async fn allow(&self, claims: &Claims) -> Result<()> {
        active_user(self.users, claims).await.map(|_| ())
    }
}
