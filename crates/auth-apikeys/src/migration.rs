//! The migration: service accounts, keys, secrets and rate-limit windows.

use auth_core::async_trait;
use sea_orm_migration::prelude::*;

/// The migrations of this crate, in order (after `auth_users_db::migrations()`).
///
/// ```
/// assert_eq!(auth_apikeys::migrations().len(), 1);
/// ```
#[must_use]
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateApiKeys)]
}

/// Creates `auth_service_accounts`, `auth_api_keys` (owned by a user or a service account,
/// cascading), `auth_api_key_secrets` (SHA-256 primary key) and `auth_api_key_windows`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateApiKeys;

impl MigrationName for CreateApiKeys {
    fn name(&self) -> &str {
        "m20261202_000001_auth_api_keys"
    }
}

#[derive(DeriveIden)]
enum AuthUsers {
    Table,
    Id,
}

#[derive(DeriveIden)]
pub(crate) enum AuthServiceAccounts {
    Table,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum AuthApiKeys {
    Table,
    Id,
    UserId,
    ServiceAccount,
    Name,
    Scopes,
    Start,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    LastIp,
    Enabled,
    RateRequests,
    RateWindow,
    Metadata,
}

#[derive(DeriveIden)]
pub(crate) enum AuthApiKeySecrets {
    Table,
    Hash,
    KeyId,
    ExpiresAt,
}

#[derive(DeriveIden)]
pub(crate) enum AuthApiKeyWindows {
    Table,
    KeyId,
    WindowStart,
    Count,
}

fn key_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(AuthApiKeys::Table, AuthApiKeys::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait]
impl MigrationTrait for CreateApiKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuthServiceAccounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthServiceAccounts::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthServiceAccounts::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthApiKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthApiKeys::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuthApiKeys::UserId).big_integer().null())
                    .col(
                        ColumnDef::new(AuthApiKeys::ServiceAccount)
                            .string_len(64)
                            .null(),
                    )
                    .col(ColumnDef::new(AuthApiKeys::Name).string_len(200).not_null())
                    .col(ColumnDef::new(AuthApiKeys::Scopes).text().not_null())
                    .col(ColumnDef::new(AuthApiKeys::Start).string_len(32).not_null())
                    .col(
                        ColumnDef::new(AuthApiKeys::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuthApiKeys::ExpiresAt).big_integer().null())
                    .col(ColumnDef::new(AuthApiKeys::LastUsedAt).big_integer().null())
                    .col(ColumnDef::new(AuthApiKeys::LastIp).string_len(64).null())
                    .col(ColumnDef::new(AuthApiKeys::Enabled).boolean().not_null())
                    .col(ColumnDef::new(AuthApiKeys::RateRequests).integer().null())
                    .col(ColumnDef::new(AuthApiKeys::RateWindow).integer().null())
                    .col(ColumnDef::new(AuthApiKeys::Metadata).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_api_keys_user")
                            .from(AuthApiKeys::Table, AuthApiKeys::UserId)
                            .to(AuthUsers::Table, AuthUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_api_keys_service")
                            .from(AuthApiKeys::Table, AuthApiKeys::ServiceAccount)
                            .to(AuthServiceAccounts::Table, AuthServiceAccounts::Name)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_auth_api_keys_user", AuthApiKeys::UserId),
            ("idx_auth_api_keys_service", AuthApiKeys::ServiceAccount),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuthApiKeys::Table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuthApiKeySecrets::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthApiKeySecrets::Hash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuthApiKeySecrets::KeyId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthApiKeySecrets::ExpiresAt)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(&mut key_fk(
                        "fk_auth_api_key_secrets_key",
                        AuthApiKeySecrets::Table,
                        AuthApiKeySecrets::KeyId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_auth_api_key_secrets_key")
                    .table(AuthApiKeySecrets::Table)
                    .col(AuthApiKeySecrets::KeyId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthApiKeyWindows::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuthApiKeyWindows::KeyId)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthApiKeyWindows::WindowStart)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuthApiKeyWindows::Count)
                            .integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AuthApiKeyWindows::KeyId)
                            .col(AuthApiKeyWindows::WindowStart),
                    )
                    .foreign_key(&mut key_fk(
                        "fk_auth_api_key_windows_key",
                        AuthApiKeyWindows::Table,
                        AuthApiKeyWindows::KeyId,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuthApiKeyWindows::Table.into_iden(),
            AuthApiKeySecrets::Table.into_iden(),
            AuthApiKeys::Table.into_iden(),
            AuthServiceAccounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
