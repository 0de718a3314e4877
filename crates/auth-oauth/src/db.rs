//! Linked identities in SQL (feature `db`): [`DbIdentityStore`] and its [`migrations`], on
//! sea-orm (SQLite, PostgreSQL, MySQL/MariaDB).
//!
//! `auth_identities`: one row per linked identity, owned by an `auth_users` row (`ON DELETE
//! CASCADE`), unique on `(provider, subject)`, which is also the lookup of a sign-in. Times are
//! microseconds since the epoch (`BIGINT`).
//!
//! ```
//! use sea_orm_migration::MigratorTrait;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
//! # struct M; impl MigratorTrait for M { fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
//! #   let mut m = auth_users_db::migrations(); m.extend(auth_oauth::db::migrations()); m } }
//! # M::up(&db, None).await.unwrap();
//! let identities = auth_oauth::db::DbIdentityStore::new(db);
//! # let _ = identities;
//! # });
//! ```

use std::fmt;

use auth_core::{
    Error, IdentityStore, LinkedIdentity, Result, UserId, async_trait,
    from_unix_micros as from_micros, unix_micros as micros,
};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

/// The migrations of this crate, in order (after `auth_users_db::migrations()`).
///
/// ```
/// assert_eq!(auth_oauth::db::migrations().len(), 1);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateIdentities)]
}

/// Creates `auth_identities`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateIdentities;

impl MigrationName for CreateIdentities {
    fn name(&self) -> &str {
        "m20261202_000004_auth_identities"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuthIdentities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    Email,
    CreatedAt,
    LastUsedAt,
}

#[async_trait]
impl MigrationTrait for CreateIdentities {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthIdentities::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthIdentities::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthIdentities::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthIdentities::Provider)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthIdentities::Subject)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthIdentities::Email).string_len(320).null())
                    .col(
                        ColumnDef::new(AuthIdentities::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthIdentities::LastUsedAt)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_identities_user")
                            .from(AuthIdentities::Table, AuthIdentities::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Subjects are case-sensitive: binary comparison on MariaDB.
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE auth_identities MODIFY provider VARCHAR(64) CHARACTER SET utf8mb4 \
                     COLLATE utf8mb4_bin NOT NULL, MODIFY subject VARCHAR(255) CHARACTER SET \
                     utf8mb4 COLLATE utf8mb4_bin NOT NULL",
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_identities_subject")
                    .table(AuthIdentities::Table)
                    .col(AuthIdentities::Provider)
                    .col(AuthIdentities::Subject)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_identities_user")
                    .table(AuthIdentities::Table)
                    .col(AuthIdentities::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AuthIdentities::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

const COLUMNS: [AuthIdentities; 7] = [
    AuthIdentities::Id,
    AuthIdentities::UserId,
    AuthIdentities::Provider,
    AuthIdentities::Subject,
    AuthIdentities::Email,
    AuthIdentities::CreatedAt,
    AuthIdentities::LastUsedAt,
];

fn select() -> SelectStatement {
    let mut q = Query::select();
    for c in COLUMNS {
        q.column(c);
    }
    q.from(AuthIdentities::Table);
    q
}

fn row(r: &QueryResult) -> Result<LinkedIdentity> {
    let read = db("reading an identity row");
    let user: i64 = r.try_get("", "user_id").map_err(&read)?;
    let created: i64 = r.try_get("", "created_at").map_err(&read)?;
    let used: Option<i64> = r.try_get("", "last_used_at").map_err(&read)?;
    let mut link = LinkedIdentity::new(
        r.try_get("", "id").map_err(&read)?,
        UserId::new(user.to_string()),
        r.try_get("", "provider").map_err(&read)?,
        r.try_get("", "subject").map_err(&read)?,
        r.try_get("", "email").map_err(&read)?,
        from_micros(created),
    );
    link.last_used_at = used.map(from_micros);
    Ok(link)
}

/// An [`IdentityStore`] on sea-orm, migrated with `auth_users_db::migrations()` then
/// [`migrations`]. User ids are `auth_users` integer ids.
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) {
/// let store = auth_oauth::db::DbIdentityStore::new(db);
/// # }
/// ```
#[derive(Clone)]
pub struct DbIdentityStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbIdentityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbIdentityStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl DbIdentityStore {
    /// A store on `db`.
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_oauth::db::DbIdentityStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn rows(&self, q: &SelectStatement) -> Result<Vec<LinkedIdentity>> {
        self.db
            .query_all(q)
            .await
            .map_err(db("reading identities"))?
            .iter()
            .map(row)
            .collect()
    }
}

#[async_trait]
impl IdentityStore for DbIdentityStore {
    async fn find(&self, provider: &str, subject: &str) -> Result<Option<LinkedIdentity>> {
        let mut q = select();
        q.and_where(Expr::col(AuthIdentities::Provider).eq(provider))
            .and_where(Expr::col(AuthIdentities::Subject).eq(subject));
        Ok(self.rows(&q).await?.into_iter().next())
    }

    async fn insert(&self, i: &LinkedIdentity) -> Result<bool> {
        let mut insert = Query::insert();
        insert
            .into_table(AuthIdentities::Table)
            .columns(COLUMNS)
            .values([
                i.id.clone().into(),
                i.user_id.to_row_id()?.into(),
                i.provider.clone().into(),
                i.subject.clone().into(),
                i.email.clone().into(),
                micros(i.created_at).into(),
                i.last_used_at.map(micros).into(),
            ])
            .map_err(|e| Error::backend("building an insert", e))?;
        match self.db.execute(&insert).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(Error::backend("linking an identity", e)),
        }
    }

    async fn by_user(&self, user: &UserId) -> Result<Vec<LinkedIdentity>> {
        let mut q = select();
        q.and_where(Expr::col(AuthIdentities::UserId).eq(user.to_row_id()?))
            .order_by(AuthIdentities::CreatedAt, Order::Asc)
            .order_by(AuthIdentities::Id, Order::Asc);
        self.rows(&q).await
    }

    async fn touch(&self, id: &str, at: OffsetDateTime) -> Result<()> {
        let mut update = Query::update();
        update
            .table(AuthIdentities::Table)
            .value(AuthIdentities::LastUsedAt, micros(at))
            .and_where(Expr::col(AuthIdentities::Id).eq(id));
        self.db
            .execute(&update)
            .await
            .map_err(db("recording an identity's use"))?;
        Ok(())
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthIdentities::Table)
            .and_where(Expr::col(AuthIdentities::Id).eq(id))
            .and_where(Expr::col(AuthIdentities::UserId).eq(user.to_row_id()?));
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("unlinking an identity"))?
            .rows_affected()
            == 1)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64> {
        let mut delete = Query::delete();
        delete
            .from_table(AuthIdentities::Table)
            .and_where(Expr::col(AuthIdentities::UserId).eq(user.to_row_id()?));
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("unlinking identities"))?
            .rows_affected())
    }
}
