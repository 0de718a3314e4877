//! [`WebauthnPasskeys`]: the [`PasskeyBackend`] on webauthn-rs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::ephemeral::{CeremonyRecord, CeremonyStore};
use auth_core::{
    Clock, ConfigError, Error, PasskeyAssertion, PasskeyBackend, PasskeyInfo, PasskeyOptions,
    PasskeyTarget, PasskeyVerdict, Result, SharedClock, SystemClock, TakenPasskey, UserId,
    async_trait, random,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::store::{PasskeyStore, PasskeyUse, StoredPasskey};

/// How long a ceremony waits for the authenticator by default (WebAuthn's recommended
/// timeout).
pub const DEFAULT_CEREMONY_TTL: Duration = Duration::from_secs(300);

/// Longest ceremony key accepted.
const MAX_CEREMONY_KEY: usize = 128;

/// The relying party: its id (the registrable domain passkeys are bound to), the origins
/// allowed to run ceremonies, the name authenticators show, and how long a ceremony waits.
///
/// ```
/// let config = auth_webauthn::WebauthnConfig::new("example.com", "https://example.com")?
///     .with_origin("https://app.example.com")?
///     .rp_name("Example");
/// assert_eq!(config.rp_id(), "example.com");
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WebauthnConfig {
    rp_id: String,
    origins: Vec<Url>,
    rp_name: String,
    ttl: Duration,
}

fn bad_origin(origin: &str) -> Error {
    ConfigError::invalid(
        "AUTH_WEBAUTHN_ORIGINS",
        format!("{origin:?} is not an origin such as https://example.com"),
    )
    .into()
}

impl WebauthnConfig {
    /// A relying party `rp_id` (a host name, no scheme or port) served at `origin`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an origin that is not a URL.
    ///
    /// ```
    /// assert!(auth_webauthn::WebauthnConfig::new("example.com", "not a url").is_err());
    /// ```
    pub fn new(rp_id: impl Into<String>, origin: &str) -> Result<Self> {
        let rp_id = rp_id.into();
        Ok(Self {
            rp_name: rp_id.clone(),
            rp_id,
            origins: vec![Url::parse(origin).map_err(|_| bad_origin(origin))?],
            ttl: DEFAULT_CEREMONY_TTL,
        })
    }

    /// Allows one more origin (a subdomain, another port).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an origin that is not a URL.
    ///
    /// ```
    /// let c = auth_webauthn::WebauthnConfig::new("localhost", "http://localhost:8080")?.with_origin("http://localhost:3000")?;
    /// assert_eq!(c.origins().len(), 2);
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    pub fn with_origin(mut self, origin: &str) -> Result<Self> {
        self.origins
            .push(Url::parse(origin).map_err(|_| bad_origin(origin))?);
        Ok(self)
    }

    /// The name authenticators show for the site (the RP id by default).
    ///
    /// ```
    /// let c = auth_webauthn::WebauthnConfig::new("example.com", "https://example.com")?.rp_name("Example");
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn rp_name(mut self, name: impl Into<String>) -> Self {
        self.rp_name = name.into();
        self
    }

    /// How long a ceremony waits for its answer ([`DEFAULT_CEREMONY_TTL`]).
    ///
    /// ```
    /// let c = auth_webauthn::WebauthnConfig::new("example.com", "https://example.com")?
    ///     .ceremony_ttl(std::time::Duration::from_secs(120));
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn ceremony_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The RP id.
    ///
    /// ```
    /// assert_eq!(auth_webauthn::WebauthnConfig::new("localhost", "http://localhost:8080")?.rp_id(), "localhost");
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The allowed origins.
    ///
    /// ```
    /// assert_eq!(auth_webauthn::WebauthnConfig::new("localhost", "http://localhost:8080")?.origins()[0].as_str(), "http://localhost:8080/");
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn origins(&self) -> &[Url] {
        &self.origins
    }

    /// Checks that the RP id fits the origins (what [`WebauthnPasskeys::new`] would refuse).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], saying what to set.
    ///
    /// ```
    /// use auth_webauthn::WebauthnConfig;
    /// assert!(WebauthnConfig::new("localhost", "http://localhost:8080")?.validate().is_ok());
    /// assert!(WebauthnConfig::new("example.com", "https://other.org")?.validate().is_err());
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.build().map(|_| ())
    }

    fn build(&self) -> Result<Webauthn> {
        let invalid = |e: WebauthnError| -> Error {
            ConfigError::invalid(
                "AUTH_WEBAUTHN_RP_ID",
                format!(
                    "relying party {:?} with origins {:?}: {e} (the RP id must be the origins' host or a registrable suffix of it)",
                    self.rp_id,
                    self.origins.iter().map(Url::as_str).collect::<Vec<_>>()
                ),
            )
            .into()
        };
        let (first, rest) = self.origins.split_first().ok_or_else(|| bad_origin(""))?;
        let mut builder = WebauthnBuilder::new(&self.rp_id, first)
            .map_err(invalid)?
            .rp_name(&self.rp_name)
            .timeout(self.ttl);
        for origin in rest {
            builder = builder.append_allowed_origin(origin);
        }
        builder.build().map_err(invalid)
    }
}

/// A ceremony's state between its two requests.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Ceremony {
    Registration {
        handle: Uuid,
        state: PasskeyRegistration,
    },
    Login {
        state: PasskeyAuthentication,
    },
    Discoverable {
        state: DiscoverableAuthentication,
    },
    Decoy,
}

/// Passkeys on webauthn-rs: an [`auth_core::PasskeyBackend`] for
/// `auth_service::AuthService::with_passkeys`. Credentials live in a [`PasskeyStore`]; each
/// ceremony's state waits in a [`CeremonyStore`] (memory, SQL, Redis) under the SHA-256 of its
/// key, taken once by whichever instance receives the answer.
///
/// - Registration asks for user verification and a discoverable credential where the
///   authenticator can keep one (`residentKey: "preferred"`), excludes the account's passkeys,
///   and refuses a credential id registered to anyone.
/// - Sign-in checks origin, RP id, challenge (once), signature and user verification, then the
///   signature counter: one that did not advance (a cloned authenticator) is
///   [`PasskeyVerdict::Cloned`]; the new counter is written only if it is still ahead of the
///   stored one, so two concurrent answers cannot both pass.
///
/// ```
/// use auth_service::ephemeral::MemoryCeremonyStore;
/// use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
/// let passkeys = WebauthnPasskeys::new(
///     WebauthnConfig::new("localhost", "http://localhost:8080")?,
///     MemoryPasskeyStore::new(),
///     MemoryCeremonyStore::new(),
/// )?;
/// # let _ = passkeys;
/// # Ok::<(), auth_service::Error>(())
/// ```
#[derive(Clone)]
pub struct WebauthnPasskeys {
    inner: Arc<Inner>,
}

struct Inner {
    webauthn: Webauthn,
    config: WebauthnConfig,
    store: Arc<dyn PasskeyStore>,
    ceremonies: Arc<dyn CeremonyStore>,
    clock: SharedClock,
}

impl fmt::Debug for WebauthnPasskeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebauthnPasskeys")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::backend("serialising passkey state", e))
}

fn invalid_credential() -> Error {
    Error::invalid(
        "credential",
        "invalid_credential",
        "the authenticator's answer did not verify: try again",
    )
}

impl WebauthnPasskeys {
    /// The backend for `config`, keeping passkeys in `store` and ceremonies in `ceremonies`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the RP id does not fit the origins.
    ///
    /// ```
    /// use auth_service::ephemeral::MemoryCeremonyStore;
    /// use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
    /// let wrong = WebauthnConfig::new("example.com", "https://other.org")?;
    /// assert!(WebauthnPasskeys::new(wrong, MemoryPasskeyStore::new(), MemoryCeremonyStore::new()).is_err());
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    pub fn new(
        config: WebauthnConfig,
        store: impl PasskeyStore,
        ceremonies: impl CeremonyStore,
    ) -> Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                webauthn: config.build()?,
                config,
                store: Arc::new(store),
                ceremonies: Arc::new(ceremonies),
                clock: Arc::new(SystemClock),
            }),
        })
    }

    /// Reads time (ceremony expiry, last use) from `clock`.
    ///
    /// ```
    /// # use auth_service::ephemeral::MemoryCeremonyStore;
    /// # use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
    /// let passkeys = WebauthnPasskeys::new(WebauthnConfig::new("localhost", "http://localhost")?,
    ///     MemoryPasskeyStore::new(), MemoryCeremonyStore::new())?
    ///     .with_clock(auth_service::FixedClock::from_unix(1_700_000_000));
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                webauthn: inner.webauthn.clone(),
                config: inner.config.clone(),
                store: Arc::clone(&inner.store),
                ceremonies: Arc::clone(&inner.ceremonies),
                clock: Arc::new(clock),
            }),
        }
    }

    /// The relying party's settings.
    ///
    /// ```
    /// # use auth_service::ephemeral::MemoryCeremonyStore;
    /// # use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
    /// let passkeys = WebauthnPasskeys::new(WebauthnConfig::new("localhost", "http://localhost")?,
    ///     MemoryPasskeyStore::new(), MemoryCeremonyStore::new())?;
    /// assert_eq!(passkeys.config().rp_id(), "localhost");
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn config(&self) -> &WebauthnConfig {
        &self.inner.config
    }

    /// Deletes ceremonies that expired unanswered; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::ephemeral::MemoryCeremonyStore;
    /// # use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let passkeys = WebauthnPasskeys::new(WebauthnConfig::new("localhost", "http://localhost")?,
    ///     MemoryPasskeyStore::new(), MemoryCeremonyStore::new())?;
    /// assert_eq!(passkeys.cleanup_expired().await?, 0);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn cleanup_expired(&self) -> Result<u64> {
        self.inner
            .ceremonies
            .cleanup_expired(self.inner.clock.now())
            .await
    }

    fn expires_at(&self) -> time::OffsetDateTime {
        auth_core::add_saturating(self.inner.clock.now(), self.inner.config.ttl)
    }

    /// The key an account's pending registration is stored under.
    fn registration_key(user: &UserId) -> String {
        random::sha256_hex(&format!("auth-webauthn/registration:{user}"))
    }

    /// Stores a sign-in ceremony under a fresh key; the options name it.
    async fn open(&self, ceremony: &Ceremony, user: Option<UserId>) -> Result<String> {
        let key = random::token(32);
        self.inner
            .ceremonies
            .put(&CeremonyRecord::new(
                random::sha256_hex(&key),
                user,
                json(ceremony)?,
                self.expires_at(),
            ))
            .await?;
        Ok(key)
    }

    fn public_key(options: &impl Serialize) -> Result<Value> {
        let mut value = serde_json::to_value(options)
            .map_err(|e| Error::backend("serialising passkey options", e))?;
        Ok(value
            .get_mut("publicKey")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// The passkeys of `user`, parsed.
    async fn passkeys_of(&self, user: &UserId) -> Result<Vec<(StoredPasskey, Passkey)>> {
        let rows = self.inner.store.by_user(user).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let passkey = serde_json::from_str(&row.credential)
                .map_err(|e| Error::backend("reading a stored passkey", e))?;
            out.push((row, passkey));
        }
        Ok(out)
    }

    /// Checks `credential` against a taken ceremony.
    async fn verify(&self, record: CeremonyRecord, credential: &Value) -> Result<PasskeyVerdict> {
        let Ok(ceremony) = serde_json::from_str::<Ceremony>(&record.state) else {
            return Ok(PasskeyVerdict::Refused);
        };
        let Ok(answer) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
            tracing::info!("passkey answer refused: not a PublicKeyCredential");
            return Ok(PasskeyVerdict::Refused);
        };
        let Some(row) = self
            .inner
            .store
            .by_credential(&b64(answer.get_credential_id()))
            .await?
        else {
            tracing::info!("passkey answer refused: no such credential");
            return Ok(PasskeyVerdict::Refused);
        };
        if record.user_id.as_ref().is_some_and(|u| u != &row.user_id) {
            tracing::info!("passkey answer refused: a credential of another account");
            return Ok(PasskeyVerdict::Refused);
        }
        let mut passkey: Passkey = serde_json::from_str(&row.credential)
            .map_err(|e| Error::backend("reading a stored passkey", e))?;
        let webauthn = &self.inner.webauthn;
        let result = match ceremony {
            Ceremony::Login { state } => webauthn.finish_passkey_authentication(&answer, &state),
            Ceremony::Discoverable { state } => {
                match webauthn.identify_discoverable_authentication(&answer) {
                    Ok((handle, _)) if handle.to_string() == row.user_handle => {
                        webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey)
                    }
                    _ => {
                        tracing::info!(
                            "passkey answer refused: its user handle is not the credential's"
                        );
                        return Ok(PasskeyVerdict::Refused);
                    }
                }
            }
            Ceremony::Registration { .. } | Ceremony::Decoy => return Ok(PasskeyVerdict::Refused),
        };
        let cloned = PasskeyVerdict::Cloned {
            user_id: row.user_id.clone(),
            passkey_id: row.id.clone(),
        };
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => return Ok(cloned),
            Err(e) => {
                tracing::info!(error = %e, "passkey answer refused");
                return Ok(PasskeyVerdict::Refused);
            }
        };
        passkey.update_credential(&result);
        let used = PasskeyUse::new(
            row.id.clone(),
            json(&passkey)?,
            result.counter(),
            result.backup_state(),
            self.inner.clock.now(),
        );
        if !self.inner.store.record_use(&used).await? {
            // Another answer with this counter won the race: one of the two is a clone.
            return Ok(cloned);
        }
        Ok(PasskeyVerdict::Verified(PasskeyAssertion::new(
            row.user_id,
            row.id,
            result.user_verified(),
        )))
    }
}

#[async_trait]
impl PasskeyBackend for WebauthnPasskeys {
    async fn start_registration(&self, user: &UserId, user_name: &str) -> Result<PasskeyOptions> {
        let existing = self.inner.store.by_user(user).await?;
        let handle = match existing.first().map(|p| Uuid::parse_str(&p.user_handle)) {
            Some(Ok(handle)) => handle,
            _ => {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&random::bytes(16));
                Uuid::from_bytes(bytes)
            }
        };
        let exclude = existing
            .iter()
            .filter_map(|p| URL_SAFE_NO_PAD.decode(&p.credential_id).ok())
            .collect::<Vec<_>>();
        let (options, state) = self
            .inner
            .webauthn
            .start_passkey_registration(handle, user_name, user_name, Some(exclude))
            .map_err(|e| Error::backend("starting a passkey registration", e))?;
        let mut public_key = Self::public_key(&options)?;
        // A discoverable credential where the authenticator can keep one, so the passkey
        // signs in without typing the address; security keys that cannot still register.
        if let Some(selection) = public_key
            .get_mut("authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "preferred".into());
            selection.insert("requireResidentKey".into(), false.into());
        }
        self.inner
            .ceremonies
            .put(&CeremonyRecord::new(
                Self::registration_key(user),
                Some(user.clone()),
                json(&Ceremony::Registration { handle, state })?,
                self.expires_at(),
            ))
            .await?;
        Ok(PasskeyOptions::new(String::new(), public_key))
    }

    async fn finish_registration(
        &self,
        user: &UserId,
        credential: &Value,
        name: &str,
    ) -> Result<PasskeyInfo> {
        let now = self.inner.clock.now();
        let record = self
            .inner
            .ceremonies
            .take(&Self::registration_key(user), now)
            .await?
            .filter(|r| r.user_id.as_ref() == Some(user))
            .ok_or(Error::TokenInvalid)?;
        let Ok(Ceremony::Registration { handle, state }) = serde_json::from_str(&record.state)
        else {
            return Err(Error::TokenInvalid);
        };
        let answer: RegisterPublicKeyCredential =
            serde_json::from_value(credential.clone()).map_err(|_| invalid_credential())?;
        let passkey = self
            .inner
            .webauthn
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| {
                tracing::info!(user_id = %user, error = %e, "passkey registration refused");
                invalid_credential()
            })?;
        let details = Credential::from(passkey.clone());
        let row = StoredPasskey {
            id: format!("pk_{}", random::token(16)),
            user_id: user.clone(),
            user_handle: handle.to_string(),
            credential_id: b64(passkey.cred_id()),
            name: name.to_owned(),
            credential: json(&passkey)?,
            counter: details.counter,
            backup_eligible: details.backup_eligible,
            backed_up: details.backup_state,
            created_at: auth_core::truncate_to_micros(now),
            last_used_at: None,
        };
        if !self.inner.store.insert(&row).await? {
            return Err(Error::invalid(
                "credential",
                "already_registered",
                "this passkey is registered already",
            ));
        }
        Ok(row.info())
    }

    async fn start_authentication(&self, target: &PasskeyTarget) -> Result<PasskeyOptions> {
        let webauthn = &self.inner.webauthn;
        let failed = |e: WebauthnError| Error::backend("starting a passkey sign-in", e);
        match target {
            PasskeyTarget::User(user) => {
                let passkeys: Vec<Passkey> = self
                    .passkeys_of(user)
                    .await?
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect();
                if passkeys.is_empty() {
                    return Err(Error::invalid(
                        "passkey",
                        "no_passkey",
                        "this account has no passkey",
                    ));
                }
                let (options, state) = webauthn
                    .start_passkey_authentication(&passkeys)
                    .map_err(failed)?;
                let key = self
                    .open(&Ceremony::Login { state }, Some(user.clone()))
                    .await?;
                Ok(PasskeyOptions::new(key, Self::public_key(&options)?))
            }
            PasskeyTarget::Discoverable => {
                let (options, state) = webauthn
                    .start_discoverable_authentication()
                    .map_err(failed)?;
                let key = self.open(&Ceremony::Discoverable { state }, None).await?;
                let mut out = PasskeyOptions::new(key, Self::public_key(&options)?);
                out.mediation = Some("conditional".into());
                Ok(out)
            }
            PasskeyTarget::Decoy(seed) => {
                // Shaped like an account's options: allowed credentials (derived from the
                // seed, held by no authenticator: one or two, of the lengths and transports
                // real authenticators give), no mediation, no extensions.
                let (options, _) = webauthn
                    .start_discoverable_authentication()
                    .map_err(failed)?;
                let mut public_key = Self::public_key(&options)?;
                if let Some(map) = public_key.as_object_mut() {
                    map.remove("extensions");
                    map.insert("allowCredentials".into(), decoy_credentials(seed));
                }
                let key = self.open(&Ceremony::Decoy, None).await?;
                Ok(PasskeyOptions::new(key, public_key))
            }
            _ => Err(Error::Unsupported("unknown passkey target".into())),
        }
    }

    async fn finish_authentication(
        &self,
        ceremony: &str,
        credential: &Value,
    ) -> Result<PasskeyVerdict> {
        if ceremony.is_empty() || ceremony.len() > MAX_CEREMONY_KEY {
            return Ok(PasskeyVerdict::Refused);
        }
        let Some(record) = self
            .inner
            .ceremonies
            .take(&random::sha256_hex(ceremony), self.inner.clock.now())
            .await?
        else {
            tracing::info!("passkey answer refused: unknown, spent or expired ceremony");
            return Ok(PasskeyVerdict::Refused);
        };
        self.verify(record, credential).await
    }

    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyInfo>> {
        Ok(self
            .inner
            .store
            .by_user(user)
            .await?
            .iter()
            .map(StoredPasskey::info)
            .collect())
    }

    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool> {
        self.inner.store.rename(user, id, name).await
    }

    async fn remove(&self, user: &UserId, id: &str) -> Result<bool> {
        self.inner.store.delete(user, id).await
    }

    async fn take(&self, user: &UserId, id: &str) -> Result<Option<TakenPasskey>> {
        let Some(stored) = self
            .inner
            .store
            .by_user(user)
            .await?
            .into_iter()
            .find(|p| p.id == id)
        else {
            return Ok(None);
        };
        if !self.inner.store.delete(user, id).await? {
            return Ok(None);
        }
        Ok(Some(TakenPasskey::new(stored.info(), stored)))
    }

    async fn restore(&self, user: &UserId, passkey: TakenPasskey) -> Result<()> {
        match passkey.into_record::<StoredPasskey>() {
            Some(stored) if &stored.user_id == user => {
                if !self.inner.store.insert(&stored).await? {
                    tracing::warn!(user_id = %user, passkey_id = %stored.id,
                        "a removed passkey was not put back: its credential is registered again");
                }
                Ok(())
            }
            _ => Err(Error::Unsupported(
                "restore takes a passkey this backend took from this account".into(),
            )),
        }
    }

    async fn remove_all(&self, user: &UserId) -> Result<u64> {
        self.inner.store.delete_user(user).await
    }
}

/// `len` bytes derived from `seed` (already a MAC under the service's secret) and `label`.
fn derived_bytes(seed: &str, label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block = 0u32;
    while out.len() < len {
        let hex = random::sha256_hex(&format!("auth-webauthn/decoy:{label}:{block}:{seed}"));
        out.extend(
            (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()),
        );
        block += 1;
    }
    out.truncate(len);
    out
}

/// The credential ids lengths real authenticators use (platform passkeys 16 to 32 bytes,
/// security keys 48 to 64 and more), weighted towards the common ones.
const DECOY_ID_LENGTHS: [usize; 8] = [16, 20, 32, 32, 48, 64, 64, 96];

/// What transports real entries carry (none, when the authenticator did not say).
const DECOY_TRANSPORTS: [&[&str]; 4] =
    [&["hybrid", "internal"], &["internal"], &["nfc", "usb"], &[]];

/// An address's decoy `allowCredentials`: one or two entries, stable for the address, each of a
/// length and with transports drawn from what real authenticators give, so their count and
/// shape do not tell an address without passkeys from one with them.
fn decoy_credentials(seed: &str) -> Value {
    let shape = derived_bytes(seed, "shape", 8);
    let count = if shape[0].is_multiple_of(3) { 2 } else { 1 };
    let entries: Vec<Value> = (0..count)
        .map(|i| {
            let len = DECOY_ID_LENGTHS[usize::from(shape[1 + i]) % DECOY_ID_LENGTHS.len()];
            let id = derived_bytes(seed, &format!("id{i}"), len);
            let transports = DECOY_TRANSPORTS[usize::from(shape[4 + i]) % DECOY_TRANSPORTS.len()];
            let mut entry = serde_json::json!({ "type": "public-key", "id": b64(&id) });
            if !transports.is_empty() {
                entry["transports"] = serde_json::json!(transports);
            }
            entry
        })
        .collect();
    Value::Array(entries)
}
