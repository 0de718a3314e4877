//! The `auth` stack as an HTTP service. The binary (`cargo run -p auth-server`) reads
//! [`Settings::from_env`], migrates the database and serves [`app`].
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AUTH_SERVER_ADDR` | `127.0.0.1:8080` | listen address |
//! | `DATABASE_URL` | `sqlite://auth.db?mode=rwc` | SQLite file, `postgres://…` or `mysql://…` |
//! | `AUTH_TOKEN_BACKEND` | `jwt` | `jwt` (HS256, revocations in the database) or `db` (opaque tokens) |
//! | `AUTH_ENV` | `development` | `production` makes missing secrets an error |
//! | `AUTH_SIGNING_SECRET` | generated in development | HMAC key for signed links (32+ bytes) |
//! | `AUTH_JWT_SECRET` | `AUTH_SIGNING_SECRET` | JWT HMAC key (32+ bytes) |
//! | `AUTH_MFA_KEY` | derived from the signing secret in development | `key_id:base64` of 32 random bytes sealing TOTP secrets (`auth-server secret generate --mfa`) |
//! | `AUTH_MFA_OLD_KEYS` | none | earlier `AUTH_MFA_KEY` values, comma-separated, still opening old secrets |
//! | `AUTH_MFA_ISSUER` | `auth-server` | the name authenticator apps show |
//! | other `AUTH_*` | see `auth::AuthConfig::from_lookup` | lifetimes, rate limits, password length |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use auth::jwt::{Algorithm, JwtBackend};
use auth::migration::Migrator;
use auth::tokens_db::{DbRevocationStore, DbTokenBackend};
use auth::users_db::{DbRateLimiter, DbUserStore};
use auth::{AuthConfig, AuthService, ConfigError, Error};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

/// Which token backend serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenBackendKind {
    /// HS256 JWTs with revocations in the database.
    Jwt,
    /// Opaque tokens stored (hashed) in the database.
    Db,
}

/// Everything the server reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub addr: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Token backend.
    pub token_backend: TokenBackendKind,
    /// The auth configuration (secrets included).
    pub config: AuthConfig,
    /// The JWT secret.
    pub jwt_secret: String,
    /// Seals TOTP secrets at rest.
    pub mfa_cipher: auth::mfa::SecretCipher,
    /// Issuer shown in authenticator apps.
    pub mfa_issuer: String,
}

fn dev_secret_file(database_url: &str) -> PathBuf {
    // Beside an SQLite file; in the working directory for server databases.
    let path = database_url
        .strip_prefix("sqlite://")
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|p| !p.is_empty() && !p.starts_with(':'))
        .map(PathBuf::from);
    path.and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
        .join("auth-dev-secret")
}

impl Settings {
    /// Reads the environment through `lookup`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable to set (a missing secret in production, an invalid
    /// address, an unknown token backend, ...).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let addr = lookup("AUTH_SERVER_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|_| {
                ConfigError::invalid(
                    "AUTH_SERVER_ADDR",
                    "must be an address such as 127.0.0.1:8080",
                )
            })?;
        let database_url =
            lookup("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db?mode=rwc".into());
        let token_backend = match lookup("AUTH_TOKEN_BACKEND").as_deref().unwrap_or("jwt") {
            "jwt" => TokenBackendKind::Jwt,
            "db" => TokenBackendKind::Db,
            _ => {
                return Err(ConfigError::invalid(
                    "AUTH_TOKEN_BACKEND",
                    "must be `jwt` or `db`",
                ));
            }
        };
        let production = lookup("AUTH_ENV").as_deref() == Some("production");
        let secret = match lookup("AUTH_SIGNING_SECRET").filter(|s| !s.is_empty()) {
            Some(s) => s,
            None if production => {
                return Err(ConfigError::Missing {
                    var: "AUTH_SIGNING_SECRET",
                });
            }
            None => Self::development_secret(&database_url)?,
        };
        let jwt_secret = lookup("AUTH_JWT_SECRET")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| secret.clone());
        let config = AuthConfig::from_lookup(|name| {
            if name == "AUTH_SIGNING_SECRET" {
                Some(secret.clone())
            } else {
                lookup(name)
            }
        })?;
        let mfa_cipher = match lookup("AUTH_MFA_KEY").filter(|s| !s.is_empty()) {
            Some(spec) => auth::mfa::SecretCipher::from_spec(&spec).map_err(config_error)?,
            None if production => {
                return Err(ConfigError::Missing {
                    var: "AUTH_MFA_KEY",
                });
            }
            None => {
                // Development: a key derived from the (development) signing secret.
                let hex = auth::random::sha256_hex(&format!("auth-server/dev-mfa-key:{secret}"));
                let bytes: Vec<u8> = (0..32)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect();
                auth::mfa::SecretCipher::new("dev", &bytes).map_err(config_error)?
            }
        };
        let mfa_cipher = lookup("AUTH_MFA_OLD_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .try_fold(mfa_cipher, |c, spec| c.with_fallback_spec(spec))
            .map_err(config_error)?;
        let mfa_issuer = lookup("AUTH_MFA_ISSUER").unwrap_or_else(|| "auth-server".into());
        Ok(Self {
            addr,
            database_url,
            token_backend,
            config,
            jwt_secret,
            mfa_cipher,
            mfa_issuer,
        })
    }

    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// As [`Settings::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A development secret: read from the file beside the database, or generated into it.
    fn development_secret(database_url: &str) -> Result<String, ConfigError> {
        let file = dev_secret_file(database_url);
        if let Ok(existing) = std::fs::read_to_string(&file) {
            let existing = existing.trim().to_owned();
            if existing.len() >= 32 {
                return Ok(existing);
            }
        }
        let secret = auth::random::token(48);
        std::fs::write(&file, format!("{secret}\n")).map_err(|_| {
            ConfigError::invalid(
                "AUTH_SIGNING_SECRET",
                "is unset and the development secret file cannot be written; set it",
            )
        })?;
        tracing::warn!(
            file = %file.display(),
            "AUTH_SIGNING_SECRET is not set: generated a development secret and stored it in this file. \
             Set AUTH_SIGNING_SECRET (and AUTH_ENV=production) in production."
        );
        Ok(secret)
    }
}

fn config_error(e: Error) -> ConfigError {
    match e {
        Error::Configuration(c) => c,
        other => ConfigError::invalid("AUTH_MFA_KEY", other.to_string()),
    }
}

/// Connects to the database and runs every migration.
///
/// # Errors
///
/// [`Error::Backend`] when the database cannot be reached or migrated.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    // Statement logging would flood the service log; errors are reported where they happen.
    options.sqlx_logging(false);
    let db = sea_orm::Database::connect(options)
        .await
        .map_err(|e| Error::backend("connecting to the database (check DATABASE_URL)", e))?;
    Migrator::up(&db, None)
        .await
        .map_err(|e| Error::backend("migrating the database", e))?;
    Ok(db)
}

/// The service: `/auth` (the auth router), `/health`, `/ready` (database reachable).
///
/// # Errors
///
/// [`Error::Configuration`] for an unusable JWT secret; [`Error::Backend`].
pub fn app(settings: &Settings, db: DatabaseConnection) -> Result<Router, Error> {
    let users = DbUserStore::new(db.clone());
    let limiter = DbRateLimiter::new(db.clone(), settings.config.rate_limit());
    let hasher = auth::hash::MultiHasher::default();
    let auth = match settings.token_backend {
        TokenBackendKind::Jwt => {
            let jwt = JwtBackend::try_hmac(Algorithm::HS256, &settings.jwt_secret)?
                .with_revocation_store(DbRevocationStore::new(db.clone()));
            AuthService::new(settings.config.clone(), users, hasher, jwt)?
        }
        TokenBackendKind::Db => {
            let tokens = DbTokenBackend::new(db.clone());
            AuthService::new(settings.config.clone(), users, hasher, tokens.clone())?
                .with_token_user_lookup(tokens)
        }
    }
    .with_rate_limiter(limiter);
    let mfa_config = auth::mfa::MfaConfig::new(settings.mfa_issuer.clone());
    let mfa_limiter = DbRateLimiter::new(db.clone(), mfa_config.failure_policy);
    let mfa = auth::mfa::Mfa::new(
        auth::mfa::db::DbMfaStore::new(db.clone()),
        settings.mfa_cipher.clone(),
        mfa_config,
    )?
    .with_rate_limiter(mfa_limiter)
    .with_events(auth.events().clone());
    let auth = auth.with_second_factor(mfa.clone());
    let db = Arc::new(db);
    Ok(Router::new()
        .nest(
            "/auth",
            auth_axum::AuthRouter::new(auth).with_mfa(mfa).build(),
        )
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/ready",
            get(move || {
                let db = Arc::clone(&db);
                async move {
                    match db.ping().await {
                        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"})))
                            .into_response(),
                        Err(e) => {
                            tracing::warn!(error = %e, "database not reachable");
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                Json(serde_json::json!({"status": "unavailable"})),
                            )
                                .into_response()
                        }
                    }
                }
            }),
        ))
}
