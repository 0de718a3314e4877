//! Asymmetric JWT signing keys for the server, published at `/.well-known/jwks.json`.
//!
//! By default they live in the database (`auth_signing_keys`), sealed with AES-256-GCM under a
//! key derived from `AUTH_JWT_KEYS_SECRET` (or `AUTH_SIGNING_SECRET`): every instance on the
//! database loads the same set, instances starting together on an empty database agree on one
//! (the first to store it wins, the others read it), and a rotation by `auth-server jwt rotate`
//! reaches every running instance through the change feed. With `AUTH_JWT_KEYS_DIR` they are
//! files in that folder instead, reloaded when its manifest changes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use auth::jwt::{Algorithm, JwtBackend, JwtKeySet};
use auth::tokens_db::DbSigningKeyStore;
use auth::{
    Change, ChangeFeed, ChangeSubscriber, Claims, Error, IssueRequest, RefreshGuard, Result,
    RevocationStore, RotateOutcome, RotateRequest, SecretString, SessionInfo, TokenBackend,
    TokenKind, TokenPair, UserId, async_trait,
};

/// The name of the token signing key set in `auth_signing_keys`.
pub const JWT_KEY_SET: &str = "jwt";

/// How often a serving instance asks the database for the key set's version even when the
/// change feed said nothing (a feed that was down, a rotation by an older version).
const DATABASE_CHECK_EVERY: Duration = Duration::from_secs(30);

/// Signing keys in the database, sealed under a secret.
#[derive(Clone)]
pub struct KeyVault {
    store: DbSigningKeyStore,
    secret: SecretString,
    algorithm: Algorithm,
    /// A folder whose keys are taken over when the database has none (the folder the
    /// development server used before keys moved to the database).
    import_from: Option<PathBuf>,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVault")
            .field("algorithm", &self.algorithm)
            .field("import_from", &self.import_from)
            .finish_non_exhaustive()
    }
}

impl KeyVault {
    /// Keys of `algorithm` in `store`, sealed under `secret` (at least 32 bytes).
    #[must_use]
    pub fn new(store: DbSigningKeyStore, secret: SecretString, algorithm: Algorithm) -> Self {
        Self {
            store,
            secret,
            algorithm,
            import_from: None,
        }
    }

    /// Takes over the keys of `dir` (written by `JwtKeySet::save`) when the database has none.
    #[must_use]
    pub fn importing_from(mut self, dir: Option<PathBuf>) -> Self {
        self.import_from = dir;
        self
    }

    fn refused(e: &auth::jwt::JwtError) -> Error {
        Error::Configuration(auth::ConfigError::invalid(
            "AUTH_JWT_KEYS_SECRET",
            format!("{e} (the secret is AUTH_JWT_KEYS_SECRET, or AUTH_SIGNING_SECRET without it)"),
        ))
    }

    fn open(&self, sealed: &str) -> Result<JwtKeySet> {
        let keys = JwtKeySet::unseal(sealed, self.secret.expose_secret().as_bytes())
            .map_err(|e| Self::refused(&e))?;
        if keys.algorithm() != self.algorithm {
            return Err(Error::Configuration(auth::ConfigError::invalid(
                "AUTH_JWT_ALGORITHM",
                format!(
                    "is {} but the keys in the database are {}",
                    self.algorithm.name(),
                    keys.algorithm().name()
                ),
            )));
        }
        Ok(keys)
    }

    fn seal(&self, keys: &JwtKeySet) -> Result<String> {
        keys.seal(self.secret.expose_secret().as_bytes())
            .map_err(|e| Self::refused(&e))
    }

    /// The stored set and its version, if the database has one.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be read; [`Error::Configuration`] when the
    /// set cannot be opened with the secret or is of another algorithm.
    pub async fn load(&self) -> Result<Option<(i64, JwtKeySet)>> {
        match self.store.load(JWT_KEY_SET).await? {
            Some(stored) => Ok(Some((stored.version, self.open(&stored.sealed)?))),
            None => Ok(None),
        }
    }

    /// The stored set, or a new one stored now (taken over from the import folder when it
    /// has keys, else generated: Ed25519 and ECDSA). Of instances starting together on an
    /// empty database, one stores its set and the others load it.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load); [`Error::Configuration`] when no set can be made (RSA keys are
    /// imported: `auth-server jwt import FILE`).
    pub async fn load_or_create(&self) -> Result<(i64, JwtKeySet)> {
        loop {
            if let Some(found) = self.load().await? {
                return Ok(found);
            }
            let keys = match &self.import_from {
                Some(dir) if JwtKeySet::manifest_path(dir).exists() => {
                    let keys = load_or_create(dir, self.algorithm)?;
                    tracing::info!(dir = %dir.display(), "JWT signing keys taken over from the folder into the database");
                    keys
                }
                _ => JwtKeySet::generate(self.algorithm, auth::Clock::now(&auth::SystemClock))
                    .map_err(|e| {
                        Error::Configuration(auth::ConfigError::invalid(
                            "AUTH_JWT_ALGORITHM",
                            format!(
                                "no signing keys are stored and none can be made for {}: {e} (then `auth-server jwt import FILE`)",
                                self.algorithm.name()
                            ),
                        ))
                    })?,
            };
            if self.store.create(JWT_KEY_SET, &self.seal(&keys)?).await? {
                tracing::info!(
                    current = keys.current().map(auth::jwt::JwtKey::kid),
                    "generated JWT signing keys in the database (a current and a next one)"
                );
                return Ok((1, keys));
            }
            // Another instance stored its set first: read that one.
        }
    }

    /// Applies `change` to the stored set (created first if there is none) and stores it,
    /// again from a fresh read if another writer changed it meanwhile; the stored version and
    /// set are returned.
    ///
    /// # Errors
    ///
    /// As [`load_or_create`](Self::load_or_create), and whatever `change` answers.
    pub async fn update(
        &self,
        change: impl Fn(&mut JwtKeySet) -> Result<()>,
    ) -> Result<(i64, JwtKeySet)> {
        loop {
            let (version, mut keys) = match self.load().await? {
                Some(found) => found,
                None => {
                    let empty = JwtKeySet::empty(self.algorithm).map_err(Error::from)?;
                    let mut keys = empty;
                    change(&mut keys)?;
                    if self.store.create(JWT_KEY_SET, &self.seal(&keys)?).await? {
                        return Ok((1, keys));
                    }
                    continue;
                }
            };
            change(&mut keys)?;
            if self
                .store
                .replace(JWT_KEY_SET, version, &self.seal(&keys)?)
                .await?
            {
                return Ok((version + 1, keys));
            }
        }
    }

    /// The stored version (a cheap read).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be read.
    pub async fn version(&self) -> Result<Option<i64>> {
        self.store.version(JWT_KEY_SET).await
    }
}

/// How often a serving instance looks at the manifest's modification time.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

fn config(e: impl std::fmt::Display) -> Error {
    Error::Configuration(auth::ConfigError::invalid(
        "AUTH_JWT_KEYS_DIR",
        e.to_string(),
    ))
}

/// The key set in `dir`: loaded, or created there (Ed25519, ECDSA) when the folder has none.
///
/// # Errors
///
/// [`Error::Configuration`] naming `AUTH_JWT_KEYS_DIR` (unreadable, another algorithm, RSA keys
/// missing) or `AUTH_JWT_ALGORITHM`.
///
/// ```
/// use auth::jwt::Algorithm;
/// let dir = std::env::temp_dir().join(format!("server-keys-doc-{}", std::process::id()));
/// let created = auth_server::keys::load_or_create(&dir, Algorithm::EdDSA).unwrap();
/// let loaded = auth_server::keys::load_or_create(&dir, Algorithm::EdDSA).unwrap();
/// assert_eq!(created.current().unwrap().kid(), loaded.current().unwrap().kid());
/// assert!(auth_server::keys::load_or_create(&dir, Algorithm::ES256).is_err(), "another algorithm");
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
pub fn load_or_create(dir: &Path, algorithm: Algorithm) -> Result<JwtKeySet> {
    if JwtKeySet::manifest_path(dir).exists() {
        let keys = JwtKeySet::load(dir).map_err(config)?;
        if keys.algorithm() != algorithm {
            return Err(Error::Configuration(auth::ConfigError::invalid(
                "AUTH_JWT_ALGORITHM",
                format!(
                    "is {} but the keys in {} are {}",
                    algorithm.name(),
                    dir.display(),
                    keys.algorithm().name()
                ),
            )));
        }
        return Ok(keys);
    }
    let keys =
        JwtKeySet::generate(algorithm, auth::Clock::now(&auth::SystemClock)).map_err(|e| {
            config(format!(
                "has no keys and none can be made for {}: {e} (then `auth-server jwt import FILE`)",
                algorithm.name()
            ))
        })?;
    keys.save(dir).map_err(config)?;
    tracing::info!(
        dir = %dir.display(),
        current = keys.current().map(auth::jwt::JwtKey::kid),
        "generated JWT signing keys (a current and a next one)"
    );
    Ok(keys)
}

fn modified(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(JwtKeySet::manifest_path(dir))
        .and_then(|m| m.modified())
        .ok()
}

/// A JWT backend whose keys can change while it serves: every call goes to the backend built
/// from the latest key set. Keys from the database are loaded on first use (or by the watcher
/// at start), so building the service needs no database round trip.
#[derive(Clone)]
pub(crate) struct KeyedJwt {
    backend: Arc<RwLock<Option<Arc<JwtBackend>>>>,
    keys: Arc<RwLock<JwtKeySet>>,
    revocations: Arc<dyn RevocationStore>,
    vault: Option<Arc<Vault>>,
}

/// The database side of a [`KeyedJwt`]: where its keys come from, the version it holds.
struct Vault {
    vault: KeyVault,
    loaded: tokio::sync::OnceCell<()>,
    version: AtomicI64,
    changed: tokio::sync::Notify,
}

impl KeyedJwt {
    pub(crate) fn new(keys: JwtKeySet, revocations: Arc<dyn RevocationStore>) -> Result<Self> {
        let backend = Self::build(&keys, &revocations)?;
        Ok(Self {
            backend: Arc::new(RwLock::new(Some(Arc::new(backend)))),
            keys: Arc::new(RwLock::new(keys)),
            revocations,
            vault: None,
        })
    }

    /// Keys from the database, loaded on first use.
    pub(crate) fn from_vault(
        vault: KeyVault,
        revocations: Arc<dyn RevocationStore>,
    ) -> Result<Self> {
        let empty = JwtKeySet::empty(vault.algorithm).map_err(Error::from)?;
        Ok(Self {
            backend: Arc::new(RwLock::new(None)),
            keys: Arc::new(RwLock::new(empty)),
            revocations,
            vault: Some(Arc::new(Vault {
                vault,
                loaded: tokio::sync::OnceCell::new(),
                version: AtomicI64::new(0),
                changed: tokio::sync::Notify::new(),
            })),
        })
    }

    fn build(keys: &JwtKeySet, revocations: &Arc<dyn RevocationStore>) -> Result<JwtBackend> {
        Ok(JwtBackend::from_key_set(keys)
            .map_err(Error::from)?
            .with_shared_revocation_store(Arc::clone(revocations)))
    }

    fn loaded(&self) -> Option<Arc<JwtBackend>> {
        self.backend
            .read()
            .map(|b| b.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The backend of the current keys, loading them from the database first if needed.
    async fn current(&self) -> Result<Arc<JwtBackend>> {
        if let Some(backend) = self.loaded() {
            return Ok(backend);
        }
        self.ensure_loaded().await?;
        self.loaded().ok_or_else(|| {
            Error::backend(
                "loading the JWT signing keys",
                std::io::Error::other("not loaded"),
            )
        })
    }

    /// Loads the keys from the database (creating them there if it has none), once.
    pub(crate) async fn ensure_loaded(&self) -> Result<()> {
        let Some(vault) = &self.vault else {
            return Ok(());
        };
        vault
            .loaded
            .get_or_try_init(|| async {
                let (version, keys) = vault.vault.load_or_create().await?;
                self.replace(keys)?;
                vault.version.store(version, Ordering::SeqCst);
                Ok::<(), Error>(())
            })
            .await
            .map(|_| ())
    }

    /// The shared key set (what `/.well-known/jwks.json` publishes).
    pub(crate) fn keys(&self) -> Arc<RwLock<JwtKeySet>> {
        Arc::clone(&self.keys)
    }

    fn replace(&self, keys: JwtKeySet) -> Result<()> {
        let backend = Arc::new(Self::build(&keys, &self.revocations)?);
        if let Ok(mut b) = self.backend.write() {
            *b = Some(backend);
        }
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
        Ok(())
    }

    /// Loads the database's set when its version is not the one held.
    async fn refresh(&self) -> Result<bool> {
        let Some(vault) = &self.vault else {
            return Ok(false);
        };
        if vault.loaded.get().is_none() {
            self.ensure_loaded().await?;
            return Ok(true);
        }
        let held = vault.version.load(Ordering::SeqCst);
        if vault.vault.version().await? == Some(held) {
            return Ok(false);
        }
        let Some((version, keys)) = vault.vault.load().await? else {
            return Ok(false);
        };
        if version == held {
            return Ok(false);
        }
        self.replace(keys)?;
        vault.version.store(version, Ordering::SeqCst);
        Ok(true)
    }

    /// Loads the keys from the database now, then again whenever `feed` says they changed
    /// (or resumes after an outage), and every 30 s regardless, until the backend is dropped.
    pub(crate) fn watch_database(&self, feed: &Arc<dyn ChangeFeed>) {
        let Some(vault) = &self.vault else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        feed.subscribe(Arc::new(KeyChanges(Arc::downgrade(vault))));
        let weak = Arc::downgrade(&self.backend);
        let vault = Arc::downgrade(vault);
        let keys = Arc::clone(&self.keys);
        let revocations = Arc::clone(&self.revocations);
        handle.spawn(async move {
            let mut first = true;
            loop {
                if !first {
                    let Some(notify) = vault.upgrade() else {
                        return;
                    };
                    // Held while waiting: a dropped service is noticed at the next wake-up.
                    let _ = tokio::time::timeout(DATABASE_CHECK_EVERY, notify.changed.notified())
                        .await;
                }
                first = false;
                let (Some(backend), Some(vault)) = (weak.upgrade(), vault.upgrade()) else {
                    return;
                };
                let keyed = KeyedJwt {
                    backend,
                    keys: Arc::clone(&keys),
                    revocations: Arc::clone(&revocations),
                    vault: Some(vault),
                };
                match keyed.refresh().await {
                    Ok(true) => tracing::info!(
                        current = keyed.keys.read().ok().and_then(|k| k.current().map(|c| c.kid().to_owned())),
                        "JWT signing keys loaded from the database"
                    ),
                    Ok(false) => {}
                    Err(e) => tracing::error!(
                        error = %e,
                        "JWT signing keys cannot be loaded from the database: the keys held stay in use"
                    ),
                }
            }
        });
    }

    /// Reloads from `dir` whenever its manifest changes, until the backend is dropped.
    pub(crate) fn watch(&self, dir: PathBuf) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.backend);
        let this = (Arc::clone(&self.keys), Arc::clone(&self.revocations));
        handle.spawn(async move {
            let mut seen = modified(&dir);
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(backend) = weak.upgrade() else {
                    return;
                };
                let now = modified(&dir);
                if now == seen {
                    continue;
                }
                seen = now;
                let keyed = KeyedJwt {
                    backend,
                    keys: Arc::clone(&this.0),
                    revocations: Arc::clone(&this.1),
                    vault: None,
                };
                match JwtKeySet::load(&dir)
                    .map_err(Error::from)
                    .and_then(|keys| keyed.replace(keys))
                {
                    Ok(()) => tracing::info!(
                        dir = %dir.display(),
                        current = keyed.keys.read().ok().and_then(|k| k.current().map(|c| c.kid().to_owned())),
                        "JWT signing keys reloaded"
                    ),
                    Err(e) => tracing::error!(
                        dir = %dir.display(),
                        error = %e,
                        "JWT signing keys changed but cannot be loaded: the previous keys stay in use"
                    ),
                }
            }
        });
    }
}

/// The signing keys a serving instance holds, loaded from the database on first use when
/// they live there. A cheap handle.
#[derive(Clone)]
pub struct SigningKeys(pub(crate) KeyedJwt);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SigningKeys").field(&self.0).finish()
    }
}

impl SigningKeys {
    /// The key set, once loaded (from the database, created there if it has none).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the database cannot be read; [`Error::Configuration`] when the
    /// stored keys cannot be opened with `AUTH_JWT_KEYS_SECRET` or are of another algorithm.
    pub async fn ready(&self) -> Result<JwtKeySet> {
        self.0.ensure_loaded().await?;
        self.0.keys.read().map(|k| k.clone()).map_err(|_| {
            Error::backend(
                "reading the JWT signing keys",
                std::io::Error::other("poisoned"),
            )
        })
    }
}

/// Wakes the database watcher when the feed carries a key change or resumes.
struct KeyChanges(std::sync::Weak<Vault>);

impl ChangeSubscriber for KeyChanges {
    fn apply(&self, changes: &[Change]) {
        let ours = changes
            .iter()
            .any(|c| matches!(c, Change::SigningKeysChanged { name } if name == JWT_KEY_SET));
        if ours && let Some(vault) = self.0.upgrade() {
            vault.changed.notify_one();
        }
    }
    fn suspend(&self) {}
    fn resume(&self) {
        if let Some(vault) = self.0.upgrade() {
            vault.changed.notify_one();
        }
    }
    fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl std::fmt::Debug for KeyedJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedJwt")
            .field("backend", &self.loaded())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenBackend for KeyedJwt {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        self.current().await?.issue(request).await
    }
    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        self.current().await?.verify(token, kind).await
    }
    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        self.current()
            .await?
            .rotate(refresh_token, request, guard)
            .await
    }
    async fn revoke(&self, token: &str) -> Result<()> {
        self.current().await?.revoke(token).await
    }
    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        self.current().await?.revoke_all(user_id, keep).await
    }
    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        self.current().await?.sessions(user_id).await
    }
    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        self.current()
            .await?
            .revoke_session(user_id, session_id)
            .await
    }
    async fn cleanup_expired(&self) -> Result<u64> {
        self.current().await?.cleanup_expired().await
    }
}
