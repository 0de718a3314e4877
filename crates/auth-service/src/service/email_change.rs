//! Changing the email address: asked with the password, confirmed from the new address,
//! cancellable from the old one, applied by a compare-and-set.
//!
//! The confirmation token carries the user, both addresses, a nonce and its expiry, under a
//! MAC that also covers a digest of the current password hash: a password change spends every
//! pending email change. The nonce names a single-use record in the challenge store, which the
//! confirmation or the cancellation consumes (exactly one of them, once).

use std::time::Duration;

use super::AuthService;
use super::links::{b64, unb64};
use crate::AuthEvent;
use crate::SecretString;
use crate::ephemeral::ChallengeRecord;
use crate::{AuthUser, UserId, normalize_email};
use crate::{Error, Result};

const CONFIRM: &str = "email-change";
const CANCEL: &str = "email-change-cancel";

/// How long an email-change link works.
pub(super) const EMAIL_CHANGE_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl<U: AuthUser> AuthService<U> {
    /// Starts a change of `user_id`'s address to `new_email`. The current password is checked
    /// (throttled per account, like every re-authentication); then, when no other account has
    /// the new address, `EmailChangeRequested` carries a confirmation token for the new address
    /// and a cancellation token for the old one (both valid 24 hours). When the new address is
    /// taken nothing is sent and the answer is the same: the caller learns nothing about other
    /// accounts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCredentials`] for a wrong password; [`Error::RateLimited`];
    /// [`Error::Validation`] for an address that is not one, or is the current one;
    /// [`Error::Unsupported`] without a challenge store; [`Error::Configuration`] without a
    /// signing secret; [`Error::Backend`].
    ///
    /// ```
    /// use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
    /// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_challenge_store(ephemeral::MemoryChallengeStore::new());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// auth.events().on_fn(AuthEventKind::EmailChangeRequested, move |e| {
    ///     let tx = tx.clone();
    ///     async move { if let AuthEvent::EmailChangeRequested { token, .. } = e { tx.send(token).ok(); } Ok(()) }
    /// });
    /// let user = auth.register("old@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.login("old@example.com", "violet-otter-sings-42").await?;
    /// auth.request_email_change(&user.id, "new@example.com", "violet-otter-sings-42").await?;
    /// let token = rx.recv().await.unwrap();
    /// // Whoever holds only the new mailbox cannot confirm: the account's session must.
    /// assert!(matches!(auth.confirm_email_change(token.expose_secret(), None).await, Err(Error::Forbidden(_))));
    /// let changed = auth.confirm_email_change(token.expose_secret(), Some(session.access_token())).await?;
    /// assert_eq!(changed.email, "new@example.com");
    /// assert!(changed.is_verified);
    /// assert!(auth.confirm_email_change(token.expose_secret(), Some(session.access_token())).await.is_err(), "once");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn request_email_change(
        &self,
        user_id: &UserId,
        new_email: &str,
        password: &str,
    ) -> Result<()> {
        let store = self.challenge_store()?;
        // The password, as for a password change: one throttle for every re-authentication.
        let user = self.reauthenticate(user_id, password).await?;
        // Two mails go out: counted per client like every other mail.
        self.throttle_mail(None).await?;
        let new_email = normalize_email(new_email)?;
        if new_email == user.email() {
            return Err(Error::invalid(
                "new_email",
                "same_email",
                "This is already the account's email address.",
            ));
        }
        if self.users.find_by_email(&new_email).await?.is_some() {
            tracing::info!(user = %user_id, "email change to a taken address: nothing sent");
            return Ok(());
        }
        let nonce = crate::random::token(16);
        let expires = self.clock.now() + EMAIL_CHANGE_LIFETIME;
        let exp = expires.unix_timestamp().to_string();
        let old = user.email().to_owned();
        let stamp = password_stamp(&user);
        let mac = self.link_mac(
            CONFIRM,
            &[user_id.as_str(), &old, &new_email, &nonce, &exp, &stamp],
        )?;
        let token = [
            b64(user_id.as_str()),
            b64(&old),
            b64(&new_email),
            nonce.clone(),
            exp.clone(),
            mac,
        ]
        .join(".");
        let cancel_mac = self.link_mac(CANCEL, &[user_id.as_str(), &nonce, &exp])?;
        let cancel = [b64(user_id.as_str()), nonce.clone(), exp, cancel_mac].join(".");
        store
            .create(&ChallengeRecord::new(
                self.record_key(CONFIRM, &[user_id.as_str(), &nonce])?,
                user_id.clone(),
                expires,
            ))
            .await?;
        self.events
            .emit(AuthEvent::EmailChangeRequested {
                user_id: user_id.clone(),
                old_email: old,
                new_email,
                token: SecretString::new(token),
                cancel_token: SecretString::new(cancel),
            })
            .await;
        Ok(())
    }

    /// Applies a confirmed change: the token is checked (genuine, unexpired, for the account's
    /// current address and password), then `access_token` must be a live session of the same
    /// account (the change is bound to the account that asked for it: whoever merely holds the
    /// new mailbox cannot move somebody else's account, and its credentials, onto their
    /// address), then the record is consumed (once, whatever the concurrency), the address
    /// replaced by a compare-and-set (the database's unique constraint decides a race with a
    /// sign-up or another change), marked verified, and every session but the confirming one
    /// ended. Emits `EmailChanged`. Returns the updated user.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a forged, used, cancelled or stale token (the address or
    /// password changed since), [`Error::TokenExpired`]; [`Error::Forbidden`] without a
    /// session of the account; [`Error::EmailTaken`] when another account took the address
    /// meanwhile; [`Error::Backend`].
    pub async fn confirm_email_change(&self, token: &str, access_token: Option<&str>) -> Result<U> {
        let holder = match access_token {
            Some(t) => self
                .verify_access(t)
                .await
                .ok()
                .map(|c| (UserId::new(c.sub), c.family)),
            None => None,
        };
        self.apply_email_change(token, holder).await
    }

    /// [`confirm_email_change`](Self::confirm_email_change) for a link opened in the browser
    /// that asked for the change: `binding` is the value of
    /// [`browser_binding`](Self::browser_binding)`("email-change", user)` the request that asked
    /// set as a cookie there. Every session ends (none confirmed it).
    ///
    /// # Errors
    ///
    /// As [`confirm_email_change`](Self::confirm_email_change).
    pub async fn confirm_email_change_in_browser(&self, token: &str, binding: &str) -> Result<U> {
        let holder = self
            .binding_user("email-change", binding)
            .map(|user| (user, None));
        self.apply_email_change(token, holder).await
    }

    /// The confirmation, for `holder` (the account that presents it, and the session to keep).
    async fn apply_email_change(
        &self,
        token: &str,
        holder: Option<(UserId, Option<String>)>,
    ) -> Result<U> {
        let store = self.challenge_store()?;
        let parts: Vec<&str> = token.split('.').collect();
        let [uid, old, new, nonce, exp, mac] = parts.as_slice() else {
            return Err(Error::TokenInvalid);
        };
        if token.len() > crate::MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        let (uid, old, new) = (unb64(uid)?, unb64(old)?, unb64(new)?);
        let user_id = UserId::new(uid);
        let user = self
            .users
            .find_by_id(&user_id)
            .await?
            .ok_or(Error::TokenInvalid)?;
        let stamp = password_stamp(&user);
        if !self.link_mac_ok(
            mac,
            CONFIRM,
            &[user_id.as_str(), &old, &new, nonce, exp, &stamp],
        )? {
            return Err(Error::TokenInvalid);
        }
        self.check_expiry(exp)?;
        if !user.is_active() || user.email() != old {
            return Err(Error::TokenInvalid);
        }
        let Some((_, keep_session)) = holder.filter(|(holder, _)| *holder == user_id) else {
            return Err(Error::Forbidden(
                "sign in to the account that asked for this change, then open the link again"
                    .into(),
            ));
        };
        let keep_session = keep_session.as_deref();
        if !store
            .consume(&self.record_key(CONFIRM, &[user_id.as_str(), nonce])?)
            .await?
        {
            return Err(Error::TokenInvalid);
        }
        if !self.users.replace_email(&user_id, &old, &new).await? {
            return Err(Error::TokenInvalid);
        }
        self.users.set_verified(&user_id, true).await?;
        self.end_sessions(&user_id, keep_session).await?;
        self.events
            .emit(AuthEvent::EmailChanged {
                user_id: user_id.clone(),
                old_email: old,
                new_email: new,
            })
            .await;
        self.users
            .find_by_id(&user_id)
            .await?
            .ok_or(Error::TokenInvalid)
    }

    /// Cancels a pending change from the old address's link: its record is consumed, so the
    /// confirmation link no longer works. Emits `EmailChangeCancelled`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a forged token or a change already confirmed or cancelled;
    /// [`Error::TokenExpired`]; [`Error::Backend`].
    ///
    /// ```
    /// use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
    /// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_challenge_store(ephemeral::MemoryChallengeStore::new());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// auth.events().on_fn(AuthEventKind::EmailChangeRequested, move |e| {
    ///     let tx = tx.clone();
    ///     async move { if let AuthEvent::EmailChangeRequested { token, cancel_token, .. } = e { tx.send((token, cancel_token)).ok(); } Ok(()) }
    /// });
    /// let user = auth.register("old@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.login("old@example.com", "violet-otter-sings-42").await?;
    /// auth.request_email_change(&user.id, "thief@example.com", "violet-otter-sings-42").await?;
    /// let (token, cancel) = rx.recv().await.unwrap();
    /// auth.cancel_email_change(cancel.expose_secret()).await?;
    /// assert!(matches!(auth.confirm_email_change(token.expose_secret(), Some(session.access_token())).await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn cancel_email_change(&self, token: &str) -> Result<()> {
        let store = self.challenge_store()?;
        let parts: Vec<&str> = token.split('.').collect();
        let [uid, nonce, exp, mac] = parts.as_slice() else {
            return Err(Error::TokenInvalid);
        };
        let user_id = UserId::new(unb64(uid)?);
        if !self.link_mac_ok(mac, CANCEL, &[user_id.as_str(), nonce, exp])? {
            return Err(Error::TokenInvalid);
        }
        self.check_expiry(exp)?;
        if !store
            .consume(&self.record_key(CONFIRM, &[user_id.as_str(), nonce])?)
            .await?
        {
            return Err(Error::TokenInvalid);
        }
        self.events
            .emit(AuthEvent::EmailChangeCancelled { user_id })
            .await;
        Ok(())
    }

    /// `TokenExpired` once `exp` (Unix seconds) has passed.
    pub(super) fn check_expiry(&self, exp: &str) -> Result<()> {
        let exp: i64 = exp.parse().map_err(|_| Error::TokenInvalid)?;
        if self.clock.now().unix_timestamp() >= exp {
            return Err(Error::TokenExpired);
        }
        Ok(())
    }
}

/// A digest of the password hash: binds a link to the password it was asked under.
fn password_stamp(user: &impl AuthUser) -> String {
    crate::random::sha256_hex(user.password_hash().unwrap_or_default())
}
