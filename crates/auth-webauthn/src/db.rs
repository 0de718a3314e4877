//! Passkeys and ceremonies in SQL (feature `db`): [`DbPasskeyStore`], [`DbCeremonyStore`] and
//! their [`migrations`], on sea-orm (SQLite, PostgreSQL, MySQL/MariaDB).
//!
//! - `auth_passkeys`: one row per credential, owned by an `auth_users` row (`ON DELETE
//!   CASCADE`); the credential id is unique across accounts through its SHA-256
//!   (`credential_hash`), which is also the lookup key of a sign-in.
//! - `auth_passkey_ceremonies`: pending ceremonies under the SHA-256 of their key; taking one
//!   is a `DELETE` whose affected-row count decides who got it.
//! - Times are microseconds since the epoch (`BIGINT`), the same on every database.
//!
//! ```
//! use sea_orm_migration::MigratorTrait;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! # struct M; impl MigratorTrait for M { fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
//! #   let mut m = auth_users_db::migrations(); m.extend(auth_webauthn::db::migrations()); m } }
//! # M::up(&db, None).await.unwrap();
//! let passkeys = auth_webauthn::db::DbPasskeyStore::new(db.clone());
//! let ceremonies = auth_webauthn::db::DbCeremonyStore::new(db);
//! # let _ = (passkeys, ceremonies);
//! # });
//! ```

use std::fmt;

use auth_core::ephemeral::{CeremonyRecord, CeremonyStore};
use auth_core::{
    Error, Result, UserId, async_trait, from_unix_micros as from_micros, random,
    unix_micros as micros,
};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

use crate::store::{PasskeyStore, PasskeyUse, StoredPasskey};

/// The migrations of this crate, in order (after `auth_users_db::migrations()`).
///
/// ```
/// assert_eq!(auth_webauthn::db::migrations().len(), 1);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreatePasskeys)]
}

/// Creates `auth_passkeys` and `auth_passkey_ceremonies`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreatePasskeys;

impl MigrationName for CreatePasskeys {
    fn name(&self) -> &str {
        "m20261202_000003_auth_passkeys"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuthPasskeys {
    Table,
    Id,
    UserId,
    UserHandle,
    CredentialHash,
    CredentialId,
    Name,
    Credential,
    Counter,
    BackupEligible,
    BackedUp,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuthPasskeyCeremonies {
    Table,
    KeyHash,
    UserId,
    State,
    ExpiresAt,
}

#[async_trait]
impl MigrationTrait for CreatePasskeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthPasskeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthPasskeys::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeys::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeys::UserHandle)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeys::CredentialHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(AuthPasskeys::CredentialId).text().not_null())
                    .col(
                        ColumnDef::new(AuthPasskeys::Name)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthPasskeys::Credential).text().not_null())
                    .col(
                        ColumnDef::new(AuthPasskeys::Counter)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeys::BackupEligible)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthPasskeys::BackedUp).boolean().not_null())
                    .col(
                        ColumnDef::new(AuthPasskeys::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeys::LastUsedAt)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_passkeys_user")
                            .from(AuthPasskeys::Table, AuthPasskeys::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_passkeys_user")
                    .table(AuthPasskeys::Table)
                    .col(AuthPasskeys::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthPasskeyCeremonies::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthPasskeyCeremonies::KeyHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeyCeremonies::UserId)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeyCeremonies::State)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthPasskeyCeremonies::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_passkey_ceremonies_expires")
                    .table(AuthPasskeyCeremonies::Table)
                    .col(AuthPasskeyCeremonies::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AuthPasskeyCeremonies::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(AuthPasskeys::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

const COLUMNS: [AuthPasskeys; 12] = [
    AuthPasskeys::Id,
    AuthPasskeys::UserId,
    AuthPasskeys::UserHandle,
    AuthPasskeys::CredentialId,
    AuthPasskeys::Name,
    AuthPasskeys::Credential,
    AuthPasskeys::Counter,
    AuthPasskeys::BackupEligible,
    AuthPasskeys::BackedUp,
    AuthPasskeys::CreatedAt,
    AuthPasskeys::LastUsedAt,
    AuthPasskeys::CredentialHash,
];

fn credential_hash(credential_id: &str) -> String {
    random::sha256_hex(credential_id)
}

/// A [`PasskeyStore`] on sea-orm, migrated with `auth_users_db::migrations()` then
/// [`migrations`]. User ids are `auth_users` integer ids.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) {
/// let store = auth_webauthn::db::DbPasskeyStore::new(db);
/// # }
/// ```
#[derive(Clone)]
pub struct DbPasskeyStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbPasskeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPasskeyStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl DbPasskeyStore {
    /// A store on `db`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_webauthn::db::DbPasskeyStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn select() -> SelectStatement {
        let mut q = Query::select();
        for c in COLUMNS {
            q.column(c);
        }
        q.from(AuthPasskeys::Table);
        q
    }

    async fn rows(&self, q: &SelectStatement) -> Result<Vec<StoredPasskey>> {
        self.db
            .query_all(q)
            .await
            .map_err(db("reading passkeys"))?
            .iter()
            .map(row)
            .collect()
    }
}

fn row(r: &QueryResult) -> Result<StoredPasskey> {
    let read = db("reading a passkey row");
    let user: i64 = r.try_get("", "user_id").map_err(&read)?;
    let counter: i64 = r.try_get("", "counter").map_err(&read)?;
    let created: i64 = r.try_get("", "created_at").map_err(&read)?;
    let used: Option<i64> = r.try_get("", "last_used_at").map_err(&read)?;
    Ok(StoredPasskey {
        id: r.try_get("", "id").map_err(&read)?,
        user_id: UserId::new(user.to_string()),
        user_handle: r.try_get("", "user_handle").map_err(&read)?,
        credential_id: r.try_get("", "credential_id").map_err(&read)?,
        name: r.try_get("", "name").map_err(&read)?,
        credential: r.try_get("", "credential").map_err(&read)?,
        counter: <u32 as TryFrom<i64>>::try_from(counter).unwrap_or(u32::MAX),
        backup_eligible: r.try_get("", "backup_eligible").map_err(&read)?,
        backed_up: r.try_get("", "backed_up").map_err(&read)?,
        created_at: from_micros(created),
        last_used_at: used.map(from_micros),
    })
}

#[async_trait]
impl PasskeyStore for DbPasskeyStore {
    async fn insert(&self, p: &StoredPasskey) -> Result<bool> {
        let mut insert = Query::insert();
        insert.into_table(AuthPasskeys::Table).columns(COLUMNS);
        insert
            .values([
                p.id.clone().into(),
                p.user_id.to_row_id()?.into(),
                p.user_handle.clone().into(),
                p.credential_id.clone().into(),
                p.name.clone().into(),
                p.credential.clone().into(),
                i64::from(p.counter).into(),
                p.backup_eligible.into(),
                p.backed_up.into(),
                micros(p.created_at).into(),
                p.last_used_at.map(micros).into(),
                credential_hash(&p.credential_id).into(),
            ])
            .map_err(|e| Error::backend("building an insert", e))?;
        match self.db.execute(&insert).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(Error::backend("storing a passkey", e)),
        }
    }

    async fn by_user(&self, user: &UserId) -> Result<Vec<StoredPasskey>> {
        let mut q = Self::select();
        q.and_where(Expr::col(AuthPasskeys::UserId).eq(user.to_row_id()?))
            .order_by(AuthPasskeys::CreatedAt, Order::Asc)
            .order_by(AuthPasskeys::Id, Order::Asc);
        self.rows(&q).await
    }

    async fn by_credential(&self, credential_id: &str) -> Result<Option<StoredPasskey>> {
        let mut q = Self::select();
        q.and_where(Expr::col(AuthPasskeys::CredentialHash).eq(credential_hash(credential_id)));
        Ok(self
            .rows(&q)
            .await?
            .into_iter()
            .find(|p| p.credential_id == credential_id))
    }

    async fn record_use(&self, used: &PasskeyUse) -> Result<bool> {
        let counter = i64::from(used.counter);
        let mut update = Query::update();
        update
            .table(AuthPasskeys::Table)
            .value(AuthPasskeys::Credential, used.credential.clone())
            .value(AuthPasskeys::Counter, counter)
            .value(AuthPasskeys::BackedUp, used.backed_up)
            .value(AuthPasskeys::LastUsedAt, micros(used.used_at))
            .and_where(Expr::col(AuthPasskeys::Id).eq(used.id.clone()))
            .and_where(
                Expr::col(AuthPasskeys::Counter)
                    .lt(counter)
                    .or(Expr::col(AuthPasskeys::Counter)
                        .eq(0)
                        .and(Expr::value(counter).eq(0))),
            );
        let done = self
            .db
            .execute(&update)
            .await
            .map_err(db("recording a passkey use"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool> {
        let mut update = Query::update();
        update
            .table(AuthPasskeys::Table)
            .value(AuthPasskeys::Name, name)
            .and_where(Expr::col(AuthPasskeys::Id).eq(id))
            .and_where(Expr::col(AuthPasskeys::UserId).eq(user.to_row_id()?));
        let done = self
            .db
            .execute(&update)
            .await
            .map_err(db("renaming a passkey"))?;
        // MySQL counts changed rows: the same name again changes none.
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        Ok(self.by_user(user).await?.iter().any(|p| p.id == id))
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthPasskeys::Table)
            .and_where(Expr::col(AuthPasskeys::Id).eq(id))
            .and_where(Expr::col(AuthPasskeys::UserId).eq(user.to_row_id()?));
        let done = self
            .db
            .execute(&delete)
            .await
            .map_err(db("deleting a passkey"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthPasskeys::Table)
            .and_where(Expr::col(AuthPasskeys::UserId).eq(user.to_row_id()?));
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("deleting passkeys"))?
            .rows_affected())
    }
}

/// A [`CeremonyStore`] on sea-orm (`auth_passkey_ceremonies`): any instance on the database
/// finishes a ceremony another started; `take` is a `DELETE` whose affected-row count decides
/// which of N concurrent callers gets the record.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) {
/// let store = auth_webauthn::db::DbCeremonyStore::new(db);
/// # }
/// ```
#[derive(Clone)]
pub struct DbCeremonyStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbCeremonyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCeremonyStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl DbCeremonyStore {
    /// A store on `db`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_webauthn::db::DbCeremonyStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn delete(&self, key_hash: &str) -> Result<u64> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthPasskeyCeremonies::Table)
            .and_where(Expr::col(AuthPasskeyCeremonies::KeyHash).eq(key_hash));
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("ending a passkey ceremony"))?
            .rows_affected())
    }
}

#[async_trait]
impl CeremonyStore for DbCeremonyStore {
    async fn put(&self, record: &CeremonyRecord) -> Result<()> {
        // Replace: an account's new registration supersedes its pending one.
        self.delete(&record.key_hash).await?;
        let mut insert = Query::insert();
        insert
            .into_table(AuthPasskeyCeremonies::Table)
            .columns([
                AuthPasskeyCeremonies::KeyHash,
                AuthPasskeyCeremonies::UserId,
                AuthPasskeyCeremonies::State,
                AuthPasskeyCeremonies::ExpiresAt,
            ])
            .values([
                record.key_hash.clone().into(),
                record
                    .user_id
                    .as_ref()
                    .map(|u| u.as_str().to_owned())
                    .into(),
                record.state.clone().into(),
                micros(record.expires_at).into(),
            ])
            .map_err(|e| Error::backend("building an insert", e))?;
        match self.db.execute(&insert).await {
            Ok(_) => Ok(()),
            // Two registrations of one account at once: the other one is pending; this one
            // fails to finish, as a superseded one would.
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(()),
            Err(e) => Err(Error::backend("storing a passkey ceremony", e)),
        }
    }

    async fn take(&self, key_hash: &str, now: OffsetDateTime) -> Result<Option<CeremonyRecord>> {
        let mut q = Query::select();
        q.columns([
            AuthPasskeyCeremonies::UserId,
            AuthPasskeyCeremonies::State,
            AuthPasskeyCeremonies::ExpiresAt,
        ])
        .from(AuthPasskeyCeremonies::Table)
        .and_where(Expr::col(AuthPasskeyCeremonies::KeyHash).eq(key_hash));
        let Some(found) = self
            .db
            .query_one(&q)
            .await
            .map_err(db("reading a passkey ceremony"))?
        else {
            return Ok(None);
        };
        let read = db("reading a passkey ceremony");
        let user: Option<String> = found.try_get("", "user_id").map_err(&read)?;
        let state: String = found.try_get("", "state").map_err(&read)?;
        let expires: i64 = found.try_get("", "expires_at").map_err(&read)?;
        // Whoever deletes the row has it; a concurrent caller deletes nothing.
        if self.delete(key_hash).await? != 1 {
            return Ok(None);
        }
        let expires_at = from_micros(expires);
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(CeremonyRecord::new(
            key_hash.to_owned(),
            user.map(UserId::new),
            state,
            expires_at,
        )))
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthPasskeyCeremonies::Table)
            .and_where(Expr::col(AuthPasskeyCeremonies::ExpiresAt).lte(micros(now)));
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("deleting expired passkey ceremonies"))?
            .rows_affected())
    }
}
