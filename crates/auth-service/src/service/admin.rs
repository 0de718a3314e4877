//! What an operator does to an account: list and search, see its state, lift its lockouts,
//! reset its second factor, delete it. Deactivation and "log out everywhere" are
//! [`AuthService::set_active`] and [`AuthService::logout_all`].

use serde::Serialize;

use super::AuthService;
use super::throttle::login_key;
use crate::ApiKeyOwner;
use crate::AuthEvent;
use crate::SessionInfo;
use crate::is_password_usable;
use crate::{AuthUser, UserId, UserQuery};
use crate::{Error, Result};

/// One account as an administrator sees it.
///
/// ```
/// use auth_service::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
/// let user = auth.register("ola@example.com", "violet-otter-sings-42").await?;
/// auth.login("ola@example.com", "violet-otter-sings-42").await?;
/// let status = auth.account_status(&user.id).await?;
/// assert!(status.usable_password && !status.second_factor);
/// assert_eq!(status.sessions.unwrap().len(), 1);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AccountStatus<U> {
    /// The account.
    pub user: U,
    /// Whether it has a second factor that login asks for.
    pub second_factor: bool,
    /// Whether a password can log in (false for accounts made unusable or never given one).
    pub usable_password: bool,
    /// Its sessions, or `None` when the token backend cannot list them.
    pub sessions: Option<Vec<SessionInfo>>,
}

impl<U: AuthUser> AuthService<U> {
    /// One page of accounts (filters in [`UserQuery`]), in id order.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store that cannot list; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("ann@example.com", "violet-otter-sings-42").await?;
    /// auth.register("bob@example.com", "violet-otter-sings-42").await?;
    /// let found = auth.list_users(&UserQuery::new().email_prefix("an")).await?;
    /// assert_eq!(found.len(), 1);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn list_users(&self, query: &UserQuery) -> Result<Vec<U>> {
        self.users.list(query).await
    }

    /// The account's state: the user, its second factor, whether its password can log in, and
    /// its sessions.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(matches!(auth.account_status(&UserId::new("9")).await, Err(Error::UserNotFound)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn account_status(&self, user_id: &UserId) -> Result<AccountStatus<U>> {
        let user = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        let second_factor = self.requires_second_factor(user_id).await?;
        let sessions = match self.tokens.sessions(user_id).await {
            Ok(list) => Some(list),
            Err(Error::Unsupported(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(AccountStatus {
            usable_password: is_password_usable(user.password_hash()),
            user,
            second_factor,
            sessions,
        })
    }

    /// Lifts the account's lockouts: its login key without a client address, its login key
    /// from each of `clients` (address buckets, as the audit log's `account_locked` entries
    /// record them in `detail.client`), its re-authentication key, its sign-in code key and
    /// its second factor's.
    /// Emits `AccountUnlocked`.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("lok@example.com", "violet-otter-sings-42").await?;
    /// for _ in 0..5 { let _ = auth.login("lok@example.com", "wrong-password-entirely").await; }
    /// assert!(matches!(auth.login("lok@example.com", "violet-otter-sings-42").await, Err(Error::RateLimited { .. })));
    /// auth.unlock(&user.id, &[]).await?;
    /// assert!(auth.login("lok@example.com", "violet-otter-sings-42").await.is_ok());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn unlock(&self, user_id: &UserId, clients: &[String]) -> Result<()> {
        let user = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        self.limiter.reset(&login_key(user.email(), None)).await?;
        for client in clients {
            // A bucket never contains `|`: anything else is not one of ours.
            if !client.contains('|') && !client.is_empty() {
                self.limiter
                    .reset(&login_key(user.email(), Some(client)))
                    .await?;
            }
        }
        self.limiter.reset(&format!("reauth:{user_id}")).await?;
        self.limiter
            .reset(&format!("magic-code:{}", user.email()))
            .await?;
        if let Some(gate) = &self.second_factor {
            gate.unlock(user_id).await?;
        }
        self.events
            .emit(AuthEvent::AccountUnlocked {
                user_id: user_id.clone(),
            })
            .await;
        Ok(())
    }

    /// Removes every second factor of the account (a lost phone, or a factor someone else
    /// enrolled), so its next login asks for the password alone; the factor's own
    /// `MfaDisabled` event says so. Sessions are not ended: they were opened with the factor.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Unsupported`] without a second factor configured;
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("rm@example.com", "violet-otter-sings-42").await?;
    /// assert!(matches!(auth.reset_second_factor(&user.id).await, Err(Error::Unsupported(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn reset_second_factor(&self, user_id: &UserId) -> Result<()> {
        let gate = self
            .second_factor
            .as_ref()
            .ok_or(Error::Unsupported("no second factor is configured".into()))?;
        if self.uncached_users.find_by_id(user_id).await?.is_none() {
            return Err(Error::UserNotFound);
        }
        // The gate's `MfaDisabled` event forgets the devices trusted under the factor.
        gate.remove_all(user_id).await
    }

    /// Deletes the account: every session ends first, its API keys are revoked, its second
    /// factors, passkeys and linked identities removed, then the user row goes (with what the schema cascades) and
    /// `UserDeleted` is emitted. `false` when there was no such account. The audit log keeps
    /// its entries (they name the id, which is never given to another account).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a store that cannot delete; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("del@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.login("del@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.delete_user(&user.id).await?);
    /// assert!(auth.authenticate(session.access_token()).await.is_err());
    /// assert!(auth.find_user(&user.id).await?.is_none());
    /// assert!(!auth.delete_user(&user.id).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn delete_user(&self, user_id: &UserId) -> Result<bool> {
        let Some(user) = self.uncached_users.find_by_id(user_id).await? else {
            return Ok(false);
        };
        // Sessions first: from here on no token of the account is accepted, whatever fails
        // next.
        self.end_sessions(user_id, None).await?;
        if self.api_keys.is_some() {
            let owner = ApiKeyOwner::User(user_id.clone());
            for key in self.list_api_keys(&owner).await? {
                self.revoke_api_key(&owner, &key.id).await?;
            }
        }
        if let Some(gate) = &self.second_factor {
            gate.remove_all(user_id).await?;
        }
        self.remove_passkeys(user_id).await?;
        self.remove_identities(user_id).await?;
        if !self.users.delete(user_id).await? {
            return Ok(false);
        }
        self.events
            .emit(AuthEvent::UserDeleted {
                user_id: user_id.clone(),
                email: user.email().to_owned(),
            })
            .await;
        Ok(true)
    }
}
