//! Tokens: kinds, claims, pairs, sessions, and the backend contract.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ConfigError, Result};
use crate::secret::SecretString;
use crate::user::UserId;

/// The longest token accepted anywhere, in bytes; longer input is rejected before any work.
pub const MAX_TOKEN_LENGTH: usize = 8192;

/// Extra claims carried by tokens: a JSON object.
pub type ExtraClaims = serde_json::Map<String, serde_json::Value>;

/// Which of the pair a token is. Serialized as `"access"` / `"refresh"` (tortoise-auth's
/// `token_type` claim values).
///
/// ```
/// use auth_core::TokenKind;
/// assert_eq!(TokenKind::Access.as_str(), "access");
/// assert_eq!(serde_json::to_string(&TokenKind::Refresh).unwrap(), "\"refresh\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Short-lived, presented on every request.
    Access,
    /// Long-lived, exchanged for a new pair exactly once.
    Refresh,
}

impl TokenKind {
    /// The wire name.
    ///
    /// ```
    /// # use auth_core::TokenKind;
    /// assert_eq!(TokenKind::Refresh.as_str(), "refresh");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a verified token says. Field names match tortoise-auth's JWT claims.
///
/// ```
/// use auth_core::{Claims, TokenKind};
/// let c = Claims::new("42", TokenKind::Access, "jti-1", 1_000, 1_900);
/// assert_eq!(c.sub, "42");
/// assert_eq!(c.user_id().as_str(), "42");
/// let json = serde_json::to_value(&c).unwrap();
/// assert_eq!(json["token_type"], "access");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Access or refresh.
    #[serde(rename = "token_type")]
    pub kind: TokenKind,
    /// Unique token id.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Application claims given at login; they survive refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraClaims>,
    /// The refresh family (one login session); shared by every pair rotated from one login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

impl Claims {
    /// Claims with no extras and no family.
    ///
    /// ```
    /// # use auth_core::{Claims, TokenKind};
    /// assert!(Claims::new("1", TokenKind::Refresh, "j", 0, 1).extra.is_none());
    /// ```
    #[must_use]
    pub fn new(
        sub: impl Into<String>,
        kind: TokenKind,
        jti: impl Into<String>,
        iat: i64,
        exp: i64,
    ) -> Self {
        Self {
            sub: sub.into(),
            kind,
            jti: jti.into(),
            iat,
            exp,
            extra: None,
            family: None,
        }
    }

    /// Sets the extra claims (an empty map means none).
    ///
    /// ```
    /// # use auth_core::{Claims, TokenKind};
    /// let mut extra = serde_json::Map::new();
    /// extra.insert("role".into(), "admin".into());
    /// let c = Claims::new("1", TokenKind::Access, "j", 0, 1).with_extra(extra);
    /// assert_eq!(c.extra.unwrap()["role"], "admin");
    /// ```
    #[must_use]
    pub fn with_extra(mut self, extra: ExtraClaims) -> Self {
        self.extra = (!extra.is_empty()).then_some(extra);
        self
    }

    /// Sets the family id.
    ///
    /// ```
    /// # use auth_core::{Claims, TokenKind};
    /// let c = Claims::new("1", TokenKind::Access, "j", 0, 1).with_family("f");
    /// assert_eq!(c.family.as_deref(), Some("f"));
    /// ```
    #[must_use]
    pub fn with_family(mut self, family: impl Into<String>) -> Self {
        self.family = Some(family.into());
        self
    }

    /// The subject as a [`UserId`](crate::UserId).
    ///
    /// ```
    /// # use auth_core::{Claims, TokenKind};
    /// assert_eq!(Claims::new("9", TokenKind::Access, "j", 0, 1).user_id().as_str(), "9");
    /// ```
    #[must_use]
    pub fn user_id(&self) -> UserId {
        UserId::new(self.sub.clone())
    }
}

/// An access and a refresh token, as issued. `Debug` redacts both tokens.
///
/// ```
/// use auth_core::{SecretString, TokenPair};
/// use time::OffsetDateTime;
/// let pair = TokenPair::new(
///     SecretString::new("a"), OffsetDateTime::UNIX_EPOCH,
///     SecretString::new("r"), OffsetDateTime::UNIX_EPOCH,
/// );
/// assert!(!format!("{pair:?}").contains("\"a\""));
/// assert_eq!(pair.token_type, "Bearer");
/// ```
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenPair {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token.
    pub refresh_token: SecretString,
    /// Always `Bearer`.
    pub token_type: String,
    /// When the access token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires_at: OffsetDateTime,
    /// When the refresh token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_expires_at: OffsetDateTime,
}

impl TokenPair {
    /// A pair.
    ///
    /// ```
    /// # use auth_core::{SecretString, TokenPair};
    /// let p = TokenPair::new(SecretString::new("a"), time::OffsetDateTime::UNIX_EPOCH,
    ///                        SecretString::new("r"), time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(p.access_token.expose_secret(), "a");
    /// ```
    #[must_use]
    pub fn new(
        access_token: SecretString,
        access_expires_at: OffsetDateTime,
        refresh_token: SecretString,
        refresh_expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            access_token,
            refresh_token,
            token_type: "Bearer".to_owned(),
            access_expires_at,
            refresh_expires_at,
        }
    }
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a login came from, kept with the session for the device list.
///
/// ```
/// use auth_core::SessionMeta;
/// let meta = SessionMeta::new().with_ip("203.0.113.7".parse().unwrap()).with_user_agent("curl/8");
/// assert_eq!(meta.user_agent.as_deref(), Some("curl/8"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionMeta {
    /// Client IP address.
    pub ip: Option<IpAddr>,
    /// Client user agent, truncated to [`SessionMeta::MAX_USER_AGENT`](crate::SessionMeta::MAX_USER_AGENT) bytes.
    pub user_agent: Option<String>,
}

impl SessionMeta {
    /// The longest user agent kept, in bytes.
    pub const MAX_USER_AGENT: usize = 512;

    /// No metadata.
    ///
    /// ```
    /// # use auth_core::SessionMeta;
    /// assert!(SessionMeta::new().ip.is_none());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the IP address.
    ///
    /// ```
    /// # use auth_core::SessionMeta;
    /// assert!(SessionMeta::new().with_ip([127, 0, 0, 1].into()).ip.is_some());
    /// ```
    #[must_use]
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent, truncated on a character boundary.
    ///
    /// ```
    /// # use auth_core::SessionMeta;
    /// let m = SessionMeta::new().with_user_agent("x".repeat(600));
    /// assert_eq!(m.user_agent.unwrap().len(), SessionMeta::MAX_USER_AGENT);
    /// ```
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        let mut ua: String = user_agent.into();
        if ua.len() > Self::MAX_USER_AGENT {
            let mut end = Self::MAX_USER_AGENT;
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua.truncate(end);
        }
        self.user_agent = Some(ua);
        self
    }
}

/// How long tokens live. Validated: every lifetime positive, refresh at least access, and the
/// absolute session lifetime at least the refresh lifetime.
///
/// ```
/// use std::time::Duration;
/// use auth_core::TokenLifetimes;
/// let l = TokenLifetimes::default();
/// assert_eq!(l.access(), Duration::from_secs(900));
/// assert_eq!(l.refresh(), Duration::from_secs(604_800));
/// assert!(TokenLifetimes::new(Duration::ZERO, l.refresh(), l.absolute()).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    access: Duration,
    refresh: Duration,
    absolute: Duration,
}

impl TokenLifetimes {
    /// Default access lifetime: 15 minutes.
    pub const DEFAULT_ACCESS: Duration = Duration::from_secs(900);
    /// Default refresh lifetime: 7 days.
    pub const DEFAULT_REFRESH: Duration = Duration::from_secs(604_800);
    /// Default absolute session lifetime: 30 days, after which rotation stops and the user logs in again.
    pub const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(2_592_000);

    /// Validated lifetimes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`](crate::ConfigError::Invalid) when a lifetime is zero, refresh is shorter than access, or the
    /// absolute lifetime is shorter than refresh.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use auth_core::TokenLifetimes;
    /// let l = TokenLifetimes::new(Duration::from_secs(60), Duration::from_secs(3600), Duration::from_secs(86_400))?;
    /// assert_eq!(l.absolute(), Duration::from_secs(86_400));
    /// # Ok::<(), auth_core::ConfigError>(())
    /// ```
    pub fn new(
        access: Duration,
        refresh: Duration,
        absolute: Duration,
    ) -> Result<Self, ConfigError> {
        if access.is_zero() {
            return Err(ConfigError::invalid(
                "access_token_lifetime",
                "must be positive",
            ));
        }
        if refresh < access {
            return Err(ConfigError::invalid(
                "refresh_token_lifetime",
                "must be at least access_token_lifetime",
            ));
        }
        if absolute < refresh {
            return Err(ConfigError::invalid(
                "refresh_absolute_lifetime",
                "must be at least refresh_token_lifetime",
            ));
        }
        Ok(Self {
            access,
            refresh,
            absolute,
        })
    }

    /// Access token lifetime.
    ///
    /// ```
    /// # use auth_core::TokenLifetimes;
    /// assert_eq!(TokenLifetimes::default().access().as_secs(), 900);
    /// ```
    #[must_use]
    pub fn access(&self) -> Duration {
        self.access
    }

    /// Refresh token lifetime (each rotation starts a new one, capped by the absolute lifetime).
    ///
    /// ```
    /// # use auth_core::TokenLifetimes;
    /// assert_eq!(TokenLifetimes::default().refresh().as_secs(), 604_800);
    /// ```
    #[must_use]
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// Absolute session lifetime from login; refresh never extends past it.
    ///
    /// ```
    /// # use auth_core::TokenLifetimes;
    /// assert_eq!(TokenLifetimes::default().absolute().as_secs(), 2_592_000);
    /// ```
    #[must_use]
    pub fn absolute(&self) -> Duration {
        self.absolute
    }
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Self::DEFAULT_ACCESS,
            refresh: Self::DEFAULT_REFRESH,
            absolute: Self::DEFAULT_ABSOLUTE,
        }
    }
}

/// What to issue: for whom, with which extras, from where, for how long.
///
/// ```
/// use auth_core::{IssueRequest, UserId};
/// let req = IssueRequest::new(UserId::new("1"));
/// assert!(req.extra.is_empty());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssueRequest {
    /// The user.
    pub user_id: UserId,
    /// Extra claims for both tokens (kept across refresh).
    pub extra: ExtraClaims,
    /// Session metadata.
    pub meta: SessionMeta,
    /// Lifetimes.
    pub lifetimes: TokenLifetimes,
}

impl IssueRequest {
    /// A request with no extras, no metadata and default lifetimes.
    ///
    /// ```
    /// # use auth_core::{IssueRequest, UserId};
    /// assert_eq!(IssueRequest::new(UserId::new("1")).user_id.as_str(), "1");
    /// ```
    #[must_use]
    pub fn new(user_id: UserId) -> Self {
        Self {
            user_id,
            extra: ExtraClaims::new(),
            meta: SessionMeta::default(),
            lifetimes: TokenLifetimes::default(),
        }
    }

    /// Sets extra claims.
    ///
    /// ```
    /// # use auth_core::{IssueRequest, UserId};
    /// let mut m = serde_json::Map::new();
    /// m.insert("tenant".into(), "acme".into());
    /// assert_eq!(IssueRequest::new(UserId::new("1")).with_extra(m).extra.len(), 1);
    /// ```
    #[must_use]
    pub fn with_extra(mut self, extra: ExtraClaims) -> Self {
        self.extra = extra;
        self
    }

    /// Sets session metadata.
    ///
    /// ```
    /// # use auth_core::{IssueRequest, SessionMeta, UserId};
    /// let r = IssueRequest::new(UserId::new("1")).with_meta(SessionMeta::new().with_user_agent("ua"));
    /// assert!(r.meta.user_agent.is_some());
    /// ```
    #[must_use]
    pub fn with_meta(mut self, meta: SessionMeta) -> Self {
        self.meta = meta;
        self
    }

    /// Sets lifetimes.
    ///
    /// ```
    /// # use auth_core::{IssueRequest, TokenLifetimes, UserId};
    /// let r = IssueRequest::new(UserId::new("1")).with_lifetimes(TokenLifetimes::default());
    /// assert_eq!(r.lifetimes, TokenLifetimes::default());
    /// ```
    #[must_use]
    pub fn with_lifetimes(mut self, lifetimes: TokenLifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }
}

/// What to do when rotating a refresh token.
///
/// ```
/// use auth_core::RotateRequest;
/// let r = RotateRequest::new();
/// assert!(r.meta.ip.is_none());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RotateRequest {
    /// Metadata of the client that is refreshing (updates the session's last-used data).
    pub meta: SessionMeta,
    /// Lifetimes for the new pair.
    pub lifetimes: TokenLifetimes,
    /// How long after its rotation the same refresh token may be presented again by its own
    /// racing client (two tabs, an app resuming with two requests in flight) and receive the
    /// same successor, instead of counting as reuse (RFC 9700 §4.14.2). Once the successor
    /// has been used, or after the window, a second use still revokes the whole family.
    /// [`DEFAULT_REUSE_WINDOW`] unless set; zero turns it off.
    pub reuse_window: Duration,
}

/// The default [`RotateRequest::reuse_window`]: ten seconds, Supabase's reuse interval. Long
/// enough for the requests a client sends at once, short enough that a token stolen and used
/// later is still caught.
///
/// ```
/// assert_eq!(auth_core::DEFAULT_REUSE_WINDOW.as_secs(), 10);
/// ```
pub const DEFAULT_REUSE_WINDOW: Duration = Duration::from_secs(10);

impl Default for RotateRequest {
    fn default() -> Self {
        Self {
            meta: SessionMeta::default(),
            lifetimes: TokenLifetimes::default(),
            reuse_window: DEFAULT_REUSE_WINDOW,
        }
    }
}

impl RotateRequest {
    /// Default lifetimes, no metadata.
    ///
    /// ```
    /// # use auth_core::{RotateRequest, TokenLifetimes};
    /// assert_eq!(RotateRequest::new().lifetimes, TokenLifetimes::default());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets metadata.
    ///
    /// ```
    /// # use auth_core::{RotateRequest, SessionMeta};
    /// assert!(RotateRequest::new().with_meta(SessionMeta::new().with_user_agent("x")).meta.user_agent.is_some());
    /// ```
    #[must_use]
    pub fn with_meta(mut self, meta: SessionMeta) -> Self {
        self.meta = meta;
        self
    }

    /// Sets lifetimes.
    ///
    /// ```
    /// # use auth_core::{RotateRequest, TokenLifetimes};
    /// assert_eq!(RotateRequest::new().with_lifetimes(TokenLifetimes::default()).lifetimes, TokenLifetimes::default());
    /// ```
    #[must_use]
    pub fn with_lifetimes(mut self, lifetimes: TokenLifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// Sets the reuse window (zero: any second use is reuse).
    ///
    /// ```
    /// # use auth_core::RotateRequest;
    /// use std::time::Duration;
    /// assert_eq!(RotateRequest::new().with_reuse_window(Duration::ZERO).reuse_window, Duration::ZERO);
    /// ```
    #[must_use]
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window = window;
        self
    }
}

/// The result of presenting a refresh token for rotation.
#[derive(Debug, Clone)]
pub enum RotateOutcome {
    /// The token was consumed and a new pair issued in the same family.
    Rotated {
        /// The claims of the refresh token that was consumed.
        previous: Claims,
        /// The new pair.
        pair: TokenPair,
    },
    /// The token had already been rotated: it was stolen or replayed. The backend has revoked
    /// the whole family; the caller reports [`crate::Error::TokenRevoked`].
    Reused {
        /// The family's user.
        user_id: UserId,
        /// The family that was revoked.
        family: String,
    },
}

/// A check the token backend runs before a refresh token is consumed and the next pair issued
/// (the service uses it to refuse inactive or deleted users). A refusal changes nothing: the
/// token is not consumed and no pair is issued (a SQL backend runs it inside the consuming
/// transaction and rolls back).
#[async_trait]
pub trait RefreshGuard: Send + Sync {
    /// Whether the pair may be issued.
    ///
    /// # Errors
    ///
    /// Any [`crate::Error`]; the backend returns it unchanged.
    async fn allow(&self, claims: &Claims) -> Result<()>;
}

/// A guard that allows every rotation (for using a backend on its own).
///
/// ```
/// let _ = auth_core::AllowAll;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[async_trait]
impl RefreshGuard for AllowAll {
    async fn allow(&self, _claims: &Claims) -> Result<()> {
        Ok(())
    }
}

/// One login session (a refresh family): a device in the user's session list.
///
/// ```
/// use auth_core::SessionInfo;
/// let s = SessionInfo::new("fam", time::OffsetDateTime::UNIX_EPOCH, time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(s.id, "fam");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// Session id (the refresh family id).
    pub id: String,
    /// When the session started (login).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a token of the session was last issued or refreshed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When the session's current refresh token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Metadata of the last use.
    pub meta: SessionMeta,
}

impl SessionInfo {
    /// A session with no metadata.
    ///
    /// ```
    /// # use auth_core::SessionInfo;
    /// let s = SessionInfo::new("f", time::OffsetDateTime::UNIX_EPOCH, time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(s.last_used_at.is_none());
    /// ```
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            created_at,
            last_used_at: None,
            expires_at,
            meta: SessionMeta::default(),
        }
    }
}

/// Authenticates an access token and loads its user in one round trip: implemented by backends
/// that store tokens beside the users (a SQL join), and used by
/// `AuthService::authenticate` when given with
/// `AuthService::with_token_user_lookup`.
#[async_trait]
pub trait TokenUserLookup<U>: Send + Sync + 'static {
    /// The access token's claims and its user (active or not: the service decides).
    ///
    /// # Errors
    ///
    /// As [`TokenBackend::verify`]; [`crate::Error::TokenInvalid`] when the user no longer exists.
    async fn authenticate(&self, access_token: &str) -> Result<(Claims, U)>;
}

/// Issues, verifies, rotates and revokes token pairs. Implementations: the in-memory
/// `MemoryTokenBackend` here, JWT and database backends in their crates; each runs
/// `auth_testkit::conformance::token_backend`.
///
/// Contract:
/// - `verify` checks the kind: an access token is never accepted as refresh, nor the reverse.
/// - Failures are [`crate::Error::TokenInvalid`] (unknown, forged, wrong kind, malformed, over
///   [`MAX_TOKEN_LENGTH`]), [`crate::Error::TokenExpired`], or [`crate::Error::TokenRevoked`].
/// - `rotate` consumes the refresh token atomically: of any number of concurrent rotations of
///   one token, exactly one succeeds. Presenting an already rotated token revokes its family.
/// - A family never outlives the absolute lifetime counted from its login.
#[async_trait]
pub trait TokenBackend: Send + Sync + 'static {
    /// Issues a new pair, starting a new session (family).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`] when the store fails.
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair>;

    /// Verifies a token of the expected kind and returns its claims.
    ///
    /// # Errors
    ///
    /// [`crate::Error::TokenInvalid`], [`crate::Error::TokenExpired`], [`crate::Error::TokenRevoked`],
    /// or [`crate::Error::Backend`].
    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims>;

    /// Consumes a refresh token and issues the next pair of its family, if `guard` allows it.
    /// Consuming and issuing are one atomic step: of concurrent rotations of one token exactly
    /// one returns [`RotateOutcome::Rotated`]; the others find it consumed, which is reuse.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), plus whatever `guard` returns.
    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome>;

    /// Revokes a token (access or refresh) and the rest of its session. Unknown tokens are a no-op.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unsupported`] when the backend cannot revoke; [`crate::Error::Backend`].
    async fn revoke(&self, token: &str) -> Result<()>;

    /// Revokes every session of a user except `keep` (a session id), returning how many ended.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unsupported`] when the backend cannot revoke; [`crate::Error::Backend`].
    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64>;

    /// The user's live sessions, newest first.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unsupported`] for backends that keep no session state; [`crate::Error::Backend`].
    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>>;

    /// Ends one session of the user; `false` if it did not exist or was not theirs.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unsupported`] or [`crate::Error::Backend`].
    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool>;

    /// Deletes what has expired, returning how many records went.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn cleanup_expired(&self) -> Result<u64>;
}
