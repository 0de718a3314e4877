//! `DbAuditStore`: the audit log in an append-only SQL table, and its migration.

use std::fmt;

use auth_core::{AuditEntry, AuditQuery, AuditStore, Error, Result, UserId, async_trait};
use sea_orm::sea_query::{Expr, ExprTrait, Index, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

/// Creates `auth_audit_log`, indexed by user and time, by identifier and time, and by time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateAuditLog;

impl MigrationName for CreateAuditLog {
    fn name(&self) -> &str {
        "m20261202_000001_auth_audit_log"
    }
}

#[derive(DeriveIden)]
enum AuthAuditLog {
    Table,
    Id,
    AtUs,
    Kind,
    UserId,
    Identifier,
    Ip,
    UserAgent,
    Actor,
    Detail,
}

/// The columns of an entry, in the order `append` writes them and `list` reads them.
const ENTRY_COLUMNS: [AuthAuditLog; 8] = [
    AuthAuditLog::AtUs,
    AuthAuditLog::Kind,
    AuthAuditLog::UserId,
    AuthAuditLog::Identifier,
    AuthAuditLog::Ip,
    AuthAuditLog::UserAgent,
    AuthAuditLog::Actor,
    AuthAuditLog::Detail,
];

/// The longest stored values, in characters (longer ones are cut at a character boundary).
const MAX_IDENTIFIER: usize = 320;
const MAX_USER_AGENT: usize = 512;

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditLog {
    async fn up(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthAuditLog::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthAuditLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthAuditLog::AtUs).big_integer().not_null())
                    .col(ColumnDef::new(AuthAuditLog::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(AuthAuditLog::UserId).string_len(64).null())
                    .col(
                        ColumnDef::new(AuthAuditLog::Identifier)
                            .string_len(320)
                            .null(),
                    )
                    .col(ColumnDef::new(AuthAuditLog::Ip).string_len(64).null())
                    .col(
                        ColumnDef::new(AuthAuditLog::UserAgent)
                            .string_len(512)
                            .null(),
                    )
                    .col(ColumnDef::new(AuthAuditLog::Actor).string_len(128).null())
                    .col(ColumnDef::new(AuthAuditLog::Detail).text().not_null())
                    .to_owned(),
            )
            .await?;
        // On MySQL/MariaDB the identifier (an email) compares bytes, as the users table's
        // email does: a look-alike address must not list another account's attempts.
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE `auth_audit_log` MODIFY `identifier` VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL",
                )
                .await?;
        }
        for (name, columns) in [
            (
                "idx_auth_audit_user",
                vec![AuthAuditLog::UserId, AuthAuditLog::AtUs],
            ),
            (
                "idx_auth_audit_identifier",
                vec![AuthAuditLog::Identifier, AuthAuditLog::AtUs],
            ),
            ("idx_auth_audit_at", vec![AuthAuditLog::AtUs]),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuthAuditLog::Table).if_not_exists();
            for c in columns {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthAuditLog::Table).to_owned())
            .await
    }
}

/// An [`AuditStore`] on sea-orm (SQLite, PostgreSQL, MySQL/MariaDB): one `INSERT` per event,
/// one indexed `SELECT` per page, a `DELETE` by time for retention. Times are microseconds
/// since the Unix epoch.
///
/// ```
/// use auth_core::{AuditEntry, AuditQuery, AuditStore, AuthEvent, UserId};
/// use auth_users_db::{DbAuditStore, Migrator};
/// use sea_orm_migration::MigratorTrait;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// Migrator::up(&db, None).await.unwrap();
/// let store = DbAuditStore::new(db);
/// let event = AuthEvent::PasswordChanged { user_id: UserId::new("1") };
/// store.append(&AuditEntry::from_event(&event, None, time::OffsetDateTime::now_utc())).await?;
/// assert_eq!(store.list(&AuditQuery::for_user(UserId::new("1"))).await?[0].kind, "password_changed");
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbAuditStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbAuditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbAuditStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl DbAuditStore {
    /// A store on `db` (migrated).
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_users_db::DbAuditStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

#[async_trait]
impl AuditStore for DbAuditStore {
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        let detail = serde_json::Value::Object(entry.detail.clone()).to_string();
        let insert = Query::insert()
            .into_table(AuthAuditLog::Table)
            .columns(ENTRY_COLUMNS)
            .values([
                auth_core::unix_micros(entry.at).into(),
                cut(&entry.kind, 64).into(),
                entry.user_id.as_ref().map(|u| cut(u.as_str(), 64)).into(),
                entry
                    .identifier
                    .as_deref()
                    .map(|i| cut(i, MAX_IDENTIFIER))
                    .into(),
                entry.ip.as_deref().map(|i| cut(i, 64)).into(),
                entry
                    .user_agent
                    .as_deref()
                    .map(|u| cut(u, MAX_USER_AGENT))
                    .into(),
                entry.actor.as_deref().map(|a| cut(a, 128)).into(),
                detail.into(),
            ])
            .map_err(|e| Error::backend("writing an audit entry", e))?
            .to_owned();
        self.db
            .execute(&insert)
            .await
            .map_err(db("writing an audit entry"))?;
        Ok(())
    }

    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut mine = Expr::col(AuthAuditLog::UserId).eq(query.user_id.as_str());
        if let Some(email) = &query.email {
            let mut attempts = Expr::col(AuthAuditLog::UserId)
                .is_null()
                .and(Expr::col(AuthAuditLog::Identifier).eq(email.as_str()));
            if let Some(since) = query.email_since {
                attempts =
                    attempts.and(Expr::col(AuthAuditLog::AtUs).gte(auth_core::unix_micros(since)));
            }
            mine = mine.or(attempts);
        }
        let mut select = Query::select();
        select
            .columns(ENTRY_COLUMNS)
            .from(AuthAuditLog::Table)
            .and_where(mine);
        if let Some(before) = query.before {
            select.and_where(Expr::col(AuthAuditLog::AtUs).lt(auth_core::unix_micros(before)));
        }
        if !query.kinds.is_empty() {
            select.and_where(Expr::col(AuthAuditLog::Kind).is_in(query.kinds.clone()));
        }
        select
            .order_by(AuthAuditLog::AtUs, Order::Desc)
            .order_by(AuthAuditLog::Id, Order::Desc)
            .limit(query.limit.clamp(1, AuditQuery::MAX_LIMIT));
        let rows = self
            .db
            .query_all(&select)
            .await
            .map_err(db("reading the audit log"))?;
        rows.into_iter()
            .map(|r| {
                let get_opt = |col: &str| -> Result<Option<String>> {
                    r.try_get("", col).map_err(db("reading the audit log"))
                };
                let at_us: i64 = r
                    .try_get("", "at_us")
                    .map_err(db("reading the audit log"))?;
                let detail: String = r
                    .try_get("", "detail")
                    .map_err(db("reading the audit log"))?;
                let kind: String = r.try_get("", "kind").map_err(db("reading the audit log"))?;
                let mut entry = AuditEntry::new(auth_core::from_unix_micros(at_us), kind);
                entry.user_id = get_opt("user_id")?.map(UserId::new);
                entry.identifier = get_opt("identifier")?;
                entry.ip = get_opt("ip")?;
                entry.user_agent = get_opt("user_agent")?;
                entry.actor = get_opt("actor")?;
                entry.detail = match serde_json::from_str(&detail) {
                    Ok(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                Ok(entry)
            })
            .collect()
    }

    async fn delete_before(&self, cutoff: OffsetDateTime) -> Result<u64> {
        let delete = Query::delete()
            .from_table(AuthAuditLog::Table)
            .and_where(Expr::col(AuthAuditLog::AtUs).lt(auth_core::unix_micros(cutoff)))
            .to_owned();
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("trimming the audit log"))?
            .rows_affected())
    }
}
