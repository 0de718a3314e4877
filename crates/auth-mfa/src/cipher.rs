//! TOTP secrets encrypted at rest: AES-256-GCM (ring), a key id beside each ciphertext.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use auth_service::{ConfigError, Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// A ciphertext as stored: the id of the key that sealed it, and `nonce || ciphertext || tag`.
///
/// ```
/// use auth_mfa::SecretCipher;
/// let cipher = SecretCipher::new("k1", &[7u8; 32]).unwrap();
/// let sealed = cipher.encrypt(b"totp secret", b"user:42").unwrap();
/// assert_eq!(sealed.key_id, "k1");
/// assert_eq!(&*cipher.decrypt(&sealed, b"user:42").unwrap(), b"totp secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedSecret {
    /// Which key sealed it.
    pub key_id: String,
    /// Nonce, ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedSecret")
            .field("key_id", &self.key_id)
            .field("len", &self.ciphertext.len())
            .finish()
    }
}

/// Seals TOTP secrets with AES-256-GCM under the current key and opens them with any known key,
/// so keys rotate: add the new key as current, keep the old one as a fallback until every
/// secret has been re-sealed (which [`crate::Mfa`] does on each successful check).
///
/// The additional data binds each ciphertext to its user: a row copied onto another user's
/// does not decrypt.
///
/// ```
/// use auth_mfa::SecretCipher;
/// let old = SecretCipher::new("2025", &[1u8; 32]).unwrap();
/// let sealed = old.encrypt(b"s", b"u1").unwrap();
/// let rotated = SecretCipher::new("2026", &[2u8; 32]).unwrap().with_fallback("2025", &[1u8; 32]).unwrap();
/// assert_eq!(&*rotated.decrypt(&sealed, b"u1").unwrap(), b"s");
/// assert!(rotated.decrypt(&sealed, b"u2").is_err());
/// assert!(rotated.is_stale(&sealed));
/// assert!(SecretCipher::new("short", &[0u8; 16]).is_err());
/// ```
#[derive(Clone)]
pub struct SecretCipher {
    current: String,
    keys: Arc<HashMap<String, LessSafeKey>>,
    rng: SystemRandom,
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("SecretCipher")
            .field("current", &self.current)
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

/// Key length in bytes.
pub const KEY_LEN: usize = 32;

fn key(key_id: &str, bytes: &[u8]) -> Result<LessSafeKey> {
    if key_id.is_empty() || key_id.len() > 32 || key_id.contains(char::is_whitespace) {
        return Err(ConfigError::invalid(
            "AUTH_MFA_KEY id",
            "must be 1 to 32 characters without spaces",
        )
        .into());
    }
    if bytes.len() != KEY_LEN {
        return Err(ConfigError::WeakSecret {
            name: "AUTH_MFA_KEY",
            min: KEY_LEN,
        }
        .into());
    }
    let unbound = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| ConfigError::invalid("AUTH_MFA_KEY", "is not a valid AES-256 key"))?;
    Ok(LessSafeKey::new(unbound))
}

impl SecretCipher {
    /// A cipher whose current key is `bytes` (exactly 32 bytes), known as `key_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for a key that is not 32 bytes or an empty id.
    pub fn new(key_id: &str, bytes: &[u8]) -> Result<Self> {
        let mut keys = HashMap::new();
        keys.insert(key_id.to_owned(), key(key_id, bytes)?);
        Ok(Self {
            current: key_id.to_owned(),
            keys: Arc::new(keys),
            rng: SystemRandom::new(),
        })
    }

    /// From `key_id:base64` (the format of `AUTH_MFA_KEY`; standard base64 of 32 bytes).
    ///
    /// ```
    /// let c = auth_mfa::SecretCipher::from_spec("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    /// assert_eq!(c.current_key_id(), "k1");
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the format or the key is wrong.
    pub fn from_spec(spec: &str) -> Result<Self> {
        let (id, bytes) = parse_spec(spec)?;
        Self::new(&id, &bytes)
    }

    /// Adds an older key that still opens secrets sealed with it.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_fallback(mut self, key_id: &str, bytes: &[u8]) -> Result<Self> {
        if key_id != self.current {
            let new = key(key_id, bytes)?;
            Arc::make_mut(&mut self.keys).insert(key_id.to_owned(), new);
        }
        Ok(self)
    }

    /// Adds an older key given as `key_id:base64`.
    ///
    /// # Errors
    ///
    /// As [`from_spec`](Self::from_spec).
    pub fn with_fallback_spec(self, spec: &str) -> Result<Self> {
        let (id, bytes) = parse_spec(spec)?;
        self.with_fallback(&id, &bytes)
    }

    /// The id new secrets are sealed under.
    #[must_use]
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    /// Whether `sealed` was made with an older key.
    #[must_use]
    pub fn is_stale(&self, sealed: &EncryptedSecret) -> bool {
        sealed.key_id != self.current
    }

    /// Seals `plaintext`, bound to `aad`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the system RNG fails.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<EncryptedSecret> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::backend("generating a nonce", ring_failure()))?;
        let mut buf = plaintext.to_vec();
        let key = &self.keys[&self.current];
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::backend("encrypting a secret", ring_failure()))?;
        let mut ciphertext = nonce.to_vec();
        ciphertext.extend_from_slice(&buf);
        Ok(EncryptedSecret {
            key_id: self.current.clone(),
            ciphertext,
        })
    }

    /// Opens `sealed`; the plaintext is wiped when dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the key id is unknown (a key was removed too early);
    /// [`Error::Backend`] when the ciphertext or its binding is wrong.
    pub fn decrypt(&self, sealed: &EncryptedSecret, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.keys.get(&sealed.key_id).ok_or_else(|| {
            Error::Configuration(ConfigError::invalid(
                "AUTH_MFA_KEY",
                format!(
                    "has no key with id {:?}: keep old keys in AUTH_MFA_OLD_KEYS until secrets are re-sealed",
                    sealed.key_id
                ),
            ))
        })?;
        if sealed.ciphertext.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::backend("decrypting a secret", ring_failure()));
        }
        let (nonce, body) = sealed.ciphertext.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::backend("decrypting a secret", ring_failure()))?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| Error::backend("decrypting a secret", ring_failure()))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn ring_failure() -> std::io::Error {
    std::io::Error::other("AEAD failure")
}

fn parse_spec(spec: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let (id, b64) = spec.split_once(':').ok_or_else(|| {
        ConfigError::invalid(
            "AUTH_MFA_KEY",
            "must be key_id:base64 of 32 random bytes (auth-server secret generate --mfa)",
        )
    })?;
    let b64 = b64.trim();
    let bytes = STANDARD
        .decode(b64)
        .or_else(|_| URL_SAFE_NO_PAD.decode(b64))
        .map_err(|_| ConfigError::invalid("AUTH_MFA_KEY", "the key after ':' is not base64"))?;
    Ok((id.trim().to_owned(), Zeroizing::new(bytes)))
}
