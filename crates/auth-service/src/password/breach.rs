#![allow(unused_imports)]
use async_trait::async_trait;

use crate::*;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The largest range file [`PwnedPasswordsDir`] reads, in bytes (real ones are about 40 KB).
const MAX_RANGE_FILE_BYTES: u64 = 1024 * 1024;

/// Range files in a directory, as Have I Been Pwned's downloader writes them: one file per
/// prefix, named by its five upper-case hexadecimal characters (an optional `.txt` extension
/// is also tried), each line `SUFFIX:COUNT`. A prefix without a file is an empty range. For
/// machines that must not call out, or a full offline copy.
///
/// ```
/// use auth_service::{PwnedPasswords, PwnedPasswordsDir};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("pwned-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("5BAA6"), "1E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004\n").unwrap();
/// let source = PwnedPasswordsDir::new(&dir);
/// assert_eq!(source.range("5BAA6").await?.count("1E4C9B93F3F0682250B6CF8331B7EE68FD8"), 10_434_004);
/// assert!(source.range("00000").await?.is_empty());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct PwnedPasswordsDir {
    dir: PathBuf,
}

impl PwnedPasswordsDir {
    /// Ranges read from `dir`. Nothing is read until a password is checked.
    ///
    /// ```
    /// let source = auth_service::PwnedPasswordsDir::new("/var/lib/pwned");
    /// assert!(format!("{source:?}").contains("pwned"));
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Whether the directory exists (for a configuration check at startup).
    ///
    /// ```
    /// assert!(!auth_service::PwnedPasswordsDir::new("/no/such/place").exists());
    /// ```
    #[must_use]
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }
}

#[async_trait]
impl PwnedPasswords for PwnedPasswordsDir {
    async fn range(&self, prefix: &str) -> Result<PwnedRange> {
        if prefix.len() != 5 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("a prefix that is not 5 hexadecimal characters"));
        }
        let prefix = prefix.to_ascii_uppercase();
        for name in [prefix.clone(), format!("{prefix}.txt")] {
            let path = self.dir.join(&name);
            match tokio::fs::metadata(&path).await {
                Ok(m) if m.len() > MAX_RANGE_FILE_BYTES => {
                    return Err(malformed("a range file larger than a range"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::backend("reading a breached-password range file", e)),
            }
            match tokio::fs::read_to_string(&path).await {
                Ok(body) => return PwnedRange::parse(&body),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::backend("reading a breached-password range file", e)),
            }
        }
        Ok(PwnedRange::default())
    }
}

/// Refuses passwords that appeared in a breach at least `threshold` times (default 1), as
/// NIST 800-63B asks. Add it to a policy with [`crate::PasswordPolicy::with_breach_check`];
/// `AuthService` runs it in every flow that sets a password (sign-up, change, reset,
/// administrative set, onboarding), after the other rules pass.
///
/// ```
/// use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
/// let v = BreachedPasswordValidator::new(PwnedPasswordsDir::new("/var/lib/pwned")).with_threshold(3);
/// assert_eq!(v.threshold(), 3);
/// ```
#[derive(Clone)]
pub struct BreachedPasswordValidator {
    source: Arc<dyn PwnedPasswords>,
    threshold: u64,
    on_failure: BreachSourceFailure,
}

impl fmt::Debug for BreachedPasswordValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreachedPasswordValidator")
            .field("source", &self.source)
            .field("threshold", &self.threshold)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

impl BreachedPasswordValidator {
    /// Checks against `source`, refusing any password seen at least once, accepting when the
    /// source fails (with a warning).
    ///
    /// ```
    /// # use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// assert_eq!(BreachedPasswordValidator::new(PwnedPasswordsDir::new(".")).threshold(), 1);
    /// ```
    pub fn new(source: impl PwnedPasswords) -> Self {
        Self {
            source: Arc::new(source),
            threshold: 1,
            on_failure: BreachSourceFailure::Allow,
        }
    }

    /// Refuses only passwords seen at least `threshold` times (0 is taken as 1).
    ///
    /// ```
    /// # use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// assert_eq!(BreachedPasswordValidator::new(PwnedPasswordsDir::new(".")).with_threshold(0).threshold(), 1);
    /// ```
    #[must_use]
    pub fn with_threshold(mut self, threshold: u64) -> Self {
        self.threshold = threshold.max(1);
        self
    }

    /// What to do when the source fails.
    ///
    /// ```
    /// # use auth_service::{BreachSourceFailure, BreachedPasswordValidator, PwnedPasswordsDir};
    /// let v = BreachedPasswordValidator::new(PwnedPasswordsDir::new(".")).on_source_failure(BreachSourceFailure::Refuse);
    /// # let _ = v;
    /// ```
    #[must_use]
    pub fn on_source_failure(mut self, on_failure: BreachSourceFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// The count from which a password is refused.
    ///
    /// ```
    /// # use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// assert_eq!(BreachedPasswordValidator::new(PwnedPasswordsDir::new(".")).with_threshold(10).threshold(), 10);
    /// ```
    #[must_use]
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// How many times `password` appeared in breaches, from the source (only the SHA-1's first
    /// five characters are sent).
    ///
    /// # Errors
    ///
    /// The source's [`Error::Backend`], whatever `on_source_failure` says.
    ///
    /// ```
    /// use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let v = BreachedPasswordValidator::new(PwnedPasswordsDir::new("/no/such/place"));
    /// assert_eq!(v.occurrences("password").await?, 0); // no file for 5BAA6: an empty range
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn occurrences(&self, password: &str) -> Result<u64> {
        let digest =
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        let (prefix, suffix) = hex.split_at(5);
        Ok(self.source.range(prefix).await?.count(suffix))
    }

    /// Checks one password: `Ok` when it is not (often enough) in a breach.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] with code `breached_password` (field `password`); the source's
    /// [`Error::Backend`] when it fails and the validator refuses on failure.
    ///
    /// ```
    /// use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = std::env::temp_dir().join(format!("pwned-check-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("5BAA6"), "1E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004\n").unwrap();
    /// let v = BreachedPasswordValidator::new(PwnedPasswordsDir::new(&dir));
    /// let auth_service::Error::Validation(e) = v.check("password").await.unwrap_err() else { unreachable!() };
    /// assert_eq!(e.errors()[0].code, "breached_password");
    /// assert!(v.check("violet-otter-sings-42").await.is_ok());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn check(&self, password: &str) -> Result<()> {
        match self.occurrences(password).await {
            Ok(n) if n >= self.threshold => {
                let e = Self::field_error();
                Err(Error::Validation(ValidationErrors::single(
                    e.field, e.code, e.message,
                )))
            }
            Ok(_) => Ok(()),
            Err(e) => match self.on_failure {
                BreachSourceFailure::Allow => {
                    tracing::warn!(
                        error = %e,
                        source = ?std::error::Error::source(&e),
                        "breached-password source failed; password accepted unchecked"
                    );
                    Ok(())
                }
                BreachSourceFailure::Refuse => Err(e),
            },
        }
    }

    pub(crate) fn field_error() -> FieldError {
        FieldError::new(
            "password",
            "breached_password",
            "This password has appeared in a data breach. Choose another one.",
        )
    }

    /// The rule, for forms.
    ///
    /// ```
    /// # use auth_service::{BreachedPasswordValidator, PwnedPasswordsDir};
    /// assert!(BreachedPasswordValidator::new(PwnedPasswordsDir::new(".")).help_text().contains("breach"));
    /// ```
    #[must_use]
    pub fn help_text(&self) -> String {
        "Your password can't be one that has appeared in a known data breach.".into()
    }
}

fn malformed(what: &'static str) -> Error {
    Error::backend(
        "reading a breached-password range",
        std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    )
}
