//! `DbMfaStore`: second factors in SQL through sea-orm (SQLite, PostgreSQL, MySQL/MariaDB),
//! its entities and its migration (feature `db`).
//!
//! Every decision under concurrency is one conditional statement: `accept_step` is
//! `UPDATE ... WHERE last_step IS NULL OR last_step < ?`, a recovery code is spent by a
//! `DELETE` that affects one row once, a challenge attempt by `UPDATE ... SET attempts =
//! attempts + 1 WHERE attempts < ?`.

use std::fmt;

use auth_service::{Error, Result, UserId, async_trait};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    Set, SqlErr, TransactionTrait,
};
use sea_orm_migration::prelude::*;
use time::OffsetDateTime;

use crate::cipher::EncryptedSecret;
use crate::store::{ChallengeRecord, ChallengeStore, MfaStore, TotpRecord};
use crate::totp::{TotpAlgorithm, TotpSettings};

/// The tables as sea-orm entities.
pub mod entity {
    /// `auth_mfa_totp`: one TOTP enrolment per user.
    ///
    /// ```
    /// use sea_orm::EntityName;
    /// assert_eq!(auth_mfa::db::entity::totp::Entity.table_name(), "auth_mfa_totp");
    /// ```
    pub mod totp {
        use sea_orm::entity::prelude::*;

        /// An enrolment.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "auth_mfa_totp")]
        pub struct Model {
            /// The user (`auth_users.id`).
            #[sea_orm(primary_key, auto_increment = false)]
            pub user_id: i64,
            /// Key that sealed the secret.
            pub key_id: String,
            /// Nonce, ciphertext and tag, base64.
            pub ciphertext: String,
            /// SHA1, SHA256 or SHA512.
            pub algorithm: String,
            /// 6 or 8.
            pub digits: i16,
            /// Seconds per step.
            pub step_secs: i32,
            /// Steps of skew accepted.
            pub skew: i16,
            /// Confirmed by a code.
            pub confirmed: bool,
            /// Last accepted step.
            pub last_step: Option<i64>,
            /// Enrolment start.
            pub created_at: TimeDateTimeWithTimeZone,
        }

        /// No relations are navigated.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// `auth_mfa_recovery_codes`: unused recovery codes, hashed.
    ///
    /// ```
    /// use sea_orm::EntityName;
    /// assert_eq!(auth_mfa::db::entity::recovery_code::Entity.table_name(), "auth_mfa_recovery_codes");
    /// ```
    pub mod recovery_code {
        use sea_orm::entity::prelude::*;

        /// A code.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "auth_mfa_recovery_codes")]
        pub struct Model {
            /// The user.
            #[sea_orm(primary_key, auto_increment = false)]
            pub user_id: i64,
            /// SHA-256 hex of the code.
            #[sea_orm(primary_key, auto_increment = false)]
            pub code_hash: String,
        }

        /// No relations are navigated.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    /// `auth_mfa_challenges`: pending second login steps.
    ///
    /// ```
    /// use sea_orm::EntityName;
    /// assert_eq!(auth_mfa::db::entity::challenge::Entity.table_name(), "auth_mfa_challenges");
    /// ```
    pub mod challenge {
        use sea_orm::entity::prelude::*;

        /// A challenge.
        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "auth_mfa_challenges")]
        pub struct Model {
            /// SHA-256 hex of the token.
            #[sea_orm(primary_key, auto_increment = false)]
            pub token_hash: String,
            /// The user.
            pub user_id: i64,
            /// Expiry.
            pub expires_at: TimeDateTimeWithTimeZone,
            /// Attempts made.
            pub attempts: i32,
        }

        /// No relations are navigated.
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{challenge, recovery_code, totp};

/// [`MfaStore`] on sea-orm. Run [`migrations`] after the users migration (its tables reference
/// `auth_users(id)` and cascade on delete); the umbrella crate's migrator does.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use auth_mfa::MfaStore;
/// use auth_testkit::db::{fresh, Target};
/// // In an application: auth::migration::Migrator::up(&db, None), which includes these.
/// let db = fresh(Target::SqliteMemory, || {
///     let mut all = auth_users_db::migrations();
///     all.extend(auth_mfa::db::migrations());
///     all
/// }).await.unwrap();
/// let store = auth_mfa::db::DbMfaStore::new(db);
/// assert!(store.totp(&auth_service::UserId::new("1")).await.unwrap().is_none());
/// # });
/// ```
#[derive(Clone)]
pub struct DbMfaStore {
    db: DatabaseConnection,
}

impl fmt::Debug for DbMfaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbMfaStore").finish_non_exhaustive()
    }
}

impl DbMfaStore {
    /// A store on `db`.
    #[must_use]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn db(context: &'static str) -> impl Fn(DbErr) -> Error {
    move |e| Error::backend(context, e)
}

fn to_record(m: totp::Model) -> Result<TotpRecord> {
    let ciphertext = STANDARD
        .decode(&m.ciphertext)
        .map_err(|e| Error::backend("reading a TOTP secret", e))?;
    let algorithm = TotpAlgorithm::parse(&m.algorithm).ok_or_else(|| {
        Error::backend(
            "reading a TOTP enrolment",
            std::io::Error::other("unknown algorithm"),
        )
    })?;
    let settings = TotpSettings {
        algorithm,
        digits: <u8 as TryFrom<_>>::try_from(m.digits).unwrap_or(6),
        step_secs: <u32 as TryFrom<_>>::try_from(m.step_secs).unwrap_or(30),
        skew: <u8 as TryFrom<_>>::try_from(m.skew).unwrap_or(1),
    };
    let mut record = TotpRecord::pending(
        EncryptedSecret {
            key_id: m.key_id,
            ciphertext,
        },
        settings,
        m.created_at,
    );
    record.confirmed = m.confirmed;
    record.last_step = m.last_step;
    Ok(record)
}

#[async_trait]
impl MfaStore for DbMfaStore {
    async fn totp(&self, user: &UserId) -> Result<Option<TotpRecord>> {
        let Ok(id) = user.to_row_id() else {
            return Ok(None);
        };
        totp::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(db("loading a TOTP enrolment"))?
            .map(to_record)
            .transpose()
    }

    async fn save_pending(&self, user: &UserId, record: &TotpRecord) -> Result<bool> {
        let id = user.to_row_id()?;
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        totp::Entity::delete_many()
            .filter(totp::Column::UserId.eq(id))
            .filter(totp::Column::Confirmed.eq(false))
            .exec(&txn)
            .await
            .map_err(db("replacing a pending enrolment"))?;
        let row = totp::ActiveModel {
            user_id: Set(id),
            key_id: Set(record.secret.key_id.clone()),
            ciphertext: Set(STANDARD.encode(&record.secret.ciphertext)),
            algorithm: Set(record.settings.algorithm.as_str().to_owned()),
            digits: Set(i16::from(record.settings.digits)),
            step_secs: Set(<i32 as TryFrom<_>>::try_from(record.settings.step_secs).unwrap_or(30)),
            skew: Set(i16::from(record.settings.skew)),
            confirmed: Set(false),
            last_step: Set(None),
            created_at: Set(auth_service::truncate_to_micros(record.created_at)),
        };
        match totp::Entity::insert(row).exec(&txn).await {
            Ok(_) => {
                txn.commit().await.map_err(db("saving an enrolment"))?;
                Ok(true)
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await.map_err(db("rolling back"))?;
                Ok(false)
            }
            Err(e) => Err(Error::backend("saving an enrolment", e)),
        }
    }

    async fn confirm(&self, user: &UserId, step: i64) -> Result<bool> {
        let id = user.to_row_id()?;
        let n = totp::Entity::update_many()
            .col_expr(totp::Column::Confirmed, Expr::value(true))
            .col_expr(totp::Column::LastStep, Expr::value(Some(step)))
            .filter(totp::Column::UserId.eq(id))
            .filter(totp::Column::Confirmed.eq(false))
            .exec(&self.db)
            .await
            .map_err(db("confirming an enrolment"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn accept_step(&self, user: &UserId, step: i64) -> Result<bool> {
        let id = user.to_row_id()?;
        let n = totp::Entity::update_many()
            .col_expr(totp::Column::LastStep, Expr::value(Some(step)))
            .filter(totp::Column::UserId.eq(id))
            .filter(totp::Column::Confirmed.eq(true))
            .filter(
                Condition::any()
                    .add(totp::Column::LastStep.is_null())
                    .add(totp::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(db("recording a TOTP step"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn reseal(
        &self,
        user: &UserId,
        expected_key_id: &str,
        secret: &EncryptedSecret,
    ) -> Result<bool> {
        let id = user.to_row_id()?;
        let n = totp::Entity::update_many()
            .col_expr(totp::Column::KeyId, Expr::value(secret.key_id.clone()))
            .col_expr(
                totp::Column::Ciphertext,
                Expr::value(STANDARD.encode(&secret.ciphertext)),
            )
            .filter(totp::Column::UserId.eq(id))
            .filter(totp::Column::KeyId.eq(expected_key_id))
            .exec(&self.db)
            .await
            .map_err(db("re-sealing a TOTP secret"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn delete(&self, user: &UserId) -> Result<bool> {
        let Ok(id) = user.to_row_id() else {
            return Ok(false);
        };
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(id))
            .exec(&txn)
            .await
            .map_err(db("deleting recovery codes"))?;
        let n = totp::Entity::delete_many()
            .filter(totp::Column::UserId.eq(id))
            .exec(&txn)
            .await
            .map_err(db("deleting an enrolment"))?
            .rows_affected;
        txn.commit().await.map_err(db("deleting an enrolment"))?;
        Ok(n > 0)
    }

    async fn replace_recovery_codes(&self, user: &UserId, hashes: &[String]) -> Result<()> {
        let id = user.to_row_id()?;
        let txn = self
            .db
            .begin()
            .await
            .map_err(db("starting a transaction"))?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(id))
            .exec(&txn)
            .await
            .map_err(db("replacing recovery codes"))?;
        if !hashes.is_empty() {
            recovery_code::Entity::insert_many(hashes.iter().map(|h| recovery_code::ActiveModel {
                user_id: Set(id),
                code_hash: Set(h.clone()),
            }))
            .exec(&txn)
            .await
            .map_err(db("saving recovery codes"))?;
        }
        txn.commit().await.map_err(db("saving recovery codes"))?;
        Ok(())
    }

    async fn use_recovery_code(&self, user: &UserId, hash: &str) -> Result<bool> {
        let Ok(id) = user.to_row_id() else {
            return Ok(false);
        };
        let n = recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(id))
            .filter(recovery_code::Column::CodeHash.eq(hash))
            .exec(&self.db)
            .await
            .map_err(db("spending a recovery code"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn recovery_codes_left(&self, user: &UserId) -> Result<u64> {
        let Ok(id) = user.to_row_id() else {
            return Ok(0);
        };
        recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(id))
            .count(&self.db)
            .await
            .map_err(db("counting recovery codes"))
    }
}

/// The login challenges, in `auth_mfa_challenges`: this store is also the [`ChallengeStore`] of
/// `Mfa::new` unless another is given, and can hold `AuthService`'s single-use link records.
#[async_trait]
impl ChallengeStore for DbMfaStore {
    async fn create(&self, challenge: &ChallengeRecord) -> Result<()> {
        challenge::Entity::insert(challenge::ActiveModel {
            token_hash: Set(challenge.token_hash.clone()),
            user_id: Set(challenge.user_id.to_row_id()?),
            expires_at: Set(auth_service::truncate_to_micros(challenge.expires_at)),
            attempts: Set(0),
        })
        .exec(&self.db)
        .await
        .map_err(db("saving a login challenge"))?;
        Ok(())
    }

    async fn attempt(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<Option<UserId>> {
        let max = <i32 as TryFrom<_>>::try_from(max_attempts).unwrap_or(i32::MAX);
        let n = challenge::Entity::update_many()
            .col_expr(
                challenge::Column::Attempts,
                Expr::col(challenge::Column::Attempts).add(1),
            )
            .filter(challenge::Column::TokenHash.eq(token_hash))
            .filter(challenge::Column::Attempts.lt(max))
            .filter(challenge::Column::ExpiresAt.gt(auth_service::truncate_to_micros(now)))
            .exec(&self.db)
            .await
            .map_err(db("counting a challenge attempt"))?
            .rows_affected;
        if n != 1 {
            return Ok(None);
        }
        Ok(challenge::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await
            .map_err(db("loading a login challenge"))?
            .map(|c| UserId::new(c.user_id.to_string())))
    }

    async fn consume(&self, token_hash: &str) -> Result<bool> {
        let n = challenge::Entity::delete_many()
            .filter(challenge::Column::TokenHash.eq(token_hash))
            .exec(&self.db)
            .await
            .map_err(db("ending a login challenge"))?
            .rows_affected;
        Ok(n == 1)
    }

    async fn cleanup_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let n = challenge::Entity::delete_many()
            .filter(challenge::Column::ExpiresAt.lte(auth_service::truncate_to_micros(now)))
            .exec(&self.db)
            .await
            .map_err(db("deleting expired challenges"))?
            .rows_affected;
        if n > 0 {
            tracing::info!(deleted = n, "expired MFA challenges deleted");
        }
        Ok(n)
    }
}

/// The migrations of this crate, in order.
///
/// ```
/// assert_eq!(auth_mfa::db::migrations().len(), 2);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateMfa),
        Box::new(crate::devices::CreateTrustedDevices),
    ]
}

/// Creates `auth_mfa_totp`, `auth_mfa_recovery_codes` and `auth_mfa_challenges`, each with a
/// foreign key to `auth_users(id)` (`ON DELETE CASCADE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateMfa;

impl MigrationName for CreateMfa {
    fn name(&self) -> &str {
        "m20261127_000004_auth_mfa"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuthMfaTotp {
    Table,
    UserId,
    KeyId,
    Ciphertext,
    Algorithm,
    Digits,
    StepSecs,
    Skew,
    Confirmed,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthMfaRecoveryCodes {
    Table,
    UserId,
    CodeHash,
}

#[derive(DeriveIden)]
enum AuthMfaChallenges {
    Table,
    TokenHash,
    UserId,
    ExpiresAt,
    Attempts,
}

fn user_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(AuthUsers::Table, AuthUsers::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait]
impl MigrationTrait for CreateMfa {
    async fn up(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthMfaTotp::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthMfaTotp::UserId)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthMfaTotp::KeyId).string_len(32).not_null())
                    .col(
                        ColumnDef::new(AuthMfaTotp::Ciphertext)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaTotp::Algorithm)
                            .string_len(8)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaTotp::Digits)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthMfaTotp::StepSecs).integer().not_null())
                    .col(ColumnDef::new(AuthMfaTotp::Skew).small_integer().not_null())
                    .col(ColumnDef::new(AuthMfaTotp::Confirmed).boolean().not_null())
                    .col(ColumnDef::new(AuthMfaTotp::LastStep).big_integer().null())
                    .col(
                        ColumnDef::new(AuthMfaTotp::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut user_fk(
                        "fk_auth_mfa_totp_user",
                        AuthMfaTotp::Table,
                        AuthMfaTotp::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthMfaRecoveryCodes::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthMfaRecoveryCodes::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaRecoveryCodes::CodeHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AuthMfaRecoveryCodes::UserId)
                            .col(AuthMfaRecoveryCodes::CodeHash),
                    )
                    .foreign_key(&mut user_fk(
                        "fk_auth_mfa_recovery_user",
                        AuthMfaRecoveryCodes::Table,
                        AuthMfaRecoveryCodes::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthMfaChallenges::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthMfaChallenges::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaChallenges::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaChallenges::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthMfaChallenges::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .foreign_key(&mut user_fk(
                        "fk_auth_mfa_challenges_user",
                        AuthMfaChallenges::Table,
                        AuthMfaChallenges::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_mfa_challenges_expires")
                    .table(AuthMfaChallenges::Table)
                    .col(AuthMfaChallenges::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> std::result::Result<(), DbErr> {
        for table in [
            AuthMfaChallenges::Table.into_iden(),
            AuthMfaRecoveryCodes::Table.into_iden(),
            AuthMfaTotp::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
