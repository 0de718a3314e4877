#![doc = include_str!("../README.md")]

mod api_key;
mod audit;
mod change;
mod clock;
mod config;
mod device;
pub mod ephemeral;
mod error;
mod events;
mod grant;
mod identity;
mod memory;
mod mirror;
mod passkey;
mod password;
pub mod random;
mod rate_limit;
mod revocation;
mod s2s;
mod secret;
mod service;
mod token;
mod user;
mod user_cache;

pub use api_key::{
    ApiKeyFormat, ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, ApiKeyStore, FoundApiKey,
    MemoryApiKeyStore,
};
pub use audit::{AuditEntry, AuditLog, AuditQuery, AuditStore, MemoryAuditStore, RequestContext};
pub use change::{Change, ChangeFeed, ChangeHub, ChangeSubscriber, FeedStatus, LocalFeed};
pub use clock::{
    Clock, FixedClock, SharedClock, SystemClock, add_saturating, from_unix_micros,
    truncate_to_micros, unix_micros,
};
pub use config::{AuthConfig, AuthConfigBuilder};
pub use device::{MemoryTrustedDevices, TrustedDevice, TrustedDeviceStore};
pub use error::{BackendError, ConfigError, Error, FieldError, Result, ValidationErrors, storage};
pub use events::{
    AuthEvent, AuthEventKind, EventBus, EventHandler, HandlerError, LoginFailureReason,
};
pub use grant::{GrantStore, MemoryGrantStore, Revoked, Role, RoleGrant};
pub use identity::{IdentityStore, LinkedIdentity, MemoryIdentityStore, ProviderIdentity};
pub use memory::{MemoryTokenBackend, MemoryUserStore};
pub use mirror::{MirrorStatus, RevocationMirror};
pub use passkey::{
    PasskeyAssertion, PasskeyBackend, PasskeyInfo, PasskeyOptions, PasskeyTarget, PasskeyVerdict,
    TakenPasskey,
};
pub use password::{
    BreachSourceFailure, BreachedPasswordValidator, CommonPasswordValidator,
    DEFAULT_MAX_PASSWORD_LENGTH, HashError, HashLane, MAX_RANGE_LINES, MinimumLengthValidator,
    NumericPasswordValidator, PasswordContext, PasswordHasher, PasswordHashing, PasswordPolicy,
    PasswordValidator, PwnedPasswords, PwnedPasswordsDir, PwnedRange, UNUSABLE_PASSWORD_PREFIX,
    UserAttributeSimilarityValidator, Verified, is_password_usable, make_unusable_password,
};
pub use rate_limit::{MemoryRateLimiter, RateLimitPolicy, RateLimitStatus, RateLimiter};
pub use revocation::{
    Consumption, Cutoff, MemoryRevocationStore, RevocationQuery, RevocationStore,
};
pub use s2s::{S2SService, S2sIdentity};
pub use secret::{SecretKey, SecretString, constant_time_eq};
pub use service::{
    AUTH_TIME_CLAIM, AccountStatus, AddressProof, ApiKeyAuth, AuthResult, AuthService, Challenge,
    ClaimReport, DEFAULT_FRESH_LOGIN_WINDOW, Grant, IssuedApiKey, LoginOptions, LoginOutcome,
    MAGIC_CODE_GUESSES, MAGIC_LINK_LIFETIME, MAX_PASSKEY_NAME, NewApiKey, SecondFactorGate,
    ServiceParts, SignedIn, Throttle, client_bucket, redact_identifier,
};
pub use token::{
    AllowAll, Claims, DEFAULT_REUSE_WINDOW, ExtraClaims, IssueRequest, MAX_TOKEN_LENGTH,
    RefreshGuard, RotateOutcome, RotateRequest, SessionInfo, SessionMeta, TokenBackend, TokenKind,
    TokenLifetimes, TokenPair, TokenUserLookup,
};
pub use user::{
    AuthUser, MAX_EMAIL_LEN, NewUser, User, UserId, UserQuery, UserStore, normalize_email,
};
pub use user_cache::{UserCache, UserCacheStatus};

/// Re-exported so implementations of the async traits need no extra dependency.
pub use async_trait::async_trait;
