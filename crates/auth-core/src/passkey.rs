//! Passkeys (WebAuthn) as the service sees them: a [`PasskeyBackend`] runs the ceremonies and
//! keeps the credentials (auth-webauthn's `WebauthnPasskeys`, on webauthn-rs), and
//! `AuthService` decides what an answer is worth: a session, a second-factor
//! challenge, or the same refusal as every other failed credential.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Result, UserId, async_trait};

/// What the browser needs to run a ceremony, and the key that names it server side.
///
/// ```
/// let o = auth_core::PasskeyOptions::new("c1".into(), serde_json::json!({"challenge": "x"}));
/// assert_eq!(o.public_key["challenge"], "x");
/// assert!(o.mediation.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PasskeyOptions {
    /// The sign-in ceremony's key (`challenge_id` over HTTP); its state waits server side
    /// under it. Empty for a registration: an account has one pending registration, found by
    /// the account.
    pub ceremony: String,
    /// The `publicKey` member for `navigator.credentials.create` / `.get` (WebAuthn JSON,
    /// binary fields in base64url).
    pub public_key: Value,
    /// `"conditional"` when the request is meant for autofill (conditional UI).
    pub mediation: Option<String>,
}

impl PasskeyOptions {
    /// Options without mediation.
    ///
    /// ```
    /// let _ = auth_core::PasskeyOptions::new("c".into(), serde_json::Value::Null);
    /// ```
    #[must_use]
    pub fn new(ceremony: String, public_key: Value) -> Self {
        Self {
            ceremony,
            public_key,
            mediation: None,
        }
    }

    /// With a mediation hint.
    ///
    /// ```
    /// let o = auth_core::PasskeyOptions::new("c".into(), serde_json::Value::Null).with_mediation("conditional");
    /// assert_eq!(o.mediation.as_deref(), Some("conditional"));
    /// ```
    #[must_use]
    pub fn with_mediation(mut self, mediation: impl Into<String>) -> Self {
        self.mediation = Some(mediation.into());
        self
    }
}

/// A registered passkey, as its owner sees it (no key material).
///
/// ```
/// let p = auth_core::PasskeyInfo::new("pk_1".into(), "Laptop".into(), time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(p.name, "Laptop");
/// assert!(p.last_used_at.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PasskeyInfo {
    /// Public id (not the credential id).
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Whether the authenticator may sync it to other devices (backup eligible).
    pub backup_eligible: bool,
    /// Whether it is backed up (synced) now.
    pub backed_up: bool,
}

impl PasskeyInfo {
    /// A passkey never used, not backup eligible.
    ///
    /// ```
    /// let _ = auth_core::PasskeyInfo::new("pk".into(), "Key".into(), time::OffsetDateTime::UNIX_EPOCH);
    /// ```
    #[must_use]
    pub fn new(id: String, name: String, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            name,
            created_at,
            last_used_at: None,
            backup_eligible: false,
            backed_up: false,
        }
    }
}

/// A passkey [`PasskeyBackend::take`] removed, holding what [`PasskeyBackend::restore`] needs
/// to put it back as it was: the owner's view and the backend's own record (opaque to the
/// service; no key material shows in `Debug`).
///
/// ```
/// use auth_core::{PasskeyInfo, TakenPasskey};
/// let taken = TakenPasskey::new(
///     PasskeyInfo::new("pk_1".into(), "Laptop".into(), time::OffsetDateTime::UNIX_EPOCH),
///     String::from("the backend's record"),
/// );
/// assert_eq!(taken.info().id, "pk_1");
/// assert_eq!(taken.into_record::<String>().unwrap(), "the backend's record");
/// ```
#[non_exhaustive]
pub struct TakenPasskey {
    info: PasskeyInfo,
    record: Box<dyn std::any::Any + Send + Sync>,
}

impl TakenPasskey {
    /// `info` and the backend's `record` of the removed passkey.
    ///
    /// ```
    /// # use auth_core::{PasskeyInfo, TakenPasskey};
    /// let _ = TakenPasskey::new(PasskeyInfo::new("pk".into(), "Key".into(), time::OffsetDateTime::UNIX_EPOCH), 7u32);
    /// ```
    #[must_use]
    pub fn new(info: PasskeyInfo, record: impl std::any::Any + Send + Sync) -> Self {
        Self {
            info,
            record: Box::new(record),
        }
    }

    /// What its owner saw.
    ///
    /// ```
    /// # use auth_core::{PasskeyInfo, TakenPasskey};
    /// let t = TakenPasskey::new(PasskeyInfo::new("pk".into(), "Key".into(), time::OffsetDateTime::UNIX_EPOCH), ());
    /// assert_eq!(t.info().name, "Key");
    /// ```
    #[must_use]
    pub fn info(&self) -> &PasskeyInfo {
        &self.info
    }

    /// The backend's record, if it is a `T` (the backend that took it knows its type).
    ///
    /// ```
    /// # use auth_core::{PasskeyInfo, TakenPasskey};
    /// let t = TakenPasskey::new(PasskeyInfo::new("pk".into(), "Key".into(), time::OffsetDateTime::UNIX_EPOCH), 7u32);
    /// assert!(t.into_record::<String>().is_none());
    /// ```
    #[must_use]
    pub fn into_record<T: std::any::Any>(self) -> Option<T> {
        self.record.downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for TakenPasskey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TakenPasskey")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A verified assertion: whose passkey signed, and whether the authenticator verified the user
/// (PIN, biometrics).
///
/// ```
/// let a = auth_core::PasskeyAssertion::new(auth_core::UserId::new("1"), "pk_1".into(), true);
/// assert!(a.user_verified);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyAssertion {
    /// The owner.
    pub user_id: UserId,
    /// The passkey's public id.
    pub passkey_id: String,
    /// The UV flag: the authenticator checked a PIN or biometrics.
    pub user_verified: bool,
}

impl PasskeyAssertion {
    /// An assertion.
    ///
    /// ```
    /// let _ = auth_core::PasskeyAssertion::new(auth_core::UserId::new("1"), "pk".into(), false);
    /// ```
    #[must_use]
    pub fn new(user_id: UserId, passkey_id: String, user_verified: bool) -> Self {
        Self {
            user_id,
            passkey_id,
            user_verified,
        }
    }
}

/// The backend's judgement of an authenticator's answer.
///
/// ```
/// use auth_core::{PasskeyVerdict, UserId};
/// let v = PasskeyVerdict::Cloned { user_id: UserId::new("1"), passkey_id: "pk".into() };
/// assert!(!matches!(v, PasskeyVerdict::Verified(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasskeyVerdict {
    /// A valid signature by a registered passkey over this ceremony's challenge.
    Verified(PasskeyAssertion),
    /// Anything else: unknown or spent ceremony, wrong origin or RP id, bad signature, a
    /// credential nobody registered or that the ceremony did not allow.
    Refused,
    /// A valid signature whose counter did not advance: the authenticator may have been
    /// cloned. Refused, and reported (`PasskeyCloneDetected`).
    Cloned {
        /// The passkey's owner.
        user_id: UserId,
        /// The passkey.
        passkey_id: String,
    },
}

/// Whose passkeys a sign-in ceremony may use.
///
/// ```
/// let t = auth_core::PasskeyTarget::Discoverable;
/// assert!(matches!(t, auth_core::PasskeyTarget::Discoverable));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasskeyTarget {
    /// Any discoverable credential: the authenticator says whose it is (conditional UI).
    Discoverable,
    /// The passkeys of this account only.
    User(UserId),
    /// An account that does not exist (or has no passkey): options that look like a real
    /// account's, listing one credential id derived from `seed`, that nothing can answer.
    Decoy(String),
}

/// Runs passkey ceremonies and keeps the credentials. auth-webauthn's `WebauthnPasskeys`
/// implements it on webauthn-rs; `AuthService::with_passkeys` uses it. Implementations
/// check origins, RP id, challenges (each once), signatures and counters; the service applies
/// the throttle, the account's state, the second factor, events and the session.
///
/// ```
/// fn wire(auth: auth_service::AuthService, passkeys: impl auth_service::PasskeyBackend) -> auth_service::AuthService {
///     auth.with_passkeys(passkeys)
/// }
/// ```
#[async_trait]
pub trait PasskeyBackend: Send + Sync + 'static {
    /// Starts registering a passkey for `user` (`user_name`: what the authenticator shows,
    /// the email); it replaces the account's pending registration, if any. The user's
    /// existing passkeys are excluded.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn start_registration(&self, user: &UserId, user_name: &str) -> Result<PasskeyOptions>;

    /// Finishes `user`'s pending registration (consumed whatever the outcome) with the
    /// authenticator's `credential` (`PublicKeyCredential` JSON) and stores the passkey under
    /// `name`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::TokenInvalid`] when the account has no live registration;
    /// [`crate::Error::Validation`] for a credential that does not verify or is registered
    /// already; [`crate::Error::Backend`].
    async fn finish_registration(
        &self,
        user: &UserId,
        credential: &Value,
        name: &str,
    ) -> Result<PasskeyInfo>;

    /// Starts a sign-in ceremony for `target`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn start_authentication(&self, target: &PasskeyTarget) -> Result<PasskeyOptions>;

    /// Checks the authenticator's `credential` against `ceremony` (consumed whatever the
    /// outcome).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`] only: every refusal is a [`PasskeyVerdict`].
    async fn finish_authentication(
        &self,
        ceremony: &str,
        credential: &Value,
    ) -> Result<PasskeyVerdict>;

    /// `user`'s passkeys, oldest first.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyInfo>>;

    /// Renames one of `user`'s passkeys; false when it is not theirs.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn rename(&self, user: &UserId, id: &str, name: &str) -> Result<bool>;

    /// Deletes one of `user`'s passkeys; false when it is not theirs.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn remove(&self, user: &UserId, id: &str) -> Result<bool>;

    /// Deletes one of `user`'s passkeys and hands it back, so that [`restore`](Self::restore)
    /// can put it back unchanged; `None` when it is not theirs. The service removes passkeys
    /// this way: a removal that raced another and would leave the account with no way to sign
    /// in is undone.
    ///
    /// The default removes through [`remove`](Self::remove) and keeps nothing, so its
    /// [`restore`](Self::restore) cannot put the passkey back: implement both.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn take(&self, user: &UserId, id: &str) -> Result<Option<TakenPasskey>> {
        let Some(info) = self.list(user).await?.into_iter().find(|p| p.id == id) else {
            return Ok(None);
        };
        Ok(self
            .remove(user, id)
            .await?
            .then(|| TakenPasskey::new(info, ())))
    }

    /// Puts back, as it was, a passkey [`take`](Self::take) removed from `user`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Unsupported`] by default (nothing was kept to restore);
    /// [`crate::Error::Backend`].
    async fn restore(&self, user: &UserId, passkey: TakenPasskey) -> Result<()> {
        let _ = (user, passkey);
        Err(crate::Error::Unsupported(
            "this passkey backend cannot put a removed passkey back".into(),
        ))
    }

    /// Deletes every passkey of `user`; returns how many.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Backend`].
    async fn remove_all(&self, user: &UserId) -> Result<u64>;
}
