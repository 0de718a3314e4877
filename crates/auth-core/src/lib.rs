#![doc = include_str!("../README.md")]

mod api_key;
mod audit;
mod change;
mod clock;
mod device;
pub mod ephemeral;
mod error;
mod events;
mod grant;
mod identity;
mod passkey;
mod password;
pub mod random;
mod rate_limit;
mod revocation;
mod secret;
mod token;
mod user;

pub use api_key::{
    ApiKeyFormat, ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, ApiKeyStore, FoundApiKey,
};
pub use audit::{AuditEntry, AuditQuery, AuditStore, RequestContext};
pub use change::{Change, ChangeFeed, ChangeSubscriber, FeedStatus};
pub use clock::{
    Clock, FixedClock, SharedClock, SystemClock, add_saturating, from_unix_micros,
    truncate_to_micros, unix_micros,
};
pub use device::{TrustedDevice, TrustedDeviceStore};
pub use error::{BackendError, ConfigError, Error, FieldError, Result, ValidationErrors, storage};
pub use events::{AuthEvent, AuthEventKind, EventHandler, HandlerError, LoginFailureReason};
pub use grant::{GrantStore, Revoked, Role, RoleGrant};
pub use identity::{IdentityStore, LinkedIdentity, ProviderIdentity};
pub use passkey::{
    PasskeyAssertion, PasskeyBackend, PasskeyInfo, PasskeyOptions, PasskeyTarget, PasskeyVerdict,
    TakenPasskey,
};
pub use password::{
    BreachSourceFailure, DEFAULT_MAX_PASSWORD_LENGTH, HashError, MAX_RANGE_LINES, PasswordContext,
    PasswordHasher, PasswordValidator, PwnedPasswords, PwnedRange, UNUSABLE_PASSWORD_PREFIX,
    Verified, is_password_usable, make_unusable_password,
};
pub use rate_limit::{RateLimitPolicy, RateLimitStatus, RateLimiter};
pub use revocation::{
    Consumption, Cutoff, MemoryRevocationStore, RevocationQuery, RevocationStore,
};
pub use secret::{SecretKey, SecretString, constant_time_eq};
pub use token::{
    AllowAll, Claims, DEFAULT_REUSE_WINDOW, ExtraClaims, IssueRequest, MAX_TOKEN_LENGTH,
    RefreshGuard, RotateOutcome, RotateRequest, SessionInfo, SessionMeta, TokenBackend, TokenKind,
    TokenLifetimes, TokenPair, TokenUserLookup,
};
pub use user::{AuthUser, MAX_EMAIL_LEN, NewUser, User, UserId, UserQuery, UserStore};

/// Re-exported so implementations of the async traits need no extra dependency.
pub use async_trait::async_trait;
