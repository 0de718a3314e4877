//! Service-to-service authentication with shared tokens.

use std::fmt;
use std::sync::Arc;

use crate::MAX_TOKEN_LENGTH;
use crate::{AuthEvent, EventBus};
use crate::{ConfigError, Error, Result};
use crate::{SecretString, constant_time_eq};

/// The caller of an S2S-authenticated request.
///
/// ```
/// use auth_service::S2sIdentity;
/// let id = S2sIdentity::new(Some("billing".into()));
/// assert_eq!(id.display_name(), "billing");
/// assert_eq!(S2sIdentity::new(None).display_name(), "service");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S2sIdentity {
    /// The caller-asserted service name (audit only: tokens are not scoped per service).
    pub service_name: Option<String>,
}

impl S2sIdentity {
    /// An identity.
    ///
    /// ```
    /// # use auth_service::S2sIdentity;
    /// assert!(S2sIdentity::new(None).service_name.is_none());
    /// ```
    #[must_use]
    pub fn new(service_name: Option<String>) -> Self {
        Self { service_name }
    }

    /// The service name, or `service`.
    ///
    /// ```
    /// # use auth_service::S2sIdentity;
    /// assert_eq!(S2sIdentity::new(Some("a".into())).display_name(), "a");
    /// ```
    #[must_use]
    pub fn display_name(&self) -> &str {
        self.service_name.as_deref().unwrap_or("service")
    }
}

type Source = Arc<dyn Fn() -> Option<String> + Send + Sync>;

enum Tokens {
    Disabled,
    Fixed(Vec<SecretString>),
    /// Read on every call, so rotating the variable's value takes effect without a restart.
    Dynamic {
        name: String,
        source: Source,
    },
}

/// Authenticates internal services by shared tokens, compared in constant time.
///
/// Tokens come from the config, or from an environment variable read on every call
/// (comma-separated, so a new token can be added before the old one is removed). Disabled unless
/// configured.
///
/// ```
/// use auth_service::{EventBus, S2SService};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let token = "internal-service-token-0123456789abcdef";
/// let s2s = S2SService::new([token], EventBus::new());
/// let caller = s2s.authenticate(token, Some("billing")).await?;
/// assert_eq!(caller.display_name(), "billing");
/// assert!(s2s.authenticate("wrong", None).await.is_err());
/// assert!(S2SService::disabled().authenticate(token, None).await.is_err());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct S2SService {
    tokens: Arc<Tokens>,
    events: EventBus,
}

impl S2SService {
    /// Accepts these tokens.
    ///
    /// ```
    /// # use auth_service::{EventBus, S2SService};
    /// assert!(S2SService::new(["a".repeat(32)], EventBus::new()).is_enabled());
    /// ```
    pub fn new<T: Into<SecretString>>(
        tokens: impl IntoIterator<Item = T>,
        events: EventBus,
    ) -> Self {
        let tokens: Vec<SecretString> = tokens.into_iter().map(Into::into).collect();
        Self {
            tokens: Arc::new(if tokens.is_empty() {
                Tokens::Disabled
            } else {
                Tokens::Fixed(tokens)
            }),
            events,
        }
    }

    /// Accepts the tokens of the config (`AUTH_S2S_TOKENS`); disabled when it has none.
    ///
    /// ```
    /// # use auth_service::{AuthConfig, EventBus, S2SService};
    /// let config = AuthConfig::builder().s2s_tokens(["t".repeat(32)]).build().unwrap();
    /// assert!(S2SService::from_config(&config, EventBus::new()).is_enabled());
    /// assert!(!S2SService::from_config(&AuthConfig::default(), EventBus::new()).is_enabled());
    /// ```
    pub fn from_config(config: &crate::AuthConfig, events: EventBus) -> Self {
        Self::new(config.s2s_tokens().iter().cloned(), events)
    }

    /// Accepts the tokens in the environment variable `var`, read on every call.
    ///
    /// ```
    /// # use auth_service::{EventBus, S2SService};
    /// let s2s = S2SService::from_env_var("AUTH_S2S_TOKENS", EventBus::new());
    /// assert!(s2s.is_enabled());
    /// ```
    pub fn from_env_var(var: impl Into<String>, events: EventBus) -> Self {
        let name: String = var.into();
        let read = name.clone();
        Self::from_source(name, move || std::env::var(&read).ok(), events)
    }

    /// Accepts the comma-separated tokens `source` returns, read on every call; `name` appears in
    /// the configuration error when it returns nothing.
    ///
    /// ```
    /// # use auth_service::{EventBus, S2SService};
    /// let s2s = S2SService::from_source("vault:s2s", || Some("x".repeat(32)), EventBus::new());
    /// assert!(s2s.is_enabled());
    /// ```
    pub fn from_source(
        name: impl Into<String>,
        source: impl Fn() -> Option<String> + Send + Sync + 'static,
        events: EventBus,
    ) -> Self {
        Self {
            tokens: Arc::new(Tokens::Dynamic {
                name: name.into(),
                source: Arc::new(source),
            }),
            events,
        }
    }

    /// S2S authentication turned off: every call is a configuration error.
    ///
    /// ```
    /// assert!(!auth_service::S2SService::disabled().is_enabled());
    /// ```
    #[must_use]
    pub fn disabled() -> Self {
        Self {
            tokens: Arc::new(Tokens::Disabled),
            events: EventBus::new(),
        }
    }

    /// Whether S2S authentication was configured.
    ///
    /// ```
    /// assert!(!auth_service::S2SService::disabled().is_enabled());
    /// ```
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        !matches!(*self.tokens, Tokens::Disabled)
    }

    /// Checks a presented token against every accepted one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] when no token matches; [`Error::Configuration`] when S2S is
    /// disabled or its variable is empty (the message names what to set).
    ///
    /// ```
    /// # use auth_service::{EventBus, S2SService};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let s2s = S2SService::new(["old-token-0123456789abcdef0123456789", "new-token-0123456789abcdef0123456789"], EventBus::new());
    /// assert!(s2s.authenticate("old-token-0123456789abcdef0123456789", None).await.is_ok());
    /// assert!(s2s.authenticate("new-token-0123456789abcdef0123456789", None).await.is_ok());
    /// # });
    /// ```
    pub async fn authenticate(
        &self,
        token: &str,
        service_name: Option<&str>,
    ) -> Result<S2sIdentity> {
        let accepted = match &*self.tokens {
            Tokens::Disabled => {
                return Err(Error::Configuration(ConfigError::invalid(
                    "S2S authentication",
                    "is not enabled; set AUTH_S2S_TOKENS (comma-separated tokens)",
                )));
            }
            Tokens::Fixed(tokens) => tokens.clone(),
            Tokens::Dynamic { name, source } => {
                let tokens = source()
                    .map(|v| crate::config::split_tokens(&v))
                    .unwrap_or_default();
                if tokens.is_empty() {
                    return Err(Error::Configuration(ConfigError::invalid(
                        name.clone(),
                        "is not set or empty; set it to comma-separated S2S tokens",
                    )));
                }
                tokens
            }
        };
        let service_name = service_name.map(|s| s.chars().take(128).collect::<String>());
        // Compare digests, so every comparison is over 32 bytes whatever the lengths, and check
        // every accepted token without stopping at a match.
        let presented = digest(token.get(..MAX_TOKEN_LENGTH.min(token.len())).unwrap_or(""));
        let mut matched = false;
        for candidate in &accepted {
            matched |= constant_time_eq(&presented, &digest(candidate.expose_secret()));
        }
        if matched && token.len() <= MAX_TOKEN_LENGTH {
            self.events
                .emit(AuthEvent::S2sAuthSuccess {
                    service_name: service_name.clone(),
                })
                .await;
            Ok(S2sIdentity::new(service_name))
        } else {
            self.events
                .emit(AuthEvent::S2sAuthFailed { service_name })
                .await;
            Err(Error::InvalidCredentials)
        }
    }
}

fn digest(value: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl fmt::Debug for S2SService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &*self.tokens {
            Tokens::Disabled => "disabled".to_owned(),
            Tokens::Fixed(t) => format!("{} fixed tokens", t.len()),
            Tokens::Dynamic { name, .. } => format!("from {name}"),
        };
        f.debug_struct("S2SService").field("tokens", &mode).finish()
    }
}
