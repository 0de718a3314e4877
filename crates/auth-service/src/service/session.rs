//! Sessions: authenticate, refresh, logout, revocation and account activation.

use super::{ActiveUserGuard, AuthService, active_user};
use crate::AuthEvent;
use crate::{AuthUser, UserId};
use crate::{Claims, RotateOutcome, RotateRequest, SessionInfo, SessionMeta, TokenKind, TokenPair};
use crate::{Error, Result};

impl<U: AuthUser> AuthService<U> {
    /// Verifies an access token and loads its user.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] (also when the user no longer exists), [`Error::TokenExpired`],
    /// [`Error::TokenRevoked`], [`Error::InactiveUser`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(matches!(auth.authenticate("not-a-token").await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn authenticate(&self, access_token: &str) -> Result<U> {
        if let Some(lookup) = &self.lookup {
            let (_, user) = lookup.authenticate(access_token).await?;
            return if user.is_active() {
                Ok(user)
            } else {
                Err(Error::InactiveUser)
            };
        }
        let claims = self.tokens.verify(access_token, TokenKind::Access).await?;
        active_user(self.users.as_ref(), self.user_cache.as_ref(), &claims).await
    }

    /// Verifies an access token without loading the user (no user-store access).
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`], [`Error::TokenExpired`], [`Error::TokenRevoked`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("f@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("f@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.verify_access(r.access_token()).await?.sub, r.user.id.as_str());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn verify_access(&self, access_token: &str) -> Result<Claims> {
        self.tokens.verify(access_token, TokenKind::Access).await
    }

    /// Exchanges a refresh token for a new pair in the same session. The presented token is
    /// consumed atomically; presenting it again revokes the whole session. Inactive or deleted
    /// users are refused; extra claims are kept; the session never outlives its absolute lifetime.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`], [`Error::TokenExpired`], [`Error::TokenRevoked`] (also on reuse),
    /// [`Error::InactiveUser`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("g@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("g@example.com", "violet-otter-sings-42").await?;
    /// let next = auth.refresh(r.refresh_token()).await?;
    /// // Replaying the old refresh token is reuse: the session ends.
    /// assert!(matches!(auth.refresh(r.refresh_token()).await, Err(Error::TokenRevoked)));
    /// assert!(auth.refresh(next.refresh_token.expose_secret()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        self.refresh_with(refresh_token, SessionMeta::default())
            .await
    }

    /// Like [`refresh`](Self::refresh), recording the client's metadata on the session.
    ///
    /// # Errors
    ///
    /// As [`refresh`](Self::refresh).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("h@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("h@example.com", "violet-otter-sings-42").await?;
    /// let meta = SessionMeta::new().with_user_agent("app/2.0");
    /// auth.refresh_with(r.refresh_token(), meta).await?;
    /// let sessions = auth.sessions(&r.user.id).await?;
    /// assert_eq!(sessions[0].meta.user_agent.as_deref(), Some("app/2.0"));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn refresh_with(&self, refresh_token: &str, meta: SessionMeta) -> Result<TokenPair> {
        let request = RotateRequest::new()
            .with_meta(meta)
            .with_lifetimes(self.config.lifetimes())
            .with_reuse_window(self.config.refresh_reuse_window());
        let guard = ActiveUserGuard {
            users: self.users.as_ref(),
            cache: self.user_cache.as_ref(),
        };
        match self.tokens.rotate(refresh_token, &request, &guard).await? {
            RotateOutcome::Rotated { previous, pair } => {
                self.events
                    .emit(AuthEvent::TokenRefreshed {
                        user_id: previous.user_id(),
                        family: previous.family,
                    })
                    .await;
                Ok(pair)
            }
            RotateOutcome::Reused { user_id, family } => {
                tracing::warn!(user_id = %user_id, "refresh token reuse detected; session revoked");
                self.events
                    .emit(AuthEvent::RefreshReuseDetected { user_id, family })
                    .await;
                Err(Error::TokenRevoked)
            }
        }
    }

    /// Ends the session of a token (access or refresh): the token and its pair stop working.
    /// An unknown, expired or already revoked token is not an error.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot revoke; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("i@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("i@example.com", "violet-otter-sings-42").await?;
    /// auth.logout(r.access_token()).await?;
    /// assert!(matches!(auth.refresh(r.refresh_token()).await, Err(Error::TokenRevoked)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn logout(&self, token: &str) -> Result<()> {
        // Learn whose session it is before revoking, for the event; a token that no longer
        // verifies is still revoked (an expired token's pair may be alive).
        let owner = match self.tokens.verify(token, TokenKind::Access).await {
            Ok(c) => Some(c.user_id()),
            Err(_) => self
                .tokens
                .verify(token, TokenKind::Refresh)
                .await
                .ok()
                .map(|c| c.user_id()),
        };
        self.tokens.revoke(token).await?;
        if let Some(user_id) = owner {
            self.events
                .emit(AuthEvent::UserLogout {
                    user_id,
                    all: false,
                })
                .await;
        }
        Ok(())
    }

    /// Ends every session of a user ("log out everywhere"); returns how many ended.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot revoke; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("j@example.com", "violet-otter-sings-42").await?;
    /// let phone = auth.login("j@example.com", "violet-otter-sings-42").await?;
    /// let laptop = auth.login("j@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.logout_all(&phone.user.id).await?, 2);
    /// assert!(auth.authenticate(laptop.access_token()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn logout_all(&self, user_id: &UserId) -> Result<u64> {
        self.revoke_other_sessions(user_id, None).await
    }

    /// The user's live sessions (devices), newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for backends without session state; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("k@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("k@example.com", "violet-otter-sings-42").await?;
    /// assert_eq!(auth.sessions(&r.user.id).await?.len(), 1);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>> {
        self.tokens.sessions(user_id).await
    }

    /// Ends one of the user's sessions; `false` if it was not theirs or did not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] or [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("l@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("l@example.com", "violet-otter-sings-42").await?;
    /// let id = auth.sessions(&r.user.id).await?[0].id.clone();
    /// assert!(auth.revoke_session(&r.user.id, &id).await?);
    /// assert!(auth.authenticate(r.access_token()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn revoke_session(&self, user_id: &UserId, session_id: &str) -> Result<bool> {
        self.tokens.revoke_session(user_id, session_id).await
    }

    /// Ends every session of the user but `keep` (the one making the request): "sign out
    /// other devices". Returns how many ended and emits `UserLogout { all: true }`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when the backend cannot revoke; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("uma@example.com", "violet-otter-sings-42").await?;
    /// let here = auth.login("uma@example.com", "violet-otter-sings-42").await?;
    /// let there = auth.login("uma@example.com", "violet-otter-sings-42").await?;
    /// let session = auth.verify_access(here.access_token()).await?.family;
    /// assert_eq!(auth.revoke_other_sessions(&here.user.id, session.as_deref()).await?, 1);
    /// assert!(auth.authenticate(here.access_token()).await.is_ok());
    /// assert!(auth.authenticate(there.access_token()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn revoke_other_sessions(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        let ended = self.end_sessions(user_id, keep).await?;
        self.events
            .emit(AuthEvent::UserLogout {
                user_id: user_id.clone(),
                all: true,
            })
            .await;
        Ok(ended)
    }

    /// Activates or deactivates an account; deactivating ends every session.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// # auth.register("o@example.com", "violet-otter-sings-42").await?;
    /// let r = auth.login("o@example.com", "violet-otter-sings-42").await?;
    /// auth.set_active(&r.user.id, false).await?;
    /// assert!(auth.authenticate(r.access_token()).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn set_active(&self, user_id: &UserId, active: bool) -> Result<()> {
        self.users.set_active(user_id, active).await?;
        if !active {
            self.end_sessions(user_id, None).await?;
        }
        self.events
            .emit(AuthEvent::UserActiveChanged {
                user_id: user_id.clone(),
                active,
            })
            .await;
        Ok(())
    }
}
