//! Settings: every variable auth-server reads, parsed and checked once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::ConnectionLimits;
use crate::db::{DEFAULT_DB_WAIT, DEFAULT_STATEMENT_TIMEOUT, SqliteDurability};
use crate::providers::{oauth_providers, origin_of, relying_party};
use auth::jwt::Algorithm;
use auth::{AuthConfig, ConfigError, Error};

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
        let database_url =
            lookup("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db?mode=rwc".into());
        if !["sqlite:", "postgres://", "postgresql://", "mysql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            return Err(ConfigError::invalid(
                "DATABASE_URL",
                "must start with sqlite:, postgres://, postgresql:// or mysql:// (for example sqlite://auth.db?mode=rwc)",
            ));
        }
        let sqlite_durability = match lookup("AUTH_SQLITE_SYNCHRONOUS").as_deref() {
            None | Some("" | "full") => SqliteDurability::Full,
            Some("normal") => SqliteDurability::Normal,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "AUTH_SQLITE_SYNCHRONOUS",
                    "must be `full` or `normal`",
                ));
            }
        };
        let migrate = flag(&lookup, "AUTH_MIGRATE", true)?;
        let token_backend = match lookup("AUTH_TOKEN_BACKEND").as_deref().unwrap_or("jwt") {
            "jwt" => TokenBackendKind::Jwt,
            "db" => TokenBackendKind::Db,
            "redis" => TokenBackendKind::Redis,
            _ => {
                return Err(ConfigError::invalid(
                    "AUTH_TOKEN_BACKEND",
                    "must be `jwt`, `db` or `redis`",
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
        let jwt_algorithm = match lookup("AUTH_JWT_ALGORITHM").filter(|s| !s.is_empty()) {
            None => Algorithm::HS256,
            Some(name) => match Algorithm::from_name(&name) {
                Some(
                    a @ (Algorithm::HS256
                    | Algorithm::EdDSA
                    | Algorithm::ES256
                    | Algorithm::ES384
                    | Algorithm::RS256),
                ) => a,
                _ => {
                    return Err(ConfigError::invalid(
                        "AUTH_JWT_ALGORITHM",
                        "must be HS256, EdDSA, ES256, ES384 or RS256",
                    ));
                }
            },
        };
        // Without a folder the keys live in the database, for every instance on it.
        let jwt_keys_dir = lookup("AUTH_JWT_KEYS_DIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let redis_url = lookup("AUTH_REDIS_URL")
            .filter(|s| !s.is_empty())
            .map(auth::SecretString::new);
        let redis_cluster = flag(&lookup, "AUTH_REDIS_CLUSTER", false)?;
        if let Some(url) = &redis_url {
            let urls: Vec<&str> = url.expose_secret().split(',').map(str::trim).collect();
            if urls
                .iter()
                .any(|u| !(u.starts_with("redis://") || u.starts_with("redis+unix://")))
            {
                return Err(ConfigError::invalid(
                    "AUTH_REDIS_URL",
                    "must be redis://[:password@]host:port/db (with AUTH_REDIS_CLUSTER=true, one \
                     or more nodes' URLs separated by commas)",
                ));
            }
            if urls.len() > 1 && !redis_cluster {
                return Err(ConfigError::invalid(
                    "AUTH_REDIS_URL",
                    "names several servers: set AUTH_REDIS_CLUSTER=true for a Redis Cluster, or \
                     give one URL",
                ));
            }
        } else if redis_cluster {
            return Err(ConfigError::invalid(
                "AUTH_REDIS_CLUSTER",
                "is true: set AUTH_REDIS_URL to the cluster's nodes too",
            ));
        }
        if token_backend == TokenBackendKind::Redis && redis_url.is_none() {
            return Err(ConfigError::invalid(
                "AUTH_TOKEN_BACKEND",
                "is `redis`: set AUTH_REDIS_URL too",
            ));
        }
        let api_key_format = match lookup("AUTH_API_KEY_PREFIX").filter(|p| !p.is_empty()) {
            Some(prefix) => auth::ApiKeyFormat::new(&prefix).map_err(|_| {
                ConfigError::invalid(
                    "AUTH_API_KEY_PREFIX",
                    "must be 1 to 16 characters of A-Z, a-z, 0-9 and _ (for example ak_live_)",
                )
            })?,
            None => auth::ApiKeyFormat::default(),
        };
        let redis_prefix = lookup("AUTH_REDIS_PREFIX")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "auth:".to_owned());
        if redis_prefix.contains(['{', '}']) {
            return Err(ConfigError::invalid(
                "AUTH_REDIS_PREFIX",
                "must not contain { or }: they choose a key's Redis Cluster slot",
            ));
        }
        let argon2 = argon2_params(&lookup)?;
        let jwt_keys_secret = match lookup("AUTH_JWT_KEYS_SECRET").filter(|s| !s.is_empty()) {
            Some(s) if s.len() < 32 => {
                return Err(ConfigError::invalid(
                    "AUTH_JWT_KEYS_SECRET",
                    "must be at least 32 bytes (`auth-server secret generate` makes one)",
                ));
            }
            Some(s) => auth::SecretString::new(s),
            None => auth::SecretString::new(secret.clone()),
        };
        let jwt_secret = auth::SecretString::new(
            lookup("AUTH_JWT_SECRET")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| secret.clone()),
        );
        // Hashing leaves one core to the runtime by default, so a login flood cannot starve
        // health checks and token checks of CPU.
        let hash_threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1).max(1))
            .to_string();
        let config = AuthConfig::from_lookup(|name| match name {
            "AUTH_SIGNING_SECRET" => Some(secret.clone()),
            "AUTH_HASH_CONCURRENCY" => lookup(name).or_else(|| Some(hash_threads.clone())),
            _ => lookup(name),
        })?;
        let config = match breach_check(&lookup)? {
            Some(check) => {
                let policy = config.password_policy().clone().with_breach_check(check);
                config.with_password_policy(policy)
            }
            None => config,
        };
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
        let public_url = lookup("AUTH_PUBLIC_URL")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("http://{addr}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "AUTH_PUBLIC_URL",
                "must start with http:// or https://",
            ));
        }
        // In production an http:// public URL drops the refresh cookie's `Secure` flag and
        // sends reset links in clear: refuse it, unless TLS ends at a proxy in front and the
        // operator says so.
        let insecure_ok = matches!(
            lookup("AUTH_ALLOW_HTTP_PUBLIC_URL").as_deref(),
            Some("true" | "1")
        );
        if production && public_url.starts_with("http://") && !insecure_ok {
            return Err(ConfigError::invalid(
                "AUTH_PUBLIC_URL",
                "must be https:// in production (set AUTH_ALLOW_HTTP_PUBLIC_URL=true only when a \
                 proxy in front terminates TLS)",
            ));
        }
        let smtp_url = lookup("AUTH_SMTP_URL")
            .filter(|s| !s.is_empty())
            .map(auth::SecretString::new);
        if production && smtp_url.is_none() {
            return Err(ConfigError::Missing {
                var: "AUTH_SMTP_URL",
            });
        }
        let mail_from = lookup("AUTH_MAIL_FROM").unwrap_or_else(|| "auth@localhost".into());
        let cors_origins = lookup("AUTH_CORS_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>();
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(ConfigError::invalid(
                "AUTH_CORS_ORIGINS",
                format!("has {bad:?}; list origins such as https://app.example.com"),
            ));
        }
        let refresh_cookie = flag(&lookup, "AUTH_REFRESH_COOKIE", false)?;
        let trusted_proxies =
            auth_axum::TrustedProxies::parse(&lookup("AUTH_TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|entry| {
                ConfigError::invalid(
                    "AUTH_TRUSTED_PROXIES",
                    format!("has {entry:?}; list addresses or CIDR blocks"),
                )
            })?;
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError::invalid(name, "must be a whole number")),
            }
        };
        let ip_rate_limit = auth::RateLimitPolicy::new(
            u32::try_from(number("AUTH_IP_RATE_LIMIT_ATTEMPTS", 50)?).unwrap_or(u32::MAX),
            Duration::from_secs(number("AUTH_IP_RATE_LIMIT_WINDOW", 300)?),
            Duration::from_secs(number("AUTH_IP_RATE_LIMIT_LOCKOUT", 900)?),
        )?;
        let policy = |[attempts, window, lockout]: [&'static str; 3],
                      default: auth::RateLimitPolicy| {
            auth::RateLimitPolicy::new(
                u32::try_from(number(attempts, u64::from(default.max_attempts()))?)
                    .unwrap_or(u32::MAX),
                Duration::from_secs(number(window, default.window().as_secs())?),
                Duration::from_secs(number(lockout, default.lockout().as_secs())?),
            )
        };
        let signup_rate_limit = policy(
            [
                "AUTH_SIGNUP_RATE_LIMIT_ATTEMPTS",
                "AUTH_SIGNUP_RATE_LIMIT_WINDOW",
                "AUTH_SIGNUP_RATE_LIMIT_LOCKOUT",
            ],
            auth::RateLimitPolicy::SIGNUP,
        )?;
        let hash_parallel = config.hash_concurrency().unwrap_or(1).max(1);
        let hash_queue = (
            usize::try_from(number("AUTH_HASH_QUEUE", (hash_parallel * 2) as u64)?)
                .unwrap_or(usize::MAX),
            usize::try_from(number("AUTH_HASH_QUEUE_PER_CLIENT", hash_parallel as u64)?)
                .unwrap_or(usize::MAX)
                .max(1),
            Duration::from_millis(number("AUTH_HASH_QUEUE_WAIT_MS", 5_000)?),
        );
        let login_rate_limit = policy(
            [
                "AUTH_LOGIN_RATE_LIMIT_ATTEMPTS",
                "AUTH_LOGIN_RATE_LIMIT_WINDOW",
                "AUTH_LOGIN_RATE_LIMIT_LOCKOUT",
            ],
            auth::RateLimitPolicy::LOGINS,
        )?;
        let mail_rate_limit = policy(
            [
                "AUTH_MAIL_RATE_LIMIT_ATTEMPTS",
                "AUTH_MAIL_RATE_LIMIT_WINDOW",
                "AUTH_MAIL_RATE_LIMIT_LOCKOUT",
            ],
            auth::RateLimitPolicy::MAIL,
        )?;
        let db_wait = Duration::from_millis(
            number(
                "AUTH_DB_TIMEOUT_MS",
                u64::try_from(DEFAULT_DB_WAIT.as_millis()).unwrap_or(2_000),
            )?
            .max(100),
        );
        let db_statement_timeout = Duration::from_millis(number(
            "AUTH_DB_STATEMENT_TIMEOUT_MS",
            u64::try_from(DEFAULT_STATEMENT_TIMEOUT.as_millis()).unwrap_or(2_000),
        )?);
        let trusted_device_lifetime =
            Duration::from_secs(number("AUTH_TRUSTED_DEVICE_DAYS", 0)?.min(365) * 86_400);
        let outage_grace = Duration::from_secs(number("AUTH_OUTAGE_GRACE_SECS", 30)?.min(3_600));
        let header_timeout = Duration::from_secs(number("AUTH_HEADER_TIMEOUT_SECS", 10)?.max(1));
        let body_timeout = Duration::from_secs(number("AUTH_BODY_TIMEOUT_SECS", 8)?.max(1));
        let request_timeout = Duration::from_secs(number("AUTH_REQUEST_TIMEOUT_SECS", 10)?.max(1));
        let max_connections = lookup("AUTH_MAX_CONNECTIONS")
            .map(|_| number("AUTH_MAX_CONNECTIONS", 0))
            .transpose()?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1));
        let max_connections_per_client = lookup("AUTH_MAX_CONNECTIONS_PER_CLIENT")
            .map(|_| number("AUTH_MAX_CONNECTIONS_PER_CLIENT", 0))
            .transpose()?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1));
        let onboarding_totp = lookup("AUTH_ONBOARDING_TOTP").unwrap_or_else(|| "optional".into());
        if !matches!(onboarding_totp.as_str(), "required" | "optional" | "off") {
            return Err(ConfigError::invalid(
                "AUTH_ONBOARDING_TOTP",
                "must be required, optional or off",
            ));
        }
        let list = |name: &str, default: &str| -> Vec<String> {
            lookup(name)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(|f| f.trim().to_owned())
                .filter(|f| !f.is_empty())
                .collect()
        };
        let onboarding_profile_required =
            list("AUTH_ONBOARDING_PROFILE_REQUIRED", "first_name,last_name");
        let onboarding_profile_optional = list("AUTH_ONBOARDING_PROFILE_OPTIONAL", "bio");
        let admin_emails = list("AUTH_ADMIN_EMAILS", "");
        if let Some(bad) = admin_emails
            .iter()
            .find(|e| auth::normalize_email(e).is_err())
        {
            return Err(ConfigError::invalid(
                "AUTH_ADMIN_EMAILS",
                format!("has {bad:?}; list email addresses, comma-separated"),
            ));
        }
        let admin_api_keys = match lookup("AUTH_ADMIN_API_KEYS").as_deref() {
            None | Some("") => None,
            Some("false" | "0") => Some(false),
            Some("true" | "1") => Some(true),
            Some(_) => {
                return Err(ConfigError::invalid(
                    "AUTH_ADMIN_API_KEYS",
                    "must be true or false",
                ));
            }
        };
        let notify_new_device = flag(&lookup, "AUTH_NOTIFY_NEW_DEVICE", false)?;
        let pages = flag(&lookup, "AUTH_PAGES", true)?;
        let oauth_providers = oauth_providers(&lookup)?;
        let oauth_redirect_allowlist =
            match lookup("AUTH_OAUTH_REDIRECT_ALLOWLIST").filter(|s| !s.trim().is_empty()) {
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => vec![format!("{}/", origin_of(&public_url))],
            };
        let rp_id = lookup("AUTH_WEBAUTHN_RP_ID").filter(|s| !s.is_empty());
        let rp_origins = lookup("AUTH_WEBAUTHN_ORIGINS").filter(|s| !s.is_empty());
        let explicit = rp_id.is_some() || rp_origins.is_some();
        let passkeys = match lookup("AUTH_PASSKEYS").as_deref() {
            // On by default, where browsers allow passkeys: a public URL on an IP address
            // (not loopback) cannot be a relying party, and a server nobody asked passkeys of
            // still starts, saying why they are off.
            None | Some("") => match relying_party(&public_url, rp_id, rp_origins, &mfa_issuer) {
                Ok(config) => Some(config),
                Err(e) if !explicit => {
                    tracing::warn!(
                        public_url = %public_url,
                        "passkeys are off: browsers allow them only on a domain name (or localhost); \
                         set AUTH_PUBLIC_URL to one, or AUTH_WEBAUTHN_RP_ID and AUTH_WEBAUTHN_ORIGINS \
                         ({e})"
                    );
                    None
                }
                Err(e) => return Err(e),
            },
            Some("true" | "1") => Some(relying_party(&public_url, rp_id, rp_origins, &mfa_issuer)?),
            Some("false" | "0") => None,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "AUTH_PASSKEYS",
                    "must be true or false",
                ));
            }
        };
        let audit_retention = match number("AUTH_AUDIT_RETENTION_DAYS", 90)? {
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
            ip_rate_limit,
            signup_rate_limit,
            mail_rate_limit,
            login_rate_limit,
            hash_queue,
            db_wait,
            db_statement_timeout,
            outage_grace,
            header_timeout,
            body_timeout,
            request_timeout,
            max_connections,
            max_connections_per_client,
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

/// A `true`/`false` variable (`1`/`0` too); `default` when unset or empty.
pub(crate) fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(var).as_deref() {
        None | Some("") => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ConfigError::invalid(var, "must be true or false")),
    }
}

/// `AUTH_PWNED_URL` or `AUTH_PWNED_DIR` (not both), with `AUTH_PWNED_THRESHOLD`,
/// `AUTH_PWNED_TIMEOUT_MS` and `AUTH_PWNED_ON_FAILURE`.
pub(crate) fn breach_check(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<auth::BreachedPasswordValidator>, ConfigError> {
    let url = lookup("AUTH_PWNED_URL").filter(|s| !s.is_empty());
    let dir = lookup("AUTH_PWNED_DIR").filter(|s| !s.is_empty());
    let read = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
        match lookup(var).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::invalid(var, "must be a positive whole number")),
        }
    };
    let check = match (url, dir) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                "AUTH_PWNED_URL",
                "and AUTH_PWNED_DIR are both set: choose the range API or the range files",
            ));
        }
        (Some(url), None) => {
            let timeout = Duration::from_millis(read("AUTH_PWNED_TIMEOUT_MS", 3000)?);
            let source = auth::pwned::HttpPwnedPasswords::new(&url)
                .map_err(|e| match e {
                    Error::Configuration(c) => c,
                    other => ConfigError::invalid("AUTH_PWNED_URL", other.to_string()),
                })?
                .with_timeout(timeout);
            auth::BreachedPasswordValidator::new(source)
        }
        (None, Some(dir)) => {
            let source = auth::PwnedPasswordsDir::new(&dir);
            if !source.exists() {
                return Err(ConfigError::invalid(
                    "AUTH_PWNED_DIR",
                    format!("{dir:?} is not a directory of range files"),
                ));
            }
            auth::BreachedPasswordValidator::new(source)
        }
    };
    let on_failure = match lookup("AUTH_PWNED_ON_FAILURE").as_deref() {
        None | Some("" | "allow") => auth::BreachSourceFailure::Allow,
        Some("refuse") => auth::BreachSourceFailure::Refuse,
        Some(_) => {
            return Err(ConfigError::invalid(
                "AUTH_PWNED_ON_FAILURE",
                "must be `allow` or `refuse`",
            ));
        }
    };
    Ok(Some(
        check
            .with_threshold(read("AUTH_PWNED_THRESHOLD", 1)?)
            .on_source_failure(on_failure),
    ))
}

/// OWASP's Argon2id minimums: memory (KiB) for 1, 2, 3, 4 and 5+ iterations.
pub(crate) const OWASP_ARGON2_MIN_KIB: [u32; 5] = [47_104, 19_456, 12_288, 9_216, 7_168];

/// `AUTH_ARGON2_*`, checked against OWASP's minimum for the iteration count.
pub(crate) fn argon2_params(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<auth::hash::Argon2Params, ConfigError> {
    let default = auth::hash::Argon2Params::DEFAULT;
    let read = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
        match lookup(var).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::invalid(var, "must be a positive whole number")),
        }
    };
    let memory = read("AUTH_ARGON2_MEMORY_KIB", default.memory_kib())?;
    let iterations = read("AUTH_ARGON2_ITERATIONS", default.iterations())?;
    let parallelism = read("AUTH_ARGON2_PARALLELISM", default.parallelism())?;
    let index = usize::try_from(iterations.clamp(1, 5) - 1).unwrap_or(4);
    let minimum = OWASP_ARGON2_MIN_KIB[index];
    if iterations >= 1 && memory < minimum {
        return Err(ConfigError::invalid(
            "AUTH_ARGON2_MEMORY_KIB",
            format!(
                "{memory} KiB with {iterations} iteration(s) is below OWASP's minimum for Argon2id ({minimum} KiB); raise AUTH_ARGON2_MEMORY_KIB or AUTH_ARGON2_ITERATIONS"
            ),
        ));
    }
    auth::hash::Argon2Params::new(memory, iterations, parallelism).map_err(|e| {
        ConfigError::invalid(
            "AUTH_ARGON2_MEMORY_KIB",
            format!("{e} (AUTH_ARGON2_MEMORY_KIB, _ITERATIONS, _PARALLELISM)"),
        )
    })
}
