//! Breached passwords: Have I Been Pwned's k-anonymity range model. Only the first five
//! hexadecimal characters of a password's SHA-1 leave the process; the source answers every
//! suffix it knows under that prefix, and the match is made here.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// The most suffix lines a range may hold (real ranges hold about 1,000, padded ones up to
/// about 1,000 more): a larger answer is refused as malformed, so a hostile mirror cannot make
/// the server hold an unbounded map.
pub const MAX_RANGE_LINES: usize = 10_000;

/// The suffixes known under one five-character prefix, with how often each appeared in
/// breaches. Lines with a count of 0 are padding and are dropped.
///
/// ```
/// use auth_core::PwnedRange;
/// let range = PwnedRange::parse("0018A45C4D1DEF81644B54AB7F969B88D65:21\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\n")?;
/// assert_eq!(range.count("0018a45c4d1def81644b54ab7f969b88d65"), 21);
/// assert_eq!(range.count("00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), 0); // padding
/// assert_eq!(range.len(), 1);
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PwnedRange {
    counts: HashMap<Box<str>, u64>,
}

impl PwnedRange {
    /// Parses the range format: one `SUFFIX:COUNT` per line (35 hexadecimal characters, any
    /// case; `\n` or `\r\n`; blank lines ignored).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) for a line that is not `SUFFIX:COUNT` or more than
    /// [`MAX_RANGE_LINES`] lines: a source that answers garbage is a failing source.
    ///
    /// ```
    /// use auth_core::PwnedRange;
    /// assert!(PwnedRange::parse("not a range").is_err());
    /// assert!(PwnedRange::parse("").unwrap().is_empty());
    /// ```
    pub fn parse(body: &str) -> Result<Self> {
        let mut counts = HashMap::new();
        for (n, line) in body.lines().enumerate() {
            if n >= MAX_RANGE_LINES {
                return Err(malformed("more lines than a range holds"));
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (suffix, count) = line
                .split_once(':')
                .ok_or_else(|| malformed("a line without ':'"))?;
            if suffix.len() != 35 || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed("a suffix that is not 35 hexadecimal characters"));
            }
            let count: u64 = count
                .trim()
                .parse()
                .map_err(|_| malformed("a count that is not a number"))?;
            if count > 0 {
                counts.insert(suffix.to_ascii_uppercase().into_boxed_str(), count);
            }
        }
        Ok(Self { counts })
    }

    /// How many times the suffix (35 hexadecimal characters, any case) appeared; 0 when it is
    /// not in the range.
    ///
    /// ```
    /// # use auth_core::PwnedRange;
    /// assert_eq!(PwnedRange::default().count("ABC"), 0);
    /// ```
    #[must_use]
    pub fn count(&self, suffix: &str) -> u64 {
        self.counts
            .get(suffix.to_ascii_uppercase().as_str())
            .copied()
            .unwrap_or(0)
    }

    /// How many suffixes (padding excluded).
    ///
    /// ```
    /// # use auth_core::PwnedRange;
    /// assert_eq!(PwnedRange::default().len(), 0);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no suffix is known under this prefix.
    ///
    /// ```
    /// # use auth_core::PwnedRange;
    /// assert!(PwnedRange::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

fn malformed(what: &'static str) -> Error {
    Error::backend(
        "reading a breached-password range",
        std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    )
}

/// A source of breached-password ranges: Have I Been Pwned's range API (auth-pwned's
/// `HttpPwnedPasswords`), a mirror of it, or the range files on disk (`PwnedPasswordsDir`).
/// It is given only the five upper-case hexadecimal characters of a SHA-1 prefix.
///
/// ```
/// use auth_core::{async_trait, PwnedPasswords, PwnedRange, Result};
///
/// /// Knows one breached password: "password" (SHA-1 5BAA6 1E4C9B93F3F0682250B6CF8331B7EE68FD8).
/// #[derive(Debug)]
/// struct OnlyPassword;
///
/// #[async_trait]
/// impl PwnedPasswords for OnlyPassword {
///     async fn range(&self, prefix: &str) -> Result<PwnedRange> {
///         if prefix == "5BAA6" {
///             return PwnedRange::parse("1E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004");
///         }
///         Ok(PwnedRange::default())
///     }
/// }
/// ```
#[async_trait]
pub trait PwnedPasswords: Send + Sync + fmt::Debug + 'static {
    /// The range under `prefix` (five upper-case hexadecimal characters).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the source cannot be read or answers garbage.
    async fn range(&self, prefix: &str) -> Result<PwnedRange>;
}

#[async_trait]
impl<T: PwnedPasswords + ?Sized> PwnedPasswords for Arc<T> {
    async fn range(&self, prefix: &str) -> Result<PwnedRange> {
        (**self).range(prefix).await
    }
}

/// What a breach check does when its source fails (network down, mirror unreachable).
///
/// ```
/// use auth_core::BreachSourceFailure;
/// assert_eq!(BreachSourceFailure::default(), BreachSourceFailure::Allow);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BreachSourceFailure {
    /// Accept the password and log a warning (the default: an outage of a third party must
    /// not stop sign-ups and resets).
    #[default]
    Allow,
    /// Refuse the operation with the source's [`Error::Backend`](crate::Error::Backend) (a 503 over HTTP).
    Refuse,
}
