//! Have I Been Pwned's [range API](https://haveibeenpwned.com/API/v3#PwnedPasswords) for
//! auth's breached-password check.
//!
//! [`HttpPwnedPasswords`] implements [`auth_core::PwnedPasswords`]: it asks
//! `GET {base}/range/{prefix}` with only the first five hexadecimal characters of the
//! password's SHA-1 (k-anonymity), with the `Add-Padding: true` header so the answer's size
//! does not tell the prefix either, under a timeout. Any server speaking the same protocol
//! works: the public API (the default), a self-hosted mirror, or a test's stand-in.
//!
//! ```no_run
//! use auth_service::{AuthConfig, BreachedPasswordValidator, PasswordPolicy};
//! use auth_pwned::HttpPwnedPasswords;
//!
//! let pwned = HttpPwnedPasswords::new(HttpPwnedPasswords::PUBLIC_API)?;
//! let config = AuthConfig::builder()
//!     .password_policy(PasswordPolicy::default().with_breach_check(BreachedPasswordValidator::new(pwned)))
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The check is off unless a policy adds it. When the source fails (a timeout, an outage),
//! the validator accepts the password with a warning unless it is set to refuse
//! ([`auth_core::BreachSourceFailure`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Error, PwnedPasswords, PwnedRange, Result, async_trait};

/// The largest range body accepted, in bytes (real padded ranges are about 40 KB).
pub const MAX_RANGE_BYTES: usize = 512 * 1024;

/// The range API over HTTP(S). Cheap to clone; one connection pool.
///
/// ```
/// use std::time::Duration;
/// use auth_pwned::HttpPwnedPasswords;
/// let pwned = HttpPwnedPasswords::new("http://127.0.0.1:9/")?.with_timeout(Duration::from_secs(1));
/// assert_eq!(pwned.base_url(), "http://127.0.0.1:9");
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpPwnedPasswords {
    client: auth_http::HttpsClient,
    base: Arc<str>,
}

impl fmt::Debug for HttpPwnedPasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPwnedPasswords")
            .field("base", &self.base)
            .field("timeout", &self.client.timeout())
            .finish_non_exhaustive()
    }
}

impl HttpPwnedPasswords {
    /// Have I Been Pwned's public range API.
    pub const PUBLIC_API: &'static str = "https://api.pwnedpasswords.com";

    /// The default time allowed for one range request (connection, answer and body).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

    /// A client for the range API at `base_url` (`{base_url}/range/{prefix}` is asked), over
    /// HTTPS with Mozilla's root certificates (webpki-roots) and the ring provider, or plain
    /// HTTP for a mirror on a private network. The process's rustls default provider is
    /// neither read nor installed.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when `base_url` is not an `http` or `https` URL with a host;
    /// [`Error::Backend`] when TLS cannot be configured.
    ///
    /// ```
    /// use auth_pwned::HttpPwnedPasswords;
    /// assert!(HttpPwnedPasswords::new(HttpPwnedPasswords::PUBLIC_API).is_ok());
    /// assert!(HttpPwnedPasswords::new("ftp://mirror").is_err());
    /// ```
    pub fn new(base_url: &str) -> Result<Self> {
        let base = base_url.trim_end_matches('/');
        let valid = base
            .parse::<http::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some());
        if valid.is_none() {
            return Err(invalid_url(base_url));
        }
        Ok(Self {
            client: auth_http::HttpsClient::new()?
                .with_timeout(Self::DEFAULT_TIMEOUT)
                .with_max_body(MAX_RANGE_BYTES),
            base: base.into(),
        })
    }

    /// Allows each range request `timeout` (default [`Self::DEFAULT_TIMEOUT`]).
    ///
    /// ```
    /// # use auth_pwned::HttpPwnedPasswords;
    /// let p = HttpPwnedPasswords::new("http://mirror.internal")?.with_timeout(std::time::Duration::from_millis(500));
    /// assert!(format!("{p:?}").contains("500ms"));
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// The base URL, without a trailing slash.
    ///
    /// ```
    /// # use auth_pwned::HttpPwnedPasswords;
    /// assert_eq!(HttpPwnedPasswords::new("https://api.pwnedpasswords.com/")?.base_url(), "https://api.pwnedpasswords.com");
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn fetch(&self, prefix: &str) -> Result<PwnedRange> {
        const ASKING: &str = "asking the breached-password API";
        let request = http::Request::get(format!("{}/range/{prefix}", self.base))
            .header("Add-Padding", "true")
            .header(
                "User-Agent",
                concat!("auth-pwned/", env!("CARGO_PKG_VERSION")),
            )
            .body(Vec::new())
            .map_err(|e| Error::backend(ASKING, e))?;
        let response = self.client.send(request, ASKING).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::backend(
                ASKING,
                std::io::Error::other(format!("the range API answered {status}")),
            ));
        }
        let text = std::str::from_utf8(response.body())
            .map_err(|e| Error::backend("reading the breached-password API's answer", e))?;
        PwnedRange::parse(text)
    }
}

fn invalid_url(given: &str) -> Error {
    Error::Configuration(auth_core::ConfigError::invalid(
        "AUTH_PWNED_URL",
        format!("{given:?} is not an http:// or https:// URL of a range API"),
    ))
}

#[async_trait]
impl PwnedPasswords for HttpPwnedPasswords {
    async fn range(&self, prefix: &str) -> Result<PwnedRange> {
        if prefix.len() != 5 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Unsupported(
                "a range prefix is 5 hexadecimal characters".into(),
            ));
        }
        let prefix = prefix.to_ascii_uppercase();
        let range = self.fetch(&prefix).await?;
        tracing::debug!(prefix, suffixes = range.len(), "breached-password range");
        Ok(range)
    }
}
