//! `DbSessionStore`: onboarding sessions in SQL through sea-orm, and its migration (feature
//! `db`). `save` is `UPDATE … WHERE token_hash = ? AND version = ?`: one statement decides
//! which of two concurrent requests wins.

use std::fmt;

use auth_service::{Error, Result, UserId, async_trait};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

use crate::store::{SessionRecord, SessionStore};

/// `auth_onboarding_sessions` as a sea-orm entity.
///
/// ```
/// use sea_orm::EntityName;
/// assert_eq!(auth_onboarding::db::session::Entity.table_name(), "auth_onboarding_sessions");
/// ```
pub mod session {
    use sea_orm::entity::prelude::*;

    /// A session row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "auth_onboarding_sessions")]
    pub struct Model {
        /// SHA-256 hex of the token.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        /// Public id.
        pub id: String,
        /// Normalized email.
        pub email: String,
        /// The user, once known.
        pub user_id: Option<i64>,
        /// Current step index.
        pub step_index: i32,
        /// Step state, JSON.
        pub data: Json,
        /// Completed.
        pub completed: bool,
        /// Invalidated by a newer start.
        pub invalidated: bool,
        /// Request lease.
        pub lease_until: Option<TimeDateTimeWithTimeZone>,
        /// Creation.
        pub created_at: TimeDateTimeWithTimeZone,
        /// Expiry.
        pub expires_at: TimeDateTimeWithTimeZone,
        /// Compare-and-set version.
        pub version: i64,
    }

    /// No relations are navigated.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// [`SessionStore`] on sea-orm. Run [`migrations`] after the users migration.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use auth_onboarding::SessionStore;
/// let db = auth_testkit::db::fresh(auth_testkit::db::Target::SqliteMemory, || {
///     let mut all = auth_users_db::migrations();
///     all.extend(auth_onboarding::db::migrations());
///     all
/// }).await.unwrap();
/// let store = auth_onboarding::db::DbSessionStore::new(db);
/// assert!(store.find("nope").await.unwrap().is_none());
/// # });
/// ```
#[derive(Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSessionStore").finish_non_exhaustive()
    }
}

impl DbSessionStore {
    /// A store on `db`.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

fn user_pk(user: &Option<UserId>) -> Result<Option<i64>> {
    user.as_ref().map(UserId::to_row_id).transpose()
}

fn to_record(m: session::Model) -> SessionRecord {
    let mut r = SessionRecord::new(m.id, m.token_hash, m.email, m.created_at, m.expires_at);
    r.user_id = m.user_id.map(|id| UserId::new(id.to_string()));
    r.step_index = m.step_index;
    r.data = match m.data {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    r.completed = m.completed;
    r.invalidated = m.invalidated;
    r.lease_until = m.lease_until;
    r.version = m.version;
    r
}

fn micros(t: OffsetDateTime) -> OffsetDateTime {
    auth_service::truncate_to_micros(t)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, r: &SessionRecord) -> Result<()> {
        session::ActiveModel {
            token_hash: Set(r.token_hash.clone()),
            id: Set(r.id.clone()),
            email: Set(r.email.clone()),
            user_id: Set(user_pk(&r.user_id)?),
            step_index: Set(r.step_index),
            data: Set(serde_json::Value::Object(r.data.clone())),
            completed: Set(r.completed),
            invalidated: Set(r.invalidated),
            lease_until: Set(r.lease_until.map(micros)),
            created_at: Set(micros(r.created_at)),
            expires_at: Set(micros(r.expires_at)),
            version: Set(r.version),
        }
        .insert(&self.db)
        .await
        .map_err(db("saving an onboarding session"))?;
        Ok(())
    }

    async fn find(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
        Ok(session::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await
            .map_err(db("loading an onboarding session"))?
            .map(to_record))
    }

    async fn save(&self, r: &SessionRecord) -> Result<bool> {
        let n = session::Entity::update_many()
            .col_expr(session::Column::UserId, Expr::value(user_pk(&r.user_id)?))
            .col_expr(session::Column::StepIndex, Expr::value(r.step_index))
            .col_expr(
                session::Column::Data,
                Expr::value(serde_json::Value::Object(r.data.clone())),
            )
            .col_expr(session::Column::Completed, Expr::value(r.completed))
            .col_expr(session::Column::Invalidated, Expr::value(r.invalidated))
            .col_expr(
                session::Column::LeaseUntil,
                Expr::value(r.lease_until.map(micros)),
            )
            .col_expr(session::Column::Version, Expr::value(r.version))
            .filter(session::Column::TokenHash.eq(r.token_hash.clone()))
            .filter(session::Column::Version.eq(r.version - 1))
            .exec(&self.db)
            .await
            .map_err(db("saving an onboarding session"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn invalidate_email(&self, email: &str, except_id: &str) -> Result<u64> {
        Ok(session::Entity::update_many()
            .col_expr(session::Column::Invalidated, Expr::value(true))
            .col_expr(
                session::Column::Version,
                Expr::col(session::Column::Version).add(1),
            )
            .filter(session::Column::Email.eq(email))
            .filter(session::Column::Id.ne(except_id))
            .filter(session::Column::Completed.eq(false))
            .filter(session::Column::Invalidated.eq(false))
            .exec(&self.db)
            .await
            .map_err(db("invalidating onboarding sessions"))?
            .rows_affected)
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        Ok(session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lte(micros(now)))
            .exec(&self.db)
            .await
            .map_err(db("deleting expired onboarding sessions"))?
            .rows_affected)
    }
}

/// The migrations of this crate.
///
/// ```
/// assert_eq!(auth_onboarding::db::migrations().len(), 2);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateOnboardingSessions),
        Box::new(OnboardingEmailBinaryCollation),
    ]
}

/// On MySQL/MariaDB, gives `auth_onboarding_sessions.email` the binary collation
/// `utf8mb4_bin`, like `auth_users.email`: emails are canonical before they are stored, and the
/// server's accent-insensitive default would let a look-alike address invalidate another
/// address's sign-up. Elsewhere it does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnboardingEmailBinaryCollation;

impl MigrationName for OnboardingEmailBinaryCollation {
    fn name(&self) -> &str {
        "m20261201_000003_auth_onboarding_email_binary"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OnboardingEmailBinaryCollation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE `auth_onboarding_sessions` MODIFY `email` VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            manager
                .get_connection()
                .execute_unprepared(
                    "ALTER TABLE `auth_onboarding_sessions` MODIFY `email` VARCHAR(254) CHARACTER SET utf8mb4 NOT NULL",
                )
                .await?;
        }
        Ok(())
    }
}

/// Creates `auth_onboarding_sessions` (user id referencing `auth_users(id)`, cascade).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOnboardingSessions;

impl MigrationName for CreateOnboardingSessions {
    fn name(&self) -> &str {
        "m20261127_000005_auth_onboarding_sessions"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuthOnboardingSessions {
    Table,
    TokenHash,
    Id,
    Email,
    UserId,
    StepIndex,
    Data,
    Completed,
    Invalidated,
    LeaseUntil,
    CreatedAt,
    ExpiresAt,
    Version,
}

#[async_trait]
impl MigrationTrait for CreateOnboardingSessions {
    async fn up(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        use AuthOnboardingSessions as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(S::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(S::Id).string_len(32).not_null())
                    .col(ColumnDef::new(S::Email).string_len(254).not_null())
                    .col(ColumnDef::new(S::UserId).big_integer().null())
                    .col(ColumnDef::new(S::StepIndex).integer().not_null())
                    .col(ColumnDef::new(S::Data).json().not_null())
                    .col(ColumnDef::new(S::Completed).boolean().not_null())
                    .col(ColumnDef::new(S::Invalidated).boolean().not_null())
                    .col(
                        ColumnDef::new(S::LeaseUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(S::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(S::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(S::Version).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_onboarding_sessions_user")
                            .from(S::Table, S::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_auth_onboarding_sessions_email", S::Email),
            ("idx_auth_onboarding_sessions_expires", S::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(S::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(AuthOnboardingSessions::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
