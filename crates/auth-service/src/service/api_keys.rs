//! API keys through the orchestrator: create, authenticate, list, roll, revoke.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::{AuthService, active_user_by_id};
use crate::AuthEvent;
use crate::AuthUser;
use crate::SecretString;
use crate::add_saturating as add;
use crate::{ApiKeyFormat, ApiKeyOwner, ApiKeyRateLimit, ApiKeyRecord, ApiKeyStore};
use crate::{Error, Result};

/// Longest key name.
const MAX_NAME_LEN: usize = 100;
/// Longest scope.
const MAX_SCOPE_LEN: usize = 100;
/// Most scopes on one key.
const MAX_SCOPES: usize = 50;

/// Longest lifetime and grace period a caller may ask for (ten years).
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
/// A key's last use is written at most this often.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The API key store and format an [`AuthService`] uses ([`AuthService::with_api_keys`]).
#[derive(Clone)]
pub(crate) struct ApiKeys {
    pub(crate) store: Arc<dyn ApiKeyStore>,
    pub(crate) format: ApiKeyFormat,
}

/// What a new key should be.
///
/// ```
/// use auth_service::NewApiKey;
/// let new = NewApiKey::new("deploy bot").with_scopes(["deploy:write"])
///     .expires_in(std::time::Duration::from_secs(86_400));
/// assert_eq!(new.scopes, vec!["deploy:write".to_owned()]);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NewApiKey {
    /// A label (1 to 100 characters).
    pub name: String,
    /// Scopes (at most 50, each 1 to 100 of `A-Za-z0-9:._-`, or `*`).
    pub scopes: Vec<String>,
    /// Lifetime from now; none: until revoked.
    pub expires_in: Option<Duration>,
    /// Requests per window for this key.
    pub rate_limit: Option<ApiKeyRateLimit>,
    /// Application data kept with the key.
    pub metadata: serde_json::Value,
}

impl NewApiKey {
    /// A key named `name`, no scopes, no expiry.
    ///
    /// ```
    /// assert!(auth_service::NewApiKey::new("ci").scopes.is_empty());
    /// ```
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Grants `scopes`.
    ///
    /// ```
    /// let k = auth_service::NewApiKey::new("ci").with_scopes(["read", "write"]);
    /// assert_eq!(k.scopes.len(), 2);
    /// ```
    #[must_use]
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Expires `lifetime` from now.
    ///
    /// ```
    /// let k = auth_service::NewApiKey::new("ci").expires_in(std::time::Duration::from_secs(60));
    /// assert!(k.expires_in.is_some());
    /// ```
    #[must_use]
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// Limits the key to `limit`.
    ///
    /// ```
    /// let limit = auth_service::ApiKeyRateLimit::new(10, std::time::Duration::from_secs(60)).unwrap();
    /// assert!(auth_service::NewApiKey::new("ci").with_rate_limit(limit).rate_limit.is_some());
    /// ```
    #[must_use]
    pub fn with_rate_limit(mut self, limit: ApiKeyRateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Keeps `metadata` with the key.
    ///
    /// ```
    /// let k = auth_service::NewApiKey::new("ci").with_metadata(serde_json::json!({"team": "ops"}));
    /// assert_eq!(k.metadata["team"], "ops");
    /// ```
    #[must_use]
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }

    fn validate(&self) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "name",
                "invalid_name",
                "1 to 100 characters, no control characters",
            ));
        }
        if self.scopes.len() > MAX_SCOPES
            || self.scopes.iter().any(|s| {
                s.is_empty()
                    || s.len() > MAX_SCOPE_LEN
                    || !(s == "*"
                        || s.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-')
                        }))
            })
        {
            return Err(Error::invalid(
                "scopes",
                "invalid_scopes",
                "at most 50 scopes of 1 to 100 characters from A-Z a-z 0-9 : . _ - (or *)",
            ));
        }
        if self
            .expires_in
            .is_some_and(|d| d.is_zero() || d > MAX_LIFETIME)
        {
            return Err(Error::invalid(
                "expires_in",
                "invalid_expires_in",
                "a positive number of seconds, at most ten years",
            ));
        }
        if serde_json::to_vec(&self.metadata).map_or(true, |v| v.len() > 4_096) {
            return Err(Error::invalid(
                "metadata",
                "metadata_too_large",
                "at most 4 KiB of JSON",
            ));
        }
        Ok(())
    }
}

/// A key just created or rolled: the only time the key itself is shown.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedApiKey {
    /// The key (redacted in `Debug`).
    pub key: SecretString,
    /// Its record.
    pub record: ApiKeyRecord,
    /// For a roll: when the previous secret stops working.
    pub previous_expires_at: Option<OffsetDateTime>,
}

/// Who an API key authenticated: the key, and its owner when that is a user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiKeyAuth<U> {
    /// The key (its scopes decide what the request may do).
    pub key: ApiKeyRecord,
    /// The owning user (active), or `None` for a service account.
    pub user: Option<U>,
}

impl<U: AuthUser> AuthService<U> {
    /// Enables API keys stored in `store`, in the default format (`ak_live_…`).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_api_keys(MemoryApiKeyStore::new());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_api_keys(mut self, store: impl ApiKeyStore) -> Self {
        let format = self
            .api_keys
            .as_ref()
            .map_or_else(ApiKeyFormat::default, |k| k.format.clone());
        self.api_keys = Some(ApiKeys {
            store: Arc::new(store),
            format,
        });
        self
    }

    /// Uses `format` for new keys and checks (after [`with_api_keys`](Self::with_api_keys)).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_api_keys(MemoryApiKeyStore::new())
    ///     .with_api_key_format(ApiKeyFormat::new("ak_test_").unwrap());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_api_key_format(mut self, format: ApiKeyFormat) -> Self {
        if let Some(keys) = &mut self.api_keys {
            keys.format = format;
        }
        self
    }

    /// Whether `credential` has this service's API key prefix (API keys enabled): how a
    /// `Bearer` value is told apart from an access token. No store access.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_api_keys(MemoryApiKeyStore::new());
    /// assert!(auth.looks_like_api_key("ak_live_abc"));
    /// assert!(!auth.looks_like_api_key("eyJhbGciOi..."));
    /// ```
    #[must_use]
    pub fn looks_like_api_key(&self, credential: &str) -> bool {
        self.api_keys
            .as_ref()
            .is_some_and(|k| credential.starts_with(k.format.prefix()))
    }

    fn api_key_setup(&self) -> Result<&ApiKeys> {
        self.api_keys.as_ref().ok_or(Error::Unsupported(
            "API keys are not enabled (AuthService::with_api_keys)".into(),
        ))
    }

    /// Creates a key for `owner` (an active user, or a registered service account). The
    /// returned key is shown once; only its SHA-256 is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a bad name, scope or lifetime, or an unknown service account;
    /// [`Error::InactiveUser`] / [`Error::UserNotFound`]-like refusals for a user owner that
    /// cannot hold keys; [`Error::Unsupported`] without [`with_api_keys`](Self::with_api_keys).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// let user = auth.register("ops@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// let issued = auth.create_api_key(&ApiKeyOwner::User(user.id.clone()),
    ///     NewApiKey::new("deploy").with_scopes(["deploy"])).await?;
    /// let found = auth.authenticate_api_key(issued.key.expose_secret(), None).await?;
    /// assert!(found.key.has_scope("deploy"));
    /// assert_eq!(found.user.unwrap().id, user.id);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn create_api_key(
        &self,
        owner: &ApiKeyOwner,
        new: NewApiKey,
    ) -> Result<IssuedApiKey> {
        let keys = self.api_key_setup()?;
        new.validate()?;
        match owner {
            ApiKeyOwner::User(id) => {
                active_user_by_id(self.users.as_ref(), None, id).await?;
                // A key is lasting access: only for an account whose address is proven, and
                // never with more authority than its owner holds.
                self.require_proven(id).await?;
                for scope in &new.scopes {
                    if let Some(role) = crate::Role::parse(scope)
                        && !self.has_role(id, role).await?
                    {
                        return Err(Error::Forbidden(
                            format!("the `{scope}` scope needs the `{role}` role, which this account does not hold").into(),
                        ));
                    }
                }
            }
            ApiKeyOwner::Service(name) => {
                if !keys.store.service_account_exists(name).await? {
                    return Err(Error::invalid(
                        "service_account",
                        "unknown_service_account",
                        "no service account has this name",
                    ));
                }
            }
        }
        let now = crate::truncate_to_micros(self.clock.now());
        let (key, start) = keys.format.generate();
        let mut record = ApiKeyRecord::new(
            crate::random::token(12),
            owner.clone(),
            new.name.trim(),
            new.scopes,
            start,
            now,
        );
        record.expires_at = new.expires_in.map(|d| add(now, d));
        record.rate_limit = new.rate_limit;
        record.metadata = new.metadata;
        keys.store
            .create(&record, &crate::random::sha256_hex(key.expose_secret()))
            .await?;
        self.events
            .emit(AuthEvent::ApiKeyCreated {
                key_id: record.id.clone(),
                owner: owner.clone(),
            })
            .await;
        Ok(IssuedApiKey {
            key,
            record,
            previous_expires_at: None,
        })
    }

    /// Authenticates a request by API key: the format and checksum first (a mangled key is
    /// refused with no store access), then one indexed lookup of its SHA-256; expired,
    /// disabled and graced-out keys are refused, a user owner must be active (a deactivated
    /// owner's key is refused and reported by [`AuthEvent::ApiKeyOwnerInactive`]), and the
    /// key's own rate limit is reserved atomically. The last use is written at most once a
    /// minute ([`AuthEvent::ApiKeyUsed`] then).
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] (malformed, unknown, disabled), [`Error::TokenExpired`],
    /// [`Error::InactiveUser`], [`Error::RateLimited`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// assert!(matches!(auth.authenticate_api_key("ak_live_nope", None).await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn authenticate_api_key(
        &self,
        key: &str,
        client: Option<IpAddr>,
    ) -> Result<ApiKeyAuth<U>> {
        let keys = self.api_key_setup()?;
        if !keys.format.check(key) {
            return Err(Error::TokenInvalid);
        }
        let found = keys
            .store
            .find_by_secret(&crate::random::sha256_hex(key))
            .await?
            .ok_or(Error::TokenInvalid)?;
        let record = found.record;
        let now = self.clock.now();
        if !record.enabled {
            return Err(Error::TokenInvalid);
        }
        if record.expires_at.is_some_and(|e| e <= now)
            || found.secret_expires_at.is_some_and(|e| e <= now)
        {
            return Err(Error::TokenExpired);
        }
        let user = match &record.owner {
            ApiKeyOwner::User(id) => {
                match active_user_by_id(self.users.as_ref(), self.user_cache.as_ref(), id).await {
                    Ok(u) => Some(u),
                    Err(Error::InactiveUser) => {
                        tracing::warn!(key = %record.id, user = %id, "API key of a deactivated user refused");
                        self.events
                            .emit(AuthEvent::ApiKeyOwnerInactive {
                                key_id: record.id.clone(),
                                user_id: id.clone(),
                            })
                            .await;
                        return Err(Error::InactiveUser);
                    }
                    Err(e) => return Err(e),
                }
            }
            ApiKeyOwner::Service(_) => None,
        };
        if let Some(limit) = record.rate_limit {
            let window = i64::from(limit.window_secs);
            let start = now.unix_timestamp().div_euclid(window) * window;
            if !keys
                .store
                .reserve(&record.id, start, limit.requests)
                .await?
            {
                let retry = u64::try_from(start + window - now.unix_timestamp()).unwrap_or(1);
                return Err(Error::RateLimited {
                    retry_after: Duration::from_secs(retry.max(1)),
                });
            }
        }
        let due = record
            .last_used_at
            .is_none_or(|t| t + TOUCH_INTERVAL <= now);
        if due {
            let ip = client.map(|ip| ip.to_string());
            let not_before = now - TOUCH_INTERVAL;
            if keys
                .store
                .touch(&record.id, now, not_before, ip.as_deref())
                .await?
            {
                self.events
                    .emit(AuthEvent::ApiKeyUsed {
                        key_id: record.id.clone(),
                        owner: record.owner.clone(),
                    })
                    .await;
            }
        }
        Ok(ApiKeyAuth { key: record, user })
    }

    /// The owner's keys (no secrets), newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without API keys; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// assert!(auth.list_api_keys(&ApiKeyOwner::User(UserId::new("1"))).await?.is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn list_api_keys(&self, owner: &ApiKeyOwner) -> Result<Vec<ApiKeyRecord>> {
        self.api_key_setup()?.store.list(owner).await
    }

    /// Rolls the owner's key `id`: a new key is issued, and the old one keeps working for
    /// `grace` (zero: it dies now), then stops.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] when the key is not the owner's; [`Error::Validation`] for a
    /// grace over ten years; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// # let user = auth.register("ops@example.com", "violet-otter-sings-42").await?;
    /// # auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// let owner = ApiKeyOwner::User(user.id);
    /// let old = auth.create_api_key(&owner, NewApiKey::new("ci")).await?;
    /// let new = auth.roll_api_key(&owner, &old.record.id, std::time::Duration::ZERO).await?;
    /// assert!(auth.authenticate_api_key(new.key.expose_secret(), None).await.is_ok());
    /// assert!(auth.authenticate_api_key(old.key.expose_secret(), None).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn roll_api_key(
        &self,
        owner: &ApiKeyOwner,
        id: &str,
        grace: Duration,
    ) -> Result<IssuedApiKey> {
        let keys = self.api_key_setup()?;
        if grace > MAX_LIFETIME {
            return Err(Error::invalid(
                "grace_seconds",
                "invalid_grace",
                "at most ten years",
            ));
        }
        let record = self.owned_api_key(keys, owner, id).await?;
        let now = crate::truncate_to_micros(self.clock.now());
        let previous_until = add(now, grace);
        let (key, _) = keys.format.generate();
        if !keys
            .store
            .roll(
                id,
                &crate::random::sha256_hex(key.expose_secret()),
                previous_until,
            )
            .await?
        {
            return Err(Error::TokenInvalid);
        }
        self.events
            .emit(AuthEvent::ApiKeyRolled {
                key_id: record.id.clone(),
                owner: owner.clone(),
            })
            .await;
        let mut record = record;
        record.start = keys.format.start_of(key.expose_secret());
        Ok(IssuedApiKey {
            key,
            record,
            previous_expires_at: Some(previous_until),
        })
    }

    /// Revokes (deletes) the owner's key `id`; false when there is no such key of theirs.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without API keys; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// assert!(!auth.revoke_api_key(&ApiKeyOwner::Service("ci".into()), "nope").await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn revoke_api_key(&self, owner: &ApiKeyOwner, id: &str) -> Result<bool> {
        let keys = self.api_key_setup()?;
        let Ok(record) = self.owned_api_key(keys, owner, id).await else {
            return Ok(false);
        };
        let deleted = keys.store.delete(&record.id).await?;
        if deleted {
            self.events
                .emit(AuthEvent::ApiKeyRevoked {
                    key_id: record.id,
                    owner: owner.clone(),
                })
                .await;
        }
        Ok(deleted)
    }

    /// Disables (or re-enables) the owner's key `id` without deleting it: a disabled key is
    /// refused like an unknown one. False when there is no such key of theirs.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without API keys; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// assert!(!auth.set_api_key_enabled(&ApiKeyOwner::Service("ci".into()), "nope", false).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn set_api_key_enabled(
        &self,
        owner: &ApiKeyOwner,
        id: &str,
        enabled: bool,
    ) -> Result<bool> {
        let keys = self.api_key_setup()?;
        let Ok(record) = self.owned_api_key(keys, owner, id).await else {
            return Ok(false);
        };
        keys.store.set_enabled(&record.id, enabled).await
    }

    /// Registers a service account, an owner of keys that belongs to no person (idempotent:
    /// false when it existed).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a bad name; [`Error::Unsupported`] without API keys.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    /// #     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// assert!(auth.create_service_account("ci").await?);
    /// let key = auth.create_api_key(&ApiKeyOwner::Service("ci".into()), NewApiKey::new("builds")).await?;
    /// assert!(auth.authenticate_api_key(key.key.expose_secret(), None).await?.user.is_none());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn create_service_account(&self, name: &str) -> Result<bool> {
        let keys = self.api_key_setup()?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::invalid(
                "name",
                "invalid_name",
                "1 to 64 characters of A-Z a-z 0-9 - _ .",
            ));
        }
        keys.store
            .create_service_account(name, crate::truncate_to_micros(self.clock.now()))
            .await
    }

    async fn owned_api_key(
        &self,
        keys: &ApiKeys,
        owner: &ApiKeyOwner,
        id: &str,
    ) -> Result<ApiKeyRecord> {
        if id.is_empty() || id.len() > 64 {
            return Err(Error::TokenInvalid);
        }
        match keys.store.get(id).await? {
            Some(r) if &r.owner == owner => Ok(r),
            _ => Err(Error::TokenInvalid),
        }
    }
}
