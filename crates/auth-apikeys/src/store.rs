//! `DbApiKeyStore`: API keys in SQL.

use std::fmt;

use auth_core::{
    ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, ApiKeyStore, Error, FoundApiKey, Result, UserId,
    async_trait,
};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, InsertStatement, IntoIden, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, SqlErr, TransactionTrait};
use time::OffsetDateTime;

use crate::migration::{AuthApiKeySecrets, AuthApiKeyWindows, AuthApiKeys, AuthServiceAccounts};

/// An [`ApiKeyStore`] on sea-orm: one indexed lookup (secret joined with its key) per
/// verification, an atomic roll (the key's row locked while its secrets change), a per-key
/// limit counted by one conditional `UPDATE`, and cleanup of expired keys, graced-out secrets
/// and old windows. User owners are `auth_users` rows (integer ids).
///
/// ```no_run
/// # async fn f(db: sea_orm::DatabaseConnection) {
/// let store = auth_apikeys::DbApiKeyStore::new(db);
/// # }
/// ```
#[derive(Clone)]
pub struct DbApiKeyStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbApiKeyStore")
            .field("backend", &self.db.get_database_backend())
            .finish_non_exhaustive()
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

use auth_core::{from_unix_micros as from_micros, unix_micros as micros};

/// One row into `table`: as many values as columns (checked by the compiler), and a typed error
/// rather than a panic should sea-query refuse it anyway.
fn insert_row<C: IntoIden, const N: usize>(
    table: impl IntoIden,
    columns: [C; N],
    values: [Expr; N],
) -> Result<InsertStatement> {
    let mut insert = Query::insert();
    insert.into_table(table).columns(columns);
    insert
        .values(values)
        .map_err(|e| Error::backend("building an insert", e))?;
    Ok(insert)
}

/// A secret of key `id` (graced until `until`, or live).
fn insert_secret(hash: &str, id: &str, until: Option<i64>) -> Result<InsertStatement> {
    insert_row(
        AuthApiKeySecrets::Table,
        [
            AuthApiKeySecrets::Hash,
            AuthApiKeySecrets::KeyId,
            AuthApiKeySecrets::ExpiresAt,
        ],
        [hash.into(), id.into(), until.into()],
    )
}

const KEY_COLUMNS: [AuthApiKeys; 14] = [
    AuthApiKeys::Id,
    AuthApiKeys::UserId,
    AuthApiKeys::ServiceAccount,
    AuthApiKeys::Name,
    AuthApiKeys::Scopes,
    AuthApiKeys::Start,
    AuthApiKeys::CreatedAt,
    AuthApiKeys::ExpiresAt,
    AuthApiKeys::LastUsedAt,
    AuthApiKeys::LastIp,
    AuthApiKeys::Enabled,
    AuthApiKeys::RateRequests,
    AuthApiKeys::RateWindow,
    AuthApiKeys::Metadata,
];

impl DbApiKeyStore {
    /// A store on `db`, migrated with `auth_users_db::migrations()` then
    /// [`crate::migrations`].
    ///
    /// ```no_run
    /// # async fn f(db: sea_orm::DatabaseConnection) {
    /// let store = auth_apikeys::DbApiKeyStore::new(db);
    /// # }
    /// ```
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    fn select_keys() -> SelectStatement {
        let mut q = Query::select();
        for c in KEY_COLUMNS {
            q.column((AuthApiKeys::Table, c));
        }
        q.from(AuthApiKeys::Table);
        q
    }

    fn record(row: &QueryResult) -> Result<ApiKeyRecord> {
        let read = db("reading an API key");
        let user: Option<i64> = row.try_get("", "user_id").map_err(&read)?;
        let service: Option<String> = row.try_get("", "service_account").map_err(&read)?;
        let owner = match (user, service) {
            (Some(u), _) => ApiKeyOwner::User(UserId::from(u)),
            (None, Some(s)) => ApiKeyOwner::Service(s),
            (None, None) => {
                return Err(Error::Backend(auth_core::BackendError::message(
                    "an API key row has no owner",
                )));
            }
        };
        let scopes: String = row.try_get("", "scopes").map_err(&read)?;
        let metadata: String = row.try_get("", "metadata").map_err(&read)?;
        let mut r = ApiKeyRecord::new(
            row.try_get::<String>("", "id").map_err(&read)?,
            owner,
            row.try_get::<String>("", "name").map_err(&read)?,
            serde_json::from_str(&scopes).unwrap_or_default(),
            row.try_get::<String>("", "start").map_err(&read)?,
            from_micros(row.try_get("", "created_at").map_err(&read)?),
        );
        r.expires_at = row
            .try_get::<Option<i64>>("", "expires_at")
            .map_err(&read)?
            .map(from_micros);
        r.last_used_at = row
            .try_get::<Option<i64>>("", "last_used_at")
            .map_err(&read)?
            .map(from_micros);
        r.last_ip = row.try_get("", "last_ip").map_err(&read)?;
        r.enabled = row.try_get("", "enabled").map_err(&read)?;
        let requests: Option<i32> = row.try_get("", "rate_requests").map_err(&read)?;
        let window: Option<i32> = row.try_get("", "rate_window").map_err(&read)?;
        r.rate_limit = match (requests, window) {
            (Some(n), Some(w)) => ApiKeyRateLimit::new(
                u32::try_from(n).unwrap_or(0),
                std::time::Duration::from_secs(u64::try_from(w).unwrap_or(0)),
            )
            .ok(),
            _ => None,
        };
        r.metadata = serde_json::from_str(&metadata).unwrap_or(serde_json::Value::Null);
        Ok(r)
    }

    /// Counts one request if the window's row exists and is under `limit`.
    async fn count_one(&self, id: &str, window_start: i64, limit: u32) -> Result<bool> {
        let n = self
            .db
            .execute(
                Query::update()
                    .table(AuthApiKeyWindows::Table)
                    .value(
                        AuthApiKeyWindows::Count,
                        Expr::col(AuthApiKeyWindows::Count).add(1),
                    )
                    .and_where(Expr::col(AuthApiKeyWindows::KeyId).eq(id))
                    .and_where(Expr::col(AuthApiKeyWindows::WindowStart).eq(window_start))
                    .and_where(Expr::col(AuthApiKeyWindows::Count).lt(i64::from(limit))),
            )
            .await
            .map_err(db("counting an API key request"))?
            .rows_affected();
        Ok(n == 1)
    }
}

#[async_trait]
impl ApiKeyStore for DbApiKeyStore {
    async fn create(&self, r: &ApiKeyRecord, secret_hash: &str) -> Result<()> {
        let (user, service) = match &r.owner {
            ApiKeyOwner::User(id) => (Some(id.to_row_id()?), None),
            ApiKeyOwner::Service(name) => (None, Some(name.clone())),
        };
        let scopes =
            serde_json::to_string(&r.scopes).map_err(|e| Error::backend("encoding scopes", e))?;
        let metadata = serde_json::to_string(&r.metadata)
            .map_err(|e| Error::backend("encoding metadata", e))?;
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        txn.execute(&insert_row(
            AuthApiKeys::Table,
            KEY_COLUMNS,
            [
                r.id.clone().into(),
                user.into(),
                service.into(),
                r.name.clone().into(),
                scopes.into(),
                r.start.clone().into(),
                micros(r.created_at).into(),
                r.expires_at.map(micros).into(),
                r.last_used_at.map(micros).into(),
                r.last_ip.clone().into(),
                r.enabled.into(),
                r.rate_limit
                    .map(|l| i32::try_from(l.requests).unwrap_or(i32::MAX))
                    .into(),
                r.rate_limit
                    .map(|l| i32::try_from(l.window_secs).unwrap_or(i32::MAX))
                    .into(),
                metadata.into(),
            ],
        )?)
        .await
        .map_err(db("storing an API key"))?;
        txn.execute(&insert_secret(secret_hash, &r.id, None)?)
            .await
            .map_err(db("storing an API key secret"))?;
        txn.commit().await.map_err(db("committing"))
    }

    async fn find_by_secret(&self, secret_hash: &str) -> Result<Option<FoundApiKey>> {
        let mut q = Self::select_keys();
        q.expr_as(
            Expr::col((AuthApiKeySecrets::Table, AuthApiKeySecrets::ExpiresAt)),
            Alias::new("secret_expires_at"),
        )
        .inner_join(
            AuthApiKeySecrets::Table,
            Expr::col((AuthApiKeySecrets::Table, AuthApiKeySecrets::KeyId))
                .equals((AuthApiKeys::Table, AuthApiKeys::Id)),
        )
        .and_where(Expr::col((AuthApiKeySecrets::Table, AuthApiKeySecrets::Hash)).eq(secret_hash));
        let Some(row) = self
            .db
            .query_one(&q)
            .await
            .map_err(db("looking up an API key"))?
        else {
            return Ok(None);
        };
        let until: Option<i64> = row
            .try_get("", "secret_expires_at")
            .map_err(db("reading an API key"))?;
        Ok(Some(FoundApiKey::new(
            Self::record(&row)?,
            until.map(from_micros),
        )))
    }

    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let mut q = Self::select_keys();
        q.and_where(Expr::col((AuthApiKeys::Table, AuthApiKeys::Id)).eq(id));
        self.db
            .query_one(&q)
            .await
            .map_err(db("reading an API key"))?
            .map(|row| Self::record(&row))
            .transpose()
    }

    async fn list(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>> {
        let mut q = Self::select_keys();
        match owner {
            ApiKeyOwner::User(id) => {
                let Ok(uid) = id.to_row_id() else {
                    return Ok(Vec::new());
                };
                q.and_where(Expr::col((AuthApiKeys::Table, AuthApiKeys::UserId)).eq(uid));
            }
            ApiKeyOwner::Service(name) => {
                q.and_where(
                    Expr::col((AuthApiKeys::Table, AuthApiKeys::ServiceAccount)).eq(name.as_str()),
                );
            }
        }
        q.order_by((AuthApiKeys::Table, AuthApiKeys::CreatedAt), Order::Desc)
            .order_by((AuthApiKeys::Table, AuthApiKeys::Id), Order::Asc);
        self.db
            .query_all(&q)
            .await
            .map_err(db("listing API keys"))?
            .iter()
            .map(Self::record)
            .collect()
    }

    async fn roll(&self, id: &str, new_hash: &str, previous_until: OffsetDateTime) -> Result<bool> {
        let until = micros(previous_until);
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        // Locks the key's row (PostgreSQL, MySQL; SQLite has one writer): concurrent rolls
        // of one key take turns.
        let exists = txn
            .execute(
                Query::update()
                    .table(AuthApiKeys::Table)
                    .value(AuthApiKeys::Enabled, Expr::col(AuthApiKeys::Enabled))
                    .and_where(Expr::col(AuthApiKeys::Id).eq(id)),
            )
            .await
            .map_err(db("rolling an API key"))?
            .rows_affected()
            == 1;
        if !exists {
            txn.rollback().await.map_err(db("rolling back"))?;
            return Ok(false);
        }
        txn.execute(
            Query::update()
                .table(AuthApiKeySecrets::Table)
                .value(AuthApiKeySecrets::ExpiresAt, until)
                .and_where(Expr::col(AuthApiKeySecrets::KeyId).eq(id))
                .and_where(
                    Expr::col(AuthApiKeySecrets::ExpiresAt)
                        .is_null()
                        .or(Expr::col(AuthApiKeySecrets::ExpiresAt).gt(until)),
                ),
        )
        .await
        .map_err(db("rolling an API key"))?;
        txn.execute(&insert_secret(new_hash, id, None)?)
            .await
            .map_err(db("rolling an API key"))?;
        txn.commit().await.map_err(db("committing"))?;
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<bool> {
        // Secrets and windows go by cascade; deleted explicitly too, for SQLite connections
        // opened without foreign keys.
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        for stmt in [
            Query::delete()
                .from_table(AuthApiKeySecrets::Table)
                .and_where(Expr::col(AuthApiKeySecrets::KeyId).eq(id))
                .to_owned(),
            Query::delete()
                .from_table(AuthApiKeyWindows::Table)
                .and_where(Expr::col(AuthApiKeyWindows::KeyId).eq(id))
                .to_owned(),
        ] {
            txn.execute(&stmt)
                .await
                .map_err(db("deleting an API key"))?;
        }
        let n = txn
            .execute(
                Query::delete()
                    .from_table(AuthApiKeys::Table)
                    .and_where(Expr::col(AuthApiKeys::Id).eq(id)),
            )
            .await
            .map_err(db("deleting an API key"))?
            .rows_affected();
        txn.commit().await.map_err(db("committing"))?;
        Ok(n == 1)
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> Result<bool> {
        Ok(self
            .db
            .execute(
                Query::update()
                    .table(AuthApiKeys::Table)
                    .value(AuthApiKeys::Enabled, enabled)
                    .and_where(Expr::col(AuthApiKeys::Id).eq(id)),
            )
            .await
            .map_err(db("updating an API key"))?
            .rows_affected()
            == 1)
    }

    async fn touch(
        &self,
        id: &str,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
        ip: Option<&str>,
    ) -> Result<bool> {
        Ok(self
            .db
            .execute(
                Query::update()
                    .table(AuthApiKeys::Table)
                    .value(AuthApiKeys::LastUsedAt, micros(now))
                    .value(AuthApiKeys::LastIp, ip.map(str::to_owned))
                    .and_where(Expr::col(AuthApiKeys::Id).eq(id))
                    .and_where(
                        Expr::col(AuthApiKeys::LastUsedAt)
                            .is_null()
                            .or(Expr::col(AuthApiKeys::LastUsedAt).lte(micros(not_before))),
                    ),
            )
            .await
            .map_err(db("recording an API key's use"))?
            .rows_affected()
            == 1)
    }

    async fn reserve(&self, id: &str, window_start: i64, limit: u32) -> Result<bool> {
        if self.count_one(id, window_start, limit).await? {
            return Ok(true);
        }
        // No row for this window yet: the first insert counts; a concurrent insert that lost
        // the race counts through the conditional update instead.
        let inserted = self
            .db
            .execute(&insert_row(
                AuthApiKeyWindows::Table,
                [
                    AuthApiKeyWindows::KeyId,
                    AuthApiKeyWindows::WindowStart,
                    AuthApiKeyWindows::Count,
                ],
                [id.into(), window_start.into(), 1i32.into()],
            )?)
            .await;
        match inserted {
            Ok(_) => Ok(limit >= 1),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                self.count_one(id, window_start, limit).await
            }
            Err(e) => Err(Error::backend("counting an API key request", e)),
        }
    }

    async fn create_service_account(&self, name: &str, now: OffsetDateTime) -> Result<bool> {
        let inserted = self
            .db
            .execute(&insert_row(
                AuthServiceAccounts::Table,
                [AuthServiceAccounts::Name, AuthServiceAccounts::CreatedAt],
                [name.into(), micros(now).into()],
            )?)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(Error::backend("creating a service account", e)),
        }
    }

    async fn service_account_exists(&self, name: &str) -> Result<bool> {
        Ok(self
            .db
            .query_one(
                Query::select()
                    .column(AuthServiceAccounts::Name)
                    .from(AuthServiceAccounts::Table)
                    .and_where(Expr::col(AuthServiceAccounts::Name).eq(name)),
            )
            .await
            .map_err(db("reading a service account"))?
            .is_some())
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let now_us = micros(now);
        let day_ago = now.unix_timestamp() - 86_400;
        let expired_keys = Query::select()
            .column(AuthApiKeys::Id)
            .from(AuthApiKeys::Table)
            .and_where(Expr::col(AuthApiKeys::ExpiresAt).lte(now_us))
            .to_owned();
        let mut removed = 0;
        for stmt in [
            Query::delete()
                .from_table(AuthApiKeySecrets::Table)
                .and_where(
                    Expr::col(AuthApiKeySecrets::ExpiresAt)
                        .lte(now_us)
                        .or(Expr::col(AuthApiKeySecrets::KeyId).in_subquery(expired_keys.clone())),
                )
                .to_owned(),
            Query::delete()
                .from_table(AuthApiKeyWindows::Table)
                .and_where(
                    Expr::col(AuthApiKeyWindows::WindowStart)
                        .lte(day_ago)
                        .or(Expr::col(AuthApiKeyWindows::KeyId).in_subquery(expired_keys.clone())),
                )
                .to_owned(),
            Query::delete()
                .from_table(AuthApiKeys::Table)
                .and_where(Expr::col(AuthApiKeys::ExpiresAt).lte(now_us))
                .to_owned(),
        ] {
            removed += self
                .db
                .execute(&stmt)
                .await
                .map_err(db("deleting expired API keys"))?
                .rows_affected();
        }
        if removed > 0 {
            tracing::info!(
                deleted = removed,
                "expired API keys, secrets and windows deleted"
            );
        }
        Ok(removed)
    }
}
