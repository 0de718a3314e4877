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

mod settings;
pub use settings::{Settings, TokenBackendKind};
mod db;
pub use db::{
    DEFAULT_DB_WAIT, DEFAULT_STATEMENT_TIMEOUT, SqliteDurability, connect, connect_from,
    connect_with,
};
mod stack;
pub use stack::{Stack, command_stack, key_vault, publisher_feed, stack};
mod app;
mod providers;
pub use app::{app, app_with_mailer, mailer};
pub mod http;
pub mod listen;
pub use listen::{ConnectionLimits, raise_open_file_limit};
pub mod keys;
mod page;
