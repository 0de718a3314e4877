//! Configuration with validated defaults.

use std::fmt;
use std::time::Duration;

use crate::ConfigError;
use crate::RateLimitPolicy;
use crate::TokenLifetimes;
use crate::{DEFAULT_MAX_PASSWORD_LENGTH, PasswordPolicy};
use crate::{SecretKey, SecretString};

/// Settings for [`crate::AuthService`] and the flows built on it.
///
/// Defaults follow tortoise-auth: access tokens 900 s, refresh tokens 604,800 s, 5 failed logins
/// in 300 s lock an account for 600 s, passwords at most 4,096 bytes, reset links valid 3,600 s.
/// Unlike tortoise-auth, refresh has an absolute lifetime (30 days) and every value is validated
/// when the config is built.
///
/// ```
/// use std::time::Duration;
/// use auth_service::AuthConfig;
///
/// let config = AuthConfig::builder()
///     .signing_secret("a-very-long-random-secret-of-32+-bytes!")
///     .access_token_lifetime(Duration::from_secs(300))
///     .build()?;
/// assert_eq!(config.lifetimes().access(), Duration::from_secs(300));
/// // Secrets never print.
/// assert!(!format!("{config:?}").contains("a-very-long"));
/// # Ok::<(), auth_service::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct AuthConfig {
    lifetimes: TokenLifetimes,
    max_password_length: usize,
    rate_limit: RateLimitPolicy,
    signing_secret: Option<SecretKey>,
    password_reset_token_lifetime: Duration,
    password_policy: PasswordPolicy,
    hash_concurrency: Option<usize>,
    s2s_tokens: Vec<SecretString>,
    refresh_reuse_window: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            lifetimes: TokenLifetimes::default(),
            max_password_length: DEFAULT_MAX_PASSWORD_LENGTH,
            rate_limit: RateLimitPolicy::default(),
            signing_secret: None,
            password_reset_token_lifetime: Duration::from_secs(3600),
            password_policy: PasswordPolicy::default(),
            hash_concurrency: None,
            s2s_tokens: Vec::new(),
            refresh_reuse_window: crate::DEFAULT_REUSE_WINDOW,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("lifetimes", &self.lifetimes)
            .field("max_password_length", &self.max_password_length)
            .field("rate_limit", &self.rate_limit)
            .field("signing_secret", &self.signing_secret)
            .field(
                "password_reset_token_lifetime",
                &self.password_reset_token_lifetime,
            )
            .field("password_policy", &self.password_policy.help_texts().len())
            .field("hash_concurrency", &self.hash_concurrency)
            .field("s2s_tokens", &self.s2s_tokens.len())
            .field("refresh_reuse_window", &self.refresh_reuse_window)
            .finish()
    }
}

impl AuthConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// let config = auth_service::AuthConfig::builder().build().unwrap();
    /// assert_eq!(config.max_password_length(), 4096);
    /// ```
    pub fn builder() -> AuthConfigBuilder {
        AuthConfigBuilder {
            config: Self::default(),
            access: TokenLifetimes::DEFAULT_ACCESS,
            refresh: TokenLifetimes::DEFAULT_REFRESH,
            absolute: TokenLifetimes::DEFAULT_ABSOLUTE,
            rate: (5, Duration::from_secs(300), Duration::from_secs(600)),
            signing_secret: None,
        }
    }

    /// Reads `AUTH_*` environment variables (see [`AuthConfig::from_lookup`] for the list).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] naming `AUTH_SIGNING_SECRET` when it is unset;
    /// [`ConfigError::Invalid`] naming the variable whose value cannot be used.
    ///
    /// ```no_run
    /// let config = auth_service::AuthConfig::from_env()?;
    /// # Ok::<(), auth_service::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, a file, a test map).
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `AUTH_SIGNING_SECRET` | HMAC key for signed links, at least 32 bytes | **required** |
    /// | `AUTH_ACCESS_TOKEN_LIFETIME` | seconds | 900 |
    /// | `AUTH_REFRESH_TOKEN_LIFETIME` | seconds | 604800 |
    /// | `AUTH_REFRESH_ABSOLUTE_LIFETIME` | seconds | 2592000 |
    /// | `AUTH_REFRESH_REUSE_WINDOW` | seconds a rotated refresh token still yields its successor (≤ 60, 0 off) | 10 |
    /// | `AUTH_MAX_PASSWORD_LENGTH` | bytes | 4096 |
    /// | `AUTH_RATE_LIMIT_MAX_ATTEMPTS` | failures | 5 |
    /// | `AUTH_RATE_LIMIT_WINDOW` | seconds | 300 |
    /// | `AUTH_RATE_LIMIT_LOCKOUT` | seconds | 600 |
    /// | `AUTH_PASSWORD_RESET_TOKEN_LIFETIME` | seconds | 3600 |
    /// | `AUTH_HASH_CONCURRENCY` | parallel hashes | cores |
    /// | `AUTH_S2S_TOKENS` | comma-separated service tokens | S2S disabled |
    ///
    /// # Errors
    ///
    /// As [`AuthConfig::from_env`].
    ///
    /// ```
    /// use auth_service::{AuthConfig, ConfigError};
    /// let missing = AuthConfig::from_lookup(|_| None).unwrap_err();
    /// assert_eq!(missing, ConfigError::Missing { var: "AUTH_SIGNING_SECRET" });
    ///
    /// let config = AuthConfig::from_lookup(|name| match name {
    ///     "AUTH_SIGNING_SECRET" => Some("x".repeat(40)),
    ///     "AUTH_ACCESS_TOKEN_LIFETIME" => Some("120".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(config.lifetimes().access().as_secs(), 120);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secs = |var: &'static str| -> Result<Option<Duration>, ConfigError> {
            parse::<u64>(&lookup, var).map(|v| v.map(Duration::from_secs))
        };
        let secret = lookup("AUTH_SIGNING_SECRET")
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::Missing {
                var: "AUTH_SIGNING_SECRET",
            })?;
        if secret.len() < SecretKey::MIN_LEN {
            return Err(ConfigError::WeakSecret {
                name: "AUTH_SIGNING_SECRET",
                min: SecretKey::MIN_LEN,
            });
        }
        let mut b = Self::builder().signing_secret(secret);
        if let Some(v) = secs("AUTH_ACCESS_TOKEN_LIFETIME")? {
            b = b.access_token_lifetime(v);
        }
        if let Some(v) = secs("AUTH_REFRESH_TOKEN_LIFETIME")? {
            b = b.refresh_token_lifetime(v);
        }
        if let Some(v) = secs("AUTH_REFRESH_ABSOLUTE_LIFETIME")? {
            b = b.refresh_absolute_lifetime(v);
        }
        if let Some(v) = parse::<usize>(&lookup, "AUTH_MAX_PASSWORD_LENGTH")? {
            b = b.max_password_length(v);
        }
        if let Some(v) = parse::<u32>(&lookup, "AUTH_RATE_LIMIT_MAX_ATTEMPTS")? {
            b = b.rate_limit_max_attempts(v);
        }
        if let Some(v) = secs("AUTH_RATE_LIMIT_WINDOW")? {
            b = b.rate_limit_window(v);
        }
        if let Some(v) = secs("AUTH_RATE_LIMIT_LOCKOUT")? {
            b = b.rate_limit_lockout(v);
        }
        if let Some(v) = secs("AUTH_REFRESH_REUSE_WINDOW")? {
            b = b.refresh_reuse_window(v);
        }
        if let Some(v) = secs("AUTH_PASSWORD_RESET_TOKEN_LIFETIME")? {
            b = b.password_reset_token_lifetime(v);
        }
        if let Some(v) = parse::<usize>(&lookup, "AUTH_HASH_CONCURRENCY")? {
            b = b.hash_concurrency(v);
        }
        if let Some(tokens) = lookup("AUTH_S2S_TOKENS") {
            b = b.s2s_tokens(split_tokens(&tokens));
        }
        b.build().map_err(|e| match e {
            ConfigError::Invalid { name, reason } => ConfigError::Invalid {
                name: format!("AUTH_{}", name.to_uppercase()).into(),
                reason,
            },
            other => other,
        })
    }

    /// Token lifetimes.
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().lifetimes().refresh().as_secs(), 604_800);
    /// ```
    #[must_use]
    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// Maximum password length in bytes.
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().max_password_length(), 4096);
    /// ```
    #[must_use]
    pub fn max_password_length(&self) -> usize {
        self.max_password_length
    }

    /// The login rate limit.
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().rate_limit().max_attempts(), 5);
    /// ```
    #[must_use]
    pub fn rate_limit(&self) -> RateLimitPolicy {
        self.rate_limit
    }

    /// The signing secret, if configured.
    ///
    /// ```
    /// assert!(auth_service::AuthConfig::default().signing_secret().is_none());
    /// ```
    #[must_use]
    pub fn signing_secret(&self) -> Option<&SecretKey> {
        self.signing_secret.as_ref()
    }

    /// How long a rotated refresh token may be presented again by its own racing client and
    /// receive the same successor ([`RotateRequest::reuse_window`](crate::RotateRequest::reuse_window);
    /// default 10 s, zero: every second use revokes the session).
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().refresh_reuse_window().as_secs(), 10);
    /// ```
    #[must_use]
    pub fn refresh_reuse_window(&self) -> Duration {
        self.refresh_reuse_window
    }

    /// How long password reset links stay valid.
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().password_reset_token_lifetime().as_secs(), 3600);
    /// ```
    #[must_use]
    pub fn password_reset_token_lifetime(&self) -> Duration {
        self.password_reset_token_lifetime
    }

    /// The password policy new passwords must pass.
    ///
    /// ```
    /// assert_eq!(auth_service::AuthConfig::default().password_policy().help_texts().len(), 4);
    /// ```
    #[must_use]
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.password_policy
    }

    /// The same configuration with another password policy (for a policy known only after
    /// the rest was read, such as a breach check from the environment).
    ///
    /// ```
    /// use auth_service::{AuthConfig, MinimumLengthValidator, PasswordPolicy};
    /// let config = AuthConfig::default()
    ///     .with_password_policy(PasswordPolicy::empty().with(MinimumLengthValidator::new(12)));
    /// assert_eq!(config.password_policy().help_texts().len(), 1);
    /// ```
    #[must_use]
    pub fn with_password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// How many password hashes may run at once (`None`: the number of cores).
    ///
    /// ```
    /// assert!(auth_service::AuthConfig::default().hash_concurrency().is_none());
    /// ```
    #[must_use]
    pub fn hash_concurrency(&self) -> Option<usize> {
        self.hash_concurrency
    }

    /// Accepted service-to-service tokens (empty: S2S disabled).
    ///
    /// ```
    /// assert!(auth_service::AuthConfig::default().s2s_tokens().is_empty());
    /// ```
    #[must_use]
    pub fn s2s_tokens(&self) -> &[SecretString] {
        &self.s2s_tokens
    }
}

fn parse<T: std::str::FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<T>, ConfigError> {
    match lookup(var) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::invalid(var, "must be a non-negative whole number")),
    }
}

/// Splits a comma-separated token list, trimming and dropping empty entries.
pub(crate) fn split_tokens(list: &str) -> Vec<SecretString> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(SecretString::from)
        .collect()
}

/// Builds an [`AuthConfig`], validating everything in [`build`](AuthConfigBuilder::build).
///
/// ```
/// use std::time::Duration;
/// let err = auth_service::AuthConfig::builder()
///     .access_token_lifetime(Duration::ZERO)
///     .build()
///     .unwrap_err();
/// assert!(err.to_string().contains("access_token_lifetime"));
/// ```
#[must_use]
pub struct AuthConfigBuilder {
    config: AuthConfig,
    access: Duration,
    refresh: Duration,
    absolute: Duration,
    rate: (u32, Duration, Duration),
    signing_secret: Option<SecretString>,
}

impl fmt::Debug for AuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfigBuilder").finish_non_exhaustive()
    }
}

impl AuthConfigBuilder {
    /// Access token lifetime (must be positive).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().access_token_lifetime(Duration::from_secs(60)).build().unwrap();
    /// assert_eq!(c.lifetimes().access().as_secs(), 60);
    /// ```
    pub fn access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access = lifetime;
        self
    }

    /// Refresh token lifetime (at least the access lifetime).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().refresh_token_lifetime(Duration::from_secs(3600)).build().unwrap();
    /// assert_eq!(c.lifetimes().refresh().as_secs(), 3600);
    /// ```
    pub fn refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh = lifetime;
        self
    }

    /// Absolute session lifetime from login (at least the refresh lifetime).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().refresh_absolute_lifetime(Duration::from_secs(604_800)).build().unwrap();
    /// assert_eq!(c.lifetimes().absolute().as_secs(), 604_800);
    /// ```
    pub fn refresh_absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute = lifetime;
        self
    }

    /// Maximum password length in bytes (1 to 65,536).
    ///
    /// ```
    /// let c = auth_service::AuthConfig::builder().max_password_length(1024).build().unwrap();
    /// assert_eq!(c.max_password_length(), 1024);
    /// ```
    pub fn max_password_length(mut self, max: usize) -> Self {
        self.config.max_password_length = max;
        self
    }

    /// Failed logins allowed within the window.
    ///
    /// ```
    /// let c = auth_service::AuthConfig::builder().rate_limit_max_attempts(10).build().unwrap();
    /// assert_eq!(c.rate_limit().max_attempts(), 10);
    /// ```
    pub fn rate_limit_max_attempts(mut self, attempts: u32) -> Self {
        self.rate.0 = attempts;
        self
    }

    /// The window failures are counted in.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().rate_limit_window(Duration::from_secs(60)).build().unwrap();
    /// assert_eq!(c.rate_limit().window().as_secs(), 60);
    /// ```
    pub fn rate_limit_window(mut self, window: Duration) -> Self {
        self.rate.1 = window;
        self
    }

    /// How long a lockout lasts.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().rate_limit_lockout(Duration::from_secs(30)).build().unwrap();
    /// assert_eq!(c.rate_limit().lockout().as_secs(), 30);
    /// ```
    pub fn rate_limit_lockout(mut self, lockout: Duration) -> Self {
        self.rate.2 = lockout;
        self
    }

    /// The HMAC key for signed links (at least 32 bytes).
    ///
    /// ```
    /// assert!(auth_service::AuthConfig::builder().signing_secret("short").build().is_err());
    /// ```
    pub fn signing_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.signing_secret = Some(secret.into());
        self
    }

    /// How long a rotated refresh token may be presented again by its own racing client (two
    /// tabs, an app resuming) and receive the same successor; at most one minute, zero turns
    /// it off (`AUTH_REFRESH_REUSE_WINDOW`, seconds). See `docs/tokens.md` for the trade-off.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().refresh_reuse_window(Duration::ZERO).build().unwrap();
    /// assert!(c.refresh_reuse_window().is_zero());
    /// assert!(auth_service::AuthConfig::builder().refresh_reuse_window(Duration::from_secs(3600)).build().is_err());
    /// ```
    pub fn refresh_reuse_window(mut self, window: Duration) -> Self {
        self.config.refresh_reuse_window = window;
        self
    }

    /// How long password reset links stay valid (must be positive).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let c = auth_service::AuthConfig::builder().password_reset_token_lifetime(Duration::from_secs(600)).build().unwrap();
    /// assert_eq!(c.password_reset_token_lifetime().as_secs(), 600);
    /// ```
    pub fn password_reset_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.password_reset_token_lifetime = lifetime;
        self
    }

    /// Replaces the password policy.
    ///
    /// ```
    /// use auth_service::{AuthConfig, MinimumLengthValidator, PasswordPolicy};
    /// let policy = PasswordPolicy::empty().with(MinimumLengthValidator::new(12));
    /// let c = AuthConfig::builder().password_policy(policy).build().unwrap();
    /// assert_eq!(c.password_policy().help_texts().len(), 1);
    /// ```
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.config.password_policy = policy;
        self
    }

    /// How many password hashes may run at once (at least 1).
    ///
    /// ```
    /// let c = auth_service::AuthConfig::builder().hash_concurrency(4).build().unwrap();
    /// assert_eq!(c.hash_concurrency(), Some(4));
    /// ```
    pub fn hash_concurrency(mut self, concurrency: usize) -> Self {
        self.config.hash_concurrency = Some(concurrency);
        self
    }

    /// Accepted service-to-service tokens, each at least 32 bytes. Several allow rotation.
    ///
    /// ```
    /// let c = auth_service::AuthConfig::builder().s2s_tokens(["t".repeat(32)]).build().unwrap();
    /// assert_eq!(c.s2s_tokens().len(), 1);
    /// ```
    pub fn s2s_tokens<T: Into<SecretString>>(
        mut self,
        tokens: impl IntoIterator<Item = T>,
    ) -> Self {
        self.config.s2s_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// Validates and returns the config.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first setting that cannot work.
    ///
    /// ```
    /// assert!(auth_service::AuthConfig::builder().build().is_ok());
    /// ```
    pub fn build(self) -> Result<AuthConfig, ConfigError> {
        let mut config = self.config;
        config.lifetimes = TokenLifetimes::new(self.access, self.refresh, self.absolute)?;
        config.rate_limit = RateLimitPolicy::new(self.rate.0, self.rate.1, self.rate.2)?;
        if !(1..=65_536).contains(&config.max_password_length) {
            return Err(ConfigError::invalid(
                "max_password_length",
                "must be between 1 and 65536 bytes",
            ));
        }
        if config.refresh_reuse_window > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                name: "refresh_reuse_window".into(),
                reason:
                    "at most 60 seconds: a longer window lets a stolen refresh token go unnoticed"
                        .into(),
            });
        }
        if config.password_reset_token_lifetime.is_zero() {
            return Err(ConfigError::invalid(
                "password_reset_token_lifetime",
                "must be positive",
            ));
        }
        if config.hash_concurrency == Some(0) {
            return Err(ConfigError::invalid(
                "hash_concurrency",
                "must be at least 1",
            ));
        }
        if config
            .s2s_tokens
            .iter()
            .any(|t| t.len() < SecretKey::MIN_LEN)
        {
            return Err(ConfigError::WeakSecret {
                name: "each S2S token",
                min: SecretKey::MIN_LEN,
            });
        }
        if let Some(secret) = self.signing_secret {
            config.signing_secret = Some(
                SecretKey::new(secret.expose_secret().as_bytes()).map_err(|_| {
                    ConfigError::WeakSecret {
                        name: "signing_secret",
                        min: SecretKey::MIN_LEN,
                    }
                })?,
            );
        }
        Ok(config)
    }
}
