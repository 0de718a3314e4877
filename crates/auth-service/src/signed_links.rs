//! The signed-link flows: password reset, email verification, invites.

use std::fmt;
use std::time::Duration;

use auth_sign::{OneTimeTokens, SignError, Signer, TimestampSigner};

use crate::{
    AddressProof, AuthEvent, AuthService, AuthUser, ClaimReport, Clock, ConfigError, Error, Result,
    SecretKey, SecretString, User, UserId,
};
use serde::{Deserialize, Serialize};

fn signing_key<U: AuthUser>(auth: &AuthService<U>) -> Result<SecretKey> {
    auth.config()
        .signing_secret()
        .cloned()
        .ok_or(Error::Configuration(ConfigError::Missing {
            var: "AUTH_SIGNING_SECRET",
        }))
}

/// Password reset by emailed link, with tokens bound to the password state (one use, no row).
///
/// - [`request`](Self::request) always answers the same, whether the email exists or not, and
///   spends the same work: for an unknown email a token for a stand-in user is made and dropped.
///   For an active account it emits `PasswordResetRequested` carrying the token, delivered in the
///   background, so a slow mail handler cannot reveal which emails exist. Requests are rate
///   limited per email with the service's limiter.
/// - [`confirm`](Self::confirm) checks the token against the user's current state, validates the
///   new password with the policy, replaces the hash only if it is still the one the token was
///   made for (so two concurrent confirmations cannot both succeed), ends every session, and
///   emits `PasswordChanged` and `PasswordResetCompleted`. A used or stale token fails.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use auth_service::{AuthConfig, AuthEvent, AuthEventKind, AuthService, MemoryTokenBackend, MemoryUserStore};
/// use auth_service::PasswordResetService;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
/// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
/// auth.register("alice@example.com", "violet-otter-sings-42").await?;
///
/// // The mailer: here, a channel.
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// auth.events().on_fn(AuthEventKind::PasswordResetRequested, move |e| {
///     let tx = tx.clone();
///     async move {
///         if let AuthEvent::PasswordResetRequested { token, .. } = e {
///             tx.send(token.expose_secret().to_owned()).ok();
///         }
///         Ok(())
///     }
/// });
///
/// let reset = PasswordResetService::new(auth.clone())?;
/// reset.request("alice@example.com").await?;
/// reset.request("nobody@example.com").await?; // same answer
/// let token = rx.recv().await.unwrap();
///
/// reset.confirm(&token, "amber-heron-dances-7").await?;
/// assert!(auth.login("alice@example.com", "amber-heron-dances-7").await.is_ok());
/// assert!(reset.confirm(&token, "another-fine-phrase-9").await.is_err(), "used");
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
pub struct PasswordResetService<U: AuthUser = User> {
    auth: AuthService<U>,
    tokens: OneTimeTokens,
}

impl<U: AuthUser> Clone for PasswordResetService<U> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            tokens: self.tokens.clone(),
        }
    }
}

impl<U: AuthUser> fmt::Debug for PasswordResetService<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordResetService")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> PasswordResetService<U> {
    /// The purpose salt of reset tokens.
    pub const PURPOSE: &'static str = "password-reset";

    /// A reset flow over `auth`, keyed by its config's signing secret, with tokens valid for
    /// `password_reset_token_lifetime` (default one hour).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming `AUTH_SIGNING_SECRET` when the config has no secret.
    ///
    /// ```
    /// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let err = auth_service::PasswordResetService::new(auth).unwrap_err();
    /// assert!(err.to_string().contains("AUTH_SIGNING_SECRET"));
    /// ```
    pub fn new(auth: AuthService<U>) -> Result<Self> {
        let tokens = OneTimeTokens::from_key(
            signing_key(&auth)?,
            Self::PURPOSE,
            auth.config().password_reset_token_lifetime(),
        );
        Ok(Self { auth, tokens })
    }

    /// Reads time from `clock` (give the service's clock).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build().unwrap();
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let reset = auth_service::PasswordResetService::new(auth)?.with_clock(FixedClock::from_unix(0));
    /// # let _ = reset;
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.tokens = self.tokens.with_clock(clock);
        self
    }

    /// The token generator (to make a token for a user directly, for example in an admin tool).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build().unwrap();
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let reset = auth_service::PasswordResetService::new(auth)?;
    /// assert_eq!(reset.tokens().max_age().as_secs(), 3600);
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn tokens(&self) -> &OneTimeTokens {
        &self.tokens
    }

    /// Starts a reset. The answer is `Ok(())` whether or not the email has an account.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] for a malformed email; [`Error::RateLimited`] after too many
    /// requests for one email; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let reset = auth_service::PasswordResetService::new(auth)?;
    /// assert!(reset.request("nobody@example.com").await.is_ok());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn request(&self, email: &str) -> Result<()> {
        // The throttle (`reset:` keys) and the lookup are the service's.
        match self.auth.password_reset_target(email).await? {
            Some(user) => {
                let token = self.tokens.make(&user);
                // Mail goes to the stored address, never to what was typed.
                let event = AuthEvent::PasswordResetRequested {
                    user_id: user.id().clone(),
                    email: user.email().to_owned(),
                    token: SecretString::new(token),
                };
                // Deliver in the background: the caller's answer must not wait for the mailer,
                // or its timing would tell which emails have accounts.
                self.auth.events().emit_detached(event);
            }
            None => {
                // The same signing work for an unknown or inactive account.
                let stand_in = User::new(UserId::new("0"), email.trim());
                std::hint::black_box(self.tokens.make(&stand_in));
            }
        }
        Ok(())
    }

    /// Completes a reset with the emailed token.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] for a forged, used or stale token, or an inactive or missing user;
    /// [`Error::TokenExpired`]; [`Error::Validation`] when the policy rejects the new password
    /// (the token stays usable); [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("bob@example.com", "violet-otter-sings-42").await?;
    /// let reset = auth_service::PasswordResetService::new(auth.clone())?;
    /// let token = reset.tokens().make(&user);
    /// assert!(matches!(reset.confirm(&token, "123").await, Err(Error::Validation(_))));
    /// reset.confirm(&token, "amber-heron-dances-7").await?;
    /// assert!(matches!(reset.confirm(&token, "amber-heron-dances-8").await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn confirm(&self, token: &str, new_password: &str) -> Result<()> {
        let user_id = self.tokens.user_id(token).map_err(Error::from)?;
        let user = match self.auth.find_user(&user_id).await? {
            Some(u) if u.is_active() => u,
            _ => return Err(Error::TokenInvalid),
        };
        self.tokens.check(token, &user).map_err(Error::from)?;
        // The password replace is the service's: policy, compare-and-set from the hash this
        // token was made for (a concurrent confirmation or change spends it), sessions ended,
        // an unproven address proven and its earlier second factors removed, events.
        self.auth.reset_password(&user, new_password).await
    }
}

/// Email verification by link: tokens bound to the email and the verified flag, so a link dies
/// once used, when the email changes, or after `max_age` (default 24 hours).
///
/// ```
/// use auth_service::{AuthConfig, AuthEvent, AuthEventKind, AuthService, MemoryTokenBackend, MemoryUserStore, UserStore};
/// use auth_service::EmailVerificationService;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-signing").build()?;
/// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
/// let user = auth.register("carol@example.com", "violet-otter-sings-42").await?;
///
/// let verification = EmailVerificationService::new(auth.clone())?;
/// let token = verification.make_token(&user);
/// let verified = verification.confirm(&token).await?;
/// assert!(verified.is_verified);
/// assert!(verification.confirm(&token).await.is_err(), "a link works once");
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
pub struct EmailVerificationService<U: AuthUser = User> {
    auth: AuthService<U>,
    tokens: OneTimeTokens,
}

impl<U: AuthUser> Clone for EmailVerificationService<U> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            tokens: self.tokens.clone(),
        }
    }
}

impl<U: AuthUser> fmt::Debug for EmailVerificationService<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailVerificationService")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl<U: AuthUser> EmailVerificationService<U> {
    /// The purpose salt of verification tokens.
    pub const PURPOSE: &'static str = "email-verification";
    /// How long a verification link is valid by default: 24 hours.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(86_400);

    /// A verification flow over `auth`, keyed by its config's signing secret.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming `AUTH_SIGNING_SECRET` when the config has no secret.
    ///
    /// ```
    /// use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth_service::EmailVerificationService::new(auth).is_err());
    /// ```
    pub fn new(auth: AuthService<U>) -> Result<Self> {
        let tokens =
            OneTimeTokens::from_key(signing_key(&auth)?, Self::PURPOSE, Self::DEFAULT_MAX_AGE)
                .binding_verified();
        Ok(Self { auth, tokens })
    }

    /// Sets how long links stay valid.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build().unwrap();
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let v = auth_service::EmailVerificationService::new(auth)?.with_max_age(std::time::Duration::from_secs(600));
    /// # let _ = v;
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.tokens = self.tokens.with_max_age(max_age);
        self
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build().unwrap();
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let v = auth_service::EmailVerificationService::new(auth)?.with_clock(FixedClock::from_unix(0));
    /// # let _ = v;
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.tokens = self.tokens.with_clock(clock);
        self
    }

    /// A verification token for the user's current email.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build().unwrap();
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// let v = auth_service::EmailVerificationService::new(auth)?;
    /// assert!(!v.make_token(&User::new(UserId::new("1"), "a@b.c")).is_empty());
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn make_token(&self, user: &U) -> String {
        self.tokens.make(user)
    }

    /// Emits `EmailVerificationRequested` with a fresh token for the user (the handler mails the
    /// link). Nothing happens for an already verified user.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("dan@example.com", "violet-otter-sings-42").await?;
    /// auth_service::EmailVerificationService::new(auth)?.request(&user.id).await?;
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn request(&self, user_id: &UserId) -> Result<()> {
        let user = self
            .auth
            .find_user(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        if user.is_verified() {
            return Ok(());
        }
        // Counted per client across addresses, like every mail a client can make us send.
        self.auth.reserve_mail().await?;
        let token = self.tokens.make(&user);
        self.auth
            .events()
            .emit(AuthEvent::EmailVerificationRequested {
                user_id: user_id.clone(),
                email: user.email().to_owned(),
                token: SecretString::new(token),
            })
            .await;
        Ok(())
    }

    /// Marks the user verified if the token matches their current email and state.
    ///
    /// # Errors
    ///
    /// [`Error::TokenInvalid`] (forged, used, email changed, user missing or inactive),
    /// [`Error::TokenExpired`], [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let v = auth_service::EmailVerificationService::new(auth)?;
    /// assert!(matches!(v.confirm("garbage").await, Err(Error::TokenInvalid)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn confirm(&self, token: &str) -> Result<U> {
        self.confirm_in_session(token, None)
            .await
            .map(|(user, _)| user)
    }

    /// Checks the token as [`confirm`](Self::confirm) does, then proves the address with
    /// [`crate::AuthService::prove_address`]: [`AddressProof::InSession`] when `session_user`
    /// (the account whose session presented the link, if any) is the token's account, so what
    /// the account holds stays; otherwise the mailbox alone proved it, and on an account whose
    /// address nobody had proven, everything set up before (the password too) is removed.
    /// Returns the account and what was removed.
    ///
    /// # Errors
    ///
    /// As [`confirm`](Self::confirm).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// auth.events().on_fn(AuthEventKind::EmailVerificationRequested, move |e| {
    ///     let tx = tx.clone();
    ///     async move { if let AuthEvent::EmailVerificationRequested { token, .. } = e { tx.send(token).ok(); } Ok(()) }
    /// });
    /// let user = auth.register("eve@example.com", "violet-otter-sings-42").await?;
    /// let v = auth_service::EmailVerificationService::new(auth.clone())?;
    /// v.request(&user.id).await?;
    /// let token = rx.recv().await.unwrap();
    /// // Opened in the account's own session: the password stays.
    /// let (user, report) = v.confirm_in_session(token.expose_secret(), Some(&user.id)).await?;
    /// assert!(user.is_verified && !report.claimed);
    /// assert!(auth.login("eve@example.com", "violet-otter-sings-42").await.is_ok());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn confirm_in_session(
        &self,
        token: &str,
        session_user: Option<&UserId>,
    ) -> Result<(U, ClaimReport)> {
        let user_id = self.tokens.user_id(token).map_err(Error::from)?;
        let user = match self.auth.find_user(&user_id).await? {
            Some(u) if u.is_active() => u,
            _ => return Err(Error::TokenInvalid),
        };
        self.tokens.check(token, &user).map_err(Error::from)?;
        let proof = if session_user == Some(&user_id) {
            AddressProof::InSession
        } else {
            AddressProof::Mailbox("verification_link")
        };
        let report = self.auth.prove_address(&user_id, proof).await?;
        let user = self
            .auth
            .find_user(&user_id)
            .await?
            .ok_or(Error::TokenInvalid)?;
        Ok((user, report))
    }
}

/// What an invite link carries.
///
/// ```
/// use auth_service::UserId;
/// let invite = auth_service::Invite::new("team-7", UserId::new("42")).with_email("new@example.com");
/// assert_eq!(invite.team_id, "team-7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Invite {
    /// The team (or organisation, project...) joined.
    pub team_id: String,
    /// Who invited.
    pub inviter: UserId,
    /// The invited address, when the invite is for one person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Invite {
    /// An invite to `team_id` from `inviter`.
    ///
    /// ```
    /// # use auth_service::UserId;
    /// assert!(auth_service::Invite::new("t", UserId::new("1")).email.is_none());
    /// ```
    #[must_use]
    pub fn new(team_id: impl Into<String>, inviter: UserId) -> Self {
        Self {
            team_id: team_id.into(),
            inviter,
            email: None,
        }
    }

    /// Restricts the invite to one address.
    ///
    /// ```
    /// # use auth_service::UserId;
    /// assert!(auth_service::Invite::new("t", UserId::new("1")).with_email("a@b.c").email.is_some());
    /// ```
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

/// Time-limited invite links with their own purpose (default validity 72 hours). They are not
/// single-use by themselves: an application that needs that records the acceptance (a team
/// membership) and refuses a second one.
///
/// ```
/// use auth_service::UserId;
/// use auth_service::{Invite, InviteLinks};
///
/// let links = InviteLinks::new("0123456789abcdef0123456789abcdef-signing")?;
/// let token = links.make(&Invite::new("team-7", UserId::new("42")))?;
/// let invite = links.accept(&token)?;
/// assert_eq!((invite.team_id.as_str(), invite.inviter.as_str()), ("team-7", "42"));
/// # Ok::<(), auth_sign::SignError>(())
/// ```
#[derive(Debug, Clone)]
pub struct InviteLinks {
    signer: TimestampSigner,
    max_age: Duration,
}

impl InviteLinks {
    /// The purpose salt of invite tokens.
    pub const PURPOSE: &'static str = "invite";
    /// Default validity: 72 hours.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(259_200);

    /// Invite links keyed by `secret` (at least 32 bytes).
    ///
    /// # Errors
    ///
    /// [`SignError::WeakSecret`].
    ///
    /// ```
    /// assert!(auth_service::InviteLinks::new("short").is_err());
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, SignError> {
        Ok(Self::from_signer(Signer::new(secret)?))
    }

    /// Invite links keyed by `signer` (its salt is replaced by the invite purpose; its fallback
    /// keys are kept).
    ///
    /// ```
    /// let s = auth_sign::Signer::new("0123456789abcdef0123456789abcdef")?;
    /// let _ = auth_service::InviteLinks::from_signer(s);
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn from_signer(signer: Signer) -> Self {
        Self {
            signer: TimestampSigner::from_signer(signer.with_salt(Self::PURPOSE)),
            max_age: Self::DEFAULT_MAX_AGE,
        }
    }

    /// Sets how long links stay valid.
    ///
    /// ```
    /// let l = auth_service::InviteLinks::new("0123456789abcdef0123456789abcdef")?.with_max_age(std::time::Duration::from_secs(3600));
    /// # let _ = l;
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Reads time from `clock`.
    ///
    /// ```
    /// let l = auth_service::InviteLinks::new("0123456789abcdef0123456789abcdef")?.with_clock(auth_service::FixedClock::from_unix(0));
    /// # let _ = l;
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.signer = self.signer.with_clock(clock);
        self
    }

    /// A token carrying the invite.
    ///
    /// # Errors
    ///
    /// [`SignError::Malformed`] if the invite cannot be serialized (it always can).
    ///
    /// ```
    /// # use auth_service::UserId;
    /// let l = auth_service::InviteLinks::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(!l.make(&auth_service::Invite::new("t", UserId::new("1")))?.is_empty());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn make(&self, invite: &Invite) -> Result<String, SignError> {
        self.signer.sign_payload(invite)
    }

    /// The invite in a valid, unexpired token.
    ///
    /// # Errors
    ///
    /// [`SignError::BadSignature`], [`SignError::Expired`], [`SignError::Malformed`].
    ///
    /// ```
    /// let l = auth_service::InviteLinks::new("0123456789abcdef0123456789abcdef")?;
    /// assert!(l.accept("forged").is_err());
    /// # Ok::<(), auth_sign::SignError>(())
    /// ```
    pub fn accept(&self, token: &str) -> Result<Invite, SignError> {
        self.signer.unsign_payload(token, Some(self.max_age))
    }
}
