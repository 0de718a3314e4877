//! Passwords: the policy, and the one compare-and-set replace behind set, change and reset.

use super::AuthService;
use crate::AuthEvent;
use crate::{AuthUser, UserId};
use crate::{Error, Result};
use crate::{PasswordContext, is_password_usable, make_unusable_password};

impl<U: AuthUser> AuthService<U> {
    /// Checks a new password against the configured policy's synchronous rules, with the email
    /// for the similarity rule. Flows run [`check_new_password`](Self::check_new_password),
    /// which adds the breach check.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every failure (field `password`).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth.validate_password("password", Some("a@b.c")).is_err());
    /// ```
    pub fn validate_password(&self, password: &str, email: Option<&str>) -> Result<()> {
        if password.len() > self.config.max_password_length() {
            return Err(Error::invalid(
                "password",
                "password_too_long",
                format!(
                    "This password is too long. It must contain at most {} bytes.",
                    self.config.max_password_length()
                ),
            ));
        }
        let mut ctx = PasswordContext::new();
        if let Some(email) = email {
            ctx = ctx.with_email(email);
        }
        self.config.password_policy().validate(password, &ctx)
    }

    /// Every rule a new password must pass, the policy's breach check included: what sign-up,
    /// change, reset, administrative set and onboarding run.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] listing every failure (a breached password has code
    /// `breached_password`); a breach source's [`Error::Backend`] when it is set to refuse on
    /// failure.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth.check_new_password("password", Some("a@b.c")).await.is_err());
    /// assert!(auth.check_new_password("violet-otter-sings-42", None).await.is_ok());
    /// # });
    /// ```
    pub async fn check_new_password(&self, password: &str, email: Option<&str>) -> Result<()> {
        self.validate_password(password, email)?;
        match self.config.password_policy().breach_check() {
            Some(breach) => breach.check(password).await,
            None => Ok(()),
        }
    }

    /// Sets a user's password (an administrative action: no current password needed), after
    /// the policy accepts it, and ends every session of the user.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`], [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.create_user(NewUser::new("alice@example.com")).await?;
    /// auth.set_password(&user.id, "SecurePass123!").await?;
    /// assert!(auth.login("alice@example.com", "SecurePass123!").await.is_ok());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn set_password(&self, user_id: &UserId, new_password: &str) -> Result<()> {
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.check_new_password(new_password, Some(user.email()))
            .await?;
        let hash = self.hashing.hash(new_password).await?;
        if !self
            .replace_password(&user, user.password_hash(), &hash, None)
            .await?
        {
            // Changed while this one hashed: the administrator's value still wins, once.
            let again = self
                .users
                .find_by_id(user_id)
                .await?
                .ok_or(Error::UserNotFound)?;
            self.replace_password(&again, again.password_hash(), &hash, None)
                .await?;
        }
        Ok(())
    }

    /// Changes a password on the user's own request: the current password is required, the new
    /// one must pass the policy, and every other session ends (`keep_session` survives: pass the
    /// id of the session making the request).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] when the current password is wrong; [`Error::Validation`];
    /// [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("m@example.com", "violet-otter-sings-42").await?;
    /// let here = auth.login("m@example.com", "violet-otter-sings-42").await?;
    /// let elsewhere = auth.login("m@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.verify_access(here.access_token()).await?.family;
    /// auth.change_password(&here.user.id, "violet-otter-sings-42", "amber-heron-dances-7", session.as_deref()).await?;
    /// assert!(auth.authenticate(here.access_token()).await.is_ok());
    /// assert!(auth.authenticate(elsewhere.access_token()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn change_password(
        &self,
        user_id: &UserId,
        current_password: &str,
        new_password: &str,
        keep_session: Option<&str>,
    ) -> Result<()> {
        let user = self.reauthenticate(user_id, current_password).await?;
        let stored = user.password_hash();
        self.check_new_password(new_password, Some(user.email()))
            .await?;
        let hash = self.hashing.hash(new_password).await?;
        // Compare-and-set from the hash just verified: a concurrent change wins, this one
        // fails as if the current password were wrong (it no longer is current).
        if !self
            .replace_password(&user, stored, &hash, keep_session)
            .await?
        {
            return Err(Error::InvalidCredentials);
        }
        Ok(())
    }

    /// The account's current password, checked again for a sensitive change (password, email
    /// address): a password guess like a login, so throttled per account (`reauth:` keys) with
    /// the same lockout. The user, active and verified against `password`.
    pub(super) async fn reauthenticate(&self, user_id: &UserId, password: &str) -> Result<U> {
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        let key = format!("reauth:{user_id}");
        let grant = self.reserve(self.limiter.as_ref(), &key).await?;
        let stored = if user.is_active() {
            user.password_hash()
        } else {
            None
        };
        if !self.hashing.verify(password, stored).await?.valid {
            if grant.last {
                self.locked(self.limiter.as_ref(), &key).await;
            }
            return Err(Error::InvalidCredentials);
        }
        self.limiter.reset(&key).await?;
        Ok(user)
    }

    /// The second half of a password reset, for a link or code the caller has checked (see
    /// auth-sign's `PasswordResetService`): the policy, the compare-and-set from the hash the
    /// link was made for, every session ended, and, for an account that had never proven its
    /// address, the account taken over for the owner of the mailbox: every API key, passkey,
    /// linked identity, second factor and grant set up before the proof is removed (they may be
    /// an attacker's who pre-registered the address), then the address is marked proven
    /// ([`AuthService::prove_address`]'s rule, `AccountClaimed`).
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] when the password changed since `user` was read (the link is
    /// spent) or the account is inactive; [`Error::Validation`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("tam@example.com", "violet-otter-sings-42").await?;
    /// auth.reset_password(&user, "amber-heron-dances-7").await?;
    /// // The address is proven now; a second use of the same read is refused.
    /// assert!(auth.find_user(&user.id).await?.unwrap().is_verified);
    /// assert!(matches!(auth.reset_password(&user, "amber-heron-dances-8").await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn reset_password(&self, user: &U, new_password: &str) -> Result<()> {
        if !user.is_active() {
            return Err(Error::TokenInvalid);
        }
        self.check_new_password(new_password, Some(user.email()))
            .await?;
        let hash = self.hashing.hash(new_password).await?;
        if !self
            .replace_password(user, user.password_hash(), &hash, None)
            .await?
        {
            return Err(Error::TokenInvalid);
        }
        if !user.is_verified() {
            // The owner proved an address nobody had proven: whatever was set up before goes
            // (the password just chosen stays).
            self.claim(user, "password_reset", true).await?;
        }
        self.events
            .emit(AuthEvent::PasswordResetCompleted {
                user_id: user.id().clone(),
            })
            .await;
        Ok(())
    }

    /// The one path that replaces a password: compare-and-set from `expected`, then every
    /// session but `keep_session` ends and `PasswordChanged` is emitted. `false` when the
    /// stored hash was no longer `expected` (nothing changed).
    pub(super) async fn replace_password(
        &self,
        user: &U,
        expected: Option<&str>,
        hash: &str,
        keep_session: Option<&str>,
    ) -> Result<bool> {
        if !self
            .users
            .replace_password_hash(user.id(), expected, hash)
            .await?
        {
            return Ok(false);
        }
        self.end_sessions(user.id(), keep_session).await?;
        self.events
            .emit(AuthEvent::PasswordChanged {
                user_id: user.id().clone(),
            })
            .await;
        Ok(true)
    }

    /// Makes the password unusable (no password verifies) and ends every session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("n@example.com", "violet-otter-sings-42").await?;
    /// auth.set_unusable_password(&user.id).await?;
    /// let user = auth.find_user(&user.id).await?.unwrap();
    /// assert!(!AuthService::<User>::has_usable_password(&user));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn set_unusable_password(&self, user_id: &UserId) -> Result<()> {
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        let unusable = make_unusable_password();
        if !self
            .replace_password(&user, user.password_hash(), &unusable, None)
            .await?
        {
            self.users.set_password_hash(user_id, &unusable).await?;
            self.end_sessions(user_id, None).await?;
        }
        Ok(())
    }

    /// Whether the user has a password that could verify.
    ///
    /// ```
    /// # use auth_service::*;
    /// let user = User::new(UserId::new("1"), "a@b.c");
    /// assert!(!AuthService::<User>::has_usable_password(&user));
    /// ```
    #[must_use]
    pub fn has_usable_password(user: &U) -> bool {
        is_password_usable(user.password_hash())
    }

    /// Replaces a legacy or weaker hash after a successful login, only if the stored hash is
    /// still the one that verified (a password changed meanwhile is never overwritten). A failure
    /// here is logged and does not fail the login: the old hash still verifies.
    pub(super) async fn upgrade_hash(&self, id: &UserId, old_hash: Option<&str>, password: &str) {
        let outcome = async {
            let hash = self.hashing.hash(password).await?;
            self.users.replace_password_hash(id, old_hash, &hash).await
        }
        .await;
        match outcome {
            Ok(true) => {
                self.events
                    .emit(AuthEvent::PasswordRehashed {
                        user_id: id.clone(),
                        algorithm: self.hashing.algorithm(),
                    })
                    .await;
            }
            Ok(false) => {
                tracing::info!(user_id = %id, "password changed during login; hash upgrade skipped")
            }
            Err(error) => tracing::warn!(%error, user_id = %id, "password hash upgrade failed"),
        }
    }
}
