//! Server-driven onboarding flows: a pipeline of named steps that the server walks a client
//! through, one client hint at a time.
//!
//! - [`Onboarding`]: `start(email)`, `advance(token, data, skip)`, `resume(token)`. Steps whose
//!   `is_required` says no are skipped automatically; multi-phase steps (send a code, check it)
//!   stay current; optional steps can be skipped and required ones cannot; sessions expire;
//!   starting again invalidates the email's earlier sessions; session tokens are stored only
//!   hashed; concurrent `advance` calls on one session are serialized (a lease taken by a
//!   compare-and-set: the loser gets [`OnboardingError::Conflict`] before doing anything).
//! - Built-in steps: [`RegisterStep`], [`VerifyEmailStep`], `SetupTotpStep` (feature `totp`,
//!   which brings auth-mfa), [`ProfileStep`]; your own through [`OnboardingStep`].
//! - Completion logs the user in through the service's token backend (JWT or database),
//!   records the login and emits the events.
//! - Sessions: [`MemorySessionStore`], and `db::DbSessionStore` (feature `db`).
//!
//! Unlike tortoise-auth (reference §13): TOTP is required or optional exactly as configured,
//! resending a code does not reset the attempts, codes are stored hashed and never returned,
//! concurrent requests cannot both apply, and completion uses the configured token backend.

#[cfg(feature = "db")]
pub mod db;
mod engine;
mod steps;
mod store;
mod types;

pub use engine::{Onboarding, OnboardingBuilder, OnboardingConfig, OnboardingStep, StepContext};
#[cfg(feature = "totp")]
pub use steps::SetupTotpStep;
pub use steps::{ProfileStep, RegisterStep, VerifyEmailStep};
pub use store::{MemorySessionStore, SessionRecord, SessionStore};
pub use types::{
    ClientHint, FieldHint, OnboardingError, OnboardingResult, OnboardingStatus, StepOutcome,
};
