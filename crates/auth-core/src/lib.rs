#![doc = include_str!("../README.md")]

#[cfg(feature = "full")]
mod api_key;
#[cfg(feature = "full")]
mod audit;
#[cfg(feature = "full")]
mod change;
#[cfg(feature = "full")]
mod clock;
#[cfg(feature = "full")]
mod device;
#[cfg(feature = "full")]
pub mod ephemeral;
mod error;
#[cfg(feature = "full")]
mod events;
#[cfg(feature = "full")]
mod grant;
#[cfg(feature = "full")]
mod identity;
#[cfg(feature = "full")]
mod passkey;
mod password;
pub mod random;
#[cfg(feature = "full")]
mod rate_limit;
#[cfg(feature = "full")]
mod revocation;
mod secret;
#[cfg(feature = "full")]
mod token;
#[cfg(feature = "full")]
mod user;

#[cfg(feature = "full")]
pub use api_key::{
    ApiKeyFormat, ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, ApiKeyStore, FoundApiKey,
};
#[cfg(feature = "full")]
pub use audit::{AuditEntry, AuditQuery, AuditStore, RequestContext};
#[cfg(feature = "full")]
pub use change::{Change, ChangeFeed, ChangeSubscriber, FeedStatus};
#[cfg(feature = "full")]
pub use clock::{
    Clock, FixedClock, SharedClock, SystemClock, add_saturating, from_unix_micros,
    truncate_to_micros, unix_micros,
};
#[cfg(feature = "full")]
pub use device::{TrustedDevice, TrustedDeviceStore};
pub use error::{BackendError, ConfigError, Error, FieldError, Result, ValidationErrors, storage};
#[cfg(feature = "full")]
pub use events::{AuthEvent, AuthEventKind, EventHandler, HandlerError, LoginFailureReason};
#[cfg(feature = "full")]
pub use grant::{GrantStore, Revoked, Role, RoleGrant};
#[cfg(feature = "full")]
pub use identity::{IdentityStore, LinkedIdentity, ProviderIdentity};
#[cfg(feature = "full")]
pub use passkey::{
    PasskeyAssertion, PasskeyBackend, PasskeyInfo, PasskeyOptions, PasskeyTarget, PasskeyVerdict,
    TakenPasskey,
};
#[cfg(feature = "full")]
pub use password::{BreachSourceFailure, MAX_RANGE_LINES, PwnedPasswords, PwnedRange};
pub use password::{
    DEFAULT_MAX_PASSWORD_LENGTH, HashError, PasswordContext, PasswordHasher, PasswordValidator,
    UNUSABLE_PASSWORD_PREFIX, Verified, is_password_usable, make_unusable_password,
};
#[cfg(feature = "full")]
pub use rate_limit::{RateLimitPolicy, RateLimitStatus, RateLimiter};
#[cfg(feature = "full")]
pub use revocation::{
    Consumption, Cutoff, MemoryRevocationStore, RevocationQuery, RevocationStore,
};
pub use secret::{SecretKey, SecretString, constant_time_eq};
#[cfg(feature = "full")]
pub use token::{
    AllowAll, Claims, DEFAULT_REUSE_WINDOW, ExtraClaims, IssueRequest, MAX_TOKEN_LENGTH,
    RefreshGuard, RotateOutcome, RotateRequest, SessionInfo, SessionMeta, TokenBackend, TokenKind,
    TokenLifetimes, TokenPair, TokenUserLookup,
};
#[cfg(feature = "full")]
pub use user::{AuthUser, MAX_EMAIL_LEN, NewUser, User, UserId, UserQuery, UserStore};

/// Re-exported so implementations of the async traits need no extra dependency.
#[cfg(feature = "full")]
pub use async_trait::async_trait;
