//! Login: the password, the second-factor challenge, and the session that follows.

use std::sync::Arc;

use super::throttle::{self, client_bucket, redact_identifier};
use super::{AuthResult, AuthService, LoginOptions, LoginOutcome};
use crate::IssueRequest;
use crate::{AuthEvent, LoginFailureReason};
use crate::{AuthUser, UserId, normalize_email};
use crate::{Error, Result};

impl<U: AuthUser> AuthService<U> {
    /// Logs in with email and password.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] while the email is locked out; [`Error::InvalidCredentials`] for
    /// every other failure (missing, inactive, unusable password, wrong or over-long password),
    /// all taking the same time; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("dora@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.login("dora@example.com", "violet-otter-sings-42").await.is_ok());
    /// assert!(matches!(auth.login("dora@example.com", "wrong").await, Err(Error::InvalidCredentials)));
    /// assert!(matches!(auth.login("nobody@example.com", "x").await, Err(Error::InvalidCredentials)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn login(&self, email: &str, password: &str) -> Result<AuthResult<U>> {
        self.login_with(email, password, LoginOptions::default())
            .await
    }

    /// Logs in with extra claims and client metadata.
    ///
    /// # Errors
    ///
    /// As [`login`](Self::login).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("eve@example.com", "violet-otter-sings-42").await?;
    /// let mut extra = serde_json::Map::new();
    /// extra.insert("role".into(), "admin".into());
    /// let r = auth.login_with("eve@example.com", "violet-otter-sings-42", LoginOptions::new().with_extra(extra)).await?;
    /// let claims = auth.verify_access(r.access_token()).await?;
    /// assert_eq!(claims.extra.unwrap()["role"], "admin");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn login_with(
        &self,
        email: &str,
        password: &str,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        // The same path as `sign_in`, without opening a challenge nobody will answer.
        let user = self.check_password(email, password, &options).await?;
        if self.second_factor_due(user.id(), &options).await? {
            return Err(Error::MfaRequired);
        }
        self.start_session(user, options).await
    }

    /// A login that may need a second factor: the password (see
    /// [`check_password`](Self::check_password)), then either a session, or, for an account
    /// the [`SecondFactorGate`](crate::SecondFactorGate) says has a factor, a single-use challenge to answer with
    /// [`complete_sign_in`](Self::complete_sign_in). No tokens are issued on a password alone.
    ///
    /// # Errors
    ///
    /// As [`check_password`](Self::check_password); [`Error::RateLimited`] while the account's
    /// second factor is locked.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("ines@example.com", "violet-otter-sings-42").await?;
    /// match auth.sign_in("ines@example.com", "violet-otter-sings-42", LoginOptions::new()).await? {
    ///     LoginOutcome::Session(login) => assert!(!login.access_token().is_empty()),
    ///     LoginOutcome::Challenge(_) => unreachable!("no second factor is configured"),
    ///     _ => unreachable!(),
    /// }
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let user = self.check_password(email, password, &options).await?;
        self.session_or_challenge(user, options).await
    }

    /// The one step after any first factor (a password, a provider, a sign-in code, a passkey
    /// without user verification): a challenge when the account's second factor is due (it has
    /// one, and the client presented no device the account trusts), else the session.
    pub(super) async fn session_or_challenge(
        &self,
        user: U,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        if let Some(gate) = &self.second_factor
            && self.second_factor_due(user.id(), &options).await?
        {
            return Ok(LoginOutcome::Challenge(
                gate.open_challenge(user.id()).await?,
            ));
        }
        Ok(LoginOutcome::Session(
            self.start_session(user, options).await?,
        ))
    }

    /// The second step of [`sign_in`](Self::sign_in): the challenge and a code from the
    /// account's second factor (checked, throttled and consumed by the gate) give the session.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, expired, used or exhausted challenge;
    /// [`Error::InvalidCredentials`] for a wrong code; [`Error::RateLimited`];
    /// [`Error::Unsupported`] without a gate; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// // Without a second-factor gate there is no challenge to complete.
    /// let err = auth.complete_sign_in("no-such-challenge", "123456", LoginOptions::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::Unsupported(_)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn complete_sign_in(
        &self,
        challenge: &str,
        code: &str,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        let gate = self
            .second_factor
            .as_ref()
            .ok_or_else(|| Error::Unsupported("no second factor is configured".into()))?;
        let user_id = gate.answer_challenge(challenge, code).await?;
        let user = match self.users.find_by_id(&user_id).await? {
            Some(u) => u,
            None => return Err(Error::TokenInvalid),
        };
        let asked = options.clone();
        let mut result = self.start_session(user, options).await?;
        result.trusted_device = self.trust_device(&user_id, &asked).await?;
        Ok(result)
    }

    /// The first factor of a login, without issuing anything, for schemes that check a
    /// password on every request (HTTP Basic): the throttle, the password check at equal cost
    /// for every failure, the failure events and the hash upgrade.
    ///
    /// The throttle reserves an attempt *before* hashing, atomically, so N concurrent guesses
    /// get at most `max_attempts` checks: per account and client address (`login:` keys; per
    /// account alone when `options.meta.ip` is unknown), and per client address across
    /// accounts (`ip:` keys) with [`with_ip_rate_limiter`](Self::with_ip_rate_limiter). A
    /// success forgets the account's failures and gives the address its attempt back.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] while a key is locked out; [`Error::InvalidCredentials`] for
    /// every other failure, all taking the same time; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("basil@example.com", "violet-otter-sings-42").await?;
    /// let user = auth.check_password("basil@example.com", "violet-otter-sings-42", &LoginOptions::new()).await?;
    /// assert_eq!(user.email, "basil@example.com");
    /// for _ in 0..5 {
    ///     let _ = auth.check_password("basil@example.com", "wrong", &LoginOptions::new()).await;
    /// }
    /// // Locked: even the right password waits (from this client).
    /// let err = auth.check_password("basil@example.com", "violet-otter-sings-42", &LoginOptions::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::RateLimited { .. }));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn check_password(
        &self,
        email: &str,
        password: &str,
        options: &LoginOptions,
    ) -> Result<U> {
        // A malformed email cannot match an account, but it is handled like a missing one
        // (same time, same error), and counted under a hashed key in the login namespace.
        let normalized = normalize_email(email).ok();
        let identifier = normalized
            .clone()
            .unwrap_or_else(|| throttle::opaque(email));
        let client = options.meta.ip.map(client_bucket);
        // A place in the hasher's queue first: a login the hasher would shed (its queue full,
        // or the lane of clients that failed recently full) is answered before any throttle
        // write or database read, in memory.
        let place = self.hashing.take_place()?;
        // A client past its (generous) count of successful logins is refused before any work.
        let ok_key = match (&self.login_limiter, &client) {
            (Some(limiter), Some(c)) => {
                let key = format!("ok:{c}");
                self.peek(limiter.as_ref(), &key).await?;
                Some((Arc::clone(limiter), key))
            }
            _ => None,
        };
        let login_key = throttle::login_key(&identifier, client.as_deref());
        let ip_key = match (&self.ip_limiter, &client) {
            (Some(limiter), Some(c)) => Some((Arc::clone(limiter), format!("ip:{c}"))),
            _ => None,
        };

        let ip_grant = match &ip_key {
            Some((limiter, key)) => Some(self.reserve(limiter.as_ref(), key).await?),
            None => None,
        };
        let login_grant = match self.reserve(self.limiter.as_ref(), &login_key).await {
            Ok(grant) => grant,
            Err(e) => {
                // Refused before any work: the address gets its attempt back.
                if let Some((limiter, key)) = &ip_key {
                    limiter.release(key).await?;
                }
                return Err(e);
            }
        };

        let user = match &normalized {
            Some(e) => self.users.find_by_email(e).await?,
            None => None,
        };
        let reason = match &user {
            None => Some(LoginFailureReason::NotFound),
            Some(u) if !u.is_active() => Some(LoginFailureReason::Inactive),
            Some(_) => None,
        };
        // Missing and inactive accounts are checked against the dummy hash, like unusable and
        // over-long passwords inside `verify`: every failure costs one verification.
        let stored = if reason.is_none() {
            user.as_ref().and_then(|u| u.password_hash())
        } else {
            None
        };
        let verified = match self.hashing.verify_placed(place, password, stored).await {
            Ok(verified) => verified,
            Err(e) => {
                // Shed (waited too long) or failed before any check: the attempt was not made,
                // so neither the account's nor the address's throttle keeps it.
                self.limiter.release(&login_key).await?;
                if let Some((limiter, key)) = &ip_key {
                    limiter.release(key).await?;
                }
                return Err(e);
            }
        };

        let user = match (user, verified.valid) {
            (Some(user), true) if reason.is_none() => user,
            _ => {
                tracing::info!(identifier = %redact_identifier(&identifier), "login failed");
                self.hashing.note_failure();
                self.events
                    .emit(AuthEvent::UserLoginFailed {
                        identifier,
                        reason: reason.unwrap_or(LoginFailureReason::BadPassword),
                    })
                    .await;
                if login_grant.last {
                    self.locked(self.limiter.as_ref(), &login_key).await;
                }
                if let (Some((limiter, key)), Some(grant)) = (&ip_key, ip_grant)
                    && grant.last
                {
                    self.locked(limiter.as_ref(), key).await;
                }
                return Err(Error::InvalidCredentials);
            }
        };

        self.hashing.note_success();
        self.limiter.reset(&login_key).await?;
        if let Some((limiter, key)) = &ip_key {
            limiter.release(key).await?;
        }
        if let Some((limiter, key)) = &ok_key {
            // Counting a success never fails the login it counts.
            match limiter.record(key).await {
                Ok(status) if !status.is_allowed() => self.locked(limiter.as_ref(), key).await,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a successful login could not be counted"),
            }
        }
        if verified.needs_update {
            self.upgrade_hash(user.id(), user.password_hash(), password)
                .await;
        }
        Ok(user)
    }

    /// Issues the token pair for a user whose credentials this service just checked, records
    /// the login and emits `UserLogin`. Private: every way in (password, second factor,
    /// onboarding, sign-up) is a public method that checks first, so no caller can start a
    /// session past a gate.
    pub(crate) async fn start_session(
        &self,
        user: U,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        if !user.is_active() {
            return Err(Error::InactiveUser);
        }
        let request = IssueRequest::new(user.id().clone())
            .with_extra(options.extra)
            .with_meta(options.meta)
            .with_lifetimes(self.config.lifetimes());
        let tokens = self.tokens.issue(&request).await?;
        self.users.record_login(user.id(), self.clock.now()).await?;
        self.events
            .emit(AuthEvent::UserLogin {
                user_id: user.id().clone(),
                email: user.email().to_owned(),
            })
            .await;
        Ok(AuthResult {
            user,
            tokens,
            trusted_device: None,
        })
    }

    /// Whether `user` has a second factor (per the gate given to
    /// [`with_second_factor`](Self::with_second_factor); `false` without one). Schemes that
    /// cannot carry a second factor, such as HTTP Basic, refuse such users.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(!auth.requires_second_factor(&UserId::new("1")).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn requires_second_factor(&self, user: &UserId) -> Result<bool> {
        match &self.second_factor {
            Some(gate) => gate.is_required(user).await,
            None => Ok(false),
        }
    }

    /// Whether a second-factor gate is wired ([`with_second_factor`](Self::with_second_factor)).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(!auth.has_second_factor());
    /// ```
    #[must_use]
    pub fn has_second_factor(&self) -> bool {
        self.second_factor.is_some()
    }
}
