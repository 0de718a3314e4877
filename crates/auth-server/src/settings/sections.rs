//! The settings' sections: each parses and checks its own variables.

use std::net::SocketAddr;
use std::time::Duration;

use auth::jwt::Algorithm;
use auth::{AuthConfig, ConfigError, Error, SecretString};

use super::{TokenBackendKind, config_error};
use crate::db::SqliteDurability;
use crate::providers::{origin_of, relying_party};

/// `DATABASE_URL` and `AUTH_SQLITE_SYNCHRONOUS`.
pub(super) fn database(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(String, SqliteDurability), ConfigError> {
    let database_url = lookup("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db?mode=rwc".into());
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
    Ok((database_url, sqlite_durability))
}

/// `AUTH_TOKEN_BACKEND`.
pub(super) fn token_backend(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<TokenBackendKind, ConfigError> {
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
    Ok(token_backend)
}

/// `AUTH_JWT_ALGORITHM`.
pub(super) fn jwt_algorithm(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Algorithm, ConfigError> {
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
    Ok(jwt_algorithm)
}

/// `AUTH_REDIS_URL` and `AUTH_REDIS_CLUSTER`, checked against the token backend.
pub(super) fn redis(
    lookup: &impl Fn(&str) -> Option<String>,
    token_backend: TokenBackendKind,
) -> Result<(Option<SecretString>, bool), ConfigError> {
    let redis_url = lookup("AUTH_REDIS_URL")
        .filter(|s| !s.is_empty())
        .map(auth::SecretString::new);
    let redis_cluster = flag(lookup, "AUTH_REDIS_CLUSTER", false)?;
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
    Ok((redis_url, redis_cluster))
}

/// `AUTH_REDIS_PREFIX`.
pub(super) fn redis_prefix(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let redis_prefix = lookup("AUTH_REDIS_PREFIX")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "auth:".to_owned());
    if redis_prefix.contains(['{', '}']) {
        return Err(ConfigError::invalid(
            "AUTH_REDIS_PREFIX",
            "must not contain { or }: they choose a key's Redis Cluster slot",
        ));
    }
    Ok(redis_prefix)
}

/// `AUTH_API_KEY_PREFIX`.
pub(super) fn api_key_format(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<auth::ApiKeyFormat, ConfigError> {
    let api_key_format = match lookup("AUTH_API_KEY_PREFIX").filter(|p| !p.is_empty()) {
        Some(prefix) => auth::ApiKeyFormat::new(&prefix).map_err(|_| {
            ConfigError::invalid(
                "AUTH_API_KEY_PREFIX",
                "must be 1 to 16 characters of A-Z, a-z, 0-9 and _ (for example ak_live_)",
            )
        })?,
        None => auth::ApiKeyFormat::default(),
    };
    Ok(api_key_format)
}

/// `AUTH_JWT_KEYS_SECRET` (the signing secret by default).
pub(super) fn jwt_keys_secret(
    lookup: &impl Fn(&str) -> Option<String>,
    secret: &str,
) -> Result<SecretString, ConfigError> {
    let jwt_keys_secret = match lookup("AUTH_JWT_KEYS_SECRET").filter(|s| !s.is_empty()) {
        Some(s) if s.len() < 32 => {
            return Err(ConfigError::invalid(
                "AUTH_JWT_KEYS_SECRET",
                "must be at least 32 bytes (`auth-server secret generate` makes one)",
            ));
        }
        Some(s) => auth::SecretString::new(s),
        None => auth::SecretString::new(secret.to_owned()),
    };
    Ok(jwt_keys_secret)
}

/// The service's own variables (`auth::AuthConfig::from_lookup`), the hashing threads and the
/// breach check.
pub(super) fn auth_config(
    lookup: &impl Fn(&str) -> Option<String>,
    secret: &str,
) -> Result<AuthConfig, ConfigError> {
    // Hashing leaves one core to the runtime by default, so a login flood cannot starve
    // health checks and token checks of CPU.
    let hash_threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get().saturating_sub(1).max(1))
        .to_string();
    let config = AuthConfig::from_lookup(|name| match name {
        "AUTH_SIGNING_SECRET" => Some(secret.to_owned()),
        "AUTH_HASH_CONCURRENCY" => lookup(name).or_else(|| Some(hash_threads.clone())),
        _ => lookup(name),
    })?;
    let config = match breach_check(lookup)? {
        Some(check) => {
            let policy = config.password_policy().clone().with_breach_check(check);
            config.with_password_policy(policy)
        }
        None => config,
    };
    Ok(config)
}

/// `AUTH_MFA_KEY` (required in production) and `AUTH_MFA_OLD_KEYS`.
pub(super) fn mfa_cipher(
    lookup: &impl Fn(&str) -> Option<String>,
    secret: &str,
    production: bool,
) -> Result<auth::mfa::SecretCipher, ConfigError> {
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
    Ok(mfa_cipher)
}

/// `AUTH_PUBLIC_URL` (`http://` refused in production unless `AUTH_ALLOW_HTTP_PUBLIC_URL`).
pub(super) fn public_url(
    lookup: &impl Fn(&str) -> Option<String>,
    addr: SocketAddr,
    production: bool,
) -> Result<String, ConfigError> {
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
    Ok(public_url)
}

/// `AUTH_CORS_ORIGINS`.
pub(super) fn cors_origins(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
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
    Ok(cors_origins)
}

/// `AUTH_ONBOARDING_TOTP`.
pub(super) fn onboarding_totp(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let onboarding_totp = lookup("AUTH_ONBOARDING_TOTP").unwrap_or_else(|| "optional".into());
    if !matches!(onboarding_totp.as_str(), "required" | "optional" | "off") {
        return Err(ConfigError::invalid(
            "AUTH_ONBOARDING_TOTP",
            "must be required, optional or off",
        ));
    }
    Ok(onboarding_totp)
}

/// `AUTH_ADMIN_EMAILS` and `AUTH_ADMIN_API_KEYS`.
pub(super) fn admin(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(Vec<String>, Option<bool>), ConfigError> {
    let admin_emails = list(lookup, "AUTH_ADMIN_EMAILS", "");
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
    Ok((admin_emails, admin_api_keys))
}

/// `AUTH_PASSKEYS`, `AUTH_WEBAUTHN_RP_ID` and `AUTH_WEBAUTHN_ORIGINS`.
pub(super) fn passkeys(
    lookup: &impl Fn(&str) -> Option<String>,
    public_url: &str,
    mfa_issuer: &str,
) -> Result<Option<auth::passkeys::WebauthnConfig>, ConfigError> {
    let rp_id = lookup("AUTH_WEBAUTHN_RP_ID").filter(|s| !s.is_empty());
    let rp_origins = lookup("AUTH_WEBAUTHN_ORIGINS").filter(|s| !s.is_empty());
    let explicit = rp_id.is_some() || rp_origins.is_some();
    let passkeys = match lookup("AUTH_PASSKEYS").as_deref() {
        // On by default, where browsers allow passkeys: a public URL on an IP address
        // (not loopback) cannot be a relying party, and a server nobody asked passkeys of
        // still starts, saying why they are off.
        None | Some("") => match relying_party(public_url, rp_id, rp_origins, mfa_issuer) {
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
        Some("true" | "1") => Some(relying_party(public_url, rp_id, rp_origins, mfa_issuer)?),
        Some("false" | "0") => None,
        Some(_) => {
            return Err(ConfigError::invalid(
                "AUTH_PASSKEYS",
                "must be true or false",
            ));
        }
    };
    Ok(passkeys)
}

/// `AUTH_OAUTH_REDIRECT_ALLOWLIST` (the public URL's origin by default).
pub(super) fn oauth_redirect_allowlist(
    lookup: &impl Fn(&str) -> Option<String>,
    public_url: &str,
) -> Vec<String> {
    match lookup("AUTH_OAUTH_REDIRECT_ALLOWLIST").filter(|s| !s.trim().is_empty()) {
        Some(list) => comma_list(&list),
        None => vec![format!("{}/", origin_of(public_url))],
    }
}

/// How long the server waits, and for how many: connections, requests, the database, an outage.
pub(super) struct Timeouts {
    pub(super) db_wait: Duration,
    pub(super) db_statement: Duration,
    pub(super) outage_grace: Duration,
    pub(super) header: Duration,
    pub(super) body: Duration,
    pub(super) request: Duration,
    pub(super) max_connections: Option<usize>,
    pub(super) max_connections_per_client: Option<usize>,
}

impl Timeouts {
    /// `AUTH_DB_TIMEOUT_MS`, `AUTH_DB_STATEMENT_TIMEOUT_MS`, `AUTH_OUTAGE_GRACE_SECS`,
    /// `AUTH_HEADER_TIMEOUT_SECS`, `AUTH_BODY_TIMEOUT_SECS`, `AUTH_REQUEST_TIMEOUT_SECS`,
    /// `AUTH_MAX_CONNECTIONS` and `AUTH_MAX_CONNECTIONS_PER_CLIENT`.
    pub(super) fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(2_000);
        let secs = |var, default, floor: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                number(lookup, var, default)?.max(floor),
            ))
        };
        let count = |var| -> Result<Option<usize>, ConfigError> {
            Ok(lookup(var)
                .map(|_| number(lookup, var, 0))
                .transpose()?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1)))
        };
        Ok(Self {
            db_wait: Duration::from_millis(
                number(
                    lookup,
                    "AUTH_DB_TIMEOUT_MS",
                    millis(crate::db::DEFAULT_DB_WAIT),
                )?
                .max(100),
            ),
            db_statement: Duration::from_millis(number(
                lookup,
                "AUTH_DB_STATEMENT_TIMEOUT_MS",
                millis(crate::db::DEFAULT_STATEMENT_TIMEOUT),
            )?),
            outage_grace: Duration::from_secs(
                number(lookup, "AUTH_OUTAGE_GRACE_SECS", 30)?.min(3_600),
            ),
            header: secs("AUTH_HEADER_TIMEOUT_SECS", 10, 1)?,
            body: secs("AUTH_BODY_TIMEOUT_SECS", 8, 1)?,
            request: secs("AUTH_REQUEST_TIMEOUT_SECS", 10, 1)?,
            max_connections: count("AUTH_MAX_CONNECTIONS")?,
            max_connections_per_client: count("AUTH_MAX_CONNECTIONS_PER_CLIENT")?,
        })
    }
}

/// The throttles' policies and the hasher's queue.
pub(super) struct Limits {
    pub(super) ip: auth::RateLimitPolicy,
    pub(super) signup: auth::RateLimitPolicy,
    pub(super) login: auth::RateLimitPolicy,
    pub(super) mail: auth::RateLimitPolicy,
    pub(super) hash_queue: (usize, usize, Duration),
}

impl Limits {
    /// `AUTH_IP_RATE_LIMIT_*`, `AUTH_SIGNUP_RATE_LIMIT_*`, `AUTH_LOGIN_RATE_LIMIT_*`,
    /// `AUTH_MAIL_RATE_LIMIT_*` and `AUTH_HASH_QUEUE*`.
    pub(super) fn from_lookup(
        lookup: &impl Fn(&str) -> Option<String>,
        config: &AuthConfig,
    ) -> Result<Self, ConfigError> {
        let ip_rate_limit = auth::RateLimitPolicy::new(
            u32::try_from(number(lookup, "AUTH_IP_RATE_LIMIT_ATTEMPTS", 50)?).unwrap_or(u32::MAX),
            Duration::from_secs(number(lookup, "AUTH_IP_RATE_LIMIT_WINDOW", 300)?),
            Duration::from_secs(number(lookup, "AUTH_IP_RATE_LIMIT_LOCKOUT", 900)?),
        )?;
        let policy = |[attempts, window, lockout]: [&'static str; 3],
                      default: auth::RateLimitPolicy| {
            auth::RateLimitPolicy::new(
                u32::try_from(number(lookup, attempts, u64::from(default.max_attempts()))?)
                    .unwrap_or(u32::MAX),
                Duration::from_secs(number(lookup, window, default.window().as_secs())?),
                Duration::from_secs(number(lookup, lockout, default.lockout().as_secs())?),
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
            usize::try_from(number(
                lookup,
                "AUTH_HASH_QUEUE",
                (hash_parallel * 2) as u64,
            )?)
            .unwrap_or(usize::MAX),
            usize::try_from(number(
                lookup,
                "AUTH_HASH_QUEUE_PER_CLIENT",
                hash_parallel as u64,
            )?)
            .unwrap_or(usize::MAX)
            .max(1),
            Duration::from_millis(number(lookup, "AUTH_HASH_QUEUE_WAIT_MS", 5_000)?),
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
        Ok(Self {
            ip: ip_rate_limit,
            signup: signup_rate_limit,
            login: login_rate_limit,
            mail: mail_rate_limit,
            hash_queue,
        })
    }
}

/// A whole-number variable; `default` when unset.
pub(super) fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(name, "must be a whole number")),
    }
}

/// A comma-separated list (`default` when unset), entries trimmed, empty ones dropped.
pub(super) fn list(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> Vec<String> {
    comma_list(&lookup(name).unwrap_or_else(|| default.to_owned()))
}

/// A comma-separated value's entries, trimmed, empty ones dropped.
pub(crate) fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A `true`/`false` variable (`1`/`0` too); `default` when unset or empty.
pub(super) fn flag(
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
pub(crate) const OWASP_ARGON2_MIN_KIB: [u32; 5] = [47_104, 19_456, 12_288, 9_216, 7_168];

/// `AUTH_ARGON2_*`, checked against OWASP's minimum for the iteration count.
pub(super) fn argon2_params(
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
