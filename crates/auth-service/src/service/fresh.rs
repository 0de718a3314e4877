//! Fresh sign-ins: the rule that a new credential or a change to the ways into an account needs
//! a password (or second-factor) entry made within the last few minutes, whoever asks.

use std::time::Duration;

use serde_json::Value;

use super::{AuthService, LoginOptions, active_user};
use crate::AuthUser;
use crate::{Claims, ExtraClaims, SessionMeta, TokenKind};
use crate::{Error, Result};

/// The claim that records when the session's password (or second factor) was entered, in Unix
/// seconds (OpenID Connect's `auth_time`). Stamped by
/// [`AuthService::fresh_login_options`]; a refresh keeps it, so it says how long ago the user
/// last proved who they are, not when the token was issued.
pub const AUTH_TIME_CLAIM: &str = "auth_time";

/// How recent a sign-in the sensitive actions need by default: 15 minutes.
pub const DEFAULT_FRESH_LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A verified access token and its (active) user: [`AuthService::authenticate_session`] and
/// [`AuthService::authenticate_fresh`] verify the token once and hand both on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedIn<U> {
    /// The token's user.
    pub user: U,
    /// The token's claims (its session is `claims.family`).
    pub claims: Claims,
}

impl<U: AuthUser> AuthService<U> {
    /// Sensitive actions need a sign-in made within `window` (15 minutes by default).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_fresh_login_window(std::time::Duration::from_secs(300));
    /// assert_eq!(auth.fresh_login_window().as_secs(), 300);
    /// ```
    #[must_use]
    pub fn with_fresh_login_window(mut self, window: Duration) -> Self {
        self.fresh_window = window;
        self
    }

    /// How recent a sign-in the sensitive actions need.
    #[must_use]
    pub fn fresh_login_window(&self) -> Duration {
        self.fresh_window
    }

    /// Login options for a sign-in where the user just entered a password or a second factor:
    /// `meta`, and [`AUTH_TIME_CLAIM`] set to now (from the service's clock). Sessions started
    /// without it (a provider's sign-in code, a token exchange) are never fresh.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// auth.register("fern@example.com", "violet-otter-sings-42").await?;
    /// let options = auth.fresh_login_options(SessionMeta::new());
    /// let r = auth.login_with("fern@example.com", "violet-otter-sings-42", options).await?;
    /// assert!(auth.authenticate_fresh(r.access_token()).await.is_ok());
    /// let stale = auth.login("fern@example.com", "violet-otter-sings-42").await?;
    /// assert!(matches!(
    ///     auth.authenticate_fresh(stale.access_token()).await,
    ///     Err(Error::ReauthenticationRequired { .. })
    /// ));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn fresh_login_options(&self, meta: SessionMeta) -> LoginOptions {
        let mut extra = ExtraClaims::new();
        extra.insert(
            AUTH_TIME_CLAIM.into(),
            Value::from(self.clock.now().unix_timestamp()),
        );
        LoginOptions::new().with_meta(meta).with_extra(extra)
    }

    /// Whether `claims` record a sign-in within the [window](Self::fresh_login_window).
    #[must_use]
    pub fn is_fresh(&self, claims: &Claims) -> bool {
        let auth_time = claims
            .extra
            .as_ref()
            .and_then(|e| e.get(AUTH_TIME_CLAIM))
            .and_then(Value::as_i64);
        let now = self.clock.now().unix_timestamp();
        let window = i64::try_from(self.fresh_window.as_secs()).unwrap_or(i64::MAX);
        auth_time.is_some_and(|t| now.saturating_sub(t) <= window)
    }

    /// Verifies an access token once and loads its user, keeping the claims.
    ///
    /// # Errors
    ///
    /// As [`authenticate`](Self::authenticate).
    pub async fn authenticate_session(&self, access_token: &str) -> Result<SignedIn<U>> {
        let (claims, user) = match &self.lookup {
            Some(lookup) => lookup.authenticate(access_token).await?,
            None => {
                let claims = self.tokens.verify(access_token, TokenKind::Access).await?;
                let user =
                    active_user(self.users.as_ref(), self.user_cache.as_ref(), &claims).await?;
                (claims, user)
            }
        };
        if !user.is_active() {
            return Err(Error::InactiveUser);
        }
        Ok(SignedIn { user, claims })
    }

    /// [`authenticate_session`](Self::authenticate_session), for an action that needs a fresh
    /// sign-in: a new credential (API key, passkey, second factor, linked identity), a change
    /// to the ways in, ending other sessions.
    ///
    /// # Errors
    ///
    /// [`Error::ReauthenticationRequired`] when the token's sign-in is older than the window
    /// (or was not a password or second-factor entry); otherwise as
    /// [`authenticate`](Self::authenticate).
    pub async fn authenticate_fresh(&self, access_token: &str) -> Result<SignedIn<U>> {
        let session = self.authenticate_session(access_token).await?;
        if self.is_fresh(&session.claims) {
            Ok(session)
        } else {
            Err(Error::ReauthenticationRequired {
                max_age: self.fresh_window,
            })
        }
    }
}
