//! Accounts: sign-up (throttled per client), onboarding's pending accounts, email
//! confirmation, profile data and the reset throttle.

use super::throttle::client_bucket;
use super::{AddressProof, AuthResult, AuthService, LoginOptions};
use crate::AuthEvent;
use crate::SessionMeta;
use crate::{AuthUser, NewUser, UserId, normalize_email};
use crate::{Error, Result};

impl<U: AuthUser> AuthService<U> {
    /// Creates an account with a validated password.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a bad email or a password the policy rejects (every failure at
    /// once); [`Error::EmailTaken`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("  Bob@Example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(user.email, "bob@example.com");
    /// assert!(matches!(auth.register("bob@example.com", "violet-otter-sings-42").await, Err(Error::EmailTaken)));
    /// assert!(matches!(auth.register("carl@example.com", "123").await, Err(Error::Validation(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn register(&self, email: &str, password: &str) -> Result<U> {
        self.register_with(email, password, &SessionMeta::default())
            .await
    }

    /// [`register`](Self::register) for a client: with `meta.ip` known, the sign-up is counted
    /// against that address (`signup:` keys, see
    /// [`with_signup_rate_limiter`](Self::with_signup_rate_limiter)) before any other work,
    /// successful or not.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] when the address has signed up too often; otherwise as
    /// [`register`](Self::register).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let meta = SessionMeta::new().with_ip("198.51.100.4".parse().unwrap());
    /// for i in 0..10 {
    ///     auth.register_with(&format!("u{i}@example.com"), "violet-otter-sings-42", &meta).await?;
    /// }
    /// let err = auth.register_with("u10@example.com", "violet-otter-sings-42", &meta).await.unwrap_err();
    /// assert!(matches!(err, Error::RateLimited { .. }));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn register_with(
        &self,
        email: &str,
        password: &str,
        meta: &SessionMeta,
    ) -> Result<U> {
        self.throttle_signup(meta).await?;
        let email = normalize_email(email)?;
        self.check_new_password(password, Some(&email)).await?;
        if self.users.find_by_email(&email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let hash = self.hashing.hash(password).await?;
        self.create_user(NewUser::new(email).with_password_hash(hash))
            .await
    }

    /// Creates an account as an administrator would (no password policy, no throttle: the
    /// caller is trusted code such as a management command or a seed script): the email is
    /// canonicalised, `UserRegistered` is emitted.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a malformed email; [`Error::EmailTaken`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.create_user(NewUser::new(" Alice@Example.com")).await?;
    /// assert_eq!(user.email, "alice@example.com");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn create_user(&self, mut new: NewUser) -> Result<U> {
        new.email = normalize_email(&new.email)?;
        let email = new.email.clone();
        let user = self.users.create(new).await?;
        self.events
            .emit(AuthEvent::UserRegistered {
                user_id: user.id().clone(),
                email,
            })
            .await;
        Ok(user)
    }

    /// Sign-up and login in one: [`register_with`](Self::register_with), then a session for
    /// the new account (what `POST /register` answers with). When the session cannot be
    /// started (its store refuses the write), the account just created is removed again, so a
    /// sign-up that answered an error has created nothing.
    ///
    /// # Errors
    ///
    /// As [`register_with`](Self::register_with), and as starting a session.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let signed_up = auth.sign_up("nia@example.com", "violet-otter-sings-42", LoginOptions::new()).await?;
    /// assert_eq!(auth.authenticate(signed_up.access_token()).await?.email, "nia@example.com");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        let user = self.register_with(email, password, &options.meta).await?;
        let id = user.id().clone();
        match self.start_session(user, options).await {
            Ok(done) => Ok(done),
            // A sign-up that answers an error leaves no account behind (the address stays
            // free to sign up again): the session could not be started, so the account just
            // made is removed (`UserDeleted` follows `UserRegistered`).
            Err(e) => {
                match self.delete_user(&id).await {
                    Ok(_) => {
                        tracing::warn!(error = %e, "sign-up failed after the account was created: the account was removed")
                    }
                    Err(undo) => tracing::error!(
                        error = %e,
                        undo_error = %undo,
                        user_id = %id,
                        "sign-up failed after the account was created, and the account could not be removed"
                    ),
                }
                Err(e)
            }
        }
    }

    /// The account behind an onboarding flow: created *inactive*, so no entry point (login,
    /// Basic, refresh, reset, second factor) signs it in until
    /// [`complete_onboarding`](Self::complete_onboarding) activates it. For an address that
    /// already has an account it does the same work, creates nothing and answers `None`, so
    /// the flow can go on identically.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (per client, as sign-up); [`Error::Validation`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register_pending("oli@example.com", "violet-otter-sings-42", &SessionMeta::new()).await?.unwrap();
    /// // Not until the flow completes.
    /// assert!(auth.login("oli@example.com", "violet-otter-sings-42").await.is_err());
    /// let done = auth.complete_onboarding(&user.id, LoginOptions::new()).await?;
    /// assert!(auth.authenticate(done.access_token()).await.is_ok());
    /// assert!(auth.login("oli@example.com", "violet-otter-sings-42").await.is_ok());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn register_pending(
        &self,
        email: &str,
        password: &str,
        meta: &SessionMeta,
    ) -> Result<Option<U>> {
        self.throttle_signup(meta).await?;
        let email = normalize_email(email)?;
        self.check_new_password(password, Some(&email)).await?;
        // Hash first, whatever happens next: the same work for new and existing emails.
        let hash = self.hashing.hash(password).await?;
        if self.users.find_by_email(&email).await?.is_some() {
            return Ok(None);
        }
        let mut new = NewUser::new(email).with_password_hash(hash);
        new.is_active = false;
        match self.create_user(new).await {
            Ok(user) => Ok(Some(user)),
            // Registered concurrently elsewhere: the same as existing.
            Err(Error::EmailTaken) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends an onboarding flow whose required steps are done: activates the account made by
    /// [`register_pending`](Self::register_pending) and starts its session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register_pending("pia@example.com", "violet-otter-sings-42", &SessionMeta::new()).await?.unwrap();
    /// let done = auth.complete_onboarding(&user.id, LoginOptions::new()).await?;
    /// assert!(done.user.is_active);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn complete_onboarding(
        &self,
        user_id: &UserId,
        options: LoginOptions,
    ) -> Result<AuthResult<U>> {
        self.users.set_active(user_id, true).await?;
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.start_session(user, options).await
    }

    /// Marks the user's address proven by its mailbox alone (a verification link or code
    /// checked by the caller, outside the account's session): the same as
    /// [`prove_address`](Self::prove_address) with [`AddressProof::Mailbox`]`("verification_link")`,
    /// so on an account whose address nobody had proven, everything set up before (the
    /// password too) is removed. Use `prove_address(id, AddressProof::InSession)` when the
    /// code came back inside the account's own session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("quin@example.com", "violet-otter-sings-42").await?;
    /// auth.confirm_email(&user.id).await?;
    /// let user = auth.find_user(&user.id).await?.unwrap();
    /// assert!(user.is_verified && !is_password_usable(user.password_hash.as_deref()));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn confirm_email(&self, user_id: &UserId) -> Result<()> {
        self.prove_address(user_id, AddressProof::Mailbox("verification_link"))
            .await
            .map(|_| ())
    }

    /// Merges profile fields into the user (non-credential data: no session changes).
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Unsupported`] for a store without profiles;
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("rai@example.com", "violet-otter-sings-42").await?;
    /// let mut values = serde_json::Map::new();
    /// values.insert("name".into(), "Rai".into());
    /// auth.update_profile(&user.id, values).await?;
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn update_profile(
        &self,
        user_id: &UserId,
        values: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        self.users.update_profile(user_id, values).await
    }

    /// The first half of a password reset: throttled per canonical email (`reset:` keys, in
    /// the login limiter) and per client across addresses (the mail limiter, with the client
    /// address of the request's [`crate::RequestContext`]), then the active account to mail,
    /// if any. The caller mails a link
    /// to the account's stored address, never to what was typed, and answers every request
    /// the same way.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a malformed email; [`Error::RateLimited`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("sol@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.password_reset_target(" SOL@example.com").await?.is_some());
    /// assert!(auth.password_reset_target("nobody@example.com").await?.is_none());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn password_reset_target(&self, email: &str) -> Result<Option<U>> {
        let email = normalize_email(email)?;
        self.reserve(self.limiter.as_ref(), &format!("reset:{email}"))
            .await?;
        self.throttle_mail(None).await?;
        Ok(self
            .users
            .find_by_email(&email)
            .await?
            .filter(AuthUser::is_active))
    }

    async fn throttle_signup(&self, meta: &SessionMeta) -> Result<()> {
        if let Some(ip) = meta.ip {
            let key = format!("signup:{}", client_bucket(ip));
            let grant = self.reserve(self.signup_limiter.as_ref(), &key).await?;
            if grant.last {
                self.locked(self.signup_limiter.as_ref(), &key).await;
            }
        }
        Ok(())
    }
}
