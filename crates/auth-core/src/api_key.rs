//! API keys: long-lived, scoped, rotatable credentials for machines. The key format (a prefix
//! secret scanners can find, 190 random bits, a CRC32 checksum so a mangled key is refused
//! before any lookup), the records, the [`ApiKeyStore`] trait and its memory implementation.
//! `AuthService` creates, verifies, rolls and revokes keys
//! (`AuthService::with_api_keys`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ConfigError, Error, Result};
use crate::secret::SecretString;
use crate::user::UserId;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters after the prefix (62^32 ≈ 2^190).
const RANDOM_CHARS: usize = 32;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
const CHECKSUM_CHARS: usize = 6;
/// Characters of the random part shown in listings (after the prefix).
const START_CHARS: usize = 4;
/// Longest accepted prefix.
pub(crate) const MAX_PREFIX_LEN: usize = 16;

/// The shape of this service's keys: `<prefix><32 random base62><6 base62 CRC32>`, for
/// example `ak_live_` + 38 characters. The prefix tells a secret scanner (and a human) what the
/// string is; the checksum refuses a truncated or mistyped key without touching the store.
///
/// ```
/// use auth_core::ApiKeyFormat;
/// let format = ApiKeyFormat::new("ak_test_").unwrap();
/// let (key, start) = format.generate();
/// assert!(key.expose_secret().starts_with("ak_test_") && key.expose_secret().starts_with(&start));
/// assert!(format.check(key.expose_secret()));
/// let mut typo = key.expose_secret().to_owned();
/// typo.replace_range(10..11, if &typo[10..11] == "x" { "y" } else { "x" });
/// assert!(!format.check(&typo), "a changed character fails the checksum");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyFormat {
    prefix: String,
}

impl Default for ApiKeyFormat {
    fn default() -> Self {
        Self {
            prefix: "ak_live_".into(),
        }
    }
}

impl ApiKeyFormat {
    /// Keys starting with `prefix` (1 to 16 characters of `[A-Za-z0-9_]`).
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::ConfigError) for an empty, long or odd prefix.
    ///
    /// ```
    /// assert!(auth_core::ApiKeyFormat::new("ak_live_").is_ok());
    /// assert!(auth_core::ApiKeyFormat::new("a b").is_err());
    /// ```
    pub fn new(prefix: &str) -> std::result::Result<Self, ConfigError> {
        if prefix.is_empty()
            || prefix.len() > MAX_PREFIX_LEN
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ConfigError::invalid(
                "api key prefix",
                "must be 1 to 16 characters of A-Z, a-z, 0-9 and _",
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    ///
    /// ```
    /// assert_eq!(auth_core::ApiKeyFormat::default().prefix(), "ak_live_");
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A new key and its visible start (the prefix and four characters).
    ///
    /// ```
    /// let (key, start) = auth_core::ApiKeyFormat::default().generate();
    /// assert_eq!(key.expose_secret().len(), "ak_live_".len() + 38);
    /// assert_eq!(start.len(), "ak_live_".len() + 4);
    /// ```
    #[must_use]
    pub fn generate(&self) -> (SecretString, String) {
        let mut key = String::with_capacity(self.prefix.len() + RANDOM_CHARS + CHECKSUM_CHARS);
        key.push_str(&self.prefix);
        // Rejection sampling: bytes >= 248 would bias the alphabet.
        while key.len() < self.prefix.len() + RANDOM_CHARS {
            for b in crate::random::bytes(48) {
                if b < 248 && key.len() < self.prefix.len() + RANDOM_CHARS {
                    key.push(char::from(BASE62[usize::from(b % 62)]));
                }
            }
        }
        let checksum = checksum(&key);
        key.push_str(&checksum);
        let start = key[..self.prefix.len() + START_CHARS].to_owned();
        (SecretString::new(key), start)
    }

    /// Whether `key` has this format and a valid checksum (no store access).
    ///
    /// ```
    /// let format = auth_core::ApiKeyFormat::default();
    /// assert!(!format.check("ak_live_short"));
    /// assert!(!format.check("Bearer something"));
    /// ```
    #[must_use]
    pub fn check(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        if rest.len() != RANDOM_CHARS + CHECKSUM_CHARS
            || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return false;
        }
        let (body, sum) = key.split_at(key.len() - CHECKSUM_CHARS);
        crate::constant_time_eq(checksum(body).as_bytes(), sum.as_bytes())
    }

    /// The visible start of a well-formed key: the prefix and four characters, shown in lists
    /// so a user can tell keys apart.
    ///
    /// ```
    /// let format = auth_core::ApiKeyFormat::new("ak_live_")?;
    /// assert_eq!(format.start_of("ak_live_Ab12cdef"), "ak_live_Ab12");
    /// # Ok::<(), auth_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn start_of(&self, key: &str) -> String {
        key.get(..self.prefix.len() + START_CHARS)
            .unwrap_or_default()
            .to_owned()
    }
}

/// CRC32 of `body` in six base62 digits.
fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whom a key acts for.
///
/// ```
/// use auth_core::{ApiKeyOwner, UserId};
/// assert_eq!(ApiKeyOwner::User(UserId::new("7")).to_string(), "user:7");
/// assert_eq!(ApiKeyOwner::Service("ci".into()).to_string(), "service:ci");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ApiKeyOwner {
    /// A user: the key acts as them, and stops working when they are deactivated.
    User(UserId),
    /// A service account, which belongs to no person (a CI job, another system).
    Service(String),
}

impl ApiKeyOwner {
    /// `("user" | "service", id)`, as stored.
    ///
    /// ```
    /// # use auth_core::*;
    /// assert_eq!(ApiKeyOwner::Service("ci".into()).parts(), ("service", "ci"));
    /// ```
    #[must_use]
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Self::User(id) => ("user", id.as_str()),
            Self::Service(name) => ("service", name),
        }
    }

    /// The owner from its stored parts.
    ///
    /// ```
    /// # use auth_core::*;
    /// assert_eq!(ApiKeyOwner::from_parts("user", "7"), Some(ApiKeyOwner::User(UserId::new("7"))));
    /// assert_eq!(ApiKeyOwner::from_parts("robot", "7"), None);
    /// ```
    #[must_use]
    pub fn from_parts(kind: &str, id: &str) -> Option<Self> {
        match kind {
            "user" => Some(Self::User(UserId::new(id))),
            "service" => Some(Self::Service(id.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Display for ApiKeyOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, id) = self.parts();
        write!(f, "{kind}:{id}")
    }
}

/// A per-key request limit: at most `requests` per `window` (fixed windows).
///
/// ```
/// let limit = auth_core::ApiKeyRateLimit::new(100, std::time::Duration::from_secs(60)).unwrap();
/// assert_eq!(limit.requests, 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyRateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, in seconds.
    pub window_secs: u32,
}

impl ApiKeyRateLimit {
    /// `requests` per `window` (both at least 1; the window at most a day).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`](crate::Error::Validation) for a zero or over-long value.
    ///
    /// ```
    /// assert!(auth_core::ApiKeyRateLimit::new(0, std::time::Duration::from_secs(1)).is_err());
    /// ```
    pub fn new(requests: u32, window: Duration) -> Result<Self> {
        let window_secs = u32::try_from(window.as_secs()).unwrap_or(u32::MAX);
        if requests == 0 || window_secs == 0 || window_secs > 86_400 {
            return Err(Error::invalid(
                "rate_limit",
                "invalid_rate_limit",
                "requests and window must be positive, the window at most a day",
            ));
        }
        Ok(Self {
            requests,
            window_secs,
        })
    }
}

/// One API key as stored (never the key itself: its SHA-256 lives beside it, in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyRecord {
    /// Public id.
    pub id: String,
    /// Whom it acts for.
    pub owner: ApiKeyOwner,
    /// A label for listings.
    pub name: String,
    /// Free-form scopes the application checks; `*` grants every scope.
    pub scopes: Vec<String>,
    /// The prefix and the first characters, for listings.
    pub start: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// It stops working then (none: never).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use (updated at most once a minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The client address of that use.
    pub last_ip: Option<String>,
    /// Disabled keys are refused.
    pub enabled: bool,
    /// Requests per window for this key.
    pub rate_limit: Option<ApiKeyRateLimit>,
    /// Application data.
    pub metadata: serde_json::Value,
}

impl ApiKeyRecord {
    /// A new enabled key record.
    ///
    /// ```
    /// use auth_core::{ApiKeyOwner, ApiKeyRecord, UserId};
    /// let r = ApiKeyRecord::new("id1", ApiKeyOwner::User(UserId::new("1")), "ci", vec!["read".into()],
    ///     "ak_live_AbCd", time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(r.enabled && r.has_scope("read") && !r.has_scope("write"));
    /// ```
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        owner: ApiKeyOwner,
        name: impl Into<String>,
        scopes: Vec<String>,
        start: impl Into<String>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            owner,
            name: name.into(),
            scopes,
            start: start.into(),
            created_at,
            expires_at: None,
            last_used_at: None,
            last_ip: None,
            enabled: true,
            rate_limit: None,
            metadata: serde_json::Value::Null,
        }
    }

    /// Whether the key grants `scope` (listed, or `*`).
    ///
    /// ```
    /// # use auth_core::*;
    /// let r = ApiKeyRecord::new("i", ApiKeyOwner::Service("s".into()), "n", vec!["*".into()], "s", time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(r.has_scope("anything"));
    /// ```
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == "*" || s == scope)
    }
}

/// A key as found by its secret: the record, and when this secret stops working (a rolled
/// key's previous secret works until its grace period ends).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FoundApiKey {
    /// The key.
    pub record: ApiKeyRecord,
    /// The end of this secret's grace period, if it was replaced.
    pub secret_expires_at: Option<OffsetDateTime>,
}

impl FoundApiKey {
    /// A found key.
    ///
    /// ```
    /// # use auth_core::*;
    /// let r = ApiKeyRecord::new("i", ApiKeyOwner::Service("s".into()), "n", vec![], "s", time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(FoundApiKey::new(r, None).secret_expires_at.is_none());
    /// ```
    #[must_use]
    pub fn new(record: ApiKeyRecord, secret_expires_at: Option<OffsetDateTime>) -> Self {
        Self {
            record,
            secret_expires_at,
        }
    }
}

/// Storage for API keys. Secrets are stored as hashes with a unique index; `roll` and
/// `reserve` are atomic, so concurrent rolls or requests cannot both win.
///
/// Implementations: `MemoryApiKeyStore`, and `auth_apikeys::db::DbApiKeyStore` (SQLite,
/// PostgreSQL, MariaDB); both pass `auth_testkit::conformance::api_key_store`.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key with its first secret's hash.
    async fn create(&self, record: &ApiKeyRecord, secret_hash: &str) -> Result<()>;
    /// The key whose live or graced secret hashes to `secret_hash` (one indexed lookup).
    async fn find_by_secret(&self, secret_hash: &str) -> Result<Option<FoundApiKey>>;
    /// One key by id.
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// An owner's keys, newest first.
    async fn list(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>>;
    /// Adds `new_hash` as the key's secret; every earlier secret of the key keeps working until
    /// `previous_until` at the latest. False when the key does not exist.
    async fn roll(&self, id: &str, new_hash: &str, previous_until: OffsetDateTime) -> Result<bool>;
    /// Deletes a key and its secrets; false when it did not exist.
    async fn delete(&self, id: &str) -> Result<bool>;
    /// Enables or disables a key; false when it does not exist.
    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool>;
    /// Records a use at `now` from `ip`, unless one was recorded after `not_before`; true when
    /// it wrote (at most one writer per interval under concurrency).
    async fn touch(
        &self,
        id: &str,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<bool>;
    /// Counts one request in the key's window starting at `window_start` (unix seconds) if
    /// fewer than `limit` were counted; true when allowed. Atomic.
    async fn reserve(&self, id: &str, window_start: i64, limit: u32) -> Result<bool>;
    /// Registers a service account (idempotent); true when it is new.
    async fn create_service_account(&self, name: &str, now: OffsetDateTime) -> Result<bool>;
    /// Whether a service account exists.
    async fn service_account_exists(&self, name: &str) -> Result<bool>;
    /// Deletes graced secrets past their end, windows older than `now`'s day, and keys
    /// expired before `now`; returns how many records went.
    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64>;
}
