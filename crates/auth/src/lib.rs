//! Async authentication and user management for Rust services.
//!
//! This umbrella crate re-exports the layers an application picks: the core contract and flows
//! at the root ([`AuthService`], the traits, the in-memory stores), and each layer as a module
//! behind a feature flag:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `hash` (default) | [`hash`] | Argon2id, bcrypt, Django's formats, sha-crypt, `MultiHasher` |
//! | `sign` (default) | [`sign`] | signed values, one-time tokens, password reset, email verification, invites |
//! | `jwt` | `jwt` | JWT token backend (RFC 8725), revocation on by default |
//! | `db-users` | `users_db`, `migration` | the users table and `UserStore` on sea-orm; one migrator |
//! | `db-tokens` | `tokens_db` | opaque tokens in SQL with sessions and reuse detection |
//! | `mfa` | [`mfa`] | TOTP two-factor, recovery codes, the two-step login |
//! | `db-mfa` | `mfa::db` | second factors in SQL; their migration joins the migrator |
//! | `onboarding` | [`onboarding`] | server-driven onboarding flows |
//! | `db-onboarding` | `onboarding::db` | onboarding sessions in SQL; their migration joins the migrator |
//! | `sqlite`, `postgres`, `mysql` | | the database drivers to compile |
//!
//! The axum integration lives in its own crate (`auth-axum`).
//!
//! ```
//! use auth::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
//! use auth::hash::MultiHasher;
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let auth = AuthService::new(
//!     AuthConfig::default(),
//!     MemoryUserStore::new(),
//!     MultiHasher::default(), // Argon2id for new hashes; verifies Django, bcrypt, ...
//!     MemoryTokenBackend::new(),
//! )?;
//! auth.register("alice@example.com", "SecurePass123!").await?;
//! let login = auth.login("alice@example.com", "SecurePass123!").await?;
//! assert_eq!(auth.authenticate(login.access_token()).await?.email, "alice@example.com");
//! # Ok::<(), auth::Error>(()) }).unwrap();
//! ```

pub use auth_core::*;

/// Password hashers (feature `hash`): see the `auth-hash` crate.
#[cfg(feature = "hash")]
pub mod hash {
    pub use auth_hash::*;
}

/// Signing and the signed-link flows (feature `sign`): see the `auth-sign` crate.
#[cfg(feature = "sign")]
pub mod sign {
    pub use auth_sign::*;
}

/// The JWT token backend (feature `jwt`): see the `auth-tokens-jwt` crate.
#[cfg(feature = "jwt")]
pub mod jwt {
    pub use auth_tokens_jwt::*;
}

/// The users table and `UserStore` on sea-orm (feature `db-users`): see the `auth-users-db` crate.
#[cfg(feature = "db-users")]
pub mod users_db {
    pub use auth_users_db::*;
}

/// One migrator for every enabled database crate (feature `db-users`).
#[cfg(feature = "db-users")]
pub mod migration {
    use sea_orm_migration::{MigrationTrait, MigratorTrait};

    /// Runs the migrations of every enabled database crate, in dependency order (users first,
    /// since other tables reference them).
    ///
    /// ```
    /// use sea_orm_migration::MigratorTrait;
    /// assert!(!auth::migration::Migrator::migrations().is_empty());
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Migrator;

    impl MigratorTrait for Migrator {
        fn migrations() -> Vec<Box<dyn MigrationTrait>> {
            #[allow(unused_mut)]
            let mut all = auth_users_db::migrations();
            #[cfg(feature = "db-tokens")]
            all.extend(auth_tokens_db::migrations());
            #[cfg(feature = "db-mfa")]
            all.extend(auth_mfa::db::migrations());
            #[cfg(feature = "db-onboarding")]
            all.extend(auth_onboarding::db::migrations());
            all
        }
    }
}

/// Opaque tokens in SQL (feature `db-tokens`): see the `auth-tokens-db` crate.
#[cfg(feature = "db-tokens")]
pub mod tokens_db {
    pub use auth_tokens_db::*;
}

/// TOTP two-factor authentication (feature `mfa`): see the `auth-mfa` crate.
#[cfg(feature = "mfa")]
pub mod mfa {
    pub use auth_mfa::*;
}

/// Server-driven onboarding (feature `onboarding`): see the `auth-onboarding` crate.
#[cfg(feature = "onboarding")]
pub mod onboarding {
    pub use auth_onboarding::*;
}
