//! The `auth` stack as an HTTP service. The binary (`cargo run -p auth-server`) reads
//! [`Settings::from_env`], migrates the database and serves [`app`].
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AUTH_SERVER_ADDR` | `127.0.0.1:8080` | listen address |
//! | `DATABASE_URL` | `sqlite://auth.db?mode=rwc` | SQLite file, `postgres://…` or `mysql://…` |
//! | `AUTH_MIGRATE` | `true` | migrate on start (under a database lock); `false`: refuse to start while migrations are pending (`auth-server migrate`) |
//! | `AUTH_SQLITE_SYNCHRONOUS` | `full` | `normal` trades power-loss durability of the last commits for speed (see [`SqliteDurability`]) |
//! | `AUTH_TOKEN_BACKEND` | `jwt` | `jwt` (revocations in the database, or Redis), `db` (opaque tokens in the database) or `redis` (opaque tokens in Redis; needs `AUTH_REDIS_URL`) |
//! | `AUTH_ENV` | `development` | `production` makes missing secrets an error |
//! | `AUTH_SIGNING_SECRET` | generated in development | HMAC key for signed links (32+ bytes) |
//! | `AUTH_JWT_SECRET` | `AUTH_SIGNING_SECRET` | JWT HMAC key (32+ bytes) |
//! | `AUTH_REDIS_URL` | none | `redis://…`: revocations, rate limits, MFA login challenges, onboarding sessions and the change feed move to Redis (users, factors and `db` tokens stay in the database) |
//! | `AUTH_REDIS_CLUSTER` | `false` | `true`: `AUTH_REDIS_URL` names a Redis Cluster, by one or more of its nodes separated by commas (`redis://10.0.0.1:6379/,redis://10.0.0.2:6379/`) |
//! | `AUTH_REDIS_PREFIX` | `auth:` | the prefix of every Redis key (no `{` or `}`: they would change which cluster slot a key lives in) |
//! | `AUTH_API_KEY_PREFIX` | `ak_live_` | the prefix of API keys (`/auth/api-keys`), so secret scanners find them |
//! | `AUTH_JWT_ALGORITHM` | `HS256` | `EdDSA`, `ES256`, `ES384`, `RS256`: sign with a private key, publish `/.well-known/jwks.json` |
//! | `AUTH_JWT_KEYS_DIR` | unset: the keys live in the database | a folder for the signing keys instead (`keys.json` + PEM files); Ed25519/ECDSA keys are created when missing; it must be shared by every instance; reloaded on change |
//! | `AUTH_JWT_KEYS_SECRET` | `AUTH_SIGNING_SECRET` | seals the signing keys kept in the database (AES-256-GCM under a key derived by HKDF-SHA256); at least 32 bytes; changing it makes the stored keys unreadable (the server refuses to start, naming it) |
//! | `AUTH_MFA_KEY` | derived from the signing secret in development | `key_id:base64` of 32 random bytes sealing TOTP secrets (`auth-server secret generate --mfa`) |
//! | `AUTH_MFA_OLD_KEYS` | none | earlier `AUTH_MFA_KEY` values, comma-separated, still opening old secrets |
//! | `AUTH_TRUSTED_DEVICE_DAYS` | `0` (off) | days a device stays trusted when the user ticks "trust this device" at the second factor (`trust_device` in `POST /auth/mfa/verify`): its sign-ins then skip the second factor, never the password; every device is forgotten at logout everywhere, a password change or reset, "secure my account" and a second-factor reset; at most 365 |
//! | `AUTH_MFA_ISSUER` | `auth-server` | the name authenticator apps show |
//! | `AUTH_PUBLIC_URL` | `http://<AUTH_SERVER_ADDR>` | base of the links in reset and verification emails; must be `https://` in production |
//! | `AUTH_ALLOW_HTTP_PUBLIC_URL` | `false` | `true`: accept an `http://` public URL in production (TLS ends at a proxy in front) |
//! | `AUTH_SMTP_URL` | console mailer in development | `smtp://user:pass@host:587?tls=required`; required in production |
//! | `AUTH_MAIL_FROM` | `auth@localhost` | sender of the emails |
//! | `AUTH_CORS_ORIGINS` | none | comma-separated origins allowed to call the API from a browser |
//! | `AUTH_REFRESH_COOKIE` | `false` | `true`: refresh tokens in an HttpOnly cookie (with CSRF checks) |
//! | `AUTH_TRUSTED_PROXIES` | none | addresses/CIDRs whose `X-Forwarded-For` is believed |
//! | `AUTH_IP_RATE_LIMIT_ATTEMPTS` / `_WINDOW` / `_LOCKOUT` | 50 / 300 / 900 | failed logins per client IP |
//! | `AUTH_SIGNUP_RATE_LIMIT_ATTEMPTS` / `_WINDOW` / `_LOCKOUT` | 10 / 3600 / 3600 | sign-ups per client IP (`/auth/register` and onboarding alike) |
//! | `AUTH_LOGIN_RATE_LIMIT_ATTEMPTS` / `_WINDOW` / `_LOCKOUT` | 300 / 300 / 300 | successful logins per client IP across accounts; past it 429 before any password is checked |
//! | `AUTH_MAIL_RATE_LIMIT_ATTEMPTS` / `_WINDOW` / `_LOCKOUT` | 20 / 3600 / 3600 | mail one client IP can make the server send, across addresses (sign-in links, resets, verifications, email changes) |
//! | `AUTH_ONBOARDING_TOTP` | `optional` | the onboarding TOTP step: `required`, `optional` or `off` |
//! | `AUTH_ONBOARDING_PROFILE_REQUIRED` / `_OPTIONAL` | `first_name,last_name` / `bio` | onboarding profile fields |
//! | `AUTH_ARGON2_MEMORY_KIB` / `_ITERATIONS` / `_PARALLELISM` | 19456 / 2 / 1 | Argon2id costs of new hashes (existing hashes keep theirs and are upgraded at login); refused below OWASP's minimum for the iteration count |
//! | `AUTH_PWNED_URL` | none | a Have I Been Pwned range API (`https://api.pwnedpasswords.com` or a mirror): refuse breached passwords (422 `breached_password`) at sign-up, change and reset |
//! | `AUTH_PWNED_DIR` | none | the same from range files in a directory (`5BAA6`, … each `SUFFIX:COUNT` per line), for machines that must not call out |
//! | `AUTH_PWNED_THRESHOLD` / `AUTH_PWNED_TIMEOUT_MS` / `AUTH_PWNED_ON_FAILURE` | 1 / 3000 / `allow` | refuse from this many breaches; time allowed per range request; `allow` (accept, with a warning) or `refuse` (the request fails, 503) when the source fails |
//! | `AUTH_ADMIN_EMAILS` | none | comma-separated addresses granted the `admin` role at the moment their owner proves them (verification, reset, sign-in code or link, a provider that vouches), in the step that removes whatever anyone set up before; an address confers nothing by itself (`auth-server admin grant EMAIL` for accounts proven already) |
//! | `AUTH_ADMIN_API_KEYS` | `true` | API keys with scope `admin` (of service accounts, or of accounts holding the `admin` role) may use `/admin`; `false` refuses keys |
//! | `AUTH_NOTIFY_NEW_DEVICE` | `false` | `true`: mail the user when they sign in with a user agent not among their recent logins (password changes, new second factors and lockouts are always notified) |
//! | `AUTH_PAGES` | `true` | `false`: no hosted pages (`/login`, `/account`, `/onboarding/`, and `/reset-password`, `/verify-email`, `/confirm-email-change`, `/cancel-email-change` that the mails link to) for API-only deployments |
//! | `AUTH_OAUTH_PROVIDERS` | none | comma-separated providers to sign in with (`google`, `microsoft`, `gitlab`, `github`, or any name with an issuer): mounts `/auth/oauth/…` and `/auth/identities` |
//! | `AUTH_OAUTH_<NAME>_CLIENT_ID` / `_CLIENT_SECRET` | required / none | the application's credentials at provider `<NAME>` (upper case, `-` as `_`) |
//! | `AUTH_OAUTH_<NAME>_ISSUER` | the preset's | the OpenID issuer URL (required for a name without a preset) |
//! | `AUTH_OAUTH_<NAME>_SCOPES` | the preset's | comma-separated scopes |
//! | `AUTH_OAUTH_MICROSOFT_TENANT` | none | the Entra ID tenant (or give `_ISSUER`) |
//! | `AUTH_OAUTH_APPLE_TEAM_ID` / `_KEY_ID` / `_PRIVATE_KEY_FILE` (or `_PRIVATE_KEY`) | none | Sign in with Apple: the client secret is signed with this key (`_CLIENT_ID` is the Services ID); Apple posts its answer back, so serve HTTPS |
//! | `AUTH_OAUTH_<NAME>_FORM_POST` | `false` | `true`: ask the provider to answer with a form POST (`response_mode=form_post`) |
//! | `AUTH_OAUTH_GITHUB_URL` / `_API_URL` | `https://github.com` / `https://api.github.com` | GitHub Enterprise Server's addresses |
//! | `AUTH_OAUTH_REDIRECT_ALLOWLIST` | the origin of `AUTH_PUBLIC_URL` | comma-separated URL prefixes `redirect_to` may point at |
//! | `AUTH_PASSKEYS` | on where possible | `false`: no passkey routes (`/auth/passkeys/…`); unset, they are off (with a warning) when `AUTH_PUBLIC_URL` is on an IP address other than loopback, where browsers refuse passkeys; `true` makes that an error |
//! | `AUTH_WEBAUTHN_RP_ID` | the host of `AUTH_PUBLIC_URL` (`localhost` for a loopback address) | the domain passkeys are bound to: never change it once users have passkeys |
//! | `AUTH_WEBAUTHN_ORIGINS` | the origin of `AUTH_PUBLIC_URL` | comma-separated origins whose pages may use passkeys (each the RP id or a subdomain of it) |
//! | `AUTH_AUDIT_RETENTION_DAYS` | `90` | audit entries older than this are deleted by `tokens cleanup` (0 keeps them) |
//! | `AUTH_HASH_CONCURRENCY` | cores - 1 (at least 1) | password hashes at once; one core stays free for requests |
//! | `AUTH_OUTAGE_GRACE_SECS` | 30 (at most 3600) | how long token checks (`/auth/me`, `/auth/verify`, any route behind a JWT) and cached users keep answering from memory after the change feed went down (the database or Redis unreachable); a logout made meanwhile on another instance is honoured here up to that late; past it every check asks the database (fail closed); 0: at once |
//! | `AUTH_DB_TIMEOUT_MS` | 2000 | how long a request waits for a database connection (or a new one to open) before it is answered 503; an SQLite file waits at least its 5 s busy timeout |
//! | `AUTH_DB_STATEMENT_TIMEOUT_MS` | 2000 | the longest one statement may run on PostgreSQL (`statement_timeout`) or MariaDB (`max_statement_time`; MySQL: `max_execution_time`, reads only) before the database cancels it and the request is answered 503: a lock held elsewhere or a runaway query holds one connection for that long, not the pool; 0: no limit. Only the serving connections: migrations, `tokens cleanup` and the other commands run without it |
//! | `AUTH_HEADER_TIMEOUT_SECS` / `AUTH_BODY_TIMEOUT_SECS` | 10 / 8 | how long a client has to send a request's headers (from the connection's start or the previous response: idle keep-alive connections close too) and its body (408 past it) |
//! | `AUTH_REQUEST_TIMEOUT_SECS` | 10 | the longest a request may take once its headers are in, body included: past it the answer is 503 `{"error": "unavailable"}` + `Retry-After: 5`, whatever it waits for (a database that stopped answering without closing its connections, a provider that hangs) |
//! | `AUTH_MAX_CONNECTIONS` / `AUTH_MAX_CONNECTIONS_PER_CLIENT` | open-file limit − 256 / an eighth of that | connections open at once, in all and per client address (trusted proxies exempt); past either, 503 + `Retry-After` and the connection closed |
//! | `AUTH_HASH_QUEUE` / `AUTH_HASH_QUEUE_PER_CLIENT` / `AUTH_HASH_QUEUE_WAIT_MS` | 2 × concurrency / concurrency / 5000 | callers that may wait for the hasher, places (waiting or running) one client address may hold, the longest wait; past any of them a login, sign-up or password change answers 503 + `Retry-After` at once (a shed login keeps its throttle attempt) |
//! | other `AUTH_*` | see `auth::AuthConfig::from_lookup` | lifetimes, rate limits, password length |

pub mod mail;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::jwt::{Algorithm, JwtBackend};
use auth::tokens_db::{DbChangeFeed, DbRevocationStore, DbTokenBackend};
use auth::users_db::{DbRateLimiter, DbUserStore};
use auth::{AuthConfig, AuthService, ChangeFeed, ConfigError, Error, RevocationMirror, UserCache};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sea_orm::DatabaseConnection;

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
    /// [`connect_from`] to the serving connections only.
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
fn redact_url(url: &str) -> String {
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
    /// The listener's bounds, sized below `open_files` (the process's open-file limit, from
    /// [`raise_open_file_limit`]) unless set.
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

fn config_error(e: Error) -> ConfigError {
    match e {
        Error::Configuration(c) => c,
        other => ConfigError::invalid("AUTH_MFA_KEY", other.to_string()),
    }
}

/// How an SQLite file commits (`AUTH_SQLITE_SYNCHRONOUS`), in WAL mode either way.
///
/// | value | a commit survives | costs |
/// |---|---|---|
/// | `full` (default) | a crash of the process **and** of the machine (power loss, kernel panic) | one fsync of the WAL per commit |
/// | `normal` | a crash of the process; a power loss may undo the last commits since the WAL was last synced (never corrupts) | no fsync per commit |
///
/// With `normal`, what a power loss can undo includes a logout, a password change or a
/// revocation made in its last moments: the default is `full` for that reason. Choose
/// `normal` when the machine's storage has its own power-loss protection, or when losing the
/// last second of sessions is acceptable.
///
/// ```
/// use auth_server::SqliteDurability;
/// assert_eq!(SqliteDurability::default(), SqliteDurability::Full);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteDurability {
    /// `PRAGMA synchronous = FULL`.
    #[default]
    Full,
    /// `PRAGMA synchronous = NORMAL`.
    Normal,
}

/// Connects to the database and runs every migration, with [`SqliteDurability::Full`].
///
/// # Errors
///
/// [`Error::Backend`] when the database cannot be reached or migrated.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    connect_with(url, SqliteDurability::default()).await
}

/// Connects and migrates (under a database lock, see `auth::migration::up`, so any number of
/// instances may start at once). An SQLite file runs in WAL mode (readers never wait for the writer)
/// with a 5 s busy timeout (concurrent writers queue instead of failing) and `durability`;
/// server databases get a pool sized from the core count. Statements are prepared once per
/// connection and cached (sqlx's statement cache).
///
/// # Errors
///
/// [`Error::Backend`] when the database cannot be reached or migrated.
pub async fn connect_with(
    url: &str,
    durability: SqliteDurability,
) -> Result<DatabaseConnection, Error> {
    open(url, durability, true, DEFAULT_DB_WAIT, Duration::ZERO).await
}

/// How long a request waits for a database connection (or a new connection to open) before
/// it is answered 503, unless `AUTH_DB_TIMEOUT_MS` says otherwise: during an outage every
/// request fails fast instead of hanging.
pub const DEFAULT_DB_WAIT: Duration = Duration::from_secs(2);

/// The longest one statement runs on PostgreSQL or MariaDB/MySQL before the database cancels
/// it, unless `AUTH_DB_STATEMENT_TIMEOUT_MS` says otherwise: a row or table lock held
/// elsewhere, or a query gone slow, then holds one connection for that long and the request
/// is answered 503, instead of every request queueing behind it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

async fn open(
    url: &str,
    durability: SqliteDurability,
    migrate: bool,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let separate = migrate && !url.starts_with("sqlite:") && !statement_timeout.is_zero();
    if separate {
        // Migrations (and the lock that lets one instance of many run them) may take longer
        // than a request's statement: they run on a pool of their own, without the limit.
        let db = connected(url, durability, wait, Duration::ZERO).await?;
        auth::migration::up(&db)
            .await
            .map_err(|e| Error::backend("migrating the database", e))?;
        db.close()
            .await
            .map_err(|e| Error::backend("closing the migration connections", e))?;
    }
    let db = connected(url, durability, wait, statement_timeout).await?;
    if separate {
        return Ok(db);
    }
    if migrate {
        // Under a database lock: instances starting together migrate once.
        auth::migration::up(&db)
            .await
            .map_err(|e| Error::backend("migrating the database", e))?;
    } else {
        let pending = auth::migration::pending(&db)
            .await
            .map_err(|e| Error::backend("reading the applied migrations", e))?;
        if !pending.is_empty() {
            return Err(Error::Configuration(ConfigError::invalid(
                "AUTH_MIGRATE",
                format!(
                    "is false and {} migrations are pending ({}): run `auth-server migrate` first",
                    pending.len(),
                    pending.join(", ")
                ),
            )));
        }
    }
    Ok(db)
}

async fn connected(
    url: &str,
    durability: SqliteDurability,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let options = pool(url, durability, wait, statement_timeout)?;
    if url.starts_with("sqlite:") {
        writable_sqlite_file(url)?;
    }
    // Instances starting together on a new SQLite file race to set it up (WAL mode takes
    // the file's lock for a moment): a busy file is tried again for a few seconds.
    let mut tries = 0;
    loop {
        match sea_orm::Database::connect(options.clone()).await {
            Ok(db) => return Ok(db),
            Err(e) if url.starts_with("sqlite:") && tries < 20 && is_busy(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(Error::backend(
                    "connecting to the database (check DATABASE_URL)",
                    e,
                ));
            }
        }
    }
}

/// Whether an SQLite error says the file is locked by another connection for now.
fn is_busy(e: &sea_orm::DbErr) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("database is locked") || text.contains("busy")
}

/// The pool's options: bounded waits, SQLite's journal and durability, a server database's
/// size and statement timeout.
#[allow(clippy::unnecessary_wraps)] // room for options that can be refused
fn pool(
    url: &str,
    durability: SqliteDurability,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<sea_orm::ConnectOptions, Error> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    // Statement logging would flood the service log; errors are reported where they happen.
    options.sqlx_logging(false);
    // Bounded waits: a server database that is away (stopped, unreachable) answers 503 within
    // `wait` instead of the pool's 30 s. An SQLite file is never away; its waits are writers
    // queueing, bounded by the busy timeout (5 s) instead.
    let wait = if url.starts_with("sqlite:") {
        wait.max(Duration::from_secs(5))
    } else {
        wait
    };
    options.acquire_timeout(wait).connect_timeout(wait);
    // sqlx pings every connection it hands out by default: one more round trip per statement.
    // A connection in steady use is alive; only one idle for a while (that a server, proxy or
    // firewall may have dropped) is checked first. An SQLite connection cannot drop.
    if url.starts_with("sqlite:") {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    if url.starts_with("sqlite:") {
        let file = !url.contains(":memory:") && !url.contains("mode=memory");
        options.map_sqlx_sqlite_opts(move |o| {
            let o = o.busy_timeout(Duration::from_secs(5));
            if file {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match durability {
                        SqliteDurability::Full => SqliteSynchronous::Full,
                        SqliteDurability::Normal => SqliteSynchronous::Normal,
                    })
            } else {
                o
            }
        });
    } else {
        // Enough connections for the runtime's workers and the hash pool's callers to wait
        // on the network, not on each other.
        let pool = u32::try_from((cores * 4).max(8)).unwrap_or(32);
        options.max_connections(pool);
    }
    if !statement_timeout.is_zero() {
        if url.starts_with("postgres") {
            // Sent with the connection's start-up parameters: no extra round trip.
            options.statement_timeout(statement_timeout);
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            let seconds = statement_timeout.as_secs_f64();
            let millis = statement_timeout.as_millis();
            options.map_sqlx_mysql_pool_opts(move |o| {
                o.after_connect(move |conn, _| {
                    Box::pin(async move {
                        use sea_orm::sqlx::{AssertSqlSafe, Executor, raw_sql};
                        // Numbers formatted here, nothing from outside. MariaDB bounds every
                        // statement; MySQL has only a bound for reads.
                        let mariadb = format!("SET SESSION max_statement_time = {seconds:.3}");
                        if conn.execute(raw_sql(AssertSqlSafe(mariadb))).await.is_err() {
                            let mysql = format!("SET SESSION max_execution_time = {millis}");
                            conn.execute(raw_sql(AssertSqlSafe(mysql))).await?;
                        }
                        Ok(())
                    })
                })
            });
        }
    }
    Ok(options)
}

/// An SQLite file the server cannot write is refused at start, naming it: SQLite would open
/// it read-only without a word, and every write would fail afterwards. The folder must be
/// writable too (the write-ahead log and its index live beside the file).
fn writable_sqlite_file(url: &str) -> Result<(), Error> {
    use std::str::FromStr;
    let Ok(options) = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(()); // sqlx says what is wrong with the URL when it connects
    };
    let path = options.get_filename();
    let text = path.to_string_lossy();
    if text.is_empty() || text.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let refuse = |what: String| {
        Err(Error::Configuration(ConfigError::invalid(
            "DATABASE_URL",
            what,
        )))
    };
    if path.exists()
        && let Err(e) = std::fs::OpenOptions::new().write(true).open(path)
    {
        return refuse(format!(
            "names the SQLite file {}, which cannot be written: {e}",
            path.display()
        ));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = folder.join(format!(".auth-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => refuse(format!(
            "names the SQLite file {} in the folder {}, which cannot be written (SQLite keeps its write-ahead log there): {e}",
            path.display(),
            folder.display()
        )),
    }
}

/// Connects as `settings` say: [`connect_with`] its durability, migrating unless
/// `AUTH_MIGRATE=false` (then a database with pending migrations is refused, naming them).
///
/// # Errors
///
/// As [`connect_with`]; [`Error::Configuration`] naming `AUTH_MIGRATE` when migrations are
/// pending and migrating on start is off.
pub async fn connect_from(settings: &Settings) -> Result<DatabaseConnection, Error> {
    open(
        &settings.database_url,
        settings.sqlite_durability,
        settings.migrate,
        settings.db_wait,
        settings.db_statement_timeout,
    )
    .await
}

/// Everything [`app`] builds, for the binary's subcommands and for tests.
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
fn warn_without_persistence(redis: &auth::redis::Redis) {
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

fn publisher(redis: &Option<auth::redis::Redis>, db: &DatabaseConnection) -> Arc<dyn ChangeFeed> {
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
fn redis_of(settings: &Settings) -> Result<Option<auth::redis::Redis>, Error> {
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

/// A `true`/`false` variable (`1`/`0` too); `default` when unset or empty.
fn flag(
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
fn breach_check(
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
const OWASP_ARGON2_MIN_KIB: [u32; 5] = [47_104, 19_456, 12_288, 9_216, 7_168];

/// `AUTH_ARGON2_*`, checked against OWASP's minimum for the iteration count.
fn argon2_params(
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

fn build(
    settings: &Settings,
    db: DatabaseConnection,
    feed: Arc<dyn ChangeFeed>,
    redis: Option<auth::redis::Redis>,
) -> Result<Stack, Error> {
    let users = DbUserStore::new(db.clone());
    // Throttles in Redis when it is there (short-lived counters off the primary database),
    // else in SQL; either way shared by every instance.
    let limiter_for = |policy: auth::RateLimitPolicy| -> Arc<dyn auth::RateLimiter> {
        match &redis {
            Some(redis) => Arc::new(auth::redis::RedisRateLimiter::new(redis.clone(), policy)),
            None => Arc::new(DbRateLimiter::new(db.clone(), policy)),
        }
    };
    let limiter = limiter_for(settings.config.rate_limit());
    let ip_limiter = limiter_for(settings.ip_rate_limit);
    let signup_limiter = limiter_for(settings.signup_rate_limit);
    let mail_limiter = limiter_for(settings.mail_rate_limit);
    let login_limiter = limiter_for(settings.login_rate_limit);
    // Per-user cut-offs must outlive every token they revoke: a refresh token lives at most
    // the absolute session lifetime, so a cut-off kept shorter could let `tokens cleanup`
    // revive a logged-out session.
    let lifetimes = settings.config.lifetimes();
    let retention = lifetimes
        .refresh()
        .max(lifetimes.absolute())
        .saturating_add(Duration::from_secs(86_400));
    let hasher = auth::hash::MultiHasher::with_argon2(settings.argon2);
    let mut revocations = None;
    let mut jwt_keys = None;
    let mut signing_keys = None;
    let auth = match settings.token_backend {
        TokenBackendKind::Jwt => {
            let store: Arc<dyn auth::RevocationStore> = match &redis {
                Some(redis) => Arc::new(
                    auth::redis::RedisRevocationStore::new(redis.clone())
                        .with_user_retention(retention),
                ),
                None => Arc::new(DbRevocationStore::new(db.clone()).with_user_retention(retention)),
            };
            let mirror = RevocationMirror::from_arcs(store, Arc::clone(&feed))
                .with_user_retention(retention)
                .with_outage_grace(settings.outage_grace);
            revocations = Some(mirror.clone());
            match &settings.jwt_keys_dir {
                _ if settings.jwt_algorithm.is_hmac() => {
                    let jwt = JwtBackend::try_hmac(
                        settings.jwt_algorithm,
                        settings.jwt_secret.expose_secret(),
                    )?
                    .with_revocation_store(mirror);
                    AuthService::new(settings.config.clone(), users, hasher, jwt)?
                }
                Some(dir) => {
                    let keyed = keys::KeyedJwt::new(
                        keys::load_or_create(dir, settings.jwt_algorithm)?,
                        Arc::new(mirror),
                    )?;
                    keyed.watch(dir.clone());
                    jwt_keys = Some(keyed.keys());
                    signing_keys = Some(keys::SigningKeys(keyed.clone()));
                    AuthService::new(settings.config.clone(), users, hasher, keyed)?
                }
                None => {
                    let keyed =
                        keys::KeyedJwt::from_vault(key_vault(settings, &db), Arc::new(mirror))?;
                    keyed.watch_database(&feed);
                    jwt_keys = Some(keyed.keys());
                    signing_keys = Some(keys::SigningKeys(keyed.clone()));
                    AuthService::new(settings.config.clone(), users, hasher, keyed)?
                }
            }
        }
        TokenBackendKind::Db => {
            // Successors derived under the signing secret: a refresh token presented again
            // by its own racing client within the reuse window gets the same successor.
            let tokens = DbTokenBackend::new(db.clone())
                .with_successor_key(settings.jwt_secret.expose_secret());
            AuthService::new(settings.config.clone(), users, hasher, tokens.clone())?
                .with_token_user_lookup(tokens)
        }
        TokenBackendKind::Redis => {
            let Some(redis) = &redis else {
                return Err(Error::Configuration(ConfigError::invalid(
                    "AUTH_TOKEN_BACKEND",
                    "is `redis`: set AUTH_REDIS_URL too",
                )));
            };
            let tokens = auth::redis::RedisTokenBackend::new(redis.clone())
                .with_successor_key(settings.jwt_secret.expose_secret());
            AuthService::new(settings.config.clone(), users, hasher, tokens)?
        }
    }
    .with_user_cache(
        UserCache::from_arc(Arc::clone(&feed)).with_outage_grace(settings.outage_grace),
    )
    .with_api_keys(auth::apikeys::DbApiKeyStore::new(db.clone()))
    .with_api_key_format(settings.api_key_format.clone())
    .with_rate_limiter(limiter)
    .with_ip_rate_limiter(ip_limiter)
    .with_signup_rate_limiter(signup_limiter)
    .with_mail_rate_limiter(mail_limiter)
    .with_login_rate_limiter(login_limiter)
    .with_hash_queue(
        settings.hash_queue.0,
        settings.hash_queue.1,
        settings.hash_queue.2,
    );
    let mfa_config = auth::mfa::MfaConfig::new(settings.mfa_issuer.clone());
    let mfa_limiter = limiter_for(mfa_config.failure_policy);
    // Login challenges live minutes: in Redis when it is there; enrolments stay in SQL.
    let mfa_store: Arc<dyn auth::mfa::MfaStore> = match &redis {
        Some(redis) => Arc::new(auth::mfa::WithChallengeStore::new(
            auth::mfa::db::DbMfaStore::new(db.clone()),
            auth::redis::RedisChallengeStore::new(redis.clone()),
        )),
        None => Arc::new(auth::mfa::db::DbMfaStore::new(db.clone())),
    };
    let onboarding_store: Arc<dyn auth::onboarding::SessionStore> = match &redis {
        Some(redis) => Arc::new(auth::redis::RedisSessionStore::new(redis.clone())),
        None => Arc::new(auth::onboarding::db::DbSessionStore::new(db.clone())),
    };
    let mfa = auth::mfa::Mfa::new(mfa_store, settings.mfa_cipher.clone(), mfa_config)?
        .with_rate_limiter(mfa_limiter)
        .with_events(auth.events().clone());
    // Single-use records of email changes and sign-in links: beside the login challenges.
    // Sign-in links: one record per address, replaced by the next request, beside the
    // passkey ceremonies.
    let auth = match &redis {
        Some(redis) => auth
            .with_challenge_store(auth::redis::RedisChallengeStore::new(redis.clone()))
            .with_ceremony_store(auth::redis::RedisCeremonyStore::new(redis.clone())),
        None => auth
            .with_challenge_store(auth::mfa::ChallengesOf::new(
                auth::mfa::db::DbMfaStore::new(db.clone()),
            ))
            .with_ceremony_store(auth::passkeys::db::DbCeremonyStore::new(db.clone())),
    };
    // Authority is a grant stored on the account; a listed address is granted `admin` only at
    // the moment its owner proves it.
    let auth = auth.with_second_factor(mfa.clone());
    let auth = if settings.trusted_device_lifetime.is_zero() {
        auth
    } else {
        auth.with_trusted_devices(
            auth::mfa::DbTrustedDevices::new(db.clone()),
            settings.trusted_device_lifetime,
        )
    };
    let auth = auth
        .with_identities(auth::oauth::db::DbIdentityStore::new(db.clone()))
        .with_grants(auth::users_db::DbGrantStore::new(db.clone()))
        .with_role_on_proof(&settings.admin_emails, auth::Role::Admin);
    // Passkeys in SQL; their ceremonies (seconds to minutes) beside the login challenges.
    let auth = match &settings.passkeys {
        Some(config) => {
            let ceremonies: Arc<dyn auth::ephemeral::CeremonyStore> = match &redis {
                Some(redis) => Arc::new(auth::redis::RedisCeremonyStore::new(redis.clone())),
                None => Arc::new(auth::passkeys::db::DbCeremonyStore::new(db.clone())),
            };
            auth.with_passkeys(auth::passkeys::WebauthnPasskeys::new(
                config.clone(),
                auth::passkeys::db::DbPasskeyStore::new(db.clone()),
                ceremonies,
            )?)
        }
        None => auth,
    };
    // Every event, without its secrets, with the client's address: durable, in SQL.
    let audit: Arc<dyn auth::AuditStore> = Arc::new(auth::users_db::DbAuditStore::new(db.clone()));
    auth::AuditLog::from_arc(Arc::clone(&audit)).install(auth.events());
    let mut pipeline = auth::onboarding::Onboarding::builder(auth.clone(), onboarding_store)
        .mfa(mfa.clone())
        .step(auth::onboarding::RegisterStep)
        .step(auth::onboarding::VerifyEmailStep::new());
    match settings.onboarding_totp.as_str() {
        "required" => pipeline = pipeline.step(auth::onboarding::SetupTotpStep::required()),
        "optional" => pipeline = pipeline.step(auth::onboarding::SetupTotpStep::optional()),
        _ => {}
    }
    let onboarding = pipeline
        .step(auth::onboarding::ProfileStep::new(
            settings.onboarding_profile_required.clone(),
            settings.onboarding_profile_optional.clone(),
        ))
        .build()?;
    Ok(Stack {
        auth,
        feed,
        redis,
        revocations,
        jwt_keys,
        signing_keys,
        mfa,
        onboarding,
        audit,
        db,
    })
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

/// `scheme://host[:port]` of a URL (the URL itself when it has no path).
fn origin_of(url: &str) -> String {
    match url.find("://").map(|i| i + 3) {
        Some(start) => match url[start..].find('/') {
            Some(end) => url[..start + end].to_owned(),
            None => url.trim_end_matches('/').to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `AUTH_OAUTH_PROVIDERS` and each provider's `AUTH_OAUTH_<NAME>_*` variables.
fn oauth_providers(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<auth::oauth::Provider>, ConfigError> {
    let Some(list) = lookup("AUTH_OAUTH_PROVIDERS").filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut providers = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ConfigError::invalid(
                "AUTH_OAUTH_PROVIDERS",
                format!("{name:?}: provider names are lower-case letters, digits and '-'"),
            ));
        }
        let key = |suffix: &str| {
            format!(
                "AUTH_OAUTH_{}_{suffix}",
                name.to_uppercase().replace('-', "_")
            )
        };
        let var = |suffix: &str| lookup(&key(suffix)).filter(|s| !s.is_empty());
        let client_id = var("CLIENT_ID").ok_or_else(|| {
            ConfigError::invalid(
                key("CLIENT_ID"),
                "is required: the application's client id at the provider",
            )
        })?;
        let secret = var("CLIENT_SECRET");
        let needs_secret = |p: &str| {
            secret.clone().ok_or_else(|| {
                ConfigError::invalid(
                    "AUTH_OAUTH_PROVIDERS",
                    format!("{p} needs {}", key("CLIENT_SECRET")),
                )
            })
        };
        if name == "apple" {
            let pem = match (var("PRIVATE_KEY"), var("PRIVATE_KEY_FILE")) {
                (Some(pem), _) => pem,
                (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::invalid(
                        key("PRIVATE_KEY_FILE"),
                        format!("cannot read {path}: {e}"),
                    )
                })?,
                (None, None) => {
                    return Err(ConfigError::invalid(
                        key("PRIVATE_KEY_FILE"),
                        "is required for Sign in with Apple (or AUTH_OAUTH_APPLE_PRIVATE_KEY): the .p8 key file",
                    ));
                }
            };
            let need = |suffix: &str| {
                var(suffix).ok_or_else(|| {
                    ConfigError::invalid(key(suffix), "is required for Sign in with Apple")
                })
            };
            let apple =
                auth::oauth::Provider::apple(client_id, &need("TEAM_ID")?, &need("KEY_ID")?, &pem)
                    .map_err(|e| match e {
                        auth::Error::Configuration(c) => c,
                        other => ConfigError::invalid(key("PRIVATE_KEY"), other.to_string()),
                    })?;
            providers.push(apple);
            continue;
        }
        let provider = match (name, var("ISSUER")) {
            (_, Some(issuer)) => {
                auth::oauth::Provider::oidc(name, issuer, client_id, secret.as_deref())
            }
            ("google", None) => auth::oauth::Provider::google(client_id, &needs_secret(name)?),
            ("gitlab", None) => auth::oauth::Provider::gitlab(client_id, &needs_secret(name)?),
            ("microsoft", None) => {
                let tenant = var("TENANT").ok_or_else(|| {
                    ConfigError::invalid(
                        "AUTH_OAUTH_PROVIDERS",
                        "microsoft needs AUTH_OAUTH_MICROSOFT_TENANT (or AUTH_OAUTH_MICROSOFT_ISSUER)",
                    )
                })?;
                auth::oauth::Provider::microsoft(client_id, &needs_secret(name)?, &tenant)
            }
            ("github", None) => auth::oauth::Provider::github_at(
                client_id,
                &needs_secret(name)?,
                &var("URL").unwrap_or_else(|| "https://github.com".into()),
                &var("API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            ),
            (other, None) => {
                return Err(ConfigError::invalid(
                    "AUTH_OAUTH_PROVIDERS",
                    format!("{other} has no preset: set {}", key("ISSUER")),
                ));
            }
        };
        let provider = if matches!(var("FORM_POST").as_deref(), Some("true" | "1")) {
            provider.with_form_post()
        } else {
            provider
        };
        let provider = match var("SCOPES") {
            Some(scopes) => provider.with_scopes(
                scopes
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => provider,
        };
        providers.push(provider);
    }
    Ok(providers)
}

/// The passkeys' relying party: `rp_id` (else the public URL's host; `localhost` for a
/// loopback or unspecified address, since browsers refuse passkeys on IP addresses) and `origins` (else the
/// public URL's origin, with `localhost` in place of a loopback address).
fn relying_party(
    public_url: &str,
    rp_id: Option<String>,
    origins: Option<String>,
    name: &str,
) -> Result<auth::passkeys::WebauthnConfig, ConfigError> {
    let url = auth::passkeys::Url::parse(public_url)
        .map_err(|_| ConfigError::invalid("AUTH_PUBLIC_URL", "is not a URL"))?;
    let loopback = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback() || ip.is_unspecified());
    let host = if loopback {
        "localhost".to_owned()
    } else {
        url.host_str().unwrap_or("localhost").to_owned()
    };
    let default_origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let origins: Vec<String> = match origins {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => vec![default_origin],
    };
    let invalid = |e: Error| match e {
        Error::Configuration(c) => c,
        other => ConfigError::invalid("AUTH_WEBAUTHN_ORIGINS", other.to_string()),
    };
    let (first, rest) = origins
        .split_first()
        .ok_or_else(|| ConfigError::invalid("AUTH_WEBAUTHN_ORIGINS", "names no origin"))?;
    let mut config =
        auth::passkeys::WebauthnConfig::new(rp_id.unwrap_or(host), first).map_err(invalid)?;
    for origin in rest {
        config = config.with_origin(origin).map_err(invalid)?;
    }
    config.validate().map_err(invalid)?;
    Ok(config.rp_name(name))
}

/// The mailer the settings ask for: SMTP with `AUTH_SMTP_URL`, else the console mailer.
///
/// # Errors
///
/// [`Error::Configuration`] for a bad SMTP URL or sender.
pub fn mailer(settings: &Settings) -> Result<Arc<dyn mail::Mailer>, Error> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(mail::SmtpMailer::new(
            url.expose_secret(),
            &settings.mail_from,
        )?),
        None => {
            tracing::warn!(
                "AUTH_SMTP_URL is not set: emails (with their links) go to this log; \
                 set AUTH_SMTP_URL to send real mail"
            );
            Arc::new(mail::ConsoleMailer)
        }
    })
}

/// The service: `/auth` (the auth router, its OpenAPI document at `/auth/openapi.json`),
/// `/onboarding` (routes and page), `/openapi.json` (both routers in one document), `/health`,
/// `/ready` (database reachable); request ids, request logs, CORS.
///
/// # Errors
///
/// [`Error::Configuration`] for an unusable JWT secret, MFA key or mail setting.
pub fn app(settings: &Settings, db: DatabaseConnection) -> Result<Router, Error> {
    app_with_mailer(settings, db, mailer(settings)?)
}

/// [`app`] with a given mailer.
///
/// # Errors
///
/// As [`app`].
pub fn app_with_mailer(
    settings: &Settings,
    db: DatabaseConnection,
    mailer: Arc<dyn mail::Mailer>,
) -> Result<Router, Error> {
    let Stack {
        auth,
        feed,
        redis,
        revocations,
        jwt_keys: _,
        signing_keys,
        mfa,
        onboarding,
        audit,
        db,
    } = stack(settings, db)?;
    // Provider sign-in: redirect states and codes beside the passkey ceremonies.
    let oauth = if settings.oauth_providers.is_empty() {
        None
    } else {
        let ceremonies: Arc<dyn auth::ephemeral::CeremonyStore> = match &redis {
            Some(redis) => Arc::new(auth::redis::RedisCeremonyStore::new(redis.clone())),
            None => Arc::new(auth::passkeys::db::DbCeremonyStore::new(db.clone())),
        };
        let mut oauth = auth::oauth::OAuth::new(
            &format!("{}/auth/oauth", settings.public_url.trim_end_matches('/')),
            ceremonies,
        )?;
        for provider in &settings.oauth_providers {
            oauth = oauth.with_provider(provider.clone());
        }
        Some(oauth.allow_redirects(&settings.oauth_redirect_allowlist)?)
    };
    let health = Health {
        db: db.clone(),
        feed,
        redis,
        revocations,
        users: auth.user_cache().cloned(),
    };
    mail::install(auth.events(), Arc::clone(&mailer), &settings.public_url);
    mail::install_notifications(
        &auth,
        mailer,
        Arc::clone(&audit),
        settings.notify_new_device,
    );
    // Administrators are the accounts holding the `admin` role; /admin is always there (it
    // answers 403 to everyone else).
    let access =
        auth_axum::AdminAccess::granted().allow_api_keys(settings.admin_api_keys.unwrap_or(true));
    let admin = Some(
        auth_axum::AdminRouter::new(auth.clone(), access)
            .with_audit(Arc::clone(&audit))
            .with_email_verification(auth::sign::EmailVerificationService::new(auth.clone())?)
            .trusted_proxies(settings.trusted_proxies.clone()),
    );
    let mut router = auth_axum::AuthRouter::new(auth.clone())
        .mounted_at("/auth")
        .with_mfa(mfa)
        .with_password_reset(auth::sign::PasswordResetService::new(auth.clone())?)
        .with_email_verification(auth::sign::EmailVerificationService::new(auth)?)
        .with_email_change()
        .with_magic_link()
        .secure_cookies(!settings.public_url.starts_with("http://"))
        .with_audit(audit)
        .trusted_proxies(settings.trusted_proxies.clone());
    if let Some(oauth) = oauth {
        router = router.with_oauth(oauth);
    }
    if settings.refresh_cookie {
        let mut cookie = auth_axum::RefreshCookie::new().path("/auth");
        if settings.public_url.starts_with("http://") {
            cookie = cookie.insecure();
        }
        for origin in &settings.cors_origins {
            cookie = cookie.allow_origin(origin);
        }
        router = router.refresh_cookie(cookie);
    }
    // One document for the whole service at /openapi.json.
    let mut auth_doc = router.openapi();
    auth_doc.servers = None;
    let mut document = utoipa::openapi::OpenApi::default()
        .nest("/auth", auth_doc.clone())
        .nest("/onboarding", auth_axum::onboarding_openapi());
    if let Some(admin) = &admin {
        document = document.nest("/admin", admin.openapi());
    }
    document.info = auth_doc.info.clone();
    document.components = auth_doc.components.clone();
    let document = Arc::new(
        serde_json::to_value(&document)
            .map_err(|e| Error::backend("building the OpenAPI document", e))?,
    );
    let app = Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { Json((*document).clone()) }
            }),
        )
        .nest("/auth", router.build())
        .nest("/onboarding", {
            let api = auth_axum::onboarding_router_with_proxies(
                onboarding,
                settings.trusted_proxies.clone(),
            );
            if settings.pages {
                api.merge(page::routes())
            } else {
                api
            }
        })
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/ready", get(move || ready(health.clone())));
    let app = if settings.pages {
        app.route("/onboarding/", get(page::index))
            .merge(page::link_routes(
                &settings.mfa_issuer,
                &settings.config.password_policy().help_texts(),
                &settings
                    .oauth_providers
                    .iter()
                    .map(auth::oauth::Provider::name)
                    .collect::<Vec<_>>(),
                settings.trusted_device_lifetime.as_secs() / 86_400,
            ))
    } else {
        app
    };
    let app = match admin {
        Some(admin) => app.nest("/admin", admin.build()),
        None => app,
    };
    let app = match signing_keys {
        Some(keys) => {
            let lifetimes = settings.config.lifetimes();
            // A retired key stays published while a token it signed can still be valid.
            let retention = lifetimes.refresh().max(lifetimes.absolute());
            app.route(
                "/.well-known/jwks.json",
                get(move || {
                    let keys = keys.clone();
                    async move {
                        // Never an empty document (cached for minutes) before the keys load.
                        match keys.ready().await {
                            Ok(set) => jwks(&set, retention),
                            Err(e) => auth_axum::ApiError(e).into_response(),
                        }
                    }
                }),
            )
        }
        None => app,
    };
    Ok(http::layers(app, settings))
}

/// `/.well-known/jwks.json`: the public keys (next, current, retired ones still needed), with
/// `kid`; cacheable for five minutes (the next key is published long before it signs).
fn jwks(keys: &auth::jwt::JwtKeySet, retention: Duration) -> axum::response::Response {
    let document = keys.jwks(auth::Clock::now(&auth::SystemClock), retention);
    (
        [
            (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
            (axum::http::header::CONTENT_TYPE, "application/jwk-set+json"),
        ],
        document.to_string(),
    )
        .into_response()
}

/// What `/ready` reports on.
#[derive(Clone)]
struct Health {
    db: DatabaseConnection,
    feed: Arc<dyn ChangeFeed>,
    redis: Option<auth::redis::Redis>,
    revocations: Option<RevocationMirror>,
    users: Option<UserCache<auth::User>>,
}

/// How long a storage failure keeps `/ready` at 503 after it was last seen.
const STORAGE_FAILURE_MEMORY: Duration = Duration::from_secs(15);

/// `/ready`: 503 when the database cannot be reached, or when storage refused a write in the
/// last 15 s (a full disk, a read-only file); otherwise 200 `"ready"` (the instance
/// answers correctly either way), with `"answers_from": "memory"` when token and user checks
/// are answered from memory, `"database"` while the change feed is down (or the mirror is
/// loading or full) and every check queries the database instead: correct, slower.
async fn ready(health: Health) -> axum::response::Response {
    // A probe is answered within a second either way: a database or Redis that does not
    // answer in time is unreachable for this purpose.
    let within = Duration::from_secs(1);
    let db = match tokio::time::timeout(within, health.db.ping()).await {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within a second".to_owned()),
    };
    if let Err(e) = db {
        tracing::warn!(error = %e, "database not reachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "database": "unreachable"})),
        )
            .into_response();
    }
    if let Some(redis) = &health.redis
        && let Err(e) = match tokio::time::timeout(within, redis.ping()).await {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within a second".to_owned()),
        }
    {
        tracing::warn!(error = %e, "Redis not reachable: logins are refused and token checks fail");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "database": "reachable",
                "redis": "unreachable",
            })),
        )
            .into_response();
    }
    // Reads (and the ping) work on a full disk or a read-only file; writes do not. A storage
    // failure within the last 15 s makes the instance unready until writes work again.
    if let Some((during, ago)) = auth::storage::recent_failure(STORAGE_FAILURE_MEMORY) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "status": "unavailable",
                "database": "reachable",
                "storage": "refuses writes (full disk, quota or read-only)",
                "during": during,
                "seconds_ago": ago.as_secs(),
            })),
        )
            .into_response();
    }
    let feed = health.feed.status();
    let mirror = health.revocations.as_ref().map(RevocationMirror::status);
    let from_memory = feed.live && mirror.as_ref().is_none_or(|m| m.ready);
    let cache = health.users.as_ref().map(UserCache::status);
    Json(serde_json::json!({
        "status": "ready",
        "answers_from": if from_memory { "memory" } else { "database" },
        "redis": health.redis.as_ref().map(|_| "reachable"),
        "database": "reachable",
        "change_feed": {
            "live": feed.live,
            "channel": feed.channel,
            "detail": feed.detail,
            "delivered": feed.delivered,
        },
        "revocations": mirror.map(|m| serde_json::json!({
            "in_memory": m.ready,
            "entries": m.entries,
            "max_entries": m.max_entries,
            "database_checks": m.store_checks,
            "outage_grace": m.in_outage_grace,
        })),
        "user_cache": cache.map(|c| serde_json::json!({
            "live": c.live,
            "entries": c.entries,
            "hits": c.hits,
            "misses": c.misses,
        })),
    }))
    .into_response()
}

pub mod http;
pub mod listen;
pub use listen::{ConnectionLimits, raise_open_file_limit};
pub mod keys;
mod page;
