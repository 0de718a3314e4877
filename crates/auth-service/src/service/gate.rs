//! The second factor as the service sees it ([`SecondFactorGate`]), its challenge, and what a
//! sign-in gives ([`LoginOutcome`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::AuthResult;
#[cfg(doc)]
use super::AuthService;
use crate::SecretString;
use crate::UserId;
use crate::{Error, Result};

/// The second factor as the service sees it: whether an account has one, a single-use
/// challenge after its password, the check of the code that answers it, and removal. Set with
/// [`AuthService::with_second_factor`]; auth-mfa's `Mfa` implements it. The service calls it:
/// there is one login path, [`AuthService::sign_in`], and no way to a session around it.
///
/// ```
/// use auth_service::{async_trait, Result, SecondFactorGate, UserId};
/// struct AdminsOnly;
/// #[async_trait]
/// impl SecondFactorGate for AdminsOnly {
///     async fn is_required(&self, user: &UserId) -> Result<bool> {
///         Ok(user.as_str() == "1")
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(AdminsOnly.is_required(&UserId::new("1")).await?);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait SecondFactorGate: Send + Sync + 'static {
    /// Whether `user` has a second factor that login must ask for.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    async fn is_required(&self, user: &UserId) -> Result<bool>;

    /// Opens a single-use challenge for `user`, whose password just checked.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] while the factor is locked; [`Error::Unsupported`] (the
    /// default) for a gate that only says yes or no; [`Error::Backend`].
    async fn open_challenge(&self, user: &UserId) -> Result<Challenge> {
        let _ = user;
        Err(Error::Unsupported(
            "this second-factor gate cannot open challenges".into(),
        ))
    }

    /// Checks `code` against `challenge` (throttled, each code once) and consumes the
    /// challenge; answers whose it was.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, expired, used or exhausted challenge;
    /// [`Error::InvalidCredentials`]; [`Error::RateLimited`]; [`Error::Unsupported`] (the
    /// default).
    async fn answer_challenge(&self, challenge: &str, code: &str) -> Result<UserId> {
        let _ = (challenge, code);
        Err(Error::Unsupported(
            "this second-factor gate cannot check codes".into(),
        ))
    }

    /// Whose live `challenge` this is, counting one attempt on it (so a challenge cannot be
    /// probed without end): what lets another factor (a passkey) answer it, through
    /// [`AuthService::passkey_second_factor_options`].
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, expired, used or exhausted challenge;
    /// [`Error::Unsupported`] (the default).
    async fn challenge_user(&self, challenge: &str) -> Result<UserId> {
        let _ = challenge;
        Err(Error::Unsupported(
            "this second-factor gate cannot name a challenge's user".into(),
        ))
    }

    /// Ends `challenge` without a code, because another factor of `user` (a passkey) has
    /// just been verified by the service: counts an attempt, checks the challenge is
    /// `user`'s, consumes it. Only [`AuthService`] calls it, after that check.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for an unknown, expired, used or exhausted challenge, or one of
    /// another user; [`Error::Unsupported`] (the default).
    async fn redeem_challenge(&self, challenge: &str, user: &UserId) -> Result<()> {
        let _ = (challenge, user);
        Err(Error::Unsupported(
            "this second-factor gate cannot be answered by another factor".into(),
        ))
    }

    /// Lifts the factor's lockout of `user` (an administrator's unlock). The default does
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    async fn unlock(&self, user: &UserId) -> Result<()> {
        let _ = user;
        Ok(())
    }

    /// Removes every factor of `user`: a password reset proved the address of an account that
    /// had never proven it, so factors enrolled before may be an attacker's. The default does
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    async fn remove_all(&self, user: &UserId) -> Result<()> {
        let _ = user;
        Ok(())
    }
}

#[async_trait]
impl<T: SecondFactorGate + ?Sized> SecondFactorGate for Arc<T> {
    async fn is_required(&self, user: &UserId) -> Result<bool> {
        (**self).is_required(user).await
    }
    async fn open_challenge(&self, user: &UserId) -> Result<Challenge> {
        (**self).open_challenge(user).await
    }
    async fn answer_challenge(&self, challenge: &str, code: &str) -> Result<UserId> {
        (**self).answer_challenge(challenge, code).await
    }
    async fn remove_all(&self, user: &UserId) -> Result<()> {
        (**self).remove_all(user).await
    }
    async fn challenge_user(&self, challenge: &str) -> Result<UserId> {
        (**self).challenge_user(challenge).await
    }
    async fn redeem_challenge(&self, challenge: &str, user: &UserId) -> Result<()> {
        (**self).redeem_challenge(challenge, user).await
    }
    async fn unlock(&self, user: &UserId) -> Result<()> {
        (**self).unlock(user).await
    }
}

/// A second-factor challenge: the single-use token the client sends back with its code, and
/// how long it lives. `Debug` redacts the token.
///
/// ```
/// use std::time::Duration;
/// use auth_service::{Challenge, SecretString};
/// let c = Challenge::new(SecretString::from("abc"), Duration::from_secs(300));
/// assert_eq!(c.expires_in.as_secs(), 300);
/// assert!(!format!("{c:?}").contains("abc"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Challenge {
    /// The challenge token.
    pub token: SecretString,
    /// Time until it expires.
    pub expires_in: Duration,
}

impl Challenge {
    /// A challenge.
    ///
    /// ```
    /// # use auth_service::{Challenge, SecretString};
    /// let _ = Challenge::new(SecretString::from("t"), std::time::Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn new(token: SecretString, expires_in: Duration) -> Self {
        Self { token, expires_in }
    }
}

/// What [`AuthService::sign_in`] gives: a session, or a second-factor challenge to answer
/// with [`AuthService::complete_sign_in`].
///
/// ```
/// use auth_service::{Challenge, LoginOutcome, SecretString, User};
/// let outcome: LoginOutcome<User> = LoginOutcome::Challenge(Challenge::new(SecretString::from("t"), std::time::Duration::from_secs(60)));
/// assert!(matches!(outcome, LoginOutcome::Challenge(_)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoginOutcome<U> {
    /// Signed in: the user and their tokens.
    Session(AuthResult<U>),
    /// The password checked; the account's second factor must answer this challenge.
    Challenge(Challenge),
}
