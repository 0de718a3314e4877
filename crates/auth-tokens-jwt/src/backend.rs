//! `JwtBackend`: a `TokenBackend` issuing and verifying JWTs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Clock, Consumption, Error, IssueRequest, MAX_TOKEN_LENGTH, MemoryRevocationStore, RefreshGuard,
    Result, RevocationQuery, RevocationStore, RotateOutcome, RotateRequest, SecretString,
    SessionInfo, SharedClock, SystemClock, TokenBackend, TokenKind, TokenPair, UserId, async_trait,
    random,
};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use time::OffsetDateTime;

use crate::algorithm::Algorithm;
use crate::claims::{Audience, WireClaims};
use crate::error::JwtError;

#[derive(Clone)]
struct VerifyKey {
    kid: Option<String>,
    key: DecodingKey,
}

/// Issues and verifies JWTs (RFC 8725 best practice), on ring.
///
/// - Claims: `sub`, `token_type` (`access`/`refresh`), `jti`, `iat`, `exp`, optional `nbf`,
///   `iss`, `aud`, `extra` — tortoise-auth's names, so its tokens verify here with the same secret —
///   plus `family`, `fexp` (the session's absolute end) and, on refresh tokens, `ajti` (the
///   paired access token).
/// - The algorithm is pinned; the issuer and audience are checked when configured; a token of
///   the wrong kind, expired, not yet valid, tampered or signed by another key is refused with a
///   typed error. `kid` in the header selects among verification keys for rotation.
/// - **Revocation is on by default** (an in-memory [`RevocationStore`]; pass a shared one with
///   [`with_revocation_store`](Self::with_revocation_store)): logout revokes the token's session,
///   refresh tokens are single-use with reuse detection, and logout everywhere is one per-user
///   "not before" entry. [`insecure_without_revocation`](Self::insecure_without_revocation)
///   turns it off explicitly; `logout` then says so with an error instead of doing nothing.
/// - `verify` of an access token touches no store when revocation is off and the revocation
///   store once when it is on; the user is loaded by `AuthService`, not here.
///
/// ```
/// use std::time::Duration;
/// use auth_core::{FixedClock, IssueRequest, TokenBackend, TokenKind, UserId};
/// use auth_tokens_jwt::{Algorithm, JwtBackend};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FixedClock::from_unix(1_700_000_000);
/// let jwt = JwtBackend::hmac(Algorithm::HS256, "a-secret-of-at-least-32-bytes-long!!")
///     .with_issuer("https://auth.example.com")
///     .with_audience("api")
///     .with_leeway(Duration::from_secs(5))
///     .with_clock(clock.clone());
/// let pair = jwt.issue(&IssueRequest::new(UserId::new("42"))).await?;
/// let claims = jwt.verify(pair.access_token.expose_secret(), TokenKind::Access).await?;
/// assert_eq!(claims.sub, "42");
/// clock.advance(Duration::from_secs(906));
/// assert!(matches!(
///     jwt.verify(pair.access_token.expose_secret(), TokenKind::Access).await,
///     Err(auth_core::Error::TokenExpired)
/// ));
/// # Ok::<(), auth_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct JwtBackend {
    algorithm: Algorithm,
    signing: Option<(EncodingKey, Option<String>)>,
    verifying: Vec<VerifyKey>,
    misconfigured: Option<JwtError>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    clock: SharedClock,
    revocation: Option<Arc<dyn RevocationStore>>,
    default_store: bool,
    /// Built on first use from algorithm, issuer and audience (builders reset it).
    validation: std::sync::OnceLock<Validation>,
    /// Tokens whose signature and claims already verified, by their exact text. Time, kind
    /// and revocation are still checked on every use; this only skips re-verifying the same
    /// bytes. Bounded: emptied when full.
    verified: Arc<std::sync::Mutex<std::collections::HashMap<Box<str>, WireClaims>>>,
}

/// Tokens kept in the verified-signature cache.
const VERIFIED_CACHE: usize = 8_192;

impl JwtBackend {
    fn base(algorithm: Algorithm) -> Self {
        crate::provider::install();
        Self {
            algorithm,
            signing: None,
            verifying: Vec::new(),
            misconfigured: None,
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
            clock: Arc::new(SystemClock),
            validation: std::sync::OnceLock::new(),
            verified: Arc::default(),
            revocation: Some(Arc::new(MemoryRevocationStore::new())),
            default_store: true,
        }
    }

    /// An HMAC backend (HS256, HS384 or HS512) with a shared secret. It accepts any secret so
    /// that an existing deployment's tokens keep verifying; use [`try_hmac`](Self::try_hmac) to
    /// insist on a secret as long as the hash (what `auth-server` does). A non-HMAC algorithm or
    /// an empty secret makes `issue` a configuration error and every token invalid.
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS384, "a-secret-of-at-least-48-bytes-long-for-hs384-!!!!");
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn hmac(algorithm: Algorithm, secret: &str) -> Self {
        let mut backend = Self::base(algorithm);
        if !algorithm.is_hmac() {
            backend.misconfigured = Some(JwtError::AlgorithmMismatch(algorithm.name()));
            return backend;
        }
        if secret.is_empty() {
            backend.misconfigured = Some(JwtError::WeakSecret {
                min: algorithm.min_secret(),
            });
            return backend;
        }
        #[cfg(feature = "tracing")]
        if secret.len() < algorithm.min_secret() {
            tracing::warn!(
                algorithm = algorithm.name(),
                min = algorithm.min_secret(),
                "JWT HMAC secret is shorter than the hash output; set a longer AUTH_JWT_SECRET"
            );
        }
        backend.signing = Some((EncodingKey::from_secret(secret.as_bytes()), None));
        backend.verifying.push(VerifyKey {
            kid: None,
            key: DecodingKey::from_secret(secret.as_bytes()),
        });
        backend
    }

    /// Like [`hmac`](Self::hmac), refusing a secret shorter than the hash output (32, 48 or 64
    /// bytes) or a non-HMAC algorithm.
    ///
    /// # Errors
    ///
    /// [`JwtError::WeakSecret`], [`JwtError::AlgorithmMismatch`].
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// assert!(JwtBackend::try_hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef").is_ok());
    /// assert!(JwtBackend::try_hmac(Algorithm::EdDSA, "0123456789abcdef0123456789abcdef").is_err());
    /// ```
    pub fn try_hmac(algorithm: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, JwtError> {
        if !algorithm.is_hmac() {
            return Err(JwtError::AlgorithmMismatch(algorithm.name()));
        }
        let secret = secret.as_ref();
        if secret.len() < algorithm.min_secret() {
            return Err(JwtError::WeakSecret {
                min: algorithm.min_secret(),
            });
        }
        let mut backend = Self::base(algorithm);
        backend.signing = Some((EncodingKey::from_secret(secret), None));
        backend.verifying.push(VerifyKey {
            kid: None,
            key: DecodingKey::from_secret(secret),
        });
        Ok(backend)
    }

    /// An asymmetric backend (ES256, ES384, EdDSA, RS256/384/512) from a PKCS#8 private key and
    /// its public key, both PEM. Other services verify with [`verifier`](Self::verifier) and the
    /// public key alone.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when a key does not parse for the algorithm;
    /// [`JwtError::AlgorithmMismatch`] for an HMAC algorithm.
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// assert!(JwtBackend::from_pem(Algorithm::EdDSA, b"not a key", b"not a key").is_err());
    /// ```
    pub fn from_pem(
        algorithm: Algorithm,
        private_pem: &[u8],
        public_pem: &[u8],
    ) -> Result<Self, JwtError> {
        let mut backend = Self::verifier(algorithm, public_pem)?;
        let invalid = |e: jsonwebtoken::errors::Error| JwtError::InvalidKey(e.to_string());
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(private_pem).map_err(invalid)?
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem).map_err(invalid)?,
            _ => EncodingKey::from_rsa_pem(private_pem).map_err(invalid)?,
        };
        // Prove the pair works now rather than at the first login.
        let probe = jsonwebtoken::encode(
            &Header::new(algorithm.to_jwt()),
            &serde_json::json!({}),
            &key,
        )
        .map_err(invalid)?;
        jsonwebtoken::decode::<serde_json::Value>(&probe, &backend.verifying[0].key, &{
            let mut v = Validation::new(algorithm.to_jwt());
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v
        })
        .map_err(|_| JwtError::InvalidKey("the private and public keys do not match".into()))?;
        backend.signing = Some((key, None));
        Ok(backend)
    }

    /// A verify-only backend from a public key (PEM): for services that accept tokens but do not
    /// issue them. `issue` and `rotate` are [`Error::Unsupported`].
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`], [`JwtError::AlgorithmMismatch`].
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// assert!(JwtBackend::verifier(Algorithm::HS256, b"").is_err());
    /// ```
    pub fn verifier(algorithm: Algorithm, public_pem: &[u8]) -> Result<Self, JwtError> {
        let key = decoding_from_pem(algorithm, public_pem)?;
        let mut backend = Self::base(algorithm);
        backend.verifying.push(VerifyKey { kid: None, key });
        Ok(backend)
    }

    /// A backend signing with `keys`' current key (its `kid` in every header) and verifying
    /// with every key of the set: the next one (before it signs), the current one, and the
    /// retired ones (until they are pruned).
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`] when the set has no current key or a key does not load.
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend, JwtKeySet};
    /// let keys = JwtKeySet::generate(Algorithm::EdDSA, time::OffsetDateTime::now_utc())?;
    /// let jwt = JwtBackend::from_key_set(&keys)?;
    /// # let _ = jwt;
    /// # Ok::<(), auth_tokens_jwt::JwtError>(())
    /// ```
    pub fn from_key_set(keys: &crate::JwtKeySet) -> Result<Self, JwtError> {
        let algorithm = keys.algorithm();
        let current = keys
            .current()
            .ok_or_else(|| JwtError::InvalidKey("the key set has no current key".into()))?;
        let mut backend = Self::base(algorithm);
        backend.signing = Some((
            current.encoding_key(algorithm),
            Some(current.kid().to_owned()),
        ));
        // The signing key's own first, then the rest.
        backend.verifying.push(VerifyKey {
            kid: Some(current.kid().to_owned()),
            key: current.decoding_key()?,
        });
        for key in keys.keys().iter().filter(|k| k.kid() != current.kid()) {
            backend.verifying.push(VerifyKey {
                kid: Some(key.kid().to_owned()),
                key: key.decoding_key()?,
            });
        }
        Ok(backend)
    }

    /// Names the current key: new tokens carry `kid` in their header, and tokens whose `kid`
    /// names a key are verified with that key only.
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef").with_key_id("2026-11");
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_key_id(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if let Some((_, current)) = self.signing.as_mut() {
            *current = Some(kid.clone());
        }
        self.reset_caches();
        if let Some(first) = self.verifying.first_mut() {
            first.kid = Some(kid);
        }
        self
    }

    /// Adds an older HMAC secret that still verifies (key rotation), optionally with its `kid`.
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "new-secret-0123456789abcdef0123456789")
    ///     .with_fallback_secret(Some("2025-11"), "old-secret-0123456789abcdef0123456789");
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_fallback_secret(mut self, kid: Option<&str>, secret: &str) -> Self {
        self.reset_caches();
        self.verifying.push(VerifyKey {
            kid: kid.map(str::to_owned),
            key: DecodingKey::from_secret(secret.as_bytes()),
        });
        self
    }

    /// Adds an older public key that still verifies (key rotation), optionally with its `kid`.
    ///
    /// # Errors
    ///
    /// [`JwtError::InvalidKey`].
    ///
    /// ```
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef");
    /// assert!(jwt.with_fallback_public_pem(Some("old"), b"garbage").is_err());
    /// ```
    pub fn with_fallback_public_pem(
        mut self,
        kid: Option<&str>,
        pem: &[u8],
    ) -> Result<Self, JwtError> {
        let key = decoding_from_pem(self.algorithm, pem)?;
        self.reset_caches();
        self.verifying.push(VerifyKey {
            kid: kid.map(str::to_owned),
            key,
        });
        Ok(self)
    }

    /// Adds and requires the `iss` claim.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef").with_issuer("auth");
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self.reset_caches();
        self
    }

    /// Adds and requires the `aud` claim.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef").with_audience("api");
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_owned());
        self.reset_caches();
        self
    }

    /// Tolerates this much clock skew on `exp` and `nbf` (default none).
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef")
    ///     .with_leeway(std::time::Duration::from_secs(30));
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Reads time from `clock` (also for the default in-memory revocation store).
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef")
    ///     .with_clock(auth_core::FixedClock::from_unix(1_700_000_000));
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + Clone) -> Self {
        if self.default_store {
            self.revocation = Some(Arc::new(
                MemoryRevocationStore::new().with_clock(clock.clone()),
            ));
        }
        self.clock = Arc::new(clock);
        self
    }

    /// Uses a shared revocation store (SQL or Redis, for several instances).
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef")
    ///     .with_revocation_store(auth_core::MemoryRevocationStore::new());
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_revocation_store(mut self, store: impl RevocationStore) -> Self {
        self.revocation = Some(Arc::new(store));
        self.default_store = false;
        self
    }

    /// Like [`with_revocation_store`](Self::with_revocation_store), with a store already
    /// shared (several backends over one mirror, say).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let store: Arc<dyn auth_core::RevocationStore> = Arc::new(auth_core::MemoryRevocationStore::new());
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef")
    ///     .with_shared_revocation_store(Arc::clone(&store));
    /// # let _ = jwt;
    /// ```
    #[must_use]
    pub fn with_shared_revocation_store(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.revocation = Some(store);
        self.default_store = false;
        self
    }

    /// Turns revocation off: `verify` then touches no store, but **logout cannot end a token**
    /// (it returns [`Error::Unsupported`] saying so), logout everywhere likewise, and refresh
    /// tokens stay usable until they expire (no single use, no reuse detection). Choose it only
    /// for short-lived access tokens where that is acceptable.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// let jwt = JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef")
    ///     .insecure_without_revocation();
    /// assert!(!jwt.revocation_enabled());
    /// ```
    #[must_use]
    pub fn insecure_without_revocation(mut self) -> Self {
        self.revocation = None;
        self.default_store = false;
        self
    }

    /// Whether revocation is on.
    ///
    /// ```
    /// # use auth_tokens_jwt::{Algorithm, JwtBackend};
    /// assert!(JwtBackend::hmac(Algorithm::HS256, "0123456789abcdef0123456789abcdef").revocation_enabled());
    /// ```
    #[must_use]
    pub fn revocation_enabled(&self) -> bool {
        self.revocation.is_some()
    }

    fn validation(&self) -> Validation {
        let mut v = Validation::new(self.algorithm.to_jwt());
        // Time is checked against our Clock, with our leeway, below.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        // jsonwebtoken checks `iss` and `aud` only when present; a configured issuer or audience
        // must also be required, or a token that omits the claim would pass.
        match &self.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                v.required_spec_claims.insert("iss".to_owned());
            }
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                v.required_spec_claims.insert("aud".to_owned());
            }
            None => v.validate_aud = false,
        }
        v
    }

    /// Checks signature, algorithm, issuer and audience; not time, kind or revocation.
    fn decode(&self, token: &str) -> Result<WireClaims> {
        if token.is_empty() || token.len() > MAX_TOKEN_LENGTH || self.misconfigured.is_some() {
            return Err(Error::TokenInvalid);
        }
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|cache| cache.get(token).cloned());
        if let Some(claims) = cached {
            return Ok(claims);
        }
        let claims = self.decode_uncached(token)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE {
                cache.clear();
            }
            cache.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    /// Forgets derived state when keys, issuer or audience change (a clone made before the
    /// change keeps its own).
    fn reset_caches(&mut self) {
        self.validation = std::sync::OnceLock::new();
        self.verified = Arc::default();
    }

    fn decode_uncached(&self, token: &str) -> Result<WireClaims> {
        let validation = self.validation.get_or_init(|| self.validation());
        // With one key there is nothing to choose: skip parsing the header twice (decode checks
        // its algorithm).
        let kid = if self.verifying.len() > 1 {
            jsonwebtoken::decode_header(token)
                .map_err(|_| Error::TokenInvalid)?
                .kid
        } else {
            None
        };
        let candidates = self
            .verifying
            .iter()
            .filter(|k| kid.is_none() || k.kid == kid);
        for candidate in candidates {
            match jsonwebtoken::decode::<WireClaims>(token, &candidate.key, validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => {}
                Err(_e) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!(error = %_e, "JWT refused");
                    return Err(Error::TokenInvalid);
                }
            }
        }
        #[cfg(feature = "tracing")]
        tracing::debug!("JWT refused: no key verifies its signature");
        Err(Error::TokenInvalid)
    }

    /// Checks expiry and not-before against the clock, and the kind.
    fn check_time_and_kind(&self, claims: &WireClaims, kind: TokenKind) -> Result<()> {
        let now = self.clock.now().unix_timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.token_type != kind {
            return Err(Error::TokenInvalid);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(Error::TokenInvalid);
        }
        if claims.exp <= now.saturating_sub(leeway) {
            return Err(Error::TokenExpired);
        }
        // Issued in the future by more than the tolerance: the issuer's clock runs ahead, and
        // its tokens would outlive cut-offs made by correct clocks. Refused (fail closed).
        if claims.iat
            > now
                .saturating_add(leeway)
                .saturating_add(ISSUED_AHEAD_TOLERANCE)
        {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                ahead_s = claims.iat.saturating_sub(now),
                "token issued in the future: the issuing instance's clock runs ahead"
            );
            return Err(Error::TokenInvalid);
        }
        Ok(())
    }

    fn query(claims: &WireClaims) -> RevocationQuery {
        RevocationQuery::new(
            claims.jti.clone(),
            UserId::new(claims.sub.clone()),
            claims.iat,
        )
        .with_issued_at_micros(claims.issued_at_micros())
        .with_family(claims.family_or_jti().to_owned())
        // Only refresh tokens are ever consumed; an access token's revocation is always held
        // by a mirror, so checking one costs no I/O.
        .with_consumable(claims.token_type == TokenKind::Refresh)
    }

    /// Whether the token's session (its family, or its user's cut-off) is revoked, whatever
    /// became of the token itself: answered from memory by a mirror.
    fn session_query(claims: &WireClaims) -> RevocationQuery {
        RevocationQuery::new(String::new(), UserId::new(claims.sub.clone()), claims.iat)
            .with_issued_at_micros(claims.issued_at_micros())
            .with_family(claims.family_or_jti().to_owned())
            .with_consumable(false)
    }

    fn sign(&self, claims: &WireClaims) -> Result<String> {
        if let Some(err) = &self.misconfigured {
            return Err(Error::from(err.clone()));
        }
        let (key, kid) = self.signing.as_ref().ok_or(Error::Unsupported(
            "this JWT backend only verifies (no private key)".into(),
        ))?;
        let mut header = Header::new(self.algorithm.to_jwt());
        header.kid.clone_from(kid);
        jsonwebtoken::encode(&header, claims, key).map_err(|e| Error::backend("signing a JWT", e))
    }

    /// Issues a pair in `family` at `instant`, ending no later than `fexp`. The token ids are
    /// random, or, for the successor of a rotated refresh token, derived from its id
    /// (`successor_of`): a racing request of the same client within the reuse window then
    /// rebuilds the very same pair (same ids, same instants), not a second session.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &self,
        user_id: &str,
        family: &str,
        fexp: i64,
        extra: Option<auth_core::ExtraClaims>,
        lifetimes: &auth_core::TokenLifetimes,
        instant: OffsetDateTime,
        successor_of: Option<&str>,
    ) -> Result<TokenPair> {
        let instant = auth_core::truncate_to_micros(instant);
        let now = instant.unix_timestamp();
        let now_us = i64::try_from(instant.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let access_exp = now.saturating_add(secs(lifetimes.access())).min(fexp);
        let refresh_exp = now.saturating_add(secs(lifetimes.refresh())).min(fexp);
        let aud = self.audience.clone().map(Audience::One);
        let extra = extra.filter(|e| !e.is_empty());
        let (access_jti, refresh_jti) = match successor_of {
            Some(previous) => (
                successor_jti(previous, "access"),
                successor_jti(previous, "refresh"),
            ),
            None => (random::token(16), random::token(16)),
        };
        let access = WireClaims {
            sub: user_id.to_owned(),
            token_type: TokenKind::Access,
            jti: access_jti,
            iat: now,
            iat_us: Some(now_us),
            exp: access_exp,
            nbf: None,
            iss: self.issuer.clone(),
            aud: aud.clone(),
            extra: extra.clone(),
            family: Some(family.to_owned()),
            fexp: Some(fexp),
            ajti: None,
            aexp: None,
        };
        let refresh = WireClaims {
            token_type: TokenKind::Refresh,
            jti: refresh_jti,
            exp: refresh_exp,
            ajti: Some(access.jti.clone()),
            aexp: Some(access_exp),
            ..access.clone()
        };
        let at = |secs: i64| {
            OffsetDateTime::from_unix_timestamp(secs).map_err(|e| Error::backend("token expiry", e))
        };
        Ok(TokenPair::new(
            SecretString::new(self.sign(&access)?),
            at(access_exp)?,
            SecretString::new(self.sign(&refresh)?),
            at(refresh_exp)?,
        ))
    }

    fn store(&self) -> Result<&Arc<dyn RevocationStore>> {
        self.revocation.as_ref().ok_or(Error::Unsupported(
            "JWT revocation is disabled (insecure_without_revocation): tokens stay valid until they expire".into(),
        ))
    }

    fn instant(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether a refresh token consumed at `consumed` and presented again now is its own
    /// client racing: within `window` of the consumption, and the successor not yet used (a
    /// used successor means the chain moved on, so this is a replay) nor its session ended.
    async fn same_client(
        &self,
        store: &Arc<dyn RevocationStore>,
        claims: &WireClaims,
        consumed: OffsetDateTime,
        window: Duration,
    ) -> Result<bool> {
        if window.is_zero() {
            return Ok(false);
        }
        let since = self.clock.now() - consumed;
        if since > time::Duration::try_from(window).unwrap_or(time::Duration::MAX) {
            return Ok(false);
        }
        let successor = RevocationQuery::new(
            successor_jti(&claims.jti, "refresh"),
            UserId::new(claims.sub.clone()),
            consumed.unix_timestamp(),
        )
        .with_issued_at_micros(
            i64::try_from(consumed.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX),
        )
        .with_family(claims.family_or_jti().to_owned());
        Ok(!store.is_revoked(&successor).await?)
    }

    /// Revokes a token's session until its family could have ended.
    async fn revoke_session_of(
        &self,
        store: &Arc<dyn RevocationStore>,
        claims: &WireClaims,
    ) -> Result<()> {
        let until = Self::instant(claims.fexp.unwrap_or(claims.exp).max(claims.exp));
        // The session first: instances learn of revocations in the order they were written,
        // so one that refuses this access token already knows its whole session is over (a
        // refresh racing the logout on another instance is refused too).
        store.revoke_family(claims.family_or_jti(), until).await?;
        store.revoke(&claims.jti, Self::instant(claims.exp)).await?;
        store.end_session(claims.family_or_jti()).await
    }
}

fn decoding_from_pem(algorithm: Algorithm, pem: &[u8]) -> Result<DecodingKey, JwtError> {
    let invalid = |e: jsonwebtoken::errors::Error| JwtError::InvalidKey(e.to_string());
    match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem).map_err(invalid),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem).map_err(invalid),
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            DecodingKey::from_rsa_pem(pem).map_err(invalid)
        }
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            Err(JwtError::AlgorithmMismatch(algorithm.name()))
        }
    }
}

impl fmt::Debug for JwtBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBackend")
            .field("algorithm", &self.algorithm)
            .field("can_issue", &self.signing.is_some())
            .field("verification_keys", &self.verifying.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("revocation", &self.revocation.is_some())
            .finish_non_exhaustive()
    }
}

/// How far in the future (beyond the leeway) a token's issue instant may lie, in seconds:
/// instances' clocks differ by milliseconds under NTP; a token from further ahead is refused.
///
/// ```
/// assert_eq!(auth_tokens_jwt::ISSUED_AHEAD_TOLERANCE, 60);
/// ```
pub const ISSUED_AHEAD_TOLERANCE: i64 = 60;

/// The id of the access or refresh token that succeeds the refresh token `previous` in a
/// rotation: a digest of it, so every racing request of one client derives the same
/// successor. Ids are not secrets (they are inside the signed tokens); they only must not
/// collide, and 128 bits of SHA-256 do not.
fn successor_jti(previous: &str, kind: &str) -> String {
    use base64::Engine as _;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in ["auth-jwt-successor", kind, previous] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    let digest = ctx.finish();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Seconds between two records of a session's last use.
const SESSION_TOUCH_EVERY: i64 = 60;

#[async_trait]
impl TokenBackend for JwtBackend {
    async fn issue(&self, request: &IssueRequest) -> Result<TokenPair> {
        let now = self.clock.now().unix_timestamp();
        let absolute = i64::try_from(request.lifetimes.absolute().as_secs()).unwrap_or(i64::MAX);
        let family = random::token(16);
        let fexp = now.saturating_add(absolute);
        let pair = self.pair(
            request.user_id.as_str(),
            &family,
            fexp,
            Some(request.extra.clone()),
            &request.lifetimes,
            self.clock.now(),
            None,
        )?;
        // Remembered so that sessions can be listed and ended one by one, and logout
        // everywhere can say how many it ended.
        if let Some(store) = &self.revocation {
            store
                .start_session(
                    &request.user_id,
                    &family,
                    Self::instant(fexp),
                    &request.meta,
                    self.clock.now(),
                )
                .await?;
        }
        Ok(pair)
    }

    async fn verify(&self, token: &str, kind: TokenKind) -> Result<auth_core::Claims> {
        let claims = self.decode(token)?;
        self.check_time_and_kind(&claims, kind)?;
        if let Some(store) = &self.revocation
            && store.is_revoked(&Self::query(&claims)).await?
        {
            return Err(Error::TokenRevoked);
        }
        Ok(claims.to_claims())
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        request: &RotateRequest,
        guard: &dyn RefreshGuard,
    ) -> Result<RotateOutcome> {
        let claims = self.decode(refresh_token)?;
        self.check_time_and_kind(&claims, TokenKind::Refresh)?;
        let fexp = claims.fexp.unwrap_or_else(|| {
            let absolute =
                i64::try_from(request.lifetimes.absolute().as_secs()).unwrap_or(i64::MAX);
            claims.iat.saturating_add(absolute)
        });
        if fexp <= self.clock.now().unix_timestamp() {
            return Err(Error::TokenExpired);
        }
        let reused = |store: Arc<dyn RevocationStore>, claims: WireClaims| async move {
            store
                .revoke_family(claims.family_or_jti(), Self::instant(fexp.max(claims.exp)))
                .await?;
            store.end_session(claims.family_or_jti()).await?;
            Ok::<_, Error>(RotateOutcome::Reused {
                user_id: UserId::new(claims.sub.clone()),
                family: claims.family_or_jti().to_owned(),
            })
        };
        // The session must be alive (memory, with a mirror); whether this very token was
        // already used is decided by the atomic consume below, in the one write of a rotation.
        if let Some(store) = &self.revocation
            && store.is_revoked(&Self::session_query(&claims)).await?
        {
            return Err(Error::TokenRevoked);
        }
        let previous = claims.to_claims();
        guard.allow(&previous).await?;
        let mut at = auth_core::truncate_to_micros(self.clock.now());
        if let Some(store) = &self.revocation {
            // The atomic step: of concurrent rotations exactly one consumes the jti.
            // The paired access token ends in the same write, as long as it could verify.
            let paired = claims.ajti.as_deref().map(|ajti| {
                let until = claims.aexp.unwrap_or(claims.exp).min(claims.exp);
                (ajti, Self::instant(until))
            });
            match store
                .consume_at(&claims.jti, Self::instant(claims.exp), paired, at)
                .await?
            {
                Consumption::Won => {
                    // The session's last use, at most once a minute (the presented token's
                    // issue instant is its previous use): rotating chains cost no extra write.
                    if at.unix_timestamp().saturating_sub(claims.iat) >= SESSION_TOUCH_EVERY {
                        store
                            .touch_session(claims.family_or_jti(), &request.meta, at)
                            .await?;
                    }
                }
                Consumption::Taken { at: Some(consumed) }
                    if self
                        .same_client(store, &claims, consumed, request.reuse_window)
                        .await? =>
                {
                    // Its own client, racing: the successor issued at `consumed`, again.
                    #[cfg(feature = "tracing")]
                    tracing::debug!("refresh token presented again within the reuse window");
                    at = consumed;
                }
                _ => return reused(Arc::clone(store), claims).await,
            }
        }
        let pair = self.pair(
            &claims.sub,
            claims.family_or_jti(),
            fexp,
            claims.extra.clone(),
            &request.lifetimes,
            at,
            Some(&claims.jti),
        )?;
        Ok(RotateOutcome::Rotated { previous, pair })
    }

    async fn revoke(&self, token: &str) -> Result<()> {
        let store = self.store()?;
        // Expired tokens are revoked too (their session may be alive); forged ones are ignored.
        let Ok(claims) = self.decode(token) else {
            return Ok(());
        };
        self.revoke_session_of(store, &claims).await
    }

    async fn revoke_all(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        let store = self.store()?;
        // Tokens carry their issue instant to the microsecond (`iat_us`), so the cut-off is
        // now: everything issued before it is refused, nothing issued after it.
        let not_before = self.clock.now();
        store.revoke_user(user_id, not_before, keep).await?;
        // A cut-off compares issue instants made on different machines: an instance whose
        // clock runs ahead issues tokens "after" it. Every session the store tracks is also
        // revoked by family, which no clock can outrun.
        if let Some(sessions) = store.list_sessions(user_id).await? {
            for session in sessions.iter().filter(|s| Some(s.id.as_str()) != keep) {
                store
                    .revoke_family(&session.id, session.expires_at.max(not_before))
                    .await?;
            }
        }
        // The sessions the store tracked (every one issued while it did); a store that tracks
        // none cannot count stateless tokens.
        Ok(store.end_sessions(user_id, keep).await?.unwrap_or(0))
    }

    async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        self.store()?
            .list_sessions(user_id)
            .await?
            .ok_or_else(|| {
                Error::Unsupported(
                    "this revocation store does not track sessions: use the SQL or memory store, or the database token backend, to list devices".into(),
                )
            })
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        let store = self.store()?;
        let Some(sessions) = store.list_sessions(user_id).await? else {
            return Err(Error::Unsupported(
                "this revocation store does not track sessions: revoke with a token of the session (logout)".into(),
            ));
        };
        // Only the user's own live sessions: another user's id ends nothing.
        let Some(session) = sessions.into_iter().find(|s| s.id == session_id) else {
            return Ok(false);
        };
        store.revoke_family(&session.id, session.expires_at).await?;
        store.end_session(&session.id).await?;
        Ok(true)
    }

    async fn cleanup_expired(&self) -> Result<u64> {
        match &self.revocation {
            Some(store) => store.cleanup_expired().await,
            None => Ok(0),
        }
    }
}
