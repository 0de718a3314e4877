//! `DbGrantStore`: roles granted to accounts, in `auth_grants` (removed with the account), and
//! its migration.

use std::fmt;

use auth_core::{Error, GrantStore, Result, Revoked, Role, RoleGrant, UserId, async_trait};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, SqlErr, Statement,
    TransactionTrait, Value,
};
use sea_orm_migration::prelude::*;

/// Creates `auth_grants`: one row per (account, role), keyed by both, removed with the account.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateGrants;

impl MigrationName for CreateGrants {
    fn name(&self) -> &str {
        "m20261206_000001_auth_grants"
    }
}

#[derive(DeriveIden)]
enum AuthGrants {
    Table,
    UserId,
    Role,
    GrantedBy,
    GrantedAtUs,
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateGrants {
    async fn up(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthGrants::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(AuthGrants::UserId).big_integer().not_null())
                    .col(ColumnDef::new(AuthGrants::Role).string_len(32).not_null())
                    .col(
                        ColumnDef::new(AuthGrants::GrantedBy)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthGrants::GrantedAtUs)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AuthGrants::UserId)
                            .col(AuthGrants::Role),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_grants_user")
                            .from(AuthGrants::Table, AuthGrants::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_grants_role")
                    .table(AuthGrants::Table)
                    .col(AuthGrants::Role)
                    .col(AuthGrants::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthGrants::Table).to_owned())
            .await
    }
}

/// A [`GrantStore`] on sea-orm (SQLite, PostgreSQL, MySQL/MariaDB). Revoking never leaves a
/// role without a holder, whatever the concurrency: one conditional `DELETE` on SQLite (whose
/// writes are serial), the role's rows locked (`FOR UPDATE`) then counted on PostgreSQL and
/// MySQL/MariaDB.
///
/// ```
/// use auth_service::*;
/// use auth_users_db::{DbGrantStore, DbUserStore, Migrator};
/// use sea_orm_migration::MigratorTrait;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// Migrator::up(&db, None).await.unwrap();
/// let user = DbUserStore::new(db.clone()).create(NewUser::new("ops@example.com")).await?;
/// let grants = DbGrantStore::new(db);
/// let at = time::OffsetDateTime::now_utc();
/// assert!(grants.grant(&RoleGrant::new(user.id.clone(), Role::Admin, "operator", at)).await?);
/// assert!(!grants.grant(&RoleGrant::new(user.id.clone(), Role::Admin, "operator", at)).await?);
/// assert_eq!(grants.revoke_unless_last(&user.id, Role::Admin).await?, Revoked::Last);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbGrantStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbGrantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbGrantStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl DbGrantStore {
    /// A store on `db` (migrated).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_users_db::DbGrantStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        statement(self.db.get_database_backend(), sql, values)
    }
}

/// `sql` with `?` placeholders, numbered (`$1`...) for PostgreSQL.
fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DatabaseBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

#[async_trait]
impl GrantStore for DbGrantStore {
    async fn grants_of(&self, user_id: &UserId) -> Result<Vec<RoleGrant>> {
        let id = user_id.to_row_id()?;
        let rows = self
            .db
            .query_all_raw(self.stmt(
                "SELECT role, granted_by, granted_at_us FROM auth_grants WHERE user_id = ? ORDER BY role",
                vec![id.into()],
            ))
            .await
            .map_err(db("reading grants"))?;
        let mut out = Vec::new();
        for row in rows {
            let role: String = row.try_get("", "role").map_err(db("reading grants"))?;
            let by: String = row
                .try_get("", "granted_by")
                .map_err(db("reading grants"))?;
            let at: i64 = row
                .try_get("", "granted_at_us")
                .map_err(db("reading grants"))?;
            // A role this version does not know (written by a newer one) grants nothing here.
            if let Some(role) = Role::parse(&role) {
                out.push(RoleGrant::new(
                    user_id.clone(),
                    role,
                    by,
                    auth_core::from_unix_micros(at),
                ));
            }
        }
        Ok(out)
    }

    async fn grant(&self, grant: &RoleGrant) -> Result<bool> {
        let id = grant.user_id.to_row_id()?;
        let by: String = grant.granted_by.chars().take(128).collect();
        match self
            .db
            .execute_raw(self.stmt(
                "INSERT INTO auth_grants (user_id, role, granted_by, granted_at_us) VALUES (?, ?, ?, ?)",
                vec![
                    id.into(),
                    grant.role.as_str().into(),
                    by.into(),
                    auth_core::unix_micros(grant.granted_at).into(),
                ],
            ))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))) => {
                Err(Error::UserNotFound)
            }
            Err(e) => Err(Error::backend("granting a role", e)),
        }
    }

    async fn revoke_unless_last(&self, user_id: &UserId, role: Role) -> Result<Revoked> {
        let id = user_id.to_row_id()?;
        let backend = self.db.get_database_backend();
        let txn = self.db.begin().await.map_err(db("revoking a role"))?;
        if backend == DatabaseBackend::Sqlite {
            // One statement: SQLite runs writes one at a time, so the count and the delete
            // cannot interleave with another revocation.
            let deleted = txn
                .execute_raw(statement(
                    backend,
                    "DELETE FROM auth_grants WHERE user_id = ? AND role = ? \
                     AND (SELECT COUNT(*) FROM auth_grants WHERE role = ?) > 1",
                    vec![id.into(), role.as_str().into(), role.as_str().into()],
                ))
                .await
                .map_err(db("revoking a role"))?
                .rows_affected();
            let outcome = if deleted > 0 {
                Revoked::Yes
            } else {
                let held = txn
                    .query_one_raw(statement(
                        backend,
                        "SELECT 1 AS held FROM auth_grants WHERE user_id = ? AND role = ?",
                        vec![id.into(), role.as_str().into()],
                    ))
                    .await
                    .map_err(db("revoking a role"))?
                    .is_some();
                if held {
                    Revoked::Last
                } else {
                    Revoked::NotHeld
                }
            };
            txn.commit().await.map_err(db("revoking a role"))?;
            return Ok(outcome);
        }
        // PostgreSQL, MySQL/MariaDB: lock every holder of the role, so a concurrent revocation
        // waits and then counts what this one left.
        let holders = txn
            .query_all_raw(statement(
                backend,
                "SELECT user_id FROM auth_grants WHERE role = ? FOR UPDATE",
                vec![role.as_str().into()],
            ))
            .await
            .map_err(db("revoking a role"))?;
        let mut ids = Vec::with_capacity(holders.len());
        for row in holders {
            let holder: i64 = row.try_get("", "user_id").map_err(db("revoking a role"))?;
            ids.push(holder);
        }
        let outcome = if !ids.contains(&id) {
            Revoked::NotHeld
        } else if ids.len() <= 1 {
            Revoked::Last
        } else {
            txn.execute_raw(statement(
                backend,
                "DELETE FROM auth_grants WHERE user_id = ? AND role = ?",
                vec![id.into(), role.as_str().into()],
            ))
            .await
            .map_err(db("revoking a role"))?;
            Revoked::Yes
        };
        txn.commit().await.map_err(db("revoking a role"))?;
        Ok(outcome)
    }

    async fn revoke_all(&self, user_id: &UserId) -> Result<u64> {
        let id = user_id.to_row_id()?;
        Ok(self
            .db
            .execute_raw(self.stmt("DELETE FROM auth_grants WHERE user_id = ?", vec![id.into()]))
            .await
            .map_err(db("revoking grants"))?
            .rows_affected())
    }

    async fn holders(&self, role: Role) -> Result<Vec<UserId>> {
        let rows = self
            .db
            .query_all_raw(self.stmt(
                "SELECT user_id FROM auth_grants WHERE role = ? ORDER BY user_id",
                vec![role.as_str().into()],
            ))
            .await
            .map_err(db("reading grants"))?;
        rows.into_iter()
            .map(|r| {
                r.try_get::<i64>("", "user_id")
                    .map(UserId::from)
                    .map_err(db("reading grants"))
            })
            .collect()
    }
}
