//! `DbSigningKeyStore`: a sealed signing key set kept in SQL, replaced only by the writer that
//! read the version it replaces.

use std::fmt;

use auth_service::{Error, Result};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, SqlErr};
use time::OffsetDateTime;

use crate::migration::AuthSigningKeys;

/// One stored key set: its version (1 when created, one more at every replacement) and its
/// sealed text (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKeys {
    /// Grows by one with every replacement.
    pub version: i64,
    /// The set as sealed by its owner (`auth_tokens_jwt::JwtKeySet::seal`): opaque here.
    pub sealed: String,
}

impl fmt::Debug for StoredKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKeys")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Sealed signing key sets in the `auth_signing_keys` table, by name (`jwt` for the token
/// signing keys), shared by every instance on the database. The store never sees a key: it
/// keeps text that its owner sealed. [`create`](Self::create) lets exactly one of many
/// instances starting together store the first set; [`replace`](Self::replace) is a
/// compare-and-swap on the version, so two rotations at once never lose one.
///
/// ```
/// use auth_tokens_db::DbSigningKeyStore;
/// # use sea_orm_migration::MigrationTrait;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # let manager = sea_orm_migration::SchemaManager::new(&db);
/// # auth_tokens_db::CreateSigningKeys.up(&manager).await.unwrap();
/// let store = DbSigningKeyStore::new(db);
/// assert!(store.load("jwt").await?.is_none());
/// assert!(store.create("jwt", "sealed-1").await?, "the first writer stores its set");
/// assert!(!store.create("jwt", "sealed-other").await?, "the others read it");
/// let stored = store.load("jwt").await?.unwrap();
/// assert_eq!((stored.version, stored.sealed.as_str()), (1, "sealed-1"));
/// assert!(store.replace("jwt", 1, "sealed-2").await?);
/// assert!(!store.replace("jwt", 1, "sealed-lost").await?, "version 1 is gone");
/// assert_eq!(store.version("jwt").await?, Some(2));
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbSigningKeyStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbSigningKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSigningKeyStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

impl DbSigningKeyStore {
    /// A store on `db` (migrated with `auth_tokens_db::migrations`).
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The set stored under `name`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be read.
    pub async fn load(&self, name: &str) -> Result<Option<StoredKeys>> {
        let query = Query::select()
            .columns([AuthSigningKeys::Version, AuthSigningKeys::Sealed])
            .from(AuthSigningKeys::Table)
            .and_where(Expr::col(AuthSigningKeys::Name).eq(name))
            .to_owned();
        let Some(row) = self
            .db
            .query_one(&query)
            .await
            .map_err(db("reading the signing keys"))?
        else {
            return Ok(None);
        };
        Ok(Some(StoredKeys {
            version: row
                .try_get("", "version")
                .map_err(db("reading the signing keys' version"))?,
            sealed: row
                .try_get("", "sealed")
                .map_err(db("reading the signing keys"))?,
        }))
    }

    /// The version stored under `name` (one small read: what a watcher asks).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be read.
    pub async fn version(&self, name: &str) -> Result<Option<i64>> {
        let query = Query::select()
            .column(AuthSigningKeys::Version)
            .from(AuthSigningKeys::Table)
            .and_where(Expr::col(AuthSigningKeys::Name).eq(name))
            .to_owned();
        match self
            .db
            .query_one(&query)
            .await
            .map_err(db("reading the signing keys' version"))?
        {
            Some(row) => Ok(Some(
                row.try_get("", "version")
                    .map_err(db("reading the signing keys' version"))?,
            )),
            None => Ok(None),
        }
    }

    /// Stores `sealed` as version 1 under `name` unless a set is there: `true` when this call
    /// stored it. Of many callers at once, exactly one gets `true`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be written.
    pub async fn create(&self, name: &str, sealed: &str) -> Result<bool> {
        let insert = Query::insert()
            .into_table(AuthSigningKeys::Table)
            .columns([
                AuthSigningKeys::Name,
                AuthSigningKeys::Version,
                AuthSigningKeys::Sealed,
                AuthSigningKeys::UpdatedAt,
            ])
            .values_panic([
                name.into(),
                1_i64.into(),
                sealed.into(),
                OffsetDateTime::now_utc().into(),
            ])
            .to_owned();
        match self.db.execute(&insert).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(Error::backend("storing the signing keys", e)),
        }
    }

    /// Replaces the set under `name` with `sealed` if its version is still `expected`: `true`
    /// when replaced (the version is then `expected + 1`), `false` when another writer
    /// replaced it first (read it again and redo the change).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be written.
    pub async fn replace(&self, name: &str, expected: i64, sealed: &str) -> Result<bool> {
        let update = Query::update()
            .table(AuthSigningKeys::Table)
            .value(AuthSigningKeys::Sealed, sealed)
            .value(AuthSigningKeys::Version, expected.saturating_add(1))
            .value(AuthSigningKeys::UpdatedAt, OffsetDateTime::now_utc())
            .and_where(Expr::col(AuthSigningKeys::Name).eq(name))
            .and_where(Expr::col(AuthSigningKeys::Version).eq(expected))
            .to_owned();
        let done = self
            .db
            .execute(&update)
            .await
            .map_err(db("replacing the signing keys"))?;
        Ok(done.rows_affected() == 1)
    }
}
