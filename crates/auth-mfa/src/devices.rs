//! `DbTrustedDevices`: trusted devices in SQL (`auth_trusted_devices`), shared by every
//! instance on the database.

use std::fmt;

use auth_service::{
    Error, Result, SessionMeta, TrustedDevice, TrustedDeviceStore, UserId, async_trait,
};
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

/// A [`TrustedDeviceStore`] on sea-orm: one row per device, keyed by the SHA-256 of its
/// credential, removed with its account (`ON DELETE CASCADE`).
///
/// ```
/// use auth_service::{SessionMeta, TrustedDevice, TrustedDeviceStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
/// # let manager = sea_orm_migration::SchemaManager::new(&db);
/// # for m in auth_users_db::migrations() { m.up(&manager).await.unwrap(); }
/// # for m in auth_mfa::db::migrations() { m.up(&manager).await.unwrap(); }
/// # let users = auth_users_db::DbUserStore::new(db.clone());
/// # let user = auth_service::UserStore::create(&users, auth_service::NewUser::new("d@example.com")).await.unwrap();
/// let store = auth_mfa::DbTrustedDevices::new(db);
/// let now = time::OffsetDateTime::now_utc();
/// let device = TrustedDevice::new("d1", user.id.clone(), now, now + time::Duration::days(30),
///     SessionMeta::new().with_user_agent("Firefox"));
/// store.insert(&device, "digest").await?;
/// let found = store.find("digest").await?.unwrap();
/// assert_eq!((found.id.as_str(), found.meta.user_agent.as_deref()), ("d1", Some("Firefox")));
/// assert_eq!(store.remove_all(&user.id).await?, 1);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct DbTrustedDevices {
    db: DatabaseConnection,
}

impl fmt::Debug for DbTrustedDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbTrustedDevices").finish_non_exhaustive()
    }
}

impl DbTrustedDevices {
    /// A store on `db` (migrated with [`crate::db::migrations`]).
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthTrustedDevices {
    Table,
    DigestHash,
    Id,
    UserId,
    CreatedAt,
    ExpiresAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

fn select() -> SelectStatement {
    Query::select()
        .columns([
            AuthTrustedDevices::Id,
            AuthTrustedDevices::UserId,
            AuthTrustedDevices::CreatedAt,
            AuthTrustedDevices::ExpiresAt,
            AuthTrustedDevices::Ip,
            AuthTrustedDevices::UserAgent,
        ])
        .from(AuthTrustedDevices::Table)
        .to_owned()
}

fn device(row: &QueryResult) -> Result<TrustedDevice> {
    let read = db("reading a trusted device");
    let user: i64 = row.try_get("", "user_id").map_err(&read)?;
    let ip: Option<String> = row.try_get("", "ip").map_err(&read)?;
    let user_agent: Option<String> = row.try_get("", "user_agent").map_err(&read)?;
    let mut meta = SessionMeta::new();
    if let Some(ip) = ip.and_then(|i| i.parse().ok()) {
        meta = meta.with_ip(ip);
    }
    if let Some(agent) = user_agent {
        meta = meta.with_user_agent(agent);
    }
    Ok(TrustedDevice::new(
        row.try_get::<String>("", "id").map_err(&read)?,
        UserId::new(user.to_string()),
        row.try_get::<OffsetDateTime>("", "created_at")
            .map_err(&read)?,
        row.try_get::<OffsetDateTime>("", "expires_at")
            .map_err(&read)?,
        meta,
    ))
}

#[async_trait]
impl TrustedDeviceStore for DbTrustedDevices {
    async fn insert(&self, device: &TrustedDevice, digest: &str) -> Result<()> {
        let user = device.user_id.to_row_id()?;
        let insert = Query::insert()
            .into_table(AuthTrustedDevices::Table)
            .columns([
                AuthTrustedDevices::DigestHash,
                AuthTrustedDevices::Id,
                AuthTrustedDevices::UserId,
                AuthTrustedDevices::CreatedAt,
                AuthTrustedDevices::ExpiresAt,
                AuthTrustedDevices::Ip,
                AuthTrustedDevices::UserAgent,
            ])
            .values_panic([
                digest.into(),
                device.id.clone().into(),
                user.into(),
                auth_service::truncate_to_micros(device.created_at).into(),
                auth_service::truncate_to_micros(device.expires_at).into(),
                device.meta.ip.map(|i| i.to_string()).into(),
                device.meta.user_agent.clone().into(),
            ])
            .to_owned();
        self.db
            .execute(&insert)
            .await
            .map_err(db("trusting a device"))?;
        Ok(())
    }

    async fn find(&self, digest: &str) -> Result<Option<TrustedDevice>> {
        let query = select()
            .and_where(Expr::col(AuthTrustedDevices::DigestHash).eq(digest))
            .to_owned();
        match self
            .db
            .query_one(&query)
            .await
            .map_err(db("finding a trusted device"))?
        {
            Some(row) => Ok(Some(device(&row)?)),
            None => Ok(None),
        }
    }

    async fn list(&self, user_id: &UserId) -> Result<Vec<TrustedDevice>> {
        let Ok(user) = user_id.to_row_id() else {
            return Ok(Vec::new());
        };
        let query = select()
            .and_where(Expr::col(AuthTrustedDevices::UserId).eq(user))
            .order_by(AuthTrustedDevices::CreatedAt, Order::Desc)
            .order_by(AuthTrustedDevices::Id, Order::Asc)
            .to_owned();
        self.db
            .query_all(&query)
            .await
            .map_err(db("listing trusted devices"))?
            .iter()
            .map(device)
            .collect()
    }

    async fn remove(&self, user_id: &UserId, id: &str) -> Result<bool> {
        let Ok(user) = user_id.to_row_id() else {
            return Ok(false);
        };
        let delete = Query::delete()
            .from_table(AuthTrustedDevices::Table)
            .and_where(Expr::col(AuthTrustedDevices::UserId).eq(user))
            .and_where(Expr::col(AuthTrustedDevices::Id).eq(id))
            .to_owned();
        let done = self
            .db
            .execute(&delete)
            .await
            .map_err(db("forgetting a trusted device"))?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_all(&self, user_id: &UserId) -> Result<u64> {
        let Ok(user) = user_id.to_row_id() else {
            return Ok(0);
        };
        let delete = Query::delete()
            .from_table(AuthTrustedDevices::Table)
            .and_where(Expr::col(AuthTrustedDevices::UserId).eq(user))
            .to_owned();
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("forgetting trusted devices"))?
            .rows_affected())
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let delete = Query::delete()
            .from_table(AuthTrustedDevices::Table)
            .and_where(Expr::col(AuthTrustedDevices::ExpiresAt).lte(now))
            .to_owned();
        Ok(self
            .db
            .execute(&delete)
            .await
            .map_err(db("deleting expired trusted devices"))?
            .rows_affected())
    }
}

/// Creates `auth_trusted_devices` (the credential's digest as key, the account with
/// `ON DELETE CASCADE`, an index per account).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateTrustedDevices;

impl MigrationName for CreateTrustedDevices {
    fn name(&self) -> &str {
        "m20261207_000003_auth_trusted_devices"
    }
}

#[async_trait]
impl MigrationTrait for CreateTrustedDevices {
    async fn up(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthTrustedDevices::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthTrustedDevices::DigestHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthTrustedDevices::Id)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTrustedDevices::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTrustedDevices::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTrustedDevices::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthTrustedDevices::Ip).string_len(64).null())
                    .col(
                        ColumnDef::new(AuthTrustedDevices::UserAgent)
                            .string_len(512)
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_trusted_devices_user")
                            .from(AuthTrustedDevices::Table, AuthTrustedDevices::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_trusted_devices_user")
                    .table(AuthTrustedDevices::Table)
                    .col(AuthTrustedDevices::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthTrustedDevices::Table).to_owned())
            .await
    }
}
