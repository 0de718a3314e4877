//! Async authentication and user management for Rust services.
//!
//! This umbrella crate re-exports the layers an application picks: the core contract and flows
//! at the root ([`AuthService`], the traits, the in-memory stores), and each layer as a module
//! behind a feature flag (see [Features](#features), generated from the crate's `Cargo.toml`;
//! `full` turns on everything). The axum routes are `auth::axum` (feature `axum`).
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
//!
//! # Features
#![doc = document_features::document_features!()]

pub use auth_service::*;

/// The axum routes, extractors and hosted-page helpers (feature `axum`): see the `auth-axum`
/// crate.
#[cfg(feature = "axum")]
pub mod axum {
    pub use auth_axum::*;
}

/// Password hashers (feature `hash`): see the `auth-hash` crate.
#[cfg(feature = "hash")]
pub mod hash {
    pub use auth_hash::*;
}

/// Signing and the signed-link flows (feature `sign`): see the `auth-sign` crate.
#[cfg(feature = "sign")]
pub mod sign {
    pub use auth_service::{EmailVerificationService, Invite, InviteLinks, PasswordResetService};
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
    use std::time::Duration;

    use sea_orm_migration::sea_orm::{
        ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, SqliteTransactionMode,
        TransactionOptions, TransactionTrait,
    };
    use sea_orm_migration::{MigrationTrait, MigratorTrait};

    /// How long an instance waits for another one's migrations before giving up.
    const LOCK_WAIT: Duration = Duration::from_secs(120);

    /// Applies the pending migrations under a database-wide lock, so any number of instances
    /// starting at the same moment (a rolling deploy, a scaled-up service) migrate once and
    /// the others wait, then find nothing to do:
    ///
    /// - PostgreSQL: one transaction holding `pg_advisory_xact_lock` (DDL is transactional
    ///   there: a failed migration leaves nothing behind);
    /// - MySQL/MariaDB: `GET_LOCK` on the connection that runs every statement (DDL commits
    ///   implicitly there, the lock holds until released);
    /// - SQLite: one `BEGIN IMMEDIATE` transaction (the file's write lock), retried while
    ///   another process holds it.
    ///
    /// # Errors
    ///
    /// The database's error, or a timeout after two minutes of waiting for another instance.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let db = sea_orm_migration::sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    /// auth::migration::up(&db).await.unwrap();
    /// auth::migration::up(&db).await.unwrap(); // nothing left to do
    /// assert!(auth::migration::pending(&db).await.unwrap().is_empty());
    /// # });
    /// ```
    pub async fn up(db: &DatabaseConnection) -> Result<(), DbErr> {
        match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let txn = db.begin().await?;
                // A constant key of our own: the first 8 bytes of SHA-256("auth-migrations").
                txn.execute_unprepared("SELECT pg_advisory_xact_lock(7165406440451231813)")
                    .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await
            }
            DatabaseBackend::MySql => {
                let txn = db.begin().await?;
                let secs = LOCK_WAIT.as_secs();
                let got = txn
                    .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                        DatabaseBackend::MySql,
                        format!("SELECT GET_LOCK('auth_migrations', {secs})"),
                    ))
                    .await?
                    .and_then(|row| row.try_get_by_index::<Option<i64>>(0).ok().flatten());
                if got != Some(1) {
                    return Err(DbErr::Migration(format!(
                        "another instance held the migration lock for {secs} s"
                    )));
                }
                let applied = Migrator::up(&txn, None).await;
                let released = txn
                    .execute_unprepared("SELECT RELEASE_LOCK('auth_migrations')")
                    .await;
                applied?;
                released?;
                txn.commit().await
            }
            _ => {
                let start = std::time::Instant::now();
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                };
                let txn = loop {
                    match db.begin_with_options(options).await {
                        Ok(txn) => break txn,
                        Err(e) if start.elapsed() < LOCK_WAIT && is_busy(&e) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => return Err(e),
                    }
                };
                Migrator::up(&txn, None).await?;
                txn.commit().await
            }
        }
    }

    fn is_busy(e: &DbErr) -> bool {
        let text = e.to_string();
        text.contains("locked") || text.contains("busy")
    }

    /// The names of the migrations not applied yet (every one on an empty database).
    ///
    /// # Errors
    ///
    /// The database's error.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let db = sea_orm_migration::sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    /// assert!(!auth::migration::pending(&db).await.unwrap().is_empty());
    /// # });
    /// ```
    pub async fn pending(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
        let has_table = db
            .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                db.get_database_backend(),
                match db.get_database_backend() {
                    DatabaseBackend::Sqlite => {
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'"
                    }
                    DatabaseBackend::MySql => {
                        "SELECT 1 FROM information_schema.tables WHERE table_name = 'seaql_migrations' \
                         AND table_schema = DATABASE()"
                    }
                    _ => {
                        "SELECT 1 FROM information_schema.tables WHERE table_name = 'seaql_migrations' \
                         AND table_schema = current_schema()"
                    }
                }
                .to_owned(),
            ))
            .await?
            .is_some();
        if !has_table {
            return Ok(Migrator::migrations()
                .iter()
                .map(|m| m.name().to_owned())
                .collect());
        }
        Ok(Migrator::get_pending_migrations(db)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

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
            #[cfg(feature = "db-apikeys")]
            all.extend(auth_apikeys::migrations());
            #[cfg(feature = "db-passkeys")]
            all.extend(auth_webauthn::db::migrations());
            #[cfg(feature = "db-oauth")]
            all.extend(auth_oauth::db::migrations());
            all
        }
    }
}

/// Opaque tokens in SQL (feature `db-tokens`): see the `auth-tokens-db` crate.
#[cfg(feature = "db-tokens")]
pub mod tokens_db {
    pub use auth_tokens_db::*;
}

/// Redis: revocations, rate limits and the change feed shared by many instances (feature
/// `redis`): see the `auth-redis` crate.
#[cfg(feature = "redis")]
pub mod redis {
    pub use auth_redis::*;
}

/// API keys in SQL (feature `db-apikeys`): `DbApiKeyStore` and its migration, see the
/// `auth-apikeys` crate. The key format, `ApiKeyStore` and the memory store are in the root
/// (`auth::ApiKeyFormat`, `auth::MemoryApiKeyStore`); keys are used through
/// `AuthService::with_api_keys`.
#[cfg(feature = "db-apikeys")]
pub mod apikeys {
    pub use auth_apikeys::*;
}

/// Sign-in with OpenID Connect and OAuth 2.0 providers (feature `oauth`; `db-oauth` for the
/// SQL identity store): see the `auth-oauth` crate. The linking rules are
/// `AuthService::sign_in_with_provider`.
#[cfg(feature = "oauth")]
pub mod oauth {
    pub use auth_oauth::*;
}

/// Passkeys (feature `passkeys`): `WebauthnPasskeys` on webauthn-rs, its stores, and with
/// `db-passkeys` the SQL stores and migration (`auth::passkeys::db`); see the `auth-webauthn`
/// crate. Passkeys are used through `AuthService::with_passkeys`.
#[cfg(feature = "passkeys")]
pub mod passkeys {
    pub use auth_webauthn::*;
}

/// Have I Been Pwned's range API for the breached-password check (feature `pwned`): see the
/// `auth-pwned` crate. The check (`auth::BreachedPasswordValidator`) and the offline
/// range-file source (`auth::PwnedPasswordsDir`) are in the root.
#[cfg(feature = "pwned")]
pub mod pwned {
    pub use auth_pwned::*;
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
