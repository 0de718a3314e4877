//! Trusted devices: the second factor skipped on a device its owner chose to trust, until the
//! trust expires or ends with the sessions.

use std::sync::Arc;
use std::time::Duration;

use super::{AuthService, LoginOptions};
use crate::AuthEvent;
use crate::Result;
use crate::SecretString;
use crate::random;
use crate::{AuthUser, UserId};
use crate::{TrustedDevice, TrustedDeviceStore};

/// Random bytes of a device credential (256 bits).
const DEVICE_TOKEN_BYTES: usize = 32;

impl<U: AuthUser> AuthService<U> {
    /// Turns trusted devices on: after answering the second factor, a sign-in that asks for it
    /// ([`LoginOptions::trusting_this_device`]) receives a device credential
    /// ([`AuthResult::trusted_device`](super::AuthResult::trusted_device)); presented at a later
    /// sign-in of the same account ([`LoginOptions::with_device`]) by password, emailed code or
    /// link, or provider, it skips the second factor for `lifetime`. The password (or other
    /// first factor) is always asked, and a step-up that wants a fresh login still wants one.
    /// Every device of an account is forgotten when its sessions end together: logout
    /// everywhere, a password change or reset, "secure my account", an address change, a
    /// deactivation, the owner's proof of a squatted address, and the removal of the second
    /// factor (any `MfaDisabled` event on the service's bus).
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// struct Always;
    /// #[async_trait]
    /// impl SecondFactorGate for Always {
    ///     async fn is_required(&self, _user: &UserId) -> Result<bool> { Ok(true) }
    ///     async fn open_challenge(&self, user: &UserId) -> Result<Challenge> {
    ///         Ok(Challenge::new(SecretString::new(format!("challenge-{user}")), Duration::from_secs(300)))
    ///     }
    ///     async fn answer_challenge(&self, challenge: &str, code: &str) -> Result<UserId> {
    ///         match (challenge.strip_prefix("challenge-"), code) {
    ///             (Some(user), "123456") => Ok(UserId::new(user)),
    ///             _ => Err(Error::InvalidCredentials),
    ///         }
    ///     }
    ///     async fn remove_all(&self, _user: &UserId) -> Result<()> { Ok(()) }
    /// }
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///         auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_second_factor(Always)
    ///     .with_trusted_devices(MemoryTrustedDevices::new(), Duration::from_secs(30 * 86_400));
    /// auth.register("tia@example.com", "violet-otter-sings-42").await?;
    /// let LoginOutcome::Challenge(c) = auth.sign_in("tia@example.com", "violet-otter-sings-42", LoginOptions::new()).await? else { panic!() };
    /// let done = auth.complete_sign_in(c.token.expose_secret(), "123456", LoginOptions::new().trusting_this_device()).await?;
    /// let device = done.trusted_device.unwrap().expose_secret().to_owned();
    ///
    /// // This device: the password alone.
    /// let again = auth.sign_in("tia@example.com", "violet-otter-sings-42", LoginOptions::new().with_device(Some(device.clone()))).await?;
    /// assert!(matches!(again, LoginOutcome::Session(_)));
    /// // Logout everywhere forgets it.
    /// auth.revoke_other_sessions(&done.user.id, None).await?;
    /// let later = auth.sign_in("tia@example.com", "violet-otter-sings-42", LoginOptions::new().with_device(Some(device))).await?;
    /// assert!(matches!(later, LoginOutcome::Challenge(_)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_trusted_devices(
        mut self,
        store: impl TrustedDeviceStore,
        lifetime: Duration,
    ) -> Self {
        let store: Arc<dyn TrustedDeviceStore> = Arc::new(store);
        // Wherever the second factor is removed (its owner turning it off, an administrator's
        // reset, a claimed address), the devices trusted under it go too: a factor enrolled
        // later is never skipped by an older trust.
        let forget = Arc::downgrade(&store);
        self.events
            .on_fn(crate::AuthEventKind::MfaDisabled, move |event| {
                let forget = forget.clone();
                async move {
                    if let (Some(store), AuthEvent::MfaDisabled { user_id }) =
                        (forget.upgrade(), &event)
                    {
                        store.remove_all(user_id).await?;
                    }
                    Ok(())
                }
            });
        self.devices = Some((store, lifetime));
        self
    }

    /// Whether trusted devices are on ([`with_trusted_devices`](Self::with_trusted_devices)).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(!auth.trusts_devices());
    /// ```
    #[must_use]
    pub fn trusts_devices(&self) -> bool {
        self.devices.is_some()
    }

    /// How long a device stays trusted (zero when trusted devices are off).
    ///
    /// ```
    /// # use auth_service::*;
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(auth.trusted_device_lifetime().is_zero());
    /// ```
    #[must_use]
    pub fn trusted_device_lifetime(&self) -> Duration {
        self.devices.as_ref().map_or(Duration::ZERO, |(_, l)| *l)
    }

    /// Whether this sign-in of `user` must answer the second factor: the gate says the account
    /// has one, and the client did not present a live credential of a device this account
    /// trusts.
    pub(super) async fn second_factor_due(
        &self,
        user: &UserId,
        options: &LoginOptions,
    ) -> Result<bool> {
        let Some(gate) = &self.second_factor else {
            return Ok(false);
        };
        if !gate.is_required(user).await? {
            return Ok(false);
        }
        Ok(!self.is_trusted(user, options).await?)
    }

    async fn is_trusted(&self, user: &UserId, options: &LoginOptions) -> Result<bool> {
        let (Some((store, _)), Some(device)) = (&self.devices, &options.device) else {
            return Ok(false);
        };
        let credential = device.expose_secret();
        if credential.is_empty() || credential.len() > 128 {
            return Ok(false);
        }
        let found = store.find(&random::sha256_hex(credential)).await?;
        let trusted = found
            .filter(|d| &d.user_id == user && d.is_live(self.clock.now()))
            .is_some();
        if trusted {
            tracing::debug!(user_id = %user, "second factor skipped on a trusted device");
        }
        Ok(trusted)
    }

    /// Trusts the device of a sign-in that has just answered its second factor, when asked
    /// and when trusted devices are on: the credential for the client.
    pub(super) async fn trust_device(
        &self,
        user: &UserId,
        options: &LoginOptions,
    ) -> Result<Option<SecretString>> {
        let Some((store, lifetime)) = &self.devices else {
            return Ok(None);
        };
        if !options.trust_device {
            return Ok(None);
        }
        let now = self.clock.now();
        let credential = random::token(DEVICE_TOKEN_BYTES);
        let device = TrustedDevice::new(
            random::token(12),
            user.clone(),
            now,
            now + time::Duration::try_from(*lifetime).unwrap_or(time::Duration::days(30)),
            options.meta.clone(),
        );
        store
            .insert(&device, &random::sha256_hex(&credential))
            .await?;
        self.events
            .emit(AuthEvent::DeviceTrusted {
                user_id: user.clone(),
                device_id: device.id.clone(),
            })
            .await;
        Ok(Some(SecretString::new(credential)))
    }

    /// The devices `user` trusts now, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.trusted_devices(&UserId::new("1")).await?.is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn trusted_devices(&self, user: &UserId) -> Result<Vec<TrustedDevice>> {
        let Some((store, _)) = &self.devices else {
            return Ok(Vec::new());
        };
        let now = self.clock.now();
        Ok(store
            .list(user)
            .await?
            .into_iter()
            .filter(|d| d.is_live(now))
            .collect())
    }

    /// Stops trusting one of `user`'s devices: `true` if it was trusted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(!auth.forget_trusted_device(&UserId::new("1"), "no-such-device").await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn forget_trusted_device(&self, user: &UserId, device_id: &str) -> Result<bool> {
        let Some((store, _)) = &self.devices else {
            return Ok(false);
        };
        let removed = store.remove(user, device_id).await?;
        if removed {
            self.events
                .emit(AuthEvent::DeviceForgotten {
                    user_id: user.clone(),
                    devices: 1,
                })
                .await;
        }
        Ok(removed)
    }

    /// Stops trusting every device of `user`: how many were trusted.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert_eq!(auth.forget_trusted_devices(&UserId::new("1")).await?, 0);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn forget_trusted_devices(&self, user: &UserId) -> Result<u64> {
        let Some((store, _)) = &self.devices else {
            return Ok(0);
        };
        let removed = store.remove_all(user).await?;
        if removed > 0 {
            self.events
                .emit(AuthEvent::DeviceForgotten {
                    user_id: user.clone(),
                    devices: removed,
                })
                .await;
        }
        Ok(removed)
    }

    /// Ends every session of `user` but `keep`, and forgets every device it trusts: what
    /// logout everywhere, a password change and every other "end it all" do.
    pub(super) async fn end_sessions(&self, user: &UserId, keep: Option<&str>) -> Result<u64> {
        let ended = self.tokens.revoke_all(user, keep).await?;
        self.forget_trusted_devices(user).await?;
        Ok(ended)
    }

    /// Deletes devices whose trust has ended (for a cleanup job): how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert_eq!(auth.cleanup_trusted_devices().await?, 0);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn cleanup_trusted_devices(&self) -> Result<u64> {
        match &self.devices {
            Some((store, _)) => store.cleanup_expired(self.clock.now()).await,
            None => Ok(0),
        }
    }
}
