//! API keys in SQL for the `auth` workspace: [`DbApiKeyStore`], an
//! [`auth_core::ApiKeyStore`] on sea-orm (SQLite, PostgreSQL, MySQL/MariaDB), and its
//! [`migrations`]. Keys are created, checked, rolled and revoked through
//! `auth_service::AuthService` (`with_api_keys`); this crate only stores them.
//!
//! - Secrets are stored as SHA-256 in `auth_api_key_secrets` (primary key: the hash), so a
//!   verification is one indexed lookup joined with its key; a rolled key has two secrets
//!   until the old one's grace period ends.
//! - Keys belong to a user (`auth_users(id)`, `ON DELETE CASCADE`) or to a service account
//!   (`auth_service_accounts`).
//! - Per-key request limits count in `auth_api_key_windows` with one conditional `UPDATE`
//!   per request, so concurrent requests never exceed the limit.
//! - Times are stored as microseconds since the epoch (`BIGINT`), the same on every database.
//!
//! ```
//! use auth_service::{ApiKeyOwner, AuthConfig, AuthService, MemoryTokenBackend, NewApiKey, UserStore};
//! use sea_orm_migration::MigratorTrait;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! # struct M; impl MigratorTrait for M { fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
//! #   let mut m = auth_users_db::migrations(); m.extend(auth_apikeys::migrations()); m } }
//! # M::up(&db, None).await.unwrap();
//! let auth = AuthService::new(AuthConfig::default(), auth_users_db::DbUserStore::new(db.clone()),
//!     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
//!     .with_api_keys(auth_apikeys::DbApiKeyStore::new(db));
//! let user = auth.register("ops@example.com", "violet-otter-sings-42").await?;
//! auth.prove_address(&user.id, auth_service::AddressProof::InSession).await?; // a proven address first
//! let issued = auth.create_api_key(&ApiKeyOwner::User(user.id), NewApiKey::new("ci")).await?;
//! assert!(auth.authenticate_api_key(issued.key.expose_secret(), None).await.is_ok());
//! # Ok::<(), auth_service::Error>(()) }).unwrap();
//! ```

mod migration;
mod store;

pub use migration::{CreateApiKeys, migrations};
pub use store::DbApiKeyStore;
