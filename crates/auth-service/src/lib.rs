#![doc = include_str!("../README.md")]

// The contract: `auth_service::UserStore` is `auth_core::UserStore`, so code written against
// the orchestrator needs one import path.
pub use auth_core::*;

mod audit;
mod bus;
mod config;
mod context;
mod email;
mod hub;
mod memory;
mod mirror;
mod password;
mod s2s;
mod service;
mod signed_links;
mod stores;
mod user_cache;

pub use audit::{AuditLog, MemoryAuditStore};
pub use bus::EventBus;
pub use config::{AuthConfig, AuthConfigBuilder};
pub use context::RequestScope;
pub use email::normalize_email;
pub use hub::{ChangeHub, LocalFeed};
pub use memory::{MemoryTokenBackend, MemoryUserStore};
pub use mirror::{MirrorStatus, RevocationMirror};
pub use password::{
    BreachedPasswordValidator, CommonPasswordValidator, HashLane, MinimumLengthValidator,
    NumericPasswordValidator, PasswordHashing, PasswordPolicy, PwnedPasswordsDir,
    UserAttributeSimilarityValidator,
};
pub use s2s::{S2SService, S2sIdentity};
pub use service::{
    AUTH_TIME_CLAIM, AccountStatus, AddressProof, ApiKeyAuth, AuthResult, AuthService, Challenge,
    ClaimReport, DEFAULT_FRESH_LOGIN_WINDOW, Grant, IssuedApiKey, LoginOptions, LoginOutcome,
    MAGIC_CODE_GUESSES, MAGIC_LINK_LIFETIME, MAX_PASSKEY_NAME, NewApiKey, SecondFactorGate,
    ServiceParts, SignedIn, Throttle, client_bucket, redact_identifier,
};
pub use signed_links::{EmailVerificationService, Invite, InviteLinks, PasswordResetService};
pub use stores::{
    MemoryApiKeyStore, MemoryGrantStore, MemoryIdentityStore, MemoryRateLimiter,
    MemoryTrustedDevices,
};
pub use user_cache::{UserCache, UserCacheStatus};

/// Short-lived records (sessions of multi-step flows, challenges, passkey ceremonies): the
/// contract's [`auth_core::ephemeral`] and the stores in process memory.
pub mod ephemeral {
    pub use crate::stores::{MemoryCeremonyStore, MemoryChallengeStore};
    pub use auth_core::ephemeral::*;
}
