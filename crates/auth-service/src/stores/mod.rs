//! The contract's stores in process memory: for tests, examples and single-process services.
//! Clones share their data.

mod api_key;
mod device;
mod ephemeral;
mod grant;
mod identity;
mod rate_limit;

pub use api_key::MemoryApiKeyStore;
pub use device::MemoryTrustedDevices;
pub use ephemeral::{MemoryCeremonyStore, MemoryChallengeStore};
pub use grant::MemoryGrantStore;
pub use identity::MemoryIdentityStore;
pub use rate_limit::MemoryRateLimiter;
