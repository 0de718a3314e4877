//! `Mfa`: enrolment, verification, recovery codes and the two-step login.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_service::{
    AuthEvent, AuthResult, AuthService, AuthUser, Clock, ConfigError, Error, EventBus,
    LoginOptions, MAX_TOKEN_LENGTH, MemoryRateLimiter, RateLimitPolicy, RateLimiter, Result,
    SecondFactorGate, SecretString, SharedClock, SystemClock, Throttle, UserId, async_trait,
    random,
};
use time::OffsetDateTime;

use crate::cipher::SecretCipher;
use crate::store::{ChallengeRecord, ChallengeStore, MfaStore, TotpRecord};
use crate::totp::{TotpCode, TotpSettings};

/// Bytes of a new TOTP secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// Alphabet of recovery codes: no 0/O or 1/I to misread.
const RECOVERY_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Characters per recovery code (80 bits).
const RECOVERY_LEN: usize = 16;

/// Settings of [`Mfa`].
///
/// ```
/// let config = auth_mfa::MfaConfig::new("Example Inc");
/// assert_eq!(config.recovery_codes, 10);
/// assert_eq!(config.challenge_ttl.as_secs(), 300);
/// assert_eq!(config.challenge_attempts, 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MfaConfig {
    /// The issuer shown in authenticator apps (no `:`).
    pub issuer: String,
    /// Settings of new enrolments.
    pub totp: TotpSettings,
    /// How long a login challenge lives (5 minutes).
    pub challenge_ttl: Duration,
    /// Codes tried per challenge (5).
    pub challenge_attempts: u32,
    /// Recovery codes per set (10).
    pub recovery_codes: usize,
    /// Failed codes per user before a lockout, across challenges (10 per 15 minutes, then 15
    /// minutes locked).
    pub failure_policy: RateLimitPolicy,
    /// Whether enrolment needs a verified email (default `true`). Someone who registers a
    /// victim's address before the victim does could otherwise enrol their own factor and keep
    /// the victim out after a reset.
    pub require_verified_email: bool,
}

impl MfaConfig {
    /// Defaults with `issuer`.
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            totp: TotpSettings::default(),
            challenge_ttl: Duration::from_secs(300),
            challenge_attempts: 5,
            recovery_codes: 10,
            failure_policy: RateLimitPolicy::new(
                10,
                Duration::from_secs(900),
                Duration::from_secs(900),
            )
            .unwrap_or_default(),
            require_verified_email: true,
        }
    }

    fn validate(&self) -> Result<()> {
        self.totp.validate()?;
        if self.issuer.is_empty() || self.issuer.contains(':') {
            return Err(ConfigError::invalid(
                "AUTH_MFA_ISSUER",
                "must be non-empty and contain no ':'",
            )
            .into());
        }
        if self.challenge_attempts == 0 || self.challenge_ttl.is_zero() {
            return Err(ConfigError::invalid(
                "mfa challenge",
                "needs at least one attempt and a positive lifetime",
            )
            .into());
        }
        if !(1..=50).contains(&self.recovery_codes) {
            return Err(ConfigError::invalid("mfa recovery_codes", "must be 1 to 50").into());
        }
        Ok(())
    }
}

/// A started enrolment: show the QR code (or the secret for manual entry) once, then confirm
/// with a code. Debug output hides the secret and the URI (which contains it).
pub struct Enrollment {
    secret: SecretString,
    uri: SecretString,
}

impl fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrollment").finish_non_exhaustive()
    }
}

impl Enrollment {
    /// The secret in base32, for typing into an app by hand.
    #[must_use]
    pub fn secret_base32(&self) -> &SecretString {
        &self.secret
    }

    /// The `otpauth://totp/Issuer:account?secret=...&issuer=...` provisioning URI.
    #[must_use]
    pub fn otpauth_uri(&self) -> &SecretString {
        &self.uri
    }

    /// The URI as an SVG QR code.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the URI is too long for a QR code.
    #[cfg(feature = "qr")]
    pub fn qr_svg(&self) -> Result<String> {
        crate::qr::qr_svg(self.uri.expose_secret())
    }

    /// The URI as a PNG QR code (6 pixels per module).
    ///
    /// # Errors
    ///
    /// As [`qr_svg`](Self::qr_svg).
    #[cfg(feature = "qr")]
    pub fn qr_png(&self) -> Result<Vec<u8>> {
        crate::qr::qr_png(self.uri.expose_secret(), 6)
    }
}

/// A fresh set of recovery codes: show them once; only their hashes are kept.
pub struct RecoveryCodes(Vec<SecretString>);

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.0.len())
    }
}

impl RecoveryCodes {
    /// The codes, formatted `XXXX-XXXX-XXXX-XXXX`.
    #[must_use]
    pub fn codes(&self) -> &[SecretString] {
        &self.0
    }

    /// The codes as plain strings, to show the user.
    #[must_use]
    pub fn expose(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|c| c.expose_secret().to_owned())
            .collect()
    }
}

/// Which kind of code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorUsed {
    /// A TOTP code.
    Totp,
    /// A recovery code (now spent).
    RecoveryCode,
}

/// A user's second-factor state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaStatus {
    /// A confirmed TOTP factor exists.
    pub enabled: bool,
    /// An enrolment was started and not confirmed.
    pub pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
}

/// The answer to the first login step: core's [`auth_service::LoginOutcome`] (a session, or a
/// challenge).
pub use auth_service::LoginOutcome;

/// A pending second step: a short-lived, single-use token with a limited number of attempts
/// (core's [`auth_service::Challenge`]).
pub type MfaChallenge = auth_service::Challenge;

/// TOTP two-factor authentication over an [`MfaStore`], with secrets sealed by a
/// [`SecretCipher`]. Cheap to clone. It is also the [`SecondFactorGate`] to give
/// [`AuthService::with_second_factor`], so a plain `login` never issues tokens to an account
/// that has a second factor.
///
/// ```
/// use auth_service::*;
/// use auth_mfa::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FixedClock::from_unix(1_800_000_000);
/// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k1", &[9u8; 32])?, MfaConfig::new("Example"))?
///     .with_clock(clock.clone());
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
///     .with_clock(clock.clone())
///     .with_second_factor(mfa.clone());
/// let user = auth.register("ana@example.com", "violet-otter-sings-42").await?;
/// auth.prove_address(&user.id, AddressProof::InSession).await?; // enrolment needs a proven address
/// let user = auth.find_user(&user.id).await?.unwrap();
///
/// // Enrol: show the QR code, confirm with the app's code, keep the recovery codes.
/// let enrollment = mfa.begin_enrollment(&user).await?;
/// assert!(enrollment.otpauth_uri().expose_secret().starts_with("otpauth://totp/Example:ana%40example.com?"));
/// let app = mfa.authenticator(&user.id).await?; // what the phone computes; tests only
/// let recovery = mfa.confirm_enrollment(&user.id, &app.generate(1_800_000_000)).await?;
/// assert_eq!(recovery.codes().len(), 10);
///
/// // Log in: the password alone gives a challenge, not tokens.
/// clock.advance(std::time::Duration::from_secs(30));
/// let LoginOutcome::Challenge(challenge) = mfa.login(&auth, "ana@example.com", "violet-otter-sings-42", LoginOptions::new()).await? else { panic!() };
/// let code = app.generate(1_800_000_030);
/// let session = mfa.complete_login(&auth, challenge.token.expose_secret(), &code, LoginOptions::new()).await?;
/// assert_eq!(auth.authenticate(session.access_token()).await?.id, user.id);
///
/// // The same code again is a replay.
/// let LoginOutcome::Challenge(again) = mfa.login(&auth, "ana@example.com", "violet-otter-sings-42", LoginOptions::new()).await? else { panic!() };
/// assert!(mfa.complete_login(&auth, again.token.expose_secret(), &code, LoginOptions::new()).await.is_err());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Mfa {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    store: Arc<dyn MfaStore>,
    /// The two-step login's challenges: the store itself unless
    /// [`Mfa::with_challenge_store`] put them elsewhere.
    challenges: Arc<dyn ChallengeStore>,
    cipher: SecretCipher,
    config: MfaConfig,
    clock: SharedClock,
    events: EventBus,
    limiter: Arc<dyn RateLimiter>,
    default_limiter: bool,
}

impl fmt::Debug for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("config", &self.inner.config)
            .field("cipher", &self.inner.cipher)
            .finish_non_exhaustive()
    }
}

impl Mfa {
    /// Second factors in `store` (enrolments, recovery codes, and the login challenges:
    /// [`MemoryMfaStore`](crate::MemoryMfaStore) and `DbMfaStore` are both), secrets sealed by
    /// `cipher`.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for invalid settings.
    pub fn new(
        store: impl MfaStore + ChallengeStore,
        cipher: SecretCipher,
        config: MfaConfig,
    ) -> Result<Self> {
        config.validate()?;
        let limiter = Arc::new(MemoryRateLimiter::new(config.failure_policy));
        let store = Arc::new(store);
        Ok(Self {
            inner: Arc::new(Inner {
                store: Arc::clone(&store) as Arc<dyn MfaStore>,
                challenges: store,
                cipher,
                config,
                clock: Arc::new(SystemClock),
                events: EventBus::new(),
                limiter,
                default_limiter: true,
            }),
        })
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Reads time from `clock` (a [`auth_service::FixedClock`] in tests).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.map_inner(|i| {
            i.clock = Arc::new(clock);
            if i.default_limiter {
                i.limiter = Arc::new(
                    MemoryRateLimiter::new(i.config.failure_policy)
                        .with_clock(Arc::clone(&i.clock)),
                );
            }
        })
    }

    /// Emits events on `events` (share the service's bus).
    #[must_use]
    pub fn with_events(self, events: EventBus) -> Self {
        self.map_inner(|i| i.events = events)
    }

    /// Keeps the two-step login's challenges (minutes-long, single use) in `challenges`
    /// instead of the store: Redis (`auth_redis::RedisChallengeStore`) beside enrolments in SQL.
    ///
    /// ```
    /// # use auth_mfa::*;
    /// let mfa = Mfa::new(MemoryMfaStore::new(), SecretCipher::new("k", &[1u8; 32])?, MfaConfig::new("Example"))?
    ///     .with_challenge_store(auth_service::ephemeral::MemoryChallengeStore::new());
    /// # let _ = mfa;
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_challenge_store(self, challenges: impl ChallengeStore) -> Self {
        self.map_inner(|i| i.challenges = Arc::new(challenges))
    }

    /// Counts failed codes per user in `limiter` (a SQL one shared by all instances) instead
    /// of in memory. Use a limiter with its own policy: keys are `mfa:<user id>`.
    #[must_use]
    pub fn with_rate_limiter(self, limiter: impl RateLimiter) -> Self {
        self.map_inner(|i| {
            i.limiter = Arc::new(limiter);
            i.default_limiter = false;
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &MfaConfig {
        &self.inner.config
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn MfaStore> {
        &self.inner.store
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn aad(user: &UserId) -> Vec<u8> {
        format!("auth-mfa/v1/totp:{user}").into_bytes()
    }

    fn code_for(&self, user: &UserId, record: &TotpRecord, account: &str) -> Result<TotpCode> {
        let secret = self
            .inner
            .cipher
            .decrypt(&record.secret, &Self::aad(user))?;
        TotpCode::labelled(
            &secret,
            record.settings,
            Some(&self.inner.config.issuer),
            account,
        )
    }

    /// Starts (or restarts) TOTP enrolment: a new 160-bit secret, sealed and stored as pending.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`totp`, `already_enabled`) when a confirmed factor exists, or
    /// (`email`, `email_not_verified`) when the address is unproven and
    /// [`MfaConfig::require_verified_email`] is on; [`Error::Backend`].
    pub async fn begin_enrollment(&self, user: &impl AuthUser) -> Result<Enrollment> {
        let id = user.id();
        if self.inner.config.require_verified_email && !user.is_verified() {
            return Err(Error::invalid(
                "email",
                "email_not_verified",
                "verify your email address before turning on two-factor authentication",
            ));
        }
        let secret = random::bytes(SECRET_BYTES);
        let settings = self.inner.config.totp;
        let sealed = self.inner.cipher.encrypt(&secret, &Self::aad(id))?;
        let record = TotpRecord::pending(sealed, settings, self.now());
        if !self.inner.store.save_pending(id, &record).await? {
            return Err(already_enabled());
        }
        self.enrollment(user, &secret, settings)
    }

    /// What the user is shown for `secret`: base32 and the otpauth URI.
    fn enrollment(
        &self,
        user: &impl AuthUser,
        secret: &[u8],
        settings: TotpSettings,
    ) -> Result<Enrollment> {
        // An account name cannot contain ':' in an otpauth label; fall back to the id.
        let account = if user.email().contains(':') {
            user.id().to_string()
        } else {
            user.email().to_owned()
        };
        let code = TotpCode::labelled(secret, settings, Some(&self.inner.config.issuer), &account)?;
        Ok(Enrollment {
            secret: SecretString::from(totp_rs::Secret::from(secret.to_vec()).to_base32()),
            uri: SecretString::from(code.uri()?),
        })
    }

    /// The pending enrolment again (same secret), to show its QR code once more; `None` when
    /// there is none.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`]; [`Error::Configuration`] when the secret's key is gone.
    pub async fn pending_enrollment(&self, user: &impl AuthUser) -> Result<Option<Enrollment>> {
        let id = user.id();
        let Some(record) = self.inner.store.totp(id).await? else {
            return Ok(None);
        };
        if record.confirmed {
            return Ok(None);
        }
        let secret = self.inner.cipher.decrypt(&record.secret, &Self::aad(id))?;
        self.enrollment(user, &secret, record.settings).map(Some)
    }

    /// Confirms the pending enrolment with a code from the app; the factor is on from now,
    /// and the first set of recovery codes is returned (show it once).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a wrong code or no pending enrolment;
    /// [`Error::RateLimited`] after too many failures.
    pub async fn confirm_enrollment(&self, user: &UserId, code: &str) -> Result<RecoveryCodes> {
        let grant = self.reserve(user).await?;
        let step = match self.inner.store.totp(user).await? {
            Some(record) if !record.confirmed => self
                .code_for(user, &record, "-")?
                .matching_step(code, self.unix_now()),
            _ => None,
        };
        let confirmed = match step {
            Some(step) => self.inner.store.confirm(user, step_i64(step)).await?,
            None => false,
        };
        if !confirmed {
            return Err(self.failed(user, grant).await);
        }
        self.inner.limiter.reset(&limit_key(user)).await?;
        let codes = self.new_recovery_codes(user).await?;
        tracing::info!(user_id = %user, "two-factor enabled");
        self.inner
            .events
            .emit(AuthEvent::MfaEnabled {
                user_id: user.clone(),
            })
            .await;
        Ok(codes)
    }

    /// Checks a TOTP code (once per time step) or a recovery code (once each) for a user with
    /// a confirmed factor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a wrong, replayed or unknown code, or no factor;
    /// [`Error::RateLimited`] after too many failures (the lockout ends by itself).
    pub async fn verify(&self, user: &UserId, code: &str) -> Result<FactorUsed> {
        let grant = self.reserve(user).await?;
        let outcome = match self.inner.store.totp(user).await? {
            Some(record) if record.confirmed => self.check(user, &record, code).await?,
            _ => None,
        };
        match outcome {
            Some(used) => {
                self.inner.limiter.reset(&limit_key(user)).await?;
                Ok(used)
            }
            None => Err(self.failed(user, grant).await),
        }
    }

    async fn check(
        &self,
        user: &UserId,
        record: &TotpRecord,
        code: &str,
    ) -> Result<Option<FactorUsed>> {
        let digits = usize::from(record.settings.digits);
        let compact: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if compact.len() == digits && compact.bytes().all(|b| b.is_ascii_digit()) {
            let totp = self.code_for(user, record, "-")?;
            let Some(step) = totp.matching_step(&compact, self.unix_now()) else {
                return Ok(None);
            };
            if !self.inner.store.accept_step(user, step_i64(step)).await? {
                tracing::info!(user_id = %user, "replayed TOTP code refused");
                return Ok(None);
            }
            self.reseal_if_stale(user, record).await;
            return Ok(Some(FactorUsed::Totp));
        }
        let Some(normalized) = normalize_recovery(code) else {
            return Ok(None);
        };
        if !self
            .inner
            .store
            .use_recovery_code(user, &recovery_hash(user, &normalized))
            .await?
        {
            return Ok(None);
        }
        let remaining = self.inner.store.recovery_codes_left(user).await?;
        tracing::info!(user_id = %user, remaining, "recovery code used");
        self.inner
            .events
            .emit(AuthEvent::RecoveryCodeUsed {
                user_id: user.clone(),
                remaining,
            })
            .await;
        Ok(Some(FactorUsed::RecoveryCode))
    }

    async fn reseal_if_stale(&self, user: &UserId, record: &TotpRecord) {
        if !self.inner.cipher.is_stale(&record.secret) {
            return;
        }
        let outcome = async {
            let aad = Self::aad(user);
            let plain = self.inner.cipher.decrypt(&record.secret, &aad)?;
            let sealed = self.inner.cipher.encrypt(&plain, &aad)?;
            self.inner
                .store
                .reseal(user, &record.secret.key_id, &sealed)
                .await
        }
        .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, user_id = %user, "re-sealing a TOTP secret failed");
        }
    }

    /// Turns the factor off; needs a valid TOTP or recovery code. Recovery codes go too.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub async fn disable(&self, user: &UserId, code: &str) -> Result<()> {
        self.verify(user, code).await?;
        self.inner.store.delete(user).await?;
        tracing::info!(user_id = %user, "two-factor disabled");
        self.inner
            .events
            .emit(AuthEvent::MfaDisabled {
                user_id: user.clone(),
            })
            .await;
        Ok(())
    }

    /// Removes a user's factor without a code (an administrator's action, or an account
    /// deletion).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    pub async fn reset(&self, user: &UserId) -> Result<bool> {
        let removed = self.inner.store.delete(user).await?;
        if removed {
            self.inner
                .events
                .emit(AuthEvent::MfaDisabled {
                    user_id: user.clone(),
                })
                .await;
        }
        Ok(removed)
    }

    /// Replaces the recovery codes (the old ones stop working); needs a valid code.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub async fn regenerate_recovery_codes(
        &self,
        user: &UserId,
        code: &str,
    ) -> Result<RecoveryCodes> {
        self.verify(user, code).await?;
        let codes = self.new_recovery_codes(user).await?;
        self.inner
            .events
            .emit(AuthEvent::RecoveryCodesRegenerated {
                user_id: user.clone(),
            })
            .await;
        Ok(codes)
    }

    async fn new_recovery_codes(&self, user: &UserId) -> Result<RecoveryCodes> {
        let codes: Vec<String> = (0..self.inner.config.recovery_codes)
            .map(|_| new_recovery_code())
            .collect();
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| recovery_hash(user, &c.replace('-', "")))
            .collect();
        self.inner
            .store
            .replace_recovery_codes(user, &hashes)
            .await?;
        Ok(RecoveryCodes(
            codes.into_iter().map(SecretString::from).collect(),
        ))
    }

    /// The user's second-factor state.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    pub async fn status(&self, user: &UserId) -> Result<MfaStatus> {
        let record = self.inner.store.totp(user).await?;
        Ok(MfaStatus {
            enabled: record.as_ref().is_some_and(|r| r.confirmed),
            pending: record.as_ref().is_some_and(|r| !r.confirmed),
            recovery_codes_left: self.inner.store.recovery_codes_left(user).await?,
        })
    }

    /// What the user's authenticator app computes, for tests and the console tools. It opens
    /// the stored secret: never expose it over HTTP.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`] when the user has no enrolment.
    pub async fn authenticator(&self, user: &UserId) -> Result<TotpCode> {
        let record = self
            .inner
            .store
            .totp(user)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.code_for(user, &record, "-")
    }

    /// The first login step: [`AuthService::sign_in`], which checks the password with the
    /// service's throttle and asks this gate for a challenge when the account has a factor.
    /// The service must have this `Mfa` as its gate ([`AuthService::with_second_factor`]).
    ///
    /// # Errors
    ///
    /// As [`AuthService::sign_in`]; [`Error::Configuration`] when the service has no
    /// second-factor gate (it would otherwise sign enrolled accounts in on a password alone).
    pub async fn login<U: AuthUser>(
        &self,
        auth: &AuthService<U>,
        email: &str,
        password: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        Self::require_gate(auth)?;
        auth.sign_in(email, password, options).await
    }

    /// The second login step: [`AuthService::complete_sign_in`]. Each challenge takes a
    /// limited number of attempts and works once.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, expired, used or exhausted challenge;
    /// [`Error::InvalidCredentials`] for a wrong code; [`Error::RateLimited`];
    /// [`Error::InactiveUser`]; [`Error::Configuration`] as for [`login`](Self::login).
    pub async fn complete_login<U: AuthUser>(
        &self,
        auth: &AuthService<U>,
        challenge: &str,
        code: &str,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        Self::require_gate(auth)?;
        auth.complete_sign_in(challenge, code, options).await
    }

    fn require_gate<U: AuthUser>(auth: &AuthService<U>) -> Result<()> {
        if auth.has_second_factor() {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                "second factor",
                "give the Mfa to AuthService::with_second_factor before logging in through it",
            )
            .into())
        }
    }

    async fn open(&self, user: &UserId) -> Result<MfaChallenge> {
        // A locked factor opens no challenge (the password was right, the factor is not).
        self.throttle().peek(&limit_key(user)).await?;
        let token = random::token(32);
        let ttl = self.inner.config.challenge_ttl;
        let expires_at =
            self.now() + time::Duration::try_from(ttl).unwrap_or(time::Duration::MINUTE);
        self.inner
            .challenges
            .create(&ChallengeRecord::new(
                random::sha256_hex(&token),
                user.clone(),
                auth_service::truncate_to_micros(expires_at),
            ))
            .await?;
        Ok(MfaChallenge::new(SecretString::from(token), ttl))
    }

    async fn answer(&self, challenge: &str, code: &str) -> Result<UserId> {
        if challenge.is_empty() || challenge.len() > MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        let hash = random::sha256_hex(challenge);
        let user_id = self
            .inner
            .challenges
            .attempt(&hash, self.now(), self.inner.config.challenge_attempts)
            .await?
            .ok_or(Error::TokenInvalid)?;
        self.verify(&user_id, code).await?;
        if !self.inner.challenges.consume(&hash).await? {
            return Err(Error::TokenInvalid);
        }
        Ok(user_id)
    }

    /// Deletes expired challenges; returns how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    pub async fn cleanup_expired(&self) -> Result<u64> {
        self.inner.challenges.cleanup_expired(self.now()).await
    }

    fn unix_now(&self) -> u64 {
        u64::try_from(self.now().unix_timestamp()).unwrap_or(0)
    }

    /// The service's throttle on this factor's limiter and bus: its refusals and lockouts
    /// are the same `RateLimitExceeded` and `AccountLocked` events as every other throttle's.
    fn throttle(&self) -> Throttle {
        Throttle::new(Arc::clone(&self.inner.limiter), self.inner.events.clone())
    }

    /// Reserves one code check for the user before it runs (atomically: N concurrent
    /// guesses get at most the policy's attempts); a limiter that cannot answer refuses the
    /// check (fail closed). `true` when the check used the last attempt.
    async fn reserve(&self, user: &UserId) -> Result<bool> {
        Ok(self.throttle().reserve(&limit_key(user)).await?.is_last())
    }

    /// After a failed check (already counted by [`reserve`](Self::reserve)): the event, and
    /// the lockout event when it used the last attempt.
    async fn failed(&self, user: &UserId, last: bool) -> Error {
        self.inner
            .events
            .emit(AuthEvent::MfaFailed {
                user_id: user.clone(),
            })
            .await;
        if last {
            self.throttle().locked(&limit_key(user)).await;
        }
        Error::InvalidCredentials
    }
}

#[async_trait]
impl SecondFactorGate for Mfa {
    async fn is_required(&self, user: &UserId) -> Result<bool> {
        Ok(self
            .inner
            .store
            .totp(user)
            .await?
            .is_some_and(|r| r.confirmed))
    }

    async fn open_challenge(&self, user: &UserId) -> Result<MfaChallenge> {
        self.open(user).await
    }

    async fn answer_challenge(&self, challenge: &str, code: &str) -> Result<UserId> {
        self.answer(challenge, code).await
    }

    async fn challenge_user(&self, challenge: &str) -> Result<UserId> {
        if challenge.is_empty() || challenge.len() > MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        self.inner
            .challenges
            .attempt(
                &random::sha256_hex(challenge),
                self.now(),
                self.inner.config.challenge_attempts,
            )
            .await?
            .ok_or(Error::TokenInvalid)
    }

    async fn redeem_challenge(&self, challenge: &str, user: &UserId) -> Result<()> {
        if self.challenge_user(challenge).await? != *user {
            return Err(Error::TokenInvalid);
        }
        if !self
            .inner
            .challenges
            .consume(&random::sha256_hex(challenge))
            .await?
        {
            return Err(Error::TokenInvalid);
        }
        Ok(())
    }

    async fn remove_all(&self, user: &UserId) -> Result<()> {
        self.reset(user).await.map(|_| ())
    }

    async fn unlock(&self, user: &UserId) -> Result<()> {
        self.inner.limiter.reset(&limit_key(user)).await
    }
}

fn already_enabled() -> Error {
    Error::invalid(
        "totp",
        "already_enabled",
        "two-factor authentication is already on; disable it first",
    )
}

fn limit_key(user: &UserId) -> String {
    format!("mfa:{user}")
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn new_recovery_code() -> String {
    let bytes = random::bytes(RECOVERY_LEN);
    let mut out = String::with_capacity(RECOVERY_LEN + 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// Uppercase, without dashes and spaces; `None` if it cannot be a recovery code.
fn normalize_recovery(code: &str) -> Option<String> {
    let compact: String = code
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (compact.len() == RECOVERY_LEN && compact.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)))
        .then_some(compact)
}

/// Stored form of a recovery code: SHA-256 over the user and the code (80 random bits each, so
/// a plain hash suffices).
fn recovery_hash(user: &UserId, normalized: &str) -> String {
    random::sha256_hex(&format!("auth-mfa/v1/recovery:{user}:{normalized}"))
}
