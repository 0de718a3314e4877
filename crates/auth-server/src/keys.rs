//! Asymmetric JWT signing keys for the server: loaded from (or, for Ed25519 and ECDSA, created
//! in) `AUTH_JWT_KEYS_DIR`, published at `/.well-known/jwks.json`, reloaded when the folder's
//! manifest changes (a rotation by `auth-server jwt rotate` reaches every running instance).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use auth::jwt::{Algorithm, JwtBackend, JwtKeySet};
use auth::{
    Claims, Error, IssueRequest, RefreshGuard, Result, RevocationStore, RotateOutcome,
    RotateRequest, SessionInfo, TokenBackend, TokenKind, TokenPair, UserId, async_trait,
};

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
/// from the latest key set.
#[derive(Clone)]
pub(crate) struct KeyedJwt {
    backend: Arc<RwLock<Arc<JwtBackend>>>,
    keys: Arc<RwLock<JwtKeySet>>,
    revocations: Arc<dyn RevocationStore>,
}

impl KeyedJwt {
    pub(crate) fn new(keys: JwtKeySet, revocations: Arc<dyn RevocationStore>) -> Result<Self> {
        let backend = Self::build(&keys, &revocations)?;
        Ok(Self {
            backend: Arc::new(RwLock::new(Arc::new(backend))),
            keys: Arc::new(RwLock::new(keys)),
            revocations,
        })
    }

    fn build(keys: &JwtKeySet, revocations: &Arc<dyn RevocationStore>) -> Result<JwtBackend> {
        Ok(JwtBackend::from_key_set(keys)
            .map_err(Error::from)?
            .with_shared_revocation_store(Arc::clone(revocations)))
    }

    fn current(&self) -> Arc<JwtBackend> {
        self.backend
            .read()
            .map(|b| Arc::clone(&b))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    /// The shared key set (what `/.well-known/jwks.json` publishes).
    pub(crate) fn keys(&self) -> Arc<RwLock<JwtKeySet>> {
        Arc::clone(&self.keys)
    }

    fn replace(&self, keys: JwtKeySet) -> Result<()> {
        let backend = Arc::new(Self::build(&keys, &self.revocations)?);
        if let Ok(mut b) = self.backend.write() {
            *b = backend;
        }
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
        Ok(())
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

impl std::fmt::Debug for KeyedJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedJwt")
            .field("backend", &self.current())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenBackend for KeyedJwt {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        self.current().issue(request).await
    }
    async fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        self.current().verify(token, kind).await
    }
    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        self.current().rotate(refresh_token, request, guard).await
    }
    async fn revoke(&self, token: &str) -> Result<()> {
        self.current().revoke(token).await
    }
    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        self.current().revoke_all(user_id, keep).await
    }
    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        self.current().sessions(user_id).await
    }
    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        self.current().revoke_session(user_id, session_id).await
    }
    async fn cleanup_expired(&self) -> Result<u64> {
        self.current().cleanup_expired().await
    }
}
