//! Async authentication and user management for Rust services.
//!
//! This umbrella crate re-exports the layers an application picks. Today it carries the core
//! contract and flows ([`AuthService`], the traits and in-memory stores); password hashing, JWT,
//! database storage, two-factor, onboarding and axum integration arrive as modules behind
//! feature flags.
//!
//! ```
//! use auth::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let auth = AuthService::new(
//!     AuthConfig::default(),
//!     MemoryUserStore::new(),
//!     auth_testkit::TestHasher::fast(),
//!     MemoryTokenBackend::new(),
//! )?;
//! auth.register("alice@example.com", "SecurePass123!").await?;
//! let login = auth.login("alice@example.com", "SecurePass123!").await?;
//! assert_eq!(auth.authenticate(login.access_token()).await?.email, "alice@example.com");
//! # Ok::<(), auth::Error>(()) }).unwrap();
//! ```

pub use auth_core::*;
