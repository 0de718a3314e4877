//! The migration creating `auth_users`.

use sea_orm_migration::prelude::*;

/// Creates `auth_users` with a unique index on `email`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateUsers;

impl MigrationName for CreateUsers {
    fn name(&self) -> &str {
        "m20261122_000001_auth_users"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
    Email,
    PasswordHash,
    IsActive,
    IsVerified,
    LastLogin,
    JoinedAt,
    CreatedAt,
    UpdatedAt,
    Profile,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthUsers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthUsers::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::Email)
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::PasswordHash)
                            .string_len(512)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::IsActive)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::IsVerified)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::LastLogin)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::JoinedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthUsers::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthUsers::Profile).json().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthUsers::Table).to_owned())
            .await
    }
}

/// This crate's migrations, in order (the umbrella's migrator chains every enabled crate's).
///
/// ```
/// assert_eq!(auth_users_db::migrations().len(), 5);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateUsers),
        Box::new(CreateRateLimits),
        Box::new(BinaryCollation),
        Box::new(crate::audit::CreateAuditLog),
        Box::new(crate::grant::CreateGrants),
    ]
}

/// On MySQL/MariaDB, gives `auth_users.email` and `auth_rate_limits.key` the binary collation
/// `utf8mb4_bin`. The server's default collation is accent- and case-insensitive: with it
/// `alice@gmäil.com` *finds* `alice@gmail.com`, so a look-alike address logs into, and asks
/// resets for, another account. Emails reach the store canonicalised
/// (`auth_service::normalize_email`), so exact comparison is the right one. Other databases
/// compare bytes already; there it does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryCollation;

impl MigrationName for BinaryCollation {
    fn name(&self) -> &str {
        "m20261201_000001_auth_binary_collation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for BinaryCollation {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::MySql {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE `auth_users` MODIFY `email` VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "ALTER TABLE `auth_rate_limits` MODIFY `key` VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DatabaseBackend::MySql {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE `auth_users` MODIFY `email` VARCHAR(254) CHARACTER SET utf8mb4 NOT NULL",
        )
        .await?;
        db.execute_unprepared(
            "ALTER TABLE `auth_rate_limits` MODIFY `key` VARCHAR(128) CHARACTER SET utf8mb4 NOT NULL",
        )
        .await?;
        Ok(())
    }
}

/// A migrator for this crate alone.
///
/// ```no_run
/// use auth_users_db::Migrator;
/// use sea_orm_migration::MigratorTrait;
/// # async fn run(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
/// Migrator::up(db, None).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        migrations()
    }
}

/// Creates `auth_rate_limits`: failure counts and lockouts per key (email, IP).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateRateLimits;

impl MigrationName for CreateRateLimits {
    fn name(&self) -> &str {
        "m20261122_000004_auth_rate_limits"
    }
}

#[derive(DeriveIden)]
pub(crate) enum AuthRateLimits {
    Table,
    Key,
    Failures,
    WindowStart,
    LockedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRateLimits {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthRateLimits::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthRateLimits::Key)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthRateLimits::Failures)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthRateLimits::WindowStart)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthRateLimits::LockedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthRateLimits::Table).to_owned())
            .await
    }
}
