//! `JwtKeySet`: signing keys with a life cycle (next → current → retired), their public half as
//! a JWKS document, and their files.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as rsig, KeyPair as _};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::algorithm::Algorithm;
use crate::error::JwtError;

/// Where a key is in its life.
///
/// ```
/// use auth_tokens_jwt::KeyState;
/// assert_eq!(serde_json::to_string(&KeyState::Next).unwrap(), "\"next\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyState {
    /// Published, not signing yet: verifiers learn it before the first token it signs.
    Next,
    /// Signing.
    Current,
    /// No longer signing; published and verifying until every token it signed has expired.
    Retired,
}

/// One signing key: its id, state, dates, private key (PKCS#8 or PKCS#1 DER, never printed)
/// and public half.
#[derive(Clone)]
pub struct JwtKey {
    kid: String,
    state: KeyState,
    created_at: OffsetDateTime,
    retired_at: Option<OffsetDateTime>,
    der: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

#[derive(Clone, Debug)]
enum PublicKey {
    Okp {
        x: Vec<u8>,
    },
    Ec {
        curve: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// The key id (`kid`).
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let set = JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap();
    /// assert!(set.current().unwrap().kid().starts_with("eddsa-"));
    /// ```
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its state.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet, KeyState};
    /// let set = JwtKeySet::generate(Algorithm::ES256, time::OffsetDateTime::now_utc()).unwrap();
    /// assert_eq!(set.current().unwrap().state(), KeyState::Current);
    /// ```
    #[must_use]
    pub fn state(&self) -> KeyState {
        self.state
    }

    /// When it was retired, if it was.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let set = JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap();
    /// assert!(set.current().unwrap().retired_at().is_none());
    /// ```
    #[must_use]
    pub fn retired_at(&self) -> Option<OffsetDateTime> {
        self.retired_at
    }

    fn from_der(
        algorithm: Algorithm,
        kid: String,
        state: KeyState,
        created_at: OffsetDateTime,
        der: Vec<u8>,
    ) -> Result<Self, JwtError> {
        let der = Zeroizing::new(der);
        let invalid = |what: &str| JwtError::InvalidKey(format!("key {kid}: {what}"));
        let public = match algorithm {
            Algorithm::EdDSA => {
                let pair = rsig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
                    .map_err(|_| invalid("not an Ed25519 PKCS#8 key"))?;
                PublicKey::Okp {
                    x: pair.public_key().as_ref().to_vec(),
                }
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let (signing, curve, size) = if algorithm == Algorithm::ES256 {
                    (&rsig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&rsig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pair = rsig::EcdsaKeyPair::from_pkcs8(signing, &der, &SystemRandom::new())
                    .map_err(|_| invalid("not an ECDSA PKCS#8 key on the algorithm's curve"))?;
                let point = pair.public_key().as_ref();
                if point.len() != 1 + 2 * size {
                    return Err(invalid("unexpected public point"));
                }
                PublicKey::Ec {
                    curve,
                    x: point[1..=size].to_vec(),
                    y: point[1 + size..].to_vec(),
                }
            }
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
                let pair = rsig::RsaKeyPair::from_pkcs8(&der)
                    .or_else(|_| rsig::RsaKeyPair::from_der(&der))
                    .map_err(|_| invalid("not an RSA key (PKCS#8 or PKCS#1)"))?;
                let c = rsig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                PublicKey::Rsa { n: c.n, e: c.e }
            }
            _ => return Err(JwtError::AlgorithmMismatch(algorithm.name())),
        };
        Ok(Self {
            kid,
            state,
            created_at,
            retired_at: None,
            der,
            public,
        })
    }

    pub(crate) fn encoding_key(&self, algorithm: Algorithm) -> EncodingKey {
        match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&self.der),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_der(&self.der),
            _ => EncodingKey::from_rsa_der(&self.der),
        }
    }

    pub(crate) fn decoding_key(&self) -> Result<DecodingKey, JwtError> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let invalid = |e: jsonwebtoken::errors::Error| JwtError::InvalidKey(e.to_string());
        match &self.public {
            PublicKey::Okp { x } => DecodingKey::from_ed_components(&b64(x)).map_err(invalid),
            PublicKey::Ec { x, y, .. } => {
                DecodingKey::from_ec_components(&b64(x), &b64(y)).map_err(invalid)
            }
            PublicKey::Rsa { n, e } => Ok(DecodingKey::from_rsa_raw_components(n, e)),
        }
    }

    /// The public key as a JWK (RFC 7517): `kid`, `alg`, `use: sig`, and the key's members.
    fn jwk(&self, algorithm: Algorithm) -> serde_json::Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let mut jwk = match &self.public {
            PublicKey::Okp { x } => {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)})
            }
            PublicKey::Ec { curve, x, y } => {
                serde_json::json!({"kty": "EC", "crv": curve, "x": b64(x), "y": b64(y)})
            }
            PublicKey::Rsa { n, e } => serde_json::json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
        };
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), self.kid.clone().into());
            map.insert("alg".into(), algorithm.name().into());
            map.insert("use".into(), "sig".into());
        }
        jwk
    }
}

/// The manifest kept beside the key files.
#[derive(Serialize, Deserialize)]
struct Manifest {
    algorithm: String,
    keys: Vec<ManifestKey>,
}

#[derive(Serialize, Deserialize)]
struct ManifestKey {
    kid: String,
    state: KeyState,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    retired_at: Option<OffsetDateTime>,
}

/// The signing keys of an issuer: one **current** key signs, one **next** key is published
/// ahead of time, **retired** keys keep verifying (and stay published) until what they signed
/// has expired. [`rotate`](Self::rotate) moves next → current → retired and makes a new next;
/// [`jwks`](Self::jwks) is the document other services fetch; [`save`](Self::save) /
/// [`load`](Self::load) keep the set in a folder (`keys.json` and one PEM file per key, readable
/// by the owner only). Ed25519 and ECDSA keys are generated here; RSA keys are imported
/// ([`add_pem`](Self::add_pem)).
///
/// ```
/// use auth_tokens_jwt::{Algorithm, JwtBackend, JwtKeySet};
/// let now = time::OffsetDateTime::now_utc();
/// let mut keys = JwtKeySet::generate(Algorithm::EdDSA, now)?;
/// let jwks = keys.jwks(now, std::time::Duration::from_secs(86_400));
/// assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "current and next");
/// let before = keys.current().unwrap().kid().to_owned();
/// keys.rotate(now)?;
/// assert_eq!(keys.retired().next().unwrap().kid(), before);
/// let jwt = JwtBackend::from_key_set(&keys)?;
/// # let _ = jwt;
/// # Ok::<(), auth_tokens_jwt::JwtError>(())
/// ```
#[derive(Clone)]
pub struct JwtKeySet {
    algorithm: Algorithm,
    keys: Vec<JwtKey>,
}

impl fmt::Debug for JwtKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeySet")
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys)
            .finish()
    }
}

fn new_kid(algorithm: Algorithm, now: OffsetDateTime) -> String {
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes);
    format!(
        "{}-{:04}{:02}{:02}-{}",
        algorithm.name().to_lowercase(),
        now.year(),
        u8::from(now.month()),
        now.day(),
        URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn generate_der(algorithm: Algorithm) -> Result<Vec<u8>, JwtError> {
    let rng = SystemRandom::new();
    let failed = || JwtError::InvalidKey("key generation failed".into());
    let doc = match algorithm {
        Algorithm::EdDSA => rsig::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| failed())?,
        Algorithm::ES256 => {
            rsig::EcdsaKeyPair::generate_pkcs8(&rsig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| failed())?
        }
        Algorithm::ES384 => {
            rsig::EcdsaKeyPair::generate_pkcs8(&rsig::ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
                .map_err(|_| failed())?
        }
        _ => {
            return Err(JwtError::InvalidKey(format!(
                "{} keys are not generated here: provide a PEM file (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072)",
                algorithm.name()
            )));
        }
    };
    Ok(doc.as_ref().to_vec())
}

/// The DER inside a PEM document (`PRIVATE KEY` or `RSA PRIVATE KEY`).
fn pem_der(pem: &str) -> Result<Vec<u8>, JwtError> {
    let invalid = || JwtError::InvalidKey("not a PEM private key".into());
    let start = pem.find("-----BEGIN ").ok_or_else(invalid)?;
    let body_start = pem[start..].find('\n').ok_or_else(invalid)? + start + 1;
    let end = pem[body_start..].find("-----END ").ok_or_else(invalid)? + body_start;
    let body: String = pem[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).map_err(|_| invalid())
}

fn der_pem(der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn io_error(context: &str, path: &Path, e: &std::io::Error) -> JwtError {
    JwtError::InvalidKey(format!("{context} {}: {e}", path.display()))
}

impl JwtKeySet {
    /// A new set for `algorithm` (EdDSA, ES256 or ES384): a current key and a next key.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] for an algorithm whose keys are not generated here (RSA: import
    /// them with [`add_pem`](Self::add_pem)), [`JwtError::AlgorithmMismatch`] for HMAC.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert!(JwtKeySet::generate(Algorithm::RS256, time::OffsetDateTime::now_utc()).is_err());
    /// ```
    pub fn generate(algorithm: Algorithm, now: OffsetDateTime) -> Result<Self, JwtError> {
        let mut set = Self::empty(algorithm)?;
        for state in [KeyState::Current, KeyState::Next] {
            let der = generate_der(algorithm)?;
            set.keys.push(JwtKey::from_der(
                algorithm,
                new_kid(algorithm, now),
                state,
                now,
                der,
            )?);
        }
        Ok(set)
    }

    /// A set with no key yet (add them with [`add_pem`](Self::add_pem)).
    ///
    /// # Errors
    ///
    /// [`JwtError::AlgorithmMismatch`] for an HMAC algorithm.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert!(JwtKeySet::empty(Algorithm::HS256).is_err());
    /// ```
    pub fn empty(algorithm: Algorithm) -> Result<Self, JwtError> {
        if algorithm.is_hmac() {
            return Err(JwtError::AlgorithmMismatch(algorithm.name()));
        }
        Ok(Self {
            algorithm,
            keys: Vec::new(),
        })
    }

    /// Imports a private key (PEM: PKCS#8, or PKCS#1 for RSA) in `state`. Adding a current key
    /// retires the one before it at `now`; adding a next key replaces the next one.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when the key does not parse for the algorithm.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet, KeyState};
    /// let mut set = JwtKeySet::empty(Algorithm::EdDSA).unwrap();
    /// assert!(set.add_pem("k1", "not a key", KeyState::Current, time::OffsetDateTime::now_utc()).is_err());
    /// ```
    pub fn add_pem(
        &mut self,
        kid: &str,
        pem: &str,
        state: KeyState,
        now: OffsetDateTime,
    ) -> Result<(), JwtError> {
        let key = JwtKey::from_der(self.algorithm, kid.to_owned(), state, now, pem_der(pem)?)?;
        self.place(key, now);
        Ok(())
    }

    fn place(&mut self, key: JwtKey, now: OffsetDateTime) {
        match key.state {
            KeyState::Current => {
                for k in &mut self.keys {
                    if k.state == KeyState::Current {
                        k.state = KeyState::Retired;
                        k.retired_at = Some(now);
                    }
                }
            }
            KeyState::Next => self.keys.retain(|k| k.state != KeyState::Next),
            KeyState::Retired => {}
        }
        self.keys.retain(|k| k.kid != key.kid);
        self.keys.push(key);
    }

    /// The algorithm.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert_eq!(JwtKeySet::empty(Algorithm::ES256).unwrap().algorithm(), Algorithm::ES256);
    /// ```
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Every key.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert_eq!(JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap().keys().len(), 2);
    /// ```
    #[must_use]
    pub fn keys(&self) -> &[JwtKey] {
        &self.keys
    }

    /// The signing key.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert!(JwtKeySet::empty(Algorithm::EdDSA).unwrap().current().is_none());
    /// ```
    #[must_use]
    pub fn current(&self) -> Option<&JwtKey> {
        self.keys.iter().find(|k| k.state == KeyState::Current)
    }

    /// The key that signs after the next rotation.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert!(JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap().next().is_some());
    /// ```
    #[must_use]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&self) -> Option<&JwtKey> {
        self.keys.iter().find(|k| k.state == KeyState::Next)
    }

    /// The retired keys, most recently retired first.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// assert_eq!(JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc()).unwrap().retired().count(), 0);
    /// ```
    pub fn retired(&self) -> impl Iterator<Item = &JwtKey> {
        let mut retired: Vec<&JwtKey> = self
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Retired)
            .collect();
        retired.sort_by_key(|k| std::cmp::Reverse(k.retired_at));
        retired.into_iter()
    }

    /// Next becomes current, current is retired at `now`, and a new next key is made (EdDSA,
    /// ECDSA; for RSA, [`add_pem`](Self::add_pem) the next key first).
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when there is no next key and none can be generated.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet, KeyState};
    /// let now = time::OffsetDateTime::now_utc();
    /// let mut set = JwtKeySet::generate(Algorithm::ES256, now).unwrap();
    /// let next = set.next().unwrap().kid().to_owned();
    /// set.rotate(now).unwrap();
    /// assert_eq!(set.current().unwrap().kid(), next);
    /// assert_eq!(set.keys().len(), 3);
    /// ```
    pub fn rotate(&mut self, now: OffsetDateTime) -> Result<(), JwtError> {
        let fresh = match self.next() {
            Some(_) => None,
            None => Some(generate_der(self.algorithm)?),
        };
        if let Some(der) = fresh {
            let kid = new_kid(self.algorithm, now);
            self.keys.push(JwtKey::from_der(
                self.algorithm,
                kid,
                KeyState::Next,
                now,
                der,
            )?);
        }
        for k in &mut self.keys {
            match k.state {
                KeyState::Current => {
                    k.state = KeyState::Retired;
                    k.retired_at = Some(now);
                }
                KeyState::Next => k.state = KeyState::Current,
                KeyState::Retired => {}
            }
        }
        // The next key of the new current one, made now so verifiers see it ahead of time.
        if let Ok(der) = generate_der(self.algorithm) {
            let kid = new_kid(self.algorithm, now);
            self.keys.push(JwtKey::from_der(
                self.algorithm,
                kid,
                KeyState::Next,
                now,
                der,
            )?);
        }
        Ok(())
    }

    /// Forgets retired keys older than `retention` (the longest a token they signed can live);
    /// returns their ids.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let now = time::OffsetDateTime::now_utc();
    /// let mut set = JwtKeySet::generate(Algorithm::EdDSA, now).unwrap();
    /// set.rotate(now).unwrap();
    /// let later = now + time::Duration::days(8);
    /// assert_eq!(set.prune(later, std::time::Duration::from_secs(7 * 86_400)).len(), 1);
    /// ```
    pub fn prune(&mut self, now: OffsetDateTime, retention: std::time::Duration) -> Vec<String> {
        let keep = |k: &JwtKey| {
            k.retired_at.is_none_or(|at| {
                at + time::Duration::try_from(retention).unwrap_or(time::Duration::MAX) > now
            })
        };
        let gone = self
            .keys
            .iter()
            .filter(|k| !keep(k))
            .map(|k| k.kid.clone())
            .collect();
        self.keys.retain(keep);
        gone
    }

    /// The JWKS document (RFC 7517): next, current, and retired keys younger than `retention`.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let now = time::OffsetDateTime::now_utc();
    /// let set = JwtKeySet::generate(Algorithm::ES256, now).unwrap();
    /// let jwks = set.jwks(now, std::time::Duration::from_secs(60));
    /// assert_eq!(jwks["keys"][0]["kty"], "EC");
    /// assert!(jwks["keys"][0].get("d").is_none(), "public halves only");
    /// ```
    #[must_use]
    pub fn jwks(&self, now: OffsetDateTime, retention: std::time::Duration) -> serde_json::Value {
        let mut pruned = self.clone();
        pruned.prune(now, retention);
        // The signing key first, then the next one, then the retired ones.
        let order = |k: &&JwtKey| match k.state {
            KeyState::Current => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        };
        let mut keys: Vec<&JwtKey> = pruned.keys.iter().collect();
        keys.sort_by_key(order);
        serde_json::json!({
            "keys": keys.iter().map(|k| k.jwk(self.algorithm)).collect::<Vec<_>>()
        })
    }

    /// Writes the set into `dir` (created if missing): `keys.json` and `<kid>.pem` per key,
    /// readable by the owner only; files of forgotten keys are removed.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] naming the file that cannot be written.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let dir = std::env::temp_dir().join(format!("jwt-keys-doc-{}", std::process::id()));
    /// let now = time::OffsetDateTime::now_utc();
    /// let set = JwtKeySet::generate(Algorithm::EdDSA, now).unwrap();
    /// set.save(&dir).unwrap();
    /// let again = JwtKeySet::load(&dir).unwrap();
    /// assert_eq!(again.current().unwrap().kid(), set.current().unwrap().kid());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// ```
    pub fn save(&self, dir: &Path) -> Result<(), JwtError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, &e))?;
        for k in &self.keys {
            write_private(
                &dir.join(format!("{}.pem", k.kid)),
                der_pem(&k.der).as_bytes(),
            )?;
        }
        let manifest = Manifest {
            algorithm: self.algorithm.name().to_owned(),
            keys: self
                .keys
                .iter()
                .map(|k| ManifestKey {
                    kid: k.kid.clone(),
                    state: k.state,
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| JwtError::InvalidKey(e.to_string()))?;
        // Written aside and renamed: a reader never sees half a manifest.
        let manifest_path = Self::manifest_path(dir);
        let temporary = dir.join("keys.json.tmp");
        write_private(&temporary, &json)?;
        std::fs::rename(&temporary, &manifest_path)
            .map_err(|e| io_error("cannot write", &manifest_path, &e))?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(kid) = name.strip_suffix(".pem")
                    && !self.keys.iter().any(|k| k.kid == kid)
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// The manifest's path in `dir` (its modification time says when the set changed).
    ///
    /// ```
    /// # use auth_tokens_jwt::JwtKeySet;
    /// assert!(JwtKeySet::manifest_path(std::path::Path::new("/keys")).ends_with("keys.json"));
    /// ```
    #[must_use]
    pub fn manifest_path(dir: &Path) -> PathBuf {
        dir.join("keys.json")
    }

    /// Reads a set written by [`save`](Self::save).
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] naming the file that is missing or does not parse.
    ///
    /// ```
    /// # use auth_tokens_jwt::JwtKeySet;
    /// assert!(JwtKeySet::load(std::path::Path::new("/nonexistent")).is_err());
    /// ```
    pub fn load(dir: &Path) -> Result<Self, JwtError> {
        let manifest_path = Self::manifest_path(dir);
        let json = std::fs::read(&manifest_path)
            .map_err(|e| io_error("cannot read", &manifest_path, &e))?;
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| JwtError::InvalidKey(format!("{}: {e}", manifest_path.display())))?;
        let algorithm = Algorithm::from_name(&manifest.algorithm).ok_or_else(|| {
            JwtError::InvalidKey(format!(
                "{}: unknown algorithm {}",
                manifest_path.display(),
                manifest.algorithm
            ))
        })?;
        let mut set = Self::empty(algorithm)?;
        for m in manifest.keys {
            let path = dir.join(format!("{}.pem", m.kid));
            let pem = Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| io_error("cannot read", &path, &e))?,
            );
            let mut key =
                JwtKey::from_der(algorithm, m.kid, m.state, m.created_at, pem_der(&pem)?)?;
            key.retired_at = m.retired_at;
            set.keys.push(key);
        }
        if set.current().is_none() {
            return Err(JwtError::InvalidKey(format!(
                "{}: no current key",
                manifest_path.display()
            )));
        }
        Ok(set)
    }
}

/// The sealed form's version and the label its encryption key is derived under.
const SEALED_PREFIX: &str = "v1.";
const SEAL_LABEL: &[u8] = b"auth-jwt-keys/v1";

/// What is sealed: the manifest and each key's private half.
#[derive(Serialize, Deserialize)]
struct SealedSet {
    algorithm: String,
    keys: Vec<SealedKey>,
}

#[derive(Serialize, Deserialize)]
struct SealedKey {
    #[serde(flatten)]
    meta: ManifestKey,
    /// The private key, PKCS#8 or PKCS#1 DER in standard base64.
    der: String,
}

/// AES-256-GCM under a key derived from `secret` with HKDF-SHA256.
fn seal_key(secret: &[u8]) -> Result<ring::aead::LessSafeKey, JwtError> {
    use ring::{aead, hkdf};
    if secret.len() < 32 {
        return Err(JwtError::InvalidKey(
            "the secret that seals signing keys must be at least 32 bytes".into(),
        ));
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SEAL_LABEL).extract(secret);
    let info = [SEAL_LABEL];
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| JwtError::InvalidKey("key derivation failed".into()))?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

impl JwtKeySet {
    /// The whole set (algorithm, states, dates and private keys) encrypted under `secret`, as
    /// one line of text to keep in a database: AES-256-GCM with a fresh nonce, its key derived
    /// from `secret` by HKDF-SHA256. Nothing of a private key is readable without `secret`,
    /// and a sealed set that was altered does not open.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when `secret` is shorter than 32 bytes.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtKeySet};
    /// let secret = b"0123456789abcdef0123456789abcdef";
    /// let set = JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc())?;
    /// let sealed = set.seal(secret)?;
    /// assert!(sealed.starts_with("v1."));
    /// let opened = JwtKeySet::unseal(&sealed, secret)?;
    /// assert_eq!(opened.current().unwrap().kid(), set.current().unwrap().kid());
    /// assert!(JwtKeySet::unseal(&sealed, b"another secret, 32 bytes or more").is_err());
    /// # Ok::<(), auth_tokens_jwt::JwtError>(())
    /// ```
    pub fn seal(&self, secret: &[u8]) -> Result<String, JwtError> {
        use ring::aead;
        let key = seal_key(secret)?;
        let plain = SealedSet {
            algorithm: self.algorithm.name().to_owned(),
            keys: self
                .keys
                .iter()
                .map(|k| SealedKey {
                    meta: ManifestKey {
                        kid: k.kid.clone(),
                        state: k.state,
                        created_at: k.created_at,
                        retired_at: k.retired_at,
                    },
                    der: STANDARD.encode(&*k.der),
                })
                .collect(),
        };
        let mut buffer = Zeroizing::new(
            serde_json::to_vec(&plain).map_err(|e| JwtError::InvalidKey(e.to_string()))?,
        );
        for k in plain.keys {
            drop(Zeroizing::new(k.der));
        }
        let mut nonce = [0u8; aead::NONCE_LEN];
        ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut nonce)
            .map_err(|_| JwtError::InvalidKey("no randomness for the nonce".into()))?;
        let mut sealed = std::mem::take(&mut *buffer);
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(SEAL_LABEL),
            &mut sealed,
        )
        .map_err(|_| JwtError::InvalidKey("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what [`seal`](Self::seal) wrote with the same `secret`.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when the text is not a sealed set, was altered, or was sealed
    /// under another secret (the message says so, never what it holds).
    ///
    /// ```
    /// # use auth_tokens_jwt::JwtKeySet;
    /// let err = JwtKeySet::unseal("v1.AAAA", b"0123456789abcdef0123456789abcdef").unwrap_err();
    /// assert!(err.to_string().contains("cannot be opened"), "{err}");
    /// ```
    pub fn unseal(sealed: &str, secret: &[u8]) -> Result<Self, JwtError> {
        use ring::aead;
        let key = seal_key(secret)?;
        let refused = || {
            JwtError::InvalidKey(
                "the stored signing keys cannot be opened with this secret (another secret sealed them, or they were altered)"
                    .into(),
            )
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > aead::NONCE_LEN)
            .ok_or_else(refused)?;
        let (nonce, cipher) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut cipher = Zeroizing::new(cipher.to_vec());
        let plain = key
            .open_in_place(nonce, aead::Aad::from(SEAL_LABEL), &mut cipher)
            .map_err(|_| refused())?;
        let set: SealedSet = serde_json::from_slice(plain).map_err(|_| refused())?;
        let algorithm = Algorithm::from_name(&set.algorithm).ok_or_else(refused)?;
        let mut out = Self::empty(algorithm)?;
        for k in set.keys {
            let der = Zeroizing::new(k.der);
            let der = STANDARD.decode(der.as_bytes()).map_err(|_| refused())?;
            let mut key =
                JwtKey::from_der(algorithm, k.meta.kid, k.meta.state, k.meta.created_at, der)?;
            key.retired_at = k.meta.retired_at;
            out.keys.push(key);
        }
        if out.current().is_none() {
            return Err(JwtError::InvalidKey(
                "the stored signing keys have no current key".into(),
            ));
        }
        Ok(out)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), JwtError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| io_error("cannot write", path, &e))?;
    file.write_all(bytes)
        .map_err(|e| io_error("cannot write", path, &e))
}
