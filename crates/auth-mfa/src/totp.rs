//! TOTP (RFC 6238) on totp-rs: the settings of one enrolment, codes, and step matching.

use auth_service::{ConfigError, Error, Result};
use totp_rs::{Algorithm, Builder, Totp};

/// The HMAC behind the codes. SHA1 is what authenticator apps support everywhere.
///
/// ```
/// use auth_mfa::TotpAlgorithm;
/// assert_eq!(TotpAlgorithm::Sha256.as_str(), "SHA256");
/// assert_eq!(TotpAlgorithm::parse("sha512"), Some(TotpAlgorithm::Sha512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TotpAlgorithm {
    /// HMAC-SHA1 (the default and what every app supports).
    #[default]
    Sha1,
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl TotpAlgorithm {
    /// The name used in otpauth URIs and in storage.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses a name (any case).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Self::Sha1),
            "SHA256" => Some(Self::Sha256),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    fn totp(self) -> Algorithm {
        match self {
            Self::Sha1 => Algorithm::SHA1,
            Self::Sha256 => Algorithm::SHA256,
            Self::Sha512 => Algorithm::SHA512,
        }
    }
}

/// How codes are made and checked: algorithm, digits (6 or 8), step length and the accepted
/// clock skew in steps either side (default ±1).
///
/// ```
/// use auth_mfa::{TotpAlgorithm, TotpSettings};
/// let s = TotpSettings::default();
/// assert_eq!((s.algorithm, s.digits, s.step_secs, s.skew), (TotpAlgorithm::Sha1, 6, 30, 1));
/// assert!(TotpSettings { digits: 7, ..s }.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpSettings {
    /// The HMAC.
    pub algorithm: TotpAlgorithm,
    /// 6 or 8.
    pub digits: u8,
    /// Seconds per step (30).
    pub step_secs: u32,
    /// Steps accepted before and after the current one (1).
    pub skew: u8,
}

impl Default for TotpSettings {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            step_secs: 30,
            skew: 1,
        }
    }
}

impl TotpSettings {
    /// Checks the values: 6 or 8 digits, a step of 1 to 300 seconds, a skew of at most 10.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &'static str, reason: &'static str| {
            Err(Error::Configuration(ConfigError::invalid(name, reason)))
        };
        if !matches!(self.digits, 6 | 8) {
            return bad("totp digits", "must be 6 or 8");
        }
        if !(1..=300).contains(&self.step_secs) {
            return bad("totp step", "must be 1 to 300 seconds");
        }
        if self.skew > 10 {
            return bad("totp skew", "must be at most 10 steps");
        }
        Ok(())
    }
}

/// A TOTP generator and checker for one secret.
///
/// ```
/// use auth_mfa::{TotpCode, TotpSettings};
/// // RFC 6238 Appendix B, SHA1, T = 59 s.
/// let totp = TotpCode::new(b"12345678901234567890", TotpSettings { digits: 8, ..Default::default() }).unwrap();
/// assert_eq!(totp.generate(59), "94287082");
/// assert_eq!(totp.matching_step("94287082", 59), Some(1));
/// assert_eq!(totp.matching_step("94287082", 59 + 60), None); // two steps later: outside ±1
/// ```
pub struct TotpCode {
    totp: Totp,
    settings: TotpSettings,
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCode")
            .field("settings", &self.settings)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl TotpCode {
    /// A generator for `secret` (at least 16 bytes; 20 recommended).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for invalid settings or a short secret.
    pub fn new(secret: &[u8], settings: TotpSettings) -> Result<Self> {
        Self::labelled(secret, settings, None, "")
    }

    /// A generator for a base32 secret (as shown to users and in otpauth URIs).
    ///
    /// ```
    /// use auth_mfa::{TotpCode, TotpSettings};
    /// let totp = TotpCode::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", TotpSettings::default()).unwrap();
    /// assert_eq!(totp.generate(59), "287082");
    /// assert!(TotpCode::from_base32("not base32!", TotpSettings::default()).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for text that is not base32; as [`new`](Self::new) otherwise.
    pub fn from_base32(secret: &str, settings: TotpSettings) -> Result<Self> {
        let bytes = totp_rs::Secret::try_from_base32(secret)
            .map_err(|_| Error::invalid("secret", "invalid_base32", "the secret is not base32"))?;
        Self::new(bytes.as_ref(), settings)
    }

    pub(crate) fn labelled(
        secret: &[u8],
        settings: TotpSettings,
        issuer: Option<&str>,
        account: &str,
    ) -> Result<Self> {
        settings.validate()?;
        let totp = Builder::new()
            .with_algorithm(settings.algorithm.totp())
            .with_digits(settings.digits)
            .with_skew(u16::from(settings.skew))
            .with_step_duration(u64::from(settings.step_secs))
            .with_secret(secret.to_vec())
            .with_issuer(issuer)
            .with_account_name(account)
            .build()
            .map_err(|e| Error::Configuration(ConfigError::invalid("totp", e.to_string())))?;
        Ok(Self { totp, settings })
    }

    /// The code for unix time `time`.
    #[must_use]
    pub fn generate(&self, time: u64) -> String {
        self.totp.generate(time).to_string()
    }

    /// The step (time / step length) whose code is `code`, looking `skew` steps either side
    /// of `time`; codes compare in constant time. Spaces and dashes in `code` are ignored.
    #[must_use]
    pub fn matching_step(&self, code: &str, time: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if code.len() != usize::from(self.settings.digits)
            || !code.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        self.totp.check(&code, time)
    }

    /// The `otpauth://totp/...` provisioning URI (issuer and account percent-encoded).
    pub(crate) fn uri(&self) -> Result<String> {
        self.totp
            .to_url()
            .map_err(|e| Error::Configuration(ConfigError::invalid("totp", e.to_string())))
    }
}
