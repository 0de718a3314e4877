//! The stack: the service and its parts, wired from the settings.

use std::sync::Arc;
use std::time::Duration;

use crate::keys;
use crate::settings::{Settings, TokenBackendKind, dev_secret_file};
use auth::jwt::JwtBackend;
use auth::tokens_db::{DbChangeFeed, DbRevocationStore, DbTokenBackend};
use auth::users_db::{DbRateLimiter, DbUserStore};
use auth::{AuthService, ChangeFeed, ConfigError, Error, RevocationMirror, UserCache};
use sea_orm::DatabaseConnection;

/// Everything [`app`](crate::app) builds, for the binary's subcommands and for tests.
#[derive(Clone)]
pub struct Stack {
    /// The service.
    pub auth: AuthService,
    /// The change feed: how this instance learns of revocations and user changes made by the
    /// others (and tells them of its own): the database's, or Redis pub/sub with
    /// `AUTH_REDIS_URL`.
    pub feed: Arc<dyn ChangeFeed>,
    /// Redis, with `AUTH_REDIS_URL`.
    pub redis: Option<auth::redis::Redis>,
    /// The in-memory revocation mirror (JWT backend), `None` with database tokens.
    pub revocations: Option<RevocationMirror>,
    /// The asymmetric signing keys (`AUTH_JWT_ALGORITHM` other than HS256), as published at
    /// `/.well-known/jwks.json`; reloaded when `AUTH_JWT_KEYS_DIR` changes.
    pub jwt_keys: Option<Arc<std::sync::RwLock<auth::jwt::JwtKeySet>>>,
    /// The same keys, loaded from the database on first use when they live there
    /// ([`keys::SigningKeys::ready`] waits for them).
    pub signing_keys: Option<keys::SigningKeys>,
    /// Two-factor.
    pub mfa: auth::mfa::Mfa,
    /// The onboarding engine (register, verify email, TOTP, profile).
    pub onboarding: auth::onboarding::Onboarding<auth::User>,
    /// The audit log (an `AuditLog` on the service's events writes every event to it).
    pub audit: Arc<dyn auth::AuditStore>,
    /// The database.
    pub db: DatabaseConnection,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("auth", &self.auth)
            .field("feed", &self.feed.status())
            .field("redis", &self.redis)
            .field("revocations", &self.revocations)
            .finish_non_exhaustive()
    }
}

/// Builds the service of a serving instance over `db` (no HTTP): revocations and users are
/// answered from memory, kept exact by a [`DbChangeFeed`] started here (a Tokio runtime must be
/// running).
///
/// # Errors
///
/// [`Error::Configuration`] for an unusable JWT secret or MFA setting.
pub fn stack(settings: &Settings, db: DatabaseConnection) -> Result<Stack, Error> {
    let redis = redis_of(settings)?;
    let feed: Arc<dyn ChangeFeed> = match &redis {
        Some(redis) => {
            warn_without_persistence(redis);
            Arc::new(auth::redis::RedisFeed::start(redis))
        }
        None => Arc::new(DbChangeFeed::start(db.clone())),
    };
    build(settings, db, feed, redis)
}

/// Says in the log, once at start, when Redis keeps nothing on disk: a restart then loses
/// every revocation, which the revocation epoch turns into "everyone signs in again".
pub(crate) fn warn_without_persistence(redis: &auth::redis::Redis) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let redis = redis.clone();
    handle.spawn(async move {
        if let Ok(Some(false)) = redis.keeps_data().await {
            tracing::warn!(
                "Redis keeps nothing on disk (appendonly no, no save schedule): if it restarts, every session ends \
                 (tokens issued before are refused, so no logout is forgotten); turn on appendonly to keep them"
            );
        }
    });
}

/// Builds the service for a management command: it receives nothing, asks the database for
/// every check, and publishes what it changes through the database (or Redis) so that running
/// instances learn of it (a deactivation, a password set).
///
/// # Errors
///
/// As [`stack`].
pub fn command_stack(settings: &Settings, db: DatabaseConnection) -> Result<Stack, Error> {
    let redis = redis_of(settings)?;
    let feed = publisher(&redis, &db);
    build(settings, db, feed, redis)
}

pub(crate) fn publisher(
    redis: &Option<auth::redis::Redis>,
    db: &DatabaseConnection,
) -> Arc<dyn ChangeFeed> {
    match redis {
        Some(redis) => Arc::new(auth::redis::RedisFeed::publisher(redis)),
        None => Arc::new(DbChangeFeed::publisher(db.clone())),
    }
}

/// The change feed of a management command: it publishes (through the database, or Redis
/// with `AUTH_REDIS_URL`) and receives nothing.
///
/// # Errors
///
/// [`Error::Configuration`] for an unusable `AUTH_REDIS_URL`.
pub fn publisher_feed(
    settings: &Settings,
    db: &DatabaseConnection,
) -> Result<Arc<dyn ChangeFeed>, Error> {
    Ok(publisher(&redis_of(settings)?, db))
}

/// Redis, when `AUTH_REDIS_URL` is set (connected on first use).
pub(crate) fn redis_of(settings: &Settings) -> Result<Option<auth::redis::Redis>, Error> {
    settings
        .redis_url
        .as_ref()
        .map(|url| {
            let redis = if settings.redis_cluster {
                let seeds: Vec<&str> = url.expose_secret().split(',').map(str::trim).collect();
                auth::redis::Redis::open_cluster(&seeds)
            } else {
                auth::redis::Redis::open(url.expose_secret())
            };
            redis.map(|r| r.with_prefix(&settings.redis_prefix))
        })
        .transpose()
}

/// Where the shared parts live: SQL, with the short-lived ones (throttles, challenges,
/// ceremonies) in Redis when it is there.
struct Places<'a> {
    db: &'a DatabaseConnection,
    redis: Option<&'a auth::redis::Redis>,
}

impl Places<'_> {
    /// A throttle shared by every instance: in Redis (short-lived counters off the primary
    /// database) or in SQL.
    fn limiter(&self, policy: auth::RateLimitPolicy) -> Arc<dyn auth::RateLimiter> {
        match self.redis {
            Some(redis) => Arc::new(auth::redis::RedisRateLimiter::new(redis.clone(), policy)),
            None => Arc::new(DbRateLimiter::new(self.db.clone(), policy)),
        }
    }

    /// Passkey ceremonies and sign-in link records (seconds to minutes).
    fn ceremonies(&self) -> Arc<dyn auth::ephemeral::CeremonyStore> {
        match self.redis {
            Some(redis) => Arc::new(auth::redis::RedisCeremonyStore::new(redis.clone())),
            None => Arc::new(auth::passkeys::db::DbCeremonyStore::new(self.db.clone())),
        }
    }
}

/// The token backend's parts a [`Stack`] exposes.
#[derive(Default)]
struct TokenParts {
    revocations: Option<RevocationMirror>,
    jwt_keys: Option<Arc<std::sync::RwLock<auth::jwt::JwtKeySet>>>,
    signing_keys: Option<keys::SigningKeys>,
}

pub(crate) fn build(
    settings: &Settings,
    db: DatabaseConnection,
    feed: Arc<dyn ChangeFeed>,
    redis: Option<auth::redis::Redis>,
) -> Result<Stack, Error> {
    let places = Places {
        db: &db,
        redis: redis.as_ref(),
    };
    let (auth, tokens) = token_service(settings, &places, &feed)?;
    let auth = auth
        .with_user_cache(
            UserCache::from_arc(Arc::clone(&feed)).with_outage_grace(settings.outage_grace),
        )
        .with_api_keys(auth::apikeys::DbApiKeyStore::new(db.clone()))
        .with_api_key_format(settings.api_key_format.clone())
        .with_rate_limiter(places.limiter(settings.config.rate_limit()))
        .with_ip_rate_limiter(places.limiter(settings.ip_rate_limit))
        .with_signup_rate_limiter(places.limiter(settings.signup_rate_limit))
        .with_mail_rate_limiter(places.limiter(settings.mail_rate_limit))
        .with_login_rate_limiter(places.limiter(settings.login_rate_limit))
        .with_hash_queue(
            settings.hash_queue.0,
            settings.hash_queue.1,
            settings.hash_queue.2,
        );
    let mfa = mfa_of(settings, &places, &auth)?;
    let auth = account_parts(auth, settings, &places, &mfa)?;
    // Every event, without its secrets, with the client's address: durable, in SQL.
    let audit: Arc<dyn auth::AuditStore> = Arc::new(auth::users_db::DbAuditStore::new(db.clone()));
    auth::AuditLog::from_arc(Arc::clone(&audit)).install(auth.events());
    let onboarding = onboarding_of(settings, &places, &auth, &mfa)?;
    Ok(Stack {
        auth,
        feed,
        redis,
        revocations: tokens.revocations,
        jwt_keys: tokens.jwt_keys,
        signing_keys: tokens.signing_keys,
        mfa,
        onboarding,
        audit,
        db,
    })
}

/// The service over the configured token backend: JWTs (HMAC, or asymmetric keys from a folder
/// or the database) with the revocation mirror, database tokens, or Redis tokens.
fn token_service(
    settings: &Settings,
    places: &Places<'_>,
    feed: &Arc<dyn ChangeFeed>,
) -> Result<(AuthService, TokenParts), Error> {
    let db = places.db;
    let users = DbUserStore::new(db.clone());
    let hasher = auth::hash::MultiHasher::with_argon2(settings.argon2);
    let config = settings.config.clone();
    let mut parts = TokenParts::default();
    let auth = match settings.token_backend {
        TokenBackendKind::Jwt => {
            let mirror = revocation_mirror(settings, places, feed);
            parts.revocations = Some(mirror.clone());
            match &settings.jwt_keys_dir {
                _ if settings.jwt_algorithm.is_hmac() => {
                    let jwt = JwtBackend::try_hmac(
                        settings.jwt_algorithm,
                        settings.jwt_secret.expose_secret(),
                    )?
                    .with_revocation_store(mirror);
                    AuthService::new(config, users, hasher, jwt)?
                }
                Some(dir) => {
                    let keyed = keys::KeyedJwt::new(
                        keys::load_or_create(dir, settings.jwt_algorithm)?,
                        Arc::new(mirror),
                    )?;
                    keyed.watch(dir.clone());
                    parts.jwt_keys = Some(keyed.keys());
                    parts.signing_keys = Some(keys::SigningKeys(keyed.clone()));
                    AuthService::new(config, users, hasher, keyed)?
                }
                None => {
                    let keyed =
                        keys::KeyedJwt::from_vault(key_vault(settings, db), Arc::new(mirror))?;
                    keyed.watch_database(feed);
                    parts.jwt_keys = Some(keyed.keys());
                    parts.signing_keys = Some(keys::SigningKeys(keyed.clone()));
                    AuthService::new(config, users, hasher, keyed)?
                }
            }
        }
        TokenBackendKind::Db => {
            // Successors derived under the signing secret: a refresh token presented again
            // by its own racing client within the reuse window gets the same successor.
            let tokens = DbTokenBackend::new(db.clone())
                .with_successor_key(settings.jwt_secret.expose_secret());
            AuthService::new(config, users, hasher, tokens.clone())?.with_token_user_lookup(tokens)
        }
        TokenBackendKind::Redis => {
            let Some(redis) = places.redis else {
                return Err(Error::Configuration(ConfigError::invalid(
                    "AUTH_TOKEN_BACKEND",
                    "is `redis`: set AUTH_REDIS_URL too",
                )));
            };
            let tokens = auth::redis::RedisTokenBackend::new(redis.clone())
                .with_successor_key(settings.jwt_secret.expose_secret());
            AuthService::new(config, users, hasher, tokens)?
        }
    };
    Ok((auth, parts))
}

/// The JWT backend's revocations: stored in SQL (or Redis), answered from memory.
fn revocation_mirror(
    settings: &Settings,
    places: &Places<'_>,
    feed: &Arc<dyn ChangeFeed>,
) -> RevocationMirror {
    // Per-user cut-offs must outlive every token they revoke: a refresh token lives at most
    // the absolute session lifetime, so a cut-off kept shorter could let `tokens cleanup`
    // revive a logged-out session.
    let lifetimes = settings.config.lifetimes();
    let retention = lifetimes
        .refresh()
        .max(lifetimes.absolute())
        .saturating_add(Duration::from_secs(86_400));
    let store: Arc<dyn auth::RevocationStore> = match places.redis {
        Some(redis) => Arc::new(
            auth::redis::RedisRevocationStore::new(redis.clone()).with_user_retention(retention),
        ),
        None => Arc::new(DbRevocationStore::new(places.db.clone()).with_user_retention(retention)),
    };
    RevocationMirror::from_arcs(store, Arc::clone(feed))
        .with_user_retention(retention)
        .with_outage_grace(settings.outage_grace)
}

/// Two-factor: enrolments in SQL, login challenges (minutes) in Redis when it is there.
fn mfa_of(
    settings: &Settings,
    places: &Places<'_>,
    auth: &AuthService,
) -> Result<auth::mfa::Mfa, Error> {
    let mfa_config = auth::mfa::MfaConfig::new(settings.mfa_issuer.clone());
    let mfa_limiter = places.limiter(mfa_config.failure_policy);
    let mfa = auth::mfa::Mfa::new(
        auth::mfa::db::DbMfaStore::new(places.db.clone()),
        settings.mfa_cipher.clone(),
        mfa_config,
    )?
    .with_rate_limiter(mfa_limiter)
    .with_events(auth.events().clone());
    Ok(match places.redis {
        Some(redis) => {
            mfa.with_challenge_store(auth::redis::RedisChallengeStore::new(redis.clone()))
        }
        None => mfa,
    })
}

/// What an account holds beside its password: single-use records, the second factor, trusted
/// devices, provider links, grants, passkeys.
fn account_parts(
    auth: AuthService,
    settings: &Settings,
    places: &Places<'_>,
    mfa: &auth::mfa::Mfa,
) -> Result<AuthService, Error> {
    let db = places.db;
    // Single-use records of email changes and sign-in codes: beside the login challenges.
    // Sign-in links: one record per address, replaced by the next request, beside the
    // passkey ceremonies.
    let auth = match places.redis {
        Some(redis) => {
            auth.with_challenge_store(auth::redis::RedisChallengeStore::new(redis.clone()))
        }
        None => auth.with_challenge_store(auth::mfa::db::DbMfaStore::new(db.clone())),
    }
    .with_ceremony_store(places.ceremonies())
    .with_second_factor(mfa.clone());
    let auth = if settings.trusted_device_lifetime.is_zero() {
        auth
    } else {
        auth.with_trusted_devices(
            auth::mfa::DbTrustedDevices::new(db.clone()),
            settings.trusted_device_lifetime,
        )
    };
    // Authority is a grant stored on the account; a listed address is granted `admin` only at
    // the moment its owner proves it.
    let auth = auth
        .with_identities(auth::oauth::db::DbIdentityStore::new(db.clone()))
        .with_grants(auth::users_db::DbGrantStore::new(db.clone()))
        .with_role_on_proof(&settings.admin_emails, auth::Role::Admin);
    // Passkeys in SQL; their ceremonies (seconds to minutes) beside the login challenges.
    Ok(match &settings.passkeys {
        Some(config) => auth.with_passkeys(auth::passkeys::WebauthnPasskeys::new(
            config.clone(),
            auth::passkeys::db::DbPasskeyStore::new(db.clone()),
            places.ceremonies(),
        )?),
        None => auth,
    })
}

/// The onboarding pipeline: register, verify the address, TOTP as configured, the profile.
fn onboarding_of(
    settings: &Settings,
    places: &Places<'_>,
    auth: &AuthService,
    mfa: &auth::mfa::Mfa,
) -> Result<auth::onboarding::Onboarding<auth::User>, Error> {
    let store: Arc<dyn auth::onboarding::SessionStore> = match places.redis {
        Some(redis) => Arc::new(auth::redis::RedisSessionStore::new(redis.clone())),
        None => Arc::new(auth::onboarding::db::DbSessionStore::new(places.db.clone())),
    };
    let mut pipeline = auth::onboarding::Onboarding::builder(auth.clone(), store)
        .step(auth::onboarding::RegisterStep)
        .step(auth::onboarding::VerifyEmailStep::new());
    match settings.onboarding_totp.as_str() {
        "required" => {
            pipeline = pipeline.step(auth::onboarding::SetupTotpStep::required(mfa.clone()));
        }
        "optional" => {
            pipeline = pipeline.step(auth::onboarding::SetupTotpStep::optional(mfa.clone()));
        }
        _ => {}
    }
    pipeline
        .step(auth::onboarding::ProfileStep::new(
            settings.onboarding_profile_required.clone(),
            settings.onboarding_profile_optional.clone(),
        ))
        .build()
}

/// The signing keys in the database, as `settings` say (sealed under `AUTH_JWT_KEYS_SECRET`;
/// in development, a key folder the server used before is taken over).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let settings = auth_server::Settings::from_lookup(|k| match k {
///     "AUTH_SIGNING_SECRET" => Some("a-development-secret-of-32-bytes!!".into()),
///     "AUTH_JWT_ALGORITHM" => Some("EdDSA".into()),
///     "DATABASE_URL" => Some("sqlite::memory:".into()),
///     _ => None,
/// }).unwrap();
/// let db = auth_server::connect(&settings.database_url).await.unwrap();
/// let vault = auth_server::key_vault(&settings, &db);
/// let (version, keys) = vault.load_or_create().await.unwrap();
/// assert_eq!(version, 1);
/// let (again, same) = vault.load_or_create().await.unwrap();
/// assert_eq!((again, same.current().unwrap().kid()), (1, keys.current().unwrap().kid()));
/// # });
/// ```
#[must_use]
pub fn key_vault(settings: &Settings, db: &DatabaseConnection) -> keys::KeyVault {
    let legacy = (!settings.production)
        .then(|| dev_secret_file(&settings.database_url))
        .and_then(|f| f.parent().map(|d| d.join("auth-jwt-keys")));
    keys::KeyVault::new(
        auth::tokens_db::DbSigningKeyStore::new(db.clone()),
        settings.jwt_keys_secret.clone(),
        settings.jwt_algorithm,
    )
    .importing_from(legacy)
}
