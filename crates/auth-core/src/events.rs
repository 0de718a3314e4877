//! Lifecycle events and the bus that delivers them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::secret::SecretString;
use crate::user::UserId;

/// Why a login failed: for events and logs only, never for the client.
///
/// ```
/// use auth_core::LoginFailureReason;
/// assert_eq!(LoginFailureReason::NotFound.as_str(), "not_found");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailureReason {
    /// No account with that email.
    NotFound,
    /// The account is deactivated.
    Inactive,
    /// The password did not match (or none is usable).
    BadPassword,
}

impl LoginFailureReason {
    /// The reference's reason string.
    ///
    /// ```
    /// # use auth_core::LoginFailureReason;
    /// assert_eq!(LoginFailureReason::BadPassword.as_str(), "bad_password");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Inactive => "inactive",
            Self::BadPassword => "bad_password",
        }
    }
}

/// Something that happened. Covers the 16 events of tortoise-auth (with their payloads) and
/// more. `Debug` redacts the secrets some events carry (a reset token, a verification code),
/// which only handlers can read.
///
/// ```
/// use auth_core::{AuthEvent, AuthEventKind, UserId};
/// let e = AuthEvent::UserLogin { user_id: UserId::new("1"), email: "a@b.c".into() };
/// assert_eq!(e.kind(), AuthEventKind::UserLogin);
/// assert_eq!(e.kind().as_str(), "user_login");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthEvent {
    /// A user registered through `AuthService::register`.
    UserRegistered {
        /// The new user.
        user_id: UserId,
        /// Their email.
        email: String,
    },
    /// A login succeeded.
    UserLogin {
        /// The user.
        user_id: UserId,
        /// Their email.
        email: String,
    },
    /// A login failed.
    UserLoginFailed {
        /// The canonical email tried, or `#<sha-256>` for input that is not an address (logs
        /// show it hashed either way).
        identifier: String,
        /// Why (for logs, never for the client).
        reason: LoginFailureReason,
    },
    /// A key hit its rate limit.
    RateLimitExceeded {
        /// The limited key (namespaced as in [`AuthEvent::AccountLocked`](crate::AuthEvent::AccountLocked)).
        identifier: String,
        /// Time until the lockout ends.
        retry_after: Duration,
    },
    /// A session ended (`all`: every session of the user).
    UserLogout {
        /// The user.
        user_id: UserId,
        /// Whether every session ended.
        all: bool,
    },
    /// A password was set or changed.
    PasswordChanged {
        /// The user.
        user_id: UserId,
    },
    /// A stored hash was replaced by the primary hasher's after a successful login.
    PasswordRehashed {
        /// The user.
        user_id: UserId,
        /// The new algorithm.
        algorithm: &'static str,
    },
    /// A password reset was requested for an existing, active account; the handler mails `token`.
    PasswordResetRequested {
        /// The user.
        user_id: UserId,
        /// Their email.
        email: String,
        /// The signed reset token to put in the link.
        token: SecretString,
    },
    /// A password reset was completed.
    PasswordResetCompleted {
        /// The user.
        user_id: UserId,
    },
    /// A refresh token was rotated.
    TokenRefreshed {
        /// The user.
        user_id: UserId,
        /// The session (family).
        family: Option<String>,
    },
    /// An already rotated refresh token was presented again; its family was revoked.
    RefreshReuseDetected {
        /// The user.
        user_id: UserId,
        /// The revoked family.
        family: String,
    },
    /// A service authenticated with an S2S token.
    S2sAuthSuccess {
        /// The caller-asserted service name.
        service_name: Option<String>,
    },
    /// An S2S token was rejected.
    S2sAuthFailed {
        /// The caller-asserted service name.
        service_name: Option<String>,
    },
    /// An onboarding flow started.
    OnboardingStarted {
        /// The email.
        email: String,
        /// The session id.
        session_id: String,
        /// The step names.
        pipeline: Vec<String>,
    },
    /// An onboarding step completed.
    OnboardingStepCompleted {
        /// The session id.
        session_id: String,
        /// The step.
        step_name: String,
        /// The user, once one exists.
        user_id: Option<UserId>,
    },
    /// An onboarding step was skipped.
    OnboardingStepSkipped {
        /// The session id.
        session_id: String,
        /// The step.
        step_name: String,
    },
    /// An onboarding step failed.
    OnboardingStepFailed {
        /// The session id.
        session_id: String,
        /// The step.
        step_name: String,
        /// The error messages.
        errors: Vec<String>,
    },
    /// An onboarding flow completed.
    OnboardingCompleted {
        /// The user.
        user_id: UserId,
        /// The session id.
        session_id: String,
    },
    /// An expired onboarding session was used.
    OnboardingSessionExpired {
        /// The session id.
        session_id: String,
        /// The email.
        email: String,
    },
    /// An email-verification link was requested; the handler mails `token`.
    EmailVerificationRequested {
        /// The user.
        user_id: UserId,
        /// Where to send it.
        email: String,
        /// The signed token to put in the link.
        token: SecretString,
    },
    /// A user confirmed their email address.
    EmailVerified {
        /// The user.
        user_id: UserId,
    },
    /// A verification code was generated; a handler must deliver it (see
    /// `EventBus::has_handler`).
    VerificationCodeGenerated {
        /// Where to send it.
        email: String,
        /// The code.
        code: SecretString,
    },
    /// Repeated failures locked a limiter key until `retry_after` has passed. Keys are
    /// namespaced by throttle: `login:<client>|<email>` (`*` for the client when its address
    /// is unknown; missing accounts lock alike), `ip:<address>`, `signup:<address>`,
    /// `reset:<email>`, `reauth:<user id>`, `mfa:<user id>`.
    AccountLocked {
        /// The locked key.
        identifier: String,
        /// How long the lockout lasts.
        retry_after: Duration,
    },
    /// A user confirmed a second factor (TOTP).
    MfaEnabled {
        /// The user.
        user_id: UserId,
    },
    /// A user's second factor was removed.
    MfaDisabled {
        /// The user.
        user_id: UserId,
    },
    /// A second-factor code was refused (wrong, replayed, or the challenge was exhausted).
    MfaFailed {
        /// The user.
        user_id: UserId,
    },
    /// A recovery code was spent.
    RecoveryCodeUsed {
        /// The user.
        user_id: UserId,
        /// Unused codes left.
        remaining: u64,
    },
    /// A new set of recovery codes replaced the old one.
    RecoveryCodesRegenerated {
        /// The user.
        user_id: UserId,
    },
    /// An API key was created.
    ApiKeyCreated {
        /// The key's id.
        key_id: String,
        /// Whom it acts for.
        owner: crate::ApiKeyOwner,
    },
    /// An API key was used (sampled: at most once a minute per key, when its last use is
    /// recorded).
    ApiKeyUsed {
        /// The key's id.
        key_id: String,
        /// Whom it acts for.
        owner: crate::ApiKeyOwner,
    },
    /// An API key got a new secret; the old one works until its grace period ends.
    ApiKeyRolled {
        /// The key's id.
        key_id: String,
        /// Whom it acts for.
        owner: crate::ApiKeyOwner,
    },
    /// An API key was revoked (deleted).
    ApiKeyRevoked {
        /// The key's id.
        key_id: String,
        /// Whom it acts for.
        owner: crate::ApiKeyOwner,
    },
    /// A valid API key was refused because its owner is deactivated (worth telling someone:
    /// a machine still uses a departed user's key).
    ApiKeyOwnerInactive {
        /// The key's id.
        key_id: String,
        /// The deactivated user.
        user_id: UserId,
    },
    /// An account was deactivated or reactivated (`AuthService::set_active`).
    UserActiveChanged {
        /// The user.
        user_id: UserId,
        /// Whether the account is active now.
        active: bool,
    },
    /// An account was deleted (`AuthService::delete_user`).
    UserDeleted {
        /// The former user's id.
        user_id: UserId,
        /// Their email.
        email: String,
    },
    /// An administrator lifted an account's login lockout (`AuthService::unlock`).
    AccountUnlocked {
        /// The user.
        user_id: UserId,
    },
    /// A change of email address was asked for (`AuthService::request_email_change`):
    /// mail `token` in a confirmation link to `new_email`, and a notice with `cancel_token` in
    /// a cancellation link to `old_email`.
    EmailChangeRequested {
        /// The user.
        user_id: UserId,
        /// The current address.
        old_email: String,
        /// The address asked for.
        new_email: String,
        /// The confirmation token (for the new address).
        token: SecretString,
        /// The cancellation token (for the old address).
        cancel_token: SecretString,
    },
    /// The email address changed (tell the old address).
    EmailChanged {
        /// The user.
        user_id: UserId,
        /// The former address.
        old_email: String,
        /// The new address.
        new_email: String,
    },
    /// A pending change of email address was cancelled from the old address.
    EmailChangeCancelled {
        /// The user.
        user_id: UserId,
    },
    /// A sign-in link and code were asked for an existing, active account
    /// (`AuthService::request_magic_link`): mail both to `email`.
    MagicLinkRequested {
        /// The user.
        user_id: UserId,
        /// Their email.
        email: String,
        /// The link's token.
        token: SecretString,
        /// The 6-digit code.
        code: SecretString,
    },
    /// A passkey was registered (`AuthService::register_passkey`).
    PasskeyAdded {
        /// The owner.
        user_id: UserId,
        /// The passkey's public id.
        passkey_id: String,
        /// Its name.
        name: String,
    },
    /// A passkey was deleted (`AuthService::delete_passkey`).
    PasskeyRemoved {
        /// The owner.
        user_id: UserId,
        /// The passkey's public id.
        passkey_id: String,
    },
    /// A passkey answered with a signature counter that did not advance: the authenticator
    /// may have been cloned. The sign-in was refused.
    PasskeyCloneDetected {
        /// The owner.
        user_id: UserId,
        /// The passkey's public id.
        passkey_id: String,
    },
    /// A sign-in with another provider's identity
    /// (`AuthService::sign_in_with_provider`); `UserLogin` follows when it gives a
    /// session.
    OAuthLogin {
        /// The user.
        user_id: UserId,
        /// The provider's configured name.
        provider: String,
    },
    /// A provider identity was linked to the account.
    IdentityLinked {
        /// The user.
        user_id: UserId,
        /// The provider's configured name.
        provider: String,
    },
    /// A provider identity was unlinked from the account.
    IdentityUnlinked {
        /// The user.
        user_id: UserId,
        /// The provider's configured name.
        provider: String,
    },
    /// The owner of an address proved it on an account whose address nobody had proven, by a
    /// route that does not rest on the account's existing secrets: everything set up before
    /// (sessions, API keys, passkeys, linked identities, second factors, grants and, unless
    /// the proof set a new one, the password) was removed in the same step.
    AccountClaimed {
        /// The account.
        user_id: UserId,
        /// Its address, now proven.
        email: String,
        /// The proof: `password_reset`, `verification_link`, `sign_in_code`, `sign_in_link`,
        /// `provider`.
        proof: String,
        /// What was removed: `sessions`, `api_keys:N`, `passkeys:N`, `identities:N`,
        /// `second_factor`, `grants:N`, `password`.
        removed: Vec<String>,
    },
    /// The owner secured the account ("secure my account"): every other session ended, and the
    /// API keys, passkeys and linked identities they did not keep removed.
    AccountSecured {
        /// The account.
        user_id: UserId,
        /// What was removed, as `auth_service::ClaimReport::removed` lists it.
        removed: Vec<String>,
    },
    /// A role was granted.
    RoleGranted {
        /// Who holds it now.
        user_id: UserId,
        /// The role.
        role: crate::Role,
        /// Who gave it (`user:<id>`, `api_key:<id>`, `operator`, `config`).
        granted_by: String,
    },
    /// A role was revoked.
    RoleRevoked {
        /// Who held it.
        user_id: UserId,
        /// The role.
        role: crate::Role,
    },
    /// A device was trusted after the second factor (`AuthService::with_trusted_devices`).
    DeviceTrusted {
        /// Whose device.
        user_id: UserId,
        /// Its id.
        device_id: String,
    },
    /// Trusted devices were forgotten (one revoked, or all with the sessions).
    DeviceForgotten {
        /// Whose devices.
        user_id: UserId,
        /// How many.
        devices: u64,
    },
}

/// One list of the event kinds and their names, from which come [`AuthEventKind`](crate::AuthEventKind), its
/// [`ALL`](AuthEventKind::ALL) and [`as_str`](AuthEventKind::as_str), and
/// [`AuthEvent::kind`](crate::AuthEvent::kind): a new event is one line here beside its [`AuthEvent`](crate::AuthEvent) variant (the
/// compiler refuses a variant without its line).
macro_rules! event_kinds {
    ($($kind:ident => $name:literal,)+) => {
        /// The kind of an [`AuthEvent`](crate::AuthEvent), for registering handlers.
        ///
        /// ```
        /// use auth_core::AuthEventKind;
        /// assert_eq!(AuthEventKind::ALL.len(), 52);
        /// assert_eq!(AuthEventKind::TokenRefreshed.to_string(), "token_refreshed");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[allow(missing_docs)]
        pub enum AuthEventKind {
            $($kind,)+
        }

        impl AuthEventKind {
            /// Every kind.
            pub const ALL: [Self; [$($name,)+].len()] = [$(Self::$kind,)+];

            /// The event name (tortoise-auth's, where it has one).
            ///
            /// ```
            /// # use auth_core::AuthEventKind;
            /// assert_eq!(AuthEventKind::S2sAuthFailed.as_str(), "s2s_auth_failed");
            /// ```
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)+
                }
            }
        }

        impl AuthEvent {
            /// This event's kind.
            ///
            /// ```
            /// # use auth_core::{AuthEvent, AuthEventKind, UserId};
            /// let e = AuthEvent::PasswordChanged { user_id: UserId::new("1") };
            /// assert_eq!(e.kind(), AuthEventKind::PasswordChanged);
            /// ```
            #[must_use]
            pub fn kind(&self) -> AuthEventKind {
                match self {
                    $(Self::$kind { .. } => AuthEventKind::$kind,)+
                }
            }
        }
    };
}

event_kinds! {
    UserRegistered => "user_registered",
    UserLogin => "user_login",
    UserLoginFailed => "user_login_failed",
    RateLimitExceeded => "rate_limit_exceeded",
    UserLogout => "user_logout",
    PasswordChanged => "password_changed",
    PasswordRehashed => "password_rehashed",
    PasswordResetRequested => "password_reset_requested",
    PasswordResetCompleted => "password_reset_completed",
    TokenRefreshed => "token_refreshed",
    RefreshReuseDetected => "refresh_reuse_detected",
    S2sAuthSuccess => "s2s_auth_success",
    S2sAuthFailed => "s2s_auth_failed",
    OnboardingStarted => "onboarding_started",
    OnboardingStepCompleted => "onboarding_step_completed",
    OnboardingStepSkipped => "onboarding_step_skipped",
    OnboardingStepFailed => "onboarding_step_failed",
    OnboardingCompleted => "onboarding_completed",
    OnboardingSessionExpired => "onboarding_session_expired",
    VerificationCodeGenerated => "verification_code_generated",
    EmailVerificationRequested => "email_verification_requested",
    EmailVerified => "email_verified",
    AccountLocked => "account_locked",
    MfaEnabled => "mfa_enabled",
    MfaDisabled => "mfa_disabled",
    MfaFailed => "mfa_failed",
    RecoveryCodeUsed => "recovery_code_used",
    RecoveryCodesRegenerated => "recovery_codes_regenerated",
    ApiKeyCreated => "api_key_created",
    ApiKeyUsed => "api_key_used",
    ApiKeyRolled => "api_key_rolled",
    ApiKeyRevoked => "api_key_revoked",
    ApiKeyOwnerInactive => "api_key_owner_inactive",
    UserActiveChanged => "user_active_changed",
    UserDeleted => "user_deleted",
    AccountUnlocked => "account_unlocked",
    EmailChangeRequested => "email_change_requested",
    EmailChanged => "email_changed",
    EmailChangeCancelled => "email_change_cancelled",
    MagicLinkRequested => "magic_link_requested",
    PasskeyAdded => "passkey_added",
    PasskeyRemoved => "passkey_removed",
    PasskeyCloneDetected => "passkey_clone_detected",
    OAuthLogin => "oauth_login",
    IdentityLinked => "identity_linked",
    IdentityUnlinked => "identity_unlinked",
    AccountClaimed => "account_claimed",
    AccountSecured => "account_secured",
    RoleGranted => "role_granted",
    RoleRevoked => "role_revoked",
    DeviceTrusted => "device_trusted",
    DeviceForgotten => "device_forgotten",
}

impl AuthEvent {
    /// The account this event is about, when it names one: what the audit log files it under
    /// and what a webhook or metric may key on. `None` for attempts on an identifier that may
    /// name no account (failed logins, throttles), service-to-service calls, onboarding before
    /// its account exists, and API keys of service accounts.
    ///
    /// ```
    /// # use auth_core::{AuthEvent, UserId};
    /// let e = AuthEvent::PasswordChanged { user_id: UserId::new("1") };
    /// assert_eq!(e.user_id(), Some(&UserId::new("1")));
    /// let failed = AuthEvent::S2sAuthFailed { service_name: None };
    /// assert_eq!(failed.user_id(), None);
    /// ```
    #[must_use]
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::UserRegistered { user_id, .. }
            | Self::UserLogin { user_id, .. }
            | Self::UserDeleted { user_id, .. }
            | Self::UserLogout { user_id, .. }
            | Self::PasswordChanged { user_id }
            | Self::PasswordRehashed { user_id, .. }
            | Self::PasswordResetRequested { user_id, .. }
            | Self::PasswordResetCompleted { user_id }
            | Self::TokenRefreshed { user_id, .. }
            | Self::RefreshReuseDetected { user_id, .. }
            | Self::OnboardingCompleted { user_id, .. }
            | Self::EmailVerificationRequested { user_id, .. }
            | Self::EmailVerified { user_id }
            | Self::MfaEnabled { user_id }
            | Self::MfaDisabled { user_id }
            | Self::MfaFailed { user_id }
            | Self::RecoveryCodeUsed { user_id, .. }
            | Self::RecoveryCodesRegenerated { user_id }
            | Self::ApiKeyOwnerInactive { user_id, .. }
            | Self::UserActiveChanged { user_id, .. }
            | Self::AccountUnlocked { user_id }
            | Self::EmailChangeRequested { user_id, .. }
            | Self::EmailChanged { user_id, .. }
            | Self::EmailChangeCancelled { user_id }
            | Self::MagicLinkRequested { user_id, .. }
            | Self::PasskeyAdded { user_id, .. }
            | Self::PasskeyRemoved { user_id, .. }
            | Self::PasskeyCloneDetected { user_id, .. }
            | Self::OAuthLogin { user_id, .. }
            | Self::IdentityLinked { user_id, .. }
            | Self::IdentityUnlinked { user_id, .. }
            | Self::AccountClaimed { user_id, .. }
            | Self::AccountSecured { user_id, .. }
            | Self::RoleGranted { user_id, .. }
            | Self::RoleRevoked { user_id, .. }
            | Self::DeviceTrusted { user_id, .. }
            | Self::DeviceForgotten { user_id, .. } => Some(user_id),
            Self::OnboardingStepCompleted { user_id, .. } => user_id.as_ref(),
            Self::ApiKeyCreated { owner, .. }
            | Self::ApiKeyUsed { owner, .. }
            | Self::ApiKeyRolled { owner, .. }
            | Self::ApiKeyRevoked { owner, .. } => match owner {
                crate::ApiKeyOwner::User(id) => Some(id),
                crate::ApiKeyOwner::Service(_) => None,
            },
            Self::UserLoginFailed { .. }
            | Self::RateLimitExceeded { .. }
            | Self::AccountLocked { .. }
            | Self::S2sAuthSuccess { .. }
            | Self::S2sAuthFailed { .. }
            | Self::OnboardingStarted { .. }
            | Self::OnboardingStepSkipped { .. }
            | Self::OnboardingStepFailed { .. }
            | Self::OnboardingSessionExpired { .. }
            | Self::VerificationCodeGenerated { .. } => None,
        }
    }
}

impl fmt::Display for AuthEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a handler returns; it is logged and never reaches the flow that emitted the event.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Something that reacts to events: send an email, write an audit row, bump a metric.
///
/// ```
/// use auth_core::{AuthEvent, EventHandler, HandlerError};
///
/// #[derive(Debug)]
/// struct Audit;
///
/// #[async_trait::async_trait]
/// impl EventHandler for Audit {
///     async fn handle(&self, event: &AuthEvent) -> Result<(), HandlerError> {
///         let _ = event.kind();
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event.
    ///
    /// # Errors
    ///
    /// Any error; it is logged at error level and the remaining handlers still run.
    async fn handle(&self, event: &AuthEvent) -> Result<(), HandlerError>;
}
