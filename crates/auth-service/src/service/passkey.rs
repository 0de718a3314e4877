//! Passkeys: registration behind a signed-in account, sign-in without a password, a passkey
//! as the answer to a second-factor challenge, and the account's list. The ceremonies run in a
//! [`PasskeyBackend`]; what an answer is worth is decided here, with the same throttle, gates,
//! events and session start as every other way in.

use std::sync::Arc;

use serde_json::Value;

use super::throttle::client_bucket;
use super::ways_in::last_way_in;
use super::{AuthResult, AuthService, LoginOptions, LoginOutcome};
use crate::AuthEvent;
use crate::{AuthUser, UserId, normalize_email};
use crate::{Error, Result};
use crate::{PasskeyBackend, PasskeyInfo, PasskeyOptions, PasskeyTarget, PasskeyVerdict};

/// The longest passkey name, in characters.
pub const MAX_PASSKEY_NAME: usize = 64;

/// A passkey's name: trimmed, 1 to [`MAX_PASSKEY_NAME`] characters, no control characters;
/// "Passkey" when none is given.
fn passkey_name(name: Option<&str>) -> Result<String> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok("Passkey".to_owned());
    }
    if name.chars().count() > MAX_PASSKEY_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "invalid_name",
            format!(
                "a passkey's name is 1 to {MAX_PASSKEY_NAME} characters, without control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

impl<U: AuthUser> AuthService<U> {
    /// Enables passkeys, run by `backend` (auth-webauthn's `WebauthnPasskeys`).
    ///
    /// ```
    /// # use auth_service::*;
    /// fn wire(auth: AuthService, passkeys: impl PasskeyBackend) -> AuthService {
    ///     let auth = auth.with_passkeys(passkeys);
    ///     assert!(auth.has_passkeys());
    ///     auth
    /// }
    /// ```
    #[must_use]
    pub fn with_passkeys(mut self, backend: impl PasskeyBackend) -> Self {
        self.passkeys = Some(Arc::new(backend));
        self
    }

    /// Whether passkeys are enabled ([`with_passkeys`](Self::with_passkeys)).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(!auth.has_passkeys());
    /// ```
    #[must_use]
    pub fn has_passkeys(&self) -> bool {
        self.passkeys.is_some()
    }

    fn passkey_backend(&self) -> Result<&Arc<dyn PasskeyBackend>> {
        self.passkeys.as_ref().ok_or(Error::Unsupported(
            "passkeys are not enabled (AuthService::with_passkeys)".into(),
        ))
    }

    /// Starts registering a passkey for a signed-in account (routers ask for a fresh login
    /// first): the options for `navigator.credentials.create`, the account's passkeys
    /// excluded. Finish with [`register_passkey`](Self::register_passkey).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without passkeys; [`Error::UserNotFound`];
    /// [`Error::InactiveUser`]; [`Error::Validation`] (`email_not_verified`) for an account
    /// whose address nobody has proven; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("pia@example.com", "violet-otter-sings-42").await?;
    /// // Without a passkey backend:
    /// assert!(matches!(auth.passkey_registration_options(&user.id).await, Err(Error::Unsupported(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn passkey_registration_options(&self, user_id: &UserId) -> Result<PasskeyOptions> {
        let backend = self.passkey_backend()?;
        let user = self.require_proven(user_id).await?;
        backend.start_registration(user.id(), user.email()).await
    }

    /// Finishes a registration: the authenticator's `credential` (`PublicKeyCredential`
    /// JSON) answers the account's pending ceremony (one per account, consumed by this call),
    /// and the passkey is stored under `name`
    /// ("Passkey" when `None`). Emits `PasskeyAdded`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] when the account has no live registration ceremony;
    /// [`Error::Validation`] for a bad name or a credential that does not verify (or is
    /// registered already); [`Error::Unsupported`]; [`Error::UserNotFound`];
    /// [`Error::InactiveUser`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("pio@example.com", "violet-otter-sings-42").await?;
    /// let err = auth.register_passkey(&user.id, &serde_json::json!({}), None).await.unwrap_err();
    /// assert!(matches!(err, Error::Unsupported(_)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn register_passkey(
        &self,
        user_id: &UserId,
        credential: &Value,
        name: Option<&str>,
    ) -> Result<PasskeyInfo> {
        let backend = self.passkey_backend()?;
        let name = passkey_name(name)?;
        let user = self.require_proven(user_id).await?;
        let info = backend
            .finish_registration(user.id(), credential, &name)
            .await?;
        tracing::info!(user_id = %user.id(), passkey = %info.id, "passkey registered");
        self.events
            .emit(AuthEvent::PasskeyAdded {
                user_id: user.id().clone(),
                passkey_id: info.id.clone(),
                name: info.name.clone(),
            })
            .await;
        Ok(info)
    }

    /// Options for signing in with a passkey. Without `email`: any discoverable credential
    /// (the authenticator names the account; conditional UI). With `email`: that account's
    /// passkeys, and for an address with no account or no passkey the same kind of answer,
    /// listing credential ids derived from the address under the signing secret that no
    /// authenticator holds (auth-webauthn gives one or two, of the lengths and transports real
    /// authenticators use, stable per address; without a signing secret the address is ignored: discoverable
    /// options for everyone, so the answer never tells whether an account exists).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for an `email` that is not an address; [`Error::Unsupported`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(matches!(auth.passkey_login_options(None).await, Err(Error::Unsupported(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn passkey_login_options(&self, email: Option<&str>) -> Result<PasskeyOptions> {
        let backend = self.passkey_backend()?;
        let target = match email {
            None => PasskeyTarget::Discoverable,
            Some(email) => {
                let email = normalize_email(email)?;
                match self.link_mac("passkey-decoy", &[&email]) {
                    Err(Error::Configuration(_)) => PasskeyTarget::Discoverable,
                    Err(e) => return Err(e),
                    Ok(seed) => match self.users.find_by_email(&email).await? {
                        Some(u) if u.is_active() && !backend.list(u.id()).await?.is_empty() => {
                            PasskeyTarget::User(u.id().clone())
                        }
                        _ => PasskeyTarget::Decoy(seed),
                    },
                }
            }
        };
        backend.start_authentication(&target).await
    }

    /// Signs in with a passkey: the authenticator's `credential` answers `ceremony` (from
    /// [`passkey_login_options`](Self::passkey_login_options)). A passkey that verified its
    /// user (PIN, biometrics) is two factors in one and gives a session; one that did not
    /// gives the account's second-factor challenge, as a password does. Every refusal
    /// (unknown or spent ceremony, bad signature, another origin or RP id, an inactive
    /// account, a possibly cloned authenticator) is the same [`Error::InvalidCredentials`]; a
    /// valid passkey of a deactivated account emits `UserLoginFailed` (reason `inactive`), as
    /// a password would.
    /// Failures are throttled per client address (`passkey:` keys, on the address limiter of
    /// [`with_ip_rate_limiter`](Self::with_ip_rate_limiter), else the login limiter); a
    /// success gives the attempt back. A cloned authenticator emits `PasskeyCloneDetected`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`]; [`Error::RateLimited`]; [`Error::Unsupported`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let err = auth.sign_in_with_passkey("c", &serde_json::json!({}), LoginOptions::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::Unsupported(_)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn sign_in_with_passkey(
        &self,
        ceremony: &str,
        credential: &Value,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let backend = self.passkey_backend()?;
        // Per client address: the address limiter's policy when there is one (many users
        // may share an address), else the login policy.
        let limiter = Arc::clone(self.ip_limiter.as_ref().unwrap_or(&self.limiter));
        let key = options
            .meta
            .ip
            .map(|ip| format!("passkey:{}", client_bucket(ip)));
        let grant = match &key {
            Some(key) => Some(self.reserve(limiter.as_ref(), key).await?),
            None => None,
        };
        let verdict = backend.finish_authentication(ceremony, credential).await?;
        let user = match self.passkey_account(verdict).await? {
            Some((user, verified)) => (user, verified),
            None => {
                if let (Some(key), Some(grant)) = (&key, grant)
                    && grant.last
                {
                    self.locked(limiter.as_ref(), key).await;
                }
                return Err(Error::InvalidCredentials);
            }
        };
        if let Some(key) = &key {
            limiter.release(key).await?;
        }
        let (user, user_verified) = user;
        if user_verified {
            // The authenticator checked a PIN or biometric: two factors in one.
            return Ok(LoginOutcome::Session(
                self.start_session(user, options).await?,
            ));
        }
        self.session_or_challenge(user, options).await
    }

    /// The account a verdict signs in, with the UV flag; `None` (logged, and reported for a
    /// clone) when it signs nobody in.
    async fn passkey_account(&self, verdict: PasskeyVerdict) -> Result<Option<(U, bool)>> {
        match verdict {
            PasskeyVerdict::Verified(assertion) => {
                match self.uncached_users.find_by_id(&assertion.user_id).await? {
                    Some(user) if user.is_active() => Ok(Some((user, assertion.user_verified))),
                    Some(user) => {
                        tracing::info!(user_id = %assertion.user_id, "passkey sign-in refused: the account is inactive");
                        // As a password sign-in into a deactivated account reports it.
                        self.events
                            .emit(AuthEvent::UserLoginFailed {
                                identifier: user.email().to_owned(),
                                reason: crate::LoginFailureReason::Inactive,
                            })
                            .await;
                        Ok(None)
                    }
                    None => {
                        tracing::info!(user_id = %assertion.user_id, "passkey sign-in refused: the account is gone");
                        Ok(None)
                    }
                }
            }
            PasskeyVerdict::Cloned {
                user_id,
                passkey_id,
            } => {
                tracing::warn!(user_id = %user_id, passkey = %passkey_id, "passkey sign-in refused: its signature counter went backwards (a cloned authenticator?)");
                self.events
                    .emit(AuthEvent::PasskeyCloneDetected {
                        user_id,
                        passkey_id,
                    })
                    .await;
                Ok(None)
            }
            _ => {
                tracing::info!("passkey sign-in refused");
                Ok(None)
            }
        }
    }

    /// Options for answering a second-factor challenge (`mfa_token`, from a password sign-in)
    /// with one of the account's passkeys instead of a code. Counts one attempt on the
    /// challenge.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a dead challenge; [`Error::Validation`] when the account
    /// has no passkey; [`Error::Unsupported`] without passkeys or a second-factor gate;
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(matches!(auth.passkey_second_factor_options("t").await, Err(Error::Unsupported(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn passkey_second_factor_options(&self, mfa_token: &str) -> Result<PasskeyOptions> {
        let backend = self.passkey_backend()?;
        let gate = self
            .second_factor
            .as_ref()
            .ok_or_else(|| Error::Unsupported("no second factor is configured".into()))?;
        let user = gate.challenge_user(mfa_token).await?;
        if backend.list(&user).await?.is_empty() {
            return Err(Error::invalid(
                "passkey",
                "no_passkey",
                "this account has no passkey: answer with a code",
            ));
        }
        backend
            .start_authentication(&PasskeyTarget::User(user))
            .await
    }

    /// Completes a password sign-in's second factor with a passkey: the assertion must verify
    /// for the challenge's own account (any passkey of another account is refused), then the
    /// challenge is consumed and the session starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a refused assertion; [`Error::TokenInvalid`] for a
    /// dead challenge or one of another account; [`Error::RateLimited`];
    /// [`Error::Unsupported`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let err = auth.complete_sign_in_with_passkey("t", "c", &serde_json::json!({}), LoginOptions::new()).await.unwrap_err();
    /// assert!(matches!(err, Error::Unsupported(_)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn complete_sign_in_with_passkey(
        &self,
        mfa_token: &str,
        ceremony: &str,
        credential: &Value,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        let backend = self.passkey_backend()?;
        let gate = self
            .second_factor
            .as_ref()
            .ok_or_else(|| Error::Unsupported("no second factor is configured".into()))?;
        let verdict = backend.finish_authentication(ceremony, credential).await?;
        let Some((user, _)) = self.passkey_account(verdict).await? else {
            return Err(Error::InvalidCredentials);
        };
        gate.redeem_challenge(mfa_token, user.id()).await?;
        self.start_session(user, options).await
    }

    /// The account's passkeys, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.list_passkeys(&UserId::new("1")).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn list_passkeys(&self, user_id: &UserId) -> Result<Vec<PasskeyInfo>> {
        self.passkey_backend()?.list(user_id).await
    }

    /// Renames one of the account's passkeys; `false` when it is not theirs.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a bad name; [`Error::Unsupported`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.rename_passkey(&UserId::new("1"), "pk", "Laptop").await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn rename_passkey(&self, user_id: &UserId, id: &str, name: &str) -> Result<bool> {
        let backend = self.passkey_backend()?;
        let name = passkey_name(Some(name))?;
        backend.rename(user_id, id, &name).await
    }

    /// Deletes one of the account's passkeys (`false` when it is not theirs), unless it is
    /// the last way to sign in (no usable password, no other passkey, no linked identity).
    /// Concurrent removals never leave the account without a way in: the one that would is
    /// undone and refused. Emits `PasskeyRemoved`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`last_sign_in_method`); [`Error::Unsupported`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.delete_passkey(&UserId::new("1"), "pk").await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn delete_passkey(&self, user_id: &UserId, id: &str) -> Result<bool> {
        let backend = self.passkey_backend()?;
        let ways = self.ways_in(user_id).await?;
        if !ways.passkeys.iter().any(|p| p.id == id) {
            return Ok(false);
        }
        ways.check_not_last("passkey")?;
        let Some(taken) = backend.take(user_id, id).await? else {
            return Ok(false);
        };
        if self.left_without_a_way_in(user_id).await? {
            // Another removal ran at the same time and took the other way in.
            if let Err(e) = backend.restore(user_id, taken).await {
                tracing::error!(user_id = %user_id, passkey_id = id, error = %e,
                    "a passkey removal raced another and could not be put back: the account can only recover through a password reset");
                return Err(e);
            }
            return Err(last_way_in("passkey"));
        }
        self.events
            .emit(AuthEvent::PasskeyRemoved {
                user_id: user_id.clone(),
                passkey_id: id.to_owned(),
            })
            .await;
        Ok(true)
    }

    /// Removes every passkey of the account (deletion; a reset that proved an address the
    /// account had never proven). Nothing without passkeys.
    pub(super) async fn remove_passkeys(&self, user_id: &UserId) -> Result<u64> {
        let Some(backend) = &self.passkeys else {
            return Ok(0);
        };
        let removed = backend.remove_all(user_id).await?;
        if removed > 0 {
            tracing::info!(user_id = %user_id, removed, "passkeys removed");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::passkey_name;

    #[test]
    fn names_are_bounded() {
        assert_eq!(passkey_name(None).unwrap(), "Passkey");
        assert_eq!(passkey_name(Some("  Laptop ")).unwrap(), "Laptop");
        assert!(passkey_name(Some(&"x".repeat(65))).is_err());
        assert!(passkey_name(Some("a\u{0}b")).is_err());
    }
}
