//! Settings: every variable auth-server reads, parsed and checked once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::ConnectionLimits;
use crate::db::SqliteDurability;
use crate::providers::oauth_providers;
use auth::jwt::Algorithm;
use auth::{AuthConfig, ConfigError, Error};

mod sections;
pub(crate) use sections::comma_list;
use sections::{
    Limits, Timeouts, admin, api_key_format, argon2_params, auth_config, cors_origins, database,
    flag, jwt_algorithm, jwt_keys_secret, list, mfa_cipher, number, oauth_redirect_allowlist,
    onboarding_totp, passkeys, public_url, redis, redis_prefix, token_backend,
};

/// Which token backend serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenBackendKind {
    /// HS256 JWTs with revocations in the database.
    Jwt,
    /// Opaque tokens stored (hashed) in the database.
    Db,
    /// Opaque tokens stored (hashed) in Redis (`AUTH_REDIS_URL`), sessions included.
    Redis,
}

/// Everything the server reads from its environment. Its `Debug` shows no secret: the
/// database URL's password is replaced by `***`, secrets print as redacted.
///
/// ```
/// let settings = auth_server::Settings::from_lookup(|name| match name {
///     "DATABASE_URL" => Some("postgres://app:hunter2-secret@db.internal:5432/auth".into()),
///     "AUTH_SIGNING_SECRET" => Some("s".repeat(40)),
///     _ => None,
/// })
/// .unwrap();
/// let shown = format!("{settings:?}");
/// assert!(shown.contains("postgres://app:***@db.internal:5432/auth"));
/// assert!(!shown.contains("hunter2-secret"));
/// ```
#[derive(Clone)]
pub struct Settings {
    /// Listen address.
    pub addr: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// How an SQLite file commits (`AUTH_SQLITE_SYNCHRONOUS`: `full` or `normal`).
    pub sqlite_durability: SqliteDurability,
    /// Migrate on start (`AUTH_MIGRATE`, default `true`); `false` for teams that migrate as a
    /// separate step (`auth-server migrate`).
    pub migrate: bool,
    /// Token backend.
    pub token_backend: TokenBackendKind,
    /// The auth configuration (secrets included).
    pub config: AuthConfig,
    /// The JWT secret (redacted in `Debug`), for the HMAC algorithms.
    pub jwt_secret: auth::SecretString,
    /// The JWT algorithm (`AUTH_JWT_ALGORITHM`: HS256 by default; EdDSA, ES256, ES384 or RS256
    /// sign with a private key and publish the public keys at `/.well-known/jwks.json`).
    pub jwt_algorithm: Algorithm,
    /// Redis (`AUTH_REDIS_URL`, which may hold a password: redacted in `Debug`): revocations,
    /// rate limits and the change feed move there.
    pub redis_url: Option<auth::SecretString>,
    /// The prefix of every Redis key (`AUTH_REDIS_PREFIX`, default `auth:`).
    pub redis_prefix: String,
    /// Whether `redis_url` names a Redis Cluster (`AUTH_REDIS_CLUSTER`, default `false`), by
    /// one or more seed nodes separated by commas.
    pub redis_cluster: bool,
    /// The API key format (`AUTH_API_KEY_PREFIX`, default `ak_live_`).
    pub api_key_format: auth::ApiKeyFormat,
    /// Argon2id costs of new hashes (`AUTH_ARGON2_MEMORY_KIB`, `_ITERATIONS`,
    /// `_PARALLELISM`; default OWASP's 19,456 KiB, 2, 1; refused below OWASP's minimum).
    pub argon2: auth::hash::Argon2Params,
    /// A folder for the asymmetric signing keys (`AUTH_JWT_KEYS_DIR`); `None`: they live in
    /// the database, sealed under [`jwt_keys_secret`](Self::jwt_keys_secret).
    pub jwt_keys_dir: Option<PathBuf>,
    /// Seals the signing keys kept in the database (`AUTH_JWT_KEYS_SECRET`, at least 32
    /// bytes; `AUTH_SIGNING_SECRET` without it). Redacted in `Debug`.
    pub jwt_keys_secret: auth::SecretString,
    /// Seals TOTP secrets at rest.
    pub mfa_cipher: auth::mfa::SecretCipher,
    /// Issuer shown in authenticator apps.
    pub mfa_issuer: String,
    /// How long a device the user chose to trust after a second factor skips it
    /// (`AUTH_TRUSTED_DEVICE_DAYS`, default 0: off).
    pub trusted_device_lifetime: Duration,
    /// `AUTH_ENV=production`.
    pub production: bool,
    /// Base URL of email links.
    pub public_url: String,
    /// Providers to sign in with (`AUTH_OAUTH_PROVIDERS` and `AUTH_OAUTH_<NAME>_*`).
    pub oauth_providers: Vec<auth::oauth::Provider>,
    /// Where provider sign-ins may return (`AUTH_OAUTH_REDIRECT_ALLOWLIST`).
    pub oauth_redirect_allowlist: Vec<String>,
    /// The passkeys' relying party (`AUTH_WEBAUTHN_RP_ID`, `AUTH_WEBAUTHN_ORIGINS`, from
    /// `AUTH_PUBLIC_URL` by default); `None` with `AUTH_PASSKEYS=false`.
    pub passkeys: Option<auth::passkeys::WebauthnConfig>,
    /// SMTP URL, which may hold a password (redacted in `Debug`); `None` = console mailer
    /// (development only).
    pub smtp_url: Option<auth::SecretString>,
    /// Sender address.
    pub mail_from: String,
    /// Browser origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// Refresh tokens in a cookie.
    pub refresh_cookie: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: auth_axum::TrustedProxies,
    /// Failed logins per client IP.
    pub ip_rate_limit: auth::RateLimitPolicy,
    /// Sign-ups per client IP (`AUTH_SIGNUP_RATE_LIMIT_*`).
    pub signup_rate_limit: auth::RateLimitPolicy,
    /// Mail one client may make the server send, across addresses (`AUTH_MAIL_RATE_LIMIT_*`).
    pub mail_rate_limit: auth::RateLimitPolicy,
    /// Successful logins one client may make, across accounts (`AUTH_LOGIN_RATE_LIMIT_*`).
    pub login_rate_limit: auth::RateLimitPolicy,
    /// The queue in front of the password hasher: callers that may wait, places one client
    /// address may hold, the longest wait (`AUTH_HASH_QUEUE`, `AUTH_HASH_QUEUE_PER_CLIENT`,
    /// `AUTH_HASH_QUEUE_WAIT_MS`).
    pub hash_queue: (usize, usize, Duration),
    /// The onboarding TOTP step: `required`, `optional` or `off`.
    pub onboarding_totp: String,
    /// Required profile fields of onboarding.
    pub onboarding_profile_required: Vec<String>,
    /// Optional profile fields of onboarding.
    pub onboarding_profile_optional: Vec<String>,
    /// Administrators' emails (`AUTH_ADMIN_EMAILS`).
    pub admin_emails: Vec<String>,
    /// Whether keys with scope `admin` administer (`AUTH_ADMIN_API_KEYS`; unset: when
    /// `AUTH_ADMIN_EMAILS` is set).
    pub admin_api_keys: Option<bool>,
    /// How long audit entries are kept (`AUTH_AUDIT_RETENTION_DAYS`, default 90; `None`:
    /// forever).
    pub audit_retention: Option<Duration>,
    /// Mail a notice on sign-in from a new device (`AUTH_NOTIFY_NEW_DEVICE`).
    pub notify_new_device: bool,
    /// Serve the hosted pages (`AUTH_PAGES`, default `true`).
    pub pages: bool,
    /// How long a request waits for a database connection before a 503
    /// (`AUTH_DB_TIMEOUT_MS`, default 2000; an SQLite file waits at least its 5 s busy timeout).
    pub db_wait: Duration,
    /// The longest one statement may run on PostgreSQL or MariaDB/MySQL before the database
    /// cancels it (`AUTH_DB_STATEMENT_TIMEOUT_MS`, default 2000; zero: no limit). Applied by
    /// [`connect_from`](crate::connect_from) to the serving connections only.
    pub db_statement_timeout: Duration,
    /// How long token checks and user loads keep answering from memory after the change feed
    /// went down (`AUTH_OUTAGE_GRACE_SECS`, default 30; 0: the database answers at once).
    pub outage_grace: Duration,
    /// How long a client has to send a request's headers, from the connection's start or the
    /// previous response (`AUTH_HEADER_TIMEOUT_SECS`, default 10).
    pub header_timeout: Duration,
    /// The longest a request may take once its headers are in, body included
    /// (`AUTH_REQUEST_TIMEOUT_SECS`, default 10): past it, 503.
    pub request_timeout: Duration,
    /// How long a client has to send a request's body (`AUTH_BODY_TIMEOUT_SECS`, default 8):
    /// past it the request is answered 408.
    pub body_timeout: Duration,
    /// Connections open at once (`AUTH_MAX_CONNECTIONS`; default: the open-file limit less 256
    /// for the database and files, at least 64).
    pub max_connections: Option<usize>,
    /// Connections open at once from one client address (`AUTH_MAX_CONNECTIONS_PER_CLIENT`;
    /// default an eighth of the total, at least 16; trusted proxies are exempt).
    pub max_connections_per_client: Option<usize>,
}

impl fmt::Debug for Settings {
    // Every field, in order; the database URL without its password (the secrets' own types
    // redact themselves).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("sqlite_durability", &self.sqlite_durability)
            .field("migrate", &self.migrate)
            .field("token_backend", &self.token_backend)
            .field("config", &self.config)
            .field("jwt_secret", &self.jwt_secret)
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_cluster", &self.redis_cluster)
            .field("api_key_format", &self.api_key_format)
            .field("argon2", &self.argon2)
            .field("jwt_keys_dir", &self.jwt_keys_dir)
            .field("jwt_keys_secret", &self.jwt_keys_secret)
            .field("mfa_cipher", &self.mfa_cipher)
            .field("mfa_issuer", &self.mfa_issuer)
            .field("trusted_device_lifetime", &self.trusted_device_lifetime)
            .field("production", &self.production)
            .field("public_url", &self.public_url)
            .field("oauth_providers", &self.oauth_providers)
            .field("oauth_redirect_allowlist", &self.oauth_redirect_allowlist)
            .field("passkeys", &self.passkeys)
            .field("smtp_url", &self.smtp_url)
            .field("mail_from", &self.mail_from)
            .field("cors_origins", &self.cors_origins)
            .field("refresh_cookie", &self.refresh_cookie)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ip_rate_limit", &self.ip_rate_limit)
            .field("signup_rate_limit", &self.signup_rate_limit)
            .field("mail_rate_limit", &self.mail_rate_limit)
            .field("login_rate_limit", &self.login_rate_limit)
            .field("hash_queue", &self.hash_queue)
            .field("onboarding_totp", &self.onboarding_totp)
            .field(
                "onboarding_profile_required",
                &self.onboarding_profile_required,
            )
            .field(
                "onboarding_profile_optional",
                &self.onboarding_profile_optional,
            )
            .field("admin_emails", &self.admin_emails)
            .field("admin_api_keys", &self.admin_api_keys)
            .field("audit_retention", &self.audit_retention)
            .field("notify_new_device", &self.notify_new_device)
            .field("pages", &self.pages)
            .field("db_wait", &self.db_wait)
            .field("db_statement_timeout", &self.db_statement_timeout)
            .field("outage_grace", &self.outage_grace)
            .field("header_timeout", &self.header_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_client",
                &self.max_connections_per_client,
            )
            .finish()
    }
}

/// `url` with the password of its user part, and the value of any `password` query
/// parameter, replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let mut shown = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => match user.split_once(':') {
                    Some((name, _)) => format!("{name}:***@{host}"),
                    None => format!("{user}@{host}"),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("password") => {
                    format!("{name}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

pub(crate) fn dev_secret_file(database_url: &str) -> PathBuf {
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
    /// The listener's bounds, sized below `open_files` (the process's open-file limit, from
    /// [`raise_open_file_limit`](crate::raise_open_file_limit)) unless set.
    ///
    /// ```
    /// let settings = auth_server::Settings::from_lookup(|k| match k {
    ///     "AUTH_SIGNING_SECRET" => Some("a-development-secret-of-32-bytes!!".into()),
    ///     _ => None,
    /// }).unwrap();
    /// let limits = settings.connection_limits(Some(1024));
    /// assert_eq!((limits.max_connections, limits.max_per_client), (768, 96));
    /// ```
    #[must_use]
    pub fn connection_limits(&self, open_files: Option<u64>) -> ConnectionLimits {
        let fit = open_files
            .map_or(10_000, |n| {
                usize::try_from(n.saturating_sub(256)).unwrap_or(usize::MAX)
            })
            .max(64);
        let total = self.max_connections.unwrap_or(fit);
        if total > fit {
            tracing::warn!(
                max_connections = total,
                open_file_limit = open_files,
                "AUTH_MAX_CONNECTIONS is above what the open-file limit allows"
            );
        }
        let per_client = self
            .max_connections_per_client
            .unwrap_or((total / 8).max(16));
        ConnectionLimits::new(self.header_timeout, total, per_client)
            .with_trusted_proxies(self.trusted_proxies.clone())
    }

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
        let (database_url, sqlite_durability) = database(&lookup)?;
        let migrate = flag(&lookup, "AUTH_MIGRATE", true)?;
        let token_backend = token_backend(&lookup)?;
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
        let jwt_algorithm = jwt_algorithm(&lookup)?;
        // Without a folder the keys live in the database, for every instance on it.
        let jwt_keys_dir = lookup("AUTH_JWT_KEYS_DIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let (redis_url, redis_cluster) = redis(&lookup, token_backend)?;
        let api_key_format = api_key_format(&lookup)?;
        let redis_prefix = redis_prefix(&lookup)?;
        let argon2 = argon2_params(&lookup)?;
        let jwt_keys_secret = jwt_keys_secret(&lookup, &secret)?;
        let jwt_secret = auth::SecretString::new(
            lookup("AUTH_JWT_SECRET")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| secret.clone()),
        );
        let config = auth_config(&lookup, &secret)?;
        let mfa_cipher = mfa_cipher(&lookup, &secret, production)?;
        let mfa_issuer = lookup("AUTH_MFA_ISSUER").unwrap_or_else(|| "auth-server".into());
        let public_url = public_url(&lookup, addr, production)?;
        let smtp_url = lookup("AUTH_SMTP_URL")
            .filter(|s| !s.is_empty())
            .map(auth::SecretString::new);
        if production && smtp_url.is_none() {
            return Err(ConfigError::Missing {
                var: "AUTH_SMTP_URL",
            });
        }
        let mail_from = lookup("AUTH_MAIL_FROM").unwrap_or_else(|| "auth@localhost".into());
        let cors_origins = cors_origins(&lookup)?;
        let refresh_cookie = flag(&lookup, "AUTH_REFRESH_COOKIE", false)?;
        let trusted_proxies =
            auth_axum::TrustedProxies::parse(&lookup("AUTH_TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|entry| {
                ConfigError::invalid(
                    "AUTH_TRUSTED_PROXIES",
                    format!("has {entry:?}; list addresses or CIDR blocks"),
                )
            })?;
        let limits = Limits::from_lookup(&lookup, &config)?;
        let timeouts = Timeouts::from_lookup(&lookup)?;
        let trusted_device_lifetime =
            Duration::from_secs(number(&lookup, "AUTH_TRUSTED_DEVICE_DAYS", 0)?.min(365) * 86_400);
        let onboarding_totp = onboarding_totp(&lookup)?;
        let onboarding_profile_required = list(
            &lookup,
            "AUTH_ONBOARDING_PROFILE_REQUIRED",
            "first_name,last_name",
        );
        let onboarding_profile_optional = list(&lookup, "AUTH_ONBOARDING_PROFILE_OPTIONAL", "bio");
        let (admin_emails, admin_api_keys) = admin(&lookup)?;
        let notify_new_device = flag(&lookup, "AUTH_NOTIFY_NEW_DEVICE", false)?;
        let pages = flag(&lookup, "AUTH_PAGES", true)?;
        let oauth_providers = oauth_providers(&lookup)?;
        let oauth_redirect_allowlist = oauth_redirect_allowlist(&lookup, &public_url);
        let passkeys = passkeys(&lookup, &public_url, &mfa_issuer)?;
        let audit_retention = match number(&lookup, "AUTH_AUDIT_RETENTION_DAYS", 90)? {
            0 => None,
            days => Some(Duration::from_secs(days.saturating_mul(86_400))),
        };
        Ok(Self {
            addr,
            database_url,
            sqlite_durability,
            migrate,
            token_backend,
            config,
            jwt_secret,
            redis_url,
            redis_prefix,
            redis_cluster,
            api_key_format,
            argon2,
            jwt_algorithm,
            jwt_keys_dir,
            jwt_keys_secret,
            mfa_cipher,
            trusted_device_lifetime,
            mfa_issuer,
            production,
            public_url,
            passkeys,
            oauth_providers,
            oauth_redirect_allowlist,
            smtp_url,
            mail_from,
            cors_origins,
            refresh_cookie,
            trusted_proxies,
            ip_rate_limit: limits.ip,
            signup_rate_limit: limits.signup,
            mail_rate_limit: limits.mail,
            login_rate_limit: limits.login,
            hash_queue: limits.hash_queue,
            db_wait: timeouts.db_wait,
            db_statement_timeout: timeouts.db_statement,
            outage_grace: timeouts.outage_grace,
            header_timeout: timeouts.header,
            body_timeout: timeouts.body,
            request_timeout: timeouts.request,
            max_connections: timeouts.max_connections,
            max_connections_per_client: timeouts.max_connections_per_client,
            onboarding_totp,
            onboarding_profile_required,
            onboarding_profile_optional,
            admin_emails,
            admin_api_keys,
            audit_retention,
            notify_new_device,
            pages,
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
        if !database_url.starts_with("sqlite:") {
            // A server database is shared by instances started anywhere; each folder would
            // get its own secret and refuse the others' tokens with a bare 401.
            tracing::warn!(
                file = %std::path::absolute(&file).unwrap_or_else(|_| file.clone()).display(),
                "AUTH_SIGNING_SECRET is not set: using the development secret in this file. Every \
                 instance sharing this database must use the same secret: set AUTH_SIGNING_SECRET \
                 (or start them all from this folder)."
            );
        }
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

pub(crate) fn config_error(e: Error) -> ConfigError {
    match e {
        Error::Configuration(c) => c,
        other => ConfigError::invalid("AUTH_MFA_KEY", other.to_string()),
    }
}
