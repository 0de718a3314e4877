//! Conformance suites: one async call runs every behaviour a core trait promises.
//!
//! Each takes a factory that gets a [`FixedClock`](auth_service::FixedClock) (give it to the
//! implementation's `with_clock`) and returns a fresh implementation, possibly after async setup
//! such as connecting to a database. The suites panic with a message naming the broken promise.
//! Run them on a multi-threaded runtime: they include concurrency checks.

mod api_keys;
mod audit;
mod ceremony;
mod challenge;
mod identities;
#[cfg(feature = "mfa")]
mod mfa;
mod onboarding;
mod rate_limiter;
mod revocation;
mod token_backend;
mod user_store;

pub use api_keys::{api_key_cleanup, api_key_store};
pub use audit::audit_store;
pub use ceremony::ceremony_store;
pub use challenge::challenge_store;
pub use identities::first_provider_sign_ins;
#[cfg(feature = "mfa")]
pub use mfa::mfa_store;
pub use onboarding::session_store;
pub use rate_limiter::rate_limiter;
pub use revocation::revocation_store;
pub use token_backend::{refresh_reuse_window, token_backend};
pub use user_store::user_store;

/// The instant the suites' clocks start at (2023-11-14T22:13:20Z).
pub const START: i64 = 1_700_000_000;
