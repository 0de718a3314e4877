//! The migration creating the token tables.

use sea_orm_migration::prelude::*;

/// Creates `auth_token_families` and `auth_tokens`, with foreign keys to `auth_users(id)`
/// (`ON DELETE CASCADE`): run it after the users migration (the umbrella's migrator does).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateTokens;

impl MigrationName for CreateTokens {
    fn name(&self) -> &str {
        "m20261122_000002_auth_tokens"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuthTokenFamilies {
    Table,
    Id,
    UserId,
    CreatedAt,
    AbsoluteExpiresAt,
    RefreshExpiresAt,
    LastUsedAt,
    Ip,
    UserAgent,
    Extra,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    TokenHash,
    Kind,
    Jti,
    FamilyId,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    ConsumedAt,
    PairedAccessHash,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateTokens {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthTokenFamilies::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthTokenFamilies::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthTokenFamilies::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokenFamilies::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokenFamilies::AbsoluteExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokenFamilies::RefreshExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokenFamilies::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(AuthTokenFamilies::Ip).string_len(45).null())
                    .col(
                        ColumnDef::new(AuthTokenFamilies::UserAgent)
                            .string_len(512)
                            .null(),
                    )
                    .col(ColumnDef::new(AuthTokenFamilies::Extra).json().null())
                    .col(
                        ColumnDef::new(AuthTokenFamilies::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_token_families_user")
                            .from(AuthTokenFamilies::Table, AuthTokenFamilies::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_auth_token_families_user")
                    .table(AuthTokenFamilies::Table)
                    .col(AuthTokenFamilies::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthTokens::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthTokens::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(AuthTokens::Jti)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(AuthTokens::FamilyId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthTokens::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(AuthTokens::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokens::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokens::ConsumedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthTokens::PairedAccessHash)
                            .string_len(64)
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_tokens_family")
                            .from(AuthTokens::Table, AuthTokens::FamilyId)
                            .to(AuthTokenFamilies::Table, AuthTokenFamilies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_tokens_user")
                            .from(AuthTokens::Table, AuthTokens::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_auth_tokens_family", AuthTokens::FamilyId),
            ("ix_auth_tokens_user", AuthTokens::UserId),
            ("ix_auth_tokens_expires", AuthTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuthTokens::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AuthTokenFamilies::Table).to_owned())
            .await
    }
}

/// This crate's migrations (after the users migration): the token tables, the JWT
/// revocation tables, per-user cut-offs in microseconds, the JWT sessions table, then what the
/// revocation mirror and the change feed need, the JWT sessions' details, the instants of
/// consumption, and the sealed signing keys.
///
/// ```
/// assert_eq!(auth_tokens_db::migrations().len(), 8);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateTokens),
        Box::new(CreateRevocations),
        Box::new(NotBeforeMicros),
        Box::new(CreateJwtSessions),
        Box::new(RevocationMirrorSupport),
        Box::new(JwtSessionDetails),
        Box::new(ConsumedAt),
        Box::new(CreateSigningKeys),
    ]
}

/// Signing keys shared by every instance (`auth_signing_keys`): one row per key set (`name`),
/// the set sealed (encrypted) as text, and a version that grows with every change, so that a
/// rotation replaces exactly the set it read.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateSigningKeys;

impl MigrationName for CreateSigningKeys {
    fn name(&self) -> &str {
        "m20261207_000002_auth_signing_keys"
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthSigningKeys {
    Table,
    Name,
    Version,
    Sealed,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSigningKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthSigningKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthSigningKeys::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthSigningKeys::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthSigningKeys::Sealed).text().not_null())
                    .col(
                        ColumnDef::new(AuthSigningKeys::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthSigningKeys::Table).to_owned())
            .await
    }
}

/// When each refresh token was consumed (`auth_revoked_tokens.consumed_us`, Unix
/// microseconds; empty for ids revoked rather than consumed), so that a rotation can give its
/// own racing client the successor it issued at that instant within the reuse window.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsumedAt;

impl MigrationName for ConsumedAt {
    fn name(&self) -> &str {
        "m20261207_000001_auth_consumed_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ConsumedAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthRevokedTokens::Table)
                    .add_column(
                        ColumnDef::new(AuthRevokedTokens::ConsumedUs)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthRevokedTokens::Table)
                    .drop_column(AuthRevokedTokens::ConsumedUs)
                    .to_owned(),
            )
            .await
    }
}

/// What listing JWT sessions shows: when each started and was last refreshed, and from which
/// address and client (`auth_jwt_sessions.created_at`, `last_used_at`, `ip`, `user_agent`;
/// empty for sessions started before it).
#[derive(Debug, Clone, Copy, Default)]
pub struct JwtSessionDetails;

impl MigrationName for JwtSessionDetails {
    fn name(&self) -> &str {
        "m20261202_000002_auth_jwt_session_details"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for JwtSessionDetails {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            ColumnDef::new(AuthJwtSessions::CreatedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(AuthJwtSessions::LastUsedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(AuthJwtSessions::Ip)
                .string_len(45)
                .null()
                .to_owned(),
            ColumnDef::new(AuthJwtSessions::UserAgent)
                .string_len(512)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuthJwtSessions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            AuthJwtSessions::UserAgent,
            AuthJwtSessions::Ip,
            AuthJwtSessions::LastUsedAt,
            AuthJwtSessions::CreatedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuthJwtSessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthChangeLog {
    Table,
    Id,
    Body,
    CreatedUs,
}

/// What the in-memory revocation mirror and the change feed need:
///
/// - `auth_revoked_tokens.consumed`: consumed refresh-token ids are told apart from revoked
///   ids, so a mirror loads only the latter (consumed ids live as long as refresh tokens);
/// - `auth_user_not_before.not_before_all`: the instant up to which every session of the user
///   is revoked, so cut-offs combine the same way whatever order they arrive in
///   (`auth_service::Cutoff`);
/// - `auth_change_log`: the append-only log of changes that instances poll on MySQL/MariaDB
///   and that management commands write on SQLite (`DbChangeFeed`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RevocationMirrorSupport;

impl MigrationName for RevocationMirrorSupport {
    fn name(&self) -> &str {
        "m20261202_000001_auth_revocation_mirror"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for RevocationMirrorSupport {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthRevokedTokens::Table)
                    .add_column(
                        ColumnDef::new(AuthRevokedTokens::Consumed)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthUserNotBefore::Table)
                    .add_column(
                        ColumnDef::new(AuthUserNotBefore::NotBeforeAll)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthChangeLog::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthChangeLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthChangeLog::Body).text().not_null())
                    .col(
                        ColumnDef::new(AuthChangeLog::CreatedUs)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_change_log_created")
                    .table(AuthChangeLog::Table)
                    .col(AuthChangeLog::CreatedUs)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthChangeLog::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthUserNotBefore::Table)
                    .drop_column(AuthUserNotBefore::NotBeforeAll)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthRevokedTokens::Table)
                    .drop_column(AuthRevokedTokens::Consumed)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthJwtSessions {
    Table,
    Family,
    UserId,
    ExpiresAt,
    CreatedAt,
    LastUsedAt,
    Ip,
    UserAgent,
}

/// Creates `auth_jwt_sessions`: the refresh families a JWT backend issued and that have not
/// ended, so that logging out everywhere can say how many sessions it ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateJwtSessions;

impl MigrationName for CreateJwtSessions {
    fn name(&self) -> &str {
        "m20261201_000002_auth_jwt_sessions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateJwtSessions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthJwtSessions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthJwtSessions::Family)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthJwtSessions::UserId)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthJwtSessions::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_jwt_sessions_user")
                    .table(AuthJwtSessions::Table)
                    .col(AuthJwtSessions::UserId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthJwtSessions::Table).to_owned())
            .await
    }
}

/// Per-user cut-offs (`auth_user_not_before.not_before`) move from Unix seconds to Unix
/// microseconds, so that a token issued right after a logout everywhere is not refused by it.
/// Existing rows are scaled once: a value in seconds is below 10^11, one in microseconds far
/// above.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotBeforeMicros;

impl MigrationName for NotBeforeMicros {
    fn name(&self) -> &str {
        "m20261201_000001_auth_not_before_micros"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for NotBeforeMicros {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let scale = Query::update()
            .table(AuthUserNotBefore::Table)
            .value(
                AuthUserNotBefore::NotBefore,
                Expr::col(AuthUserNotBefore::NotBefore).mul(1_000_000_i64),
            )
            .and_where(Expr::col(AuthUserNotBefore::NotBefore).lt(100_000_000_000_i64))
            .to_owned();
        manager.get_connection().execute(&scale).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let unscale = Query::update()
            .table(AuthUserNotBefore::Table)
            .value(
                AuthUserNotBefore::NotBefore,
                Expr::col(AuthUserNotBefore::NotBefore).div(1_000_000_i64),
            )
            .and_where(Expr::col(AuthUserNotBefore::NotBefore).gte(100_000_000_000_i64))
            .to_owned();
        manager.get_connection().execute(&unscale).await?;
        Ok(())
    }
}

/// Creates the JWT revocation tables: revoked token ids, revoked families, and per-user
/// "not before" instants.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateRevocations;

impl MigrationName for CreateRevocations {
    fn name(&self) -> &str {
        "m20261122_000003_auth_revocations"
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthRevokedTokens {
    Table,
    Jti,
    ExpiresAt,
    Consumed,
    ConsumedUs,
}

#[derive(DeriveIden)]
pub(crate) enum AuthRevokedFamilies {
    Table,
    Family,
    ExpiresAt,
}

#[derive(DeriveIden)]
pub(crate) enum AuthUserNotBefore {
    Table,
    UserId,
    NotBefore,
    KeepFamily,
    ExpiresAt,
    NotBeforeAll,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRevocations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthRevokedTokens::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthRevokedTokens::Jti)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthRevokedTokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthRevokedFamilies::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthRevokedFamilies::Family)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthRevokedFamilies::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthUserNotBefore::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthUserNotBefore::UserId)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthUserNotBefore::NotBefore)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthUserNotBefore::KeepFamily)
                            .string_len(128)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthUserNotBefore::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuthRevokedTokens::Table.into_iden(),
            AuthRevokedFamilies::Table.into_iden(),
            AuthUserNotBefore::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
