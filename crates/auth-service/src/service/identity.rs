//! Sign-in with another provider's identity (OpenID Connect, OAuth 2.0; the protocol is in
//! auth-oauth) and the rules that link it to a local account.

use std::sync::Arc;

use super::ways_in::last_way_in;
use super::{AuthService, LoginOptions, LoginOutcome};
use crate::AuthEvent;
use crate::{AuthUser, NewUser, UserId, normalize_email};
use crate::{Error, Result};
use crate::{IdentityStore, LinkedIdentity, ProviderIdentity};

impl<U: AuthUser> AuthService<U> {
    /// Enables sign-in with provider identities, linked in `store`.
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_identities(MemoryIdentityStore::new());
    /// assert!(auth.has_identities());
    /// ```
    #[must_use]
    pub fn with_identities(mut self, store: impl IdentityStore) -> Self {
        self.identities = Some(Arc::new(store));
        self
    }

    /// Whether provider identities are enabled ([`with_identities`](Self::with_identities)).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap();
    /// assert!(!auth.has_identities());
    /// ```
    #[must_use]
    pub fn has_identities(&self) -> bool {
        self.identities.is_some()
    }

    fn identity_store(&self) -> Result<&Arc<dyn IdentityStore>> {
        self.identities.as_ref().ok_or(Error::Unsupported(
            "provider sign-in is not enabled (AuthService::with_identities)".into(),
        ))
    }

    /// Signs in with an identity a provider vouched for (after auth-oauth checked the
    /// provider's answer). The rules:
    ///
    /// 1. a linked `(provider, subject)` signs its account in;
    /// 2. a new subject whose email the provider verified, matching a local account, is linked
    ///    to it (`IdentityLinked`) and signs it in; if nobody had proven that account's address,
    ///    the provider's word is the owner's proof: everything set up on the account before is
    ///    removed first ([`prove_address`](Self::prove_address)'s rule, `AccountClaimed`);
    /// 3. a new subject whose email the provider did not verify, matching a local account, is
    ///    refused with [`Error::EmailTaken`]: the owner signs in and links explicitly
    ///    ([`link_identity`](Self::link_identity));
    /// 4. a new email the provider verified creates a verified account with an unusable
    ///    password (`UserRegistered`, `IdentityLinked`); one it did not verify creates
    ///    nothing ([`Error::Validation`] `provider_email_unverified`), so nobody pre-creates
    ///    an account for somebody else's address.
    ///
    /// The account's second factor still applies (a challenge, not a session); inactive
    /// accounts are refused with [`Error::InvalidCredentials`]. Emits `OAuthLogin`.
    ///
    /// # Errors
    ///
    /// [`Error::EmailTaken`] (rule 3); [`Error::Validation`] for an identity without a usable
    /// email and no link; [`Error::InvalidCredentials`]; [`Error::Unsupported`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_identities(MemoryIdentityStore::new());
    /// let google = ProviderIdentity::new("google", "1081").with_email("Ada@Example.com", true);
    /// let LoginOutcome::Session(first) = auth.sign_in_with_provider(google.clone(), LoginOptions::new()).await? else { unreachable!() };
    /// assert!(first.user.is_verified && !is_password_usable(first.user.password_hash.as_deref()));
    /// // The same subject again: the same account.
    /// let LoginOutcome::Session(again) = auth.sign_in_with_provider(google, LoginOptions::new()).await? else { unreachable!() };
    /// assert_eq!(again.user.id, first.user.id);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn sign_in_with_provider(
        &self,
        identity: ProviderIdentity,
        options: LoginOptions,
    ) -> Result<LoginOutcome<U>> {
        let store = Arc::clone(self.identity_store()?);
        let now = self.clock.now();
        let user = match store.find(&identity.provider, &identity.subject).await? {
            Some(link) => {
                store.touch(&link.id, now).await?;
                self.uncached_users.find_by_id(&link.user_id).await?
            }
            None => Some(self.link_or_create(store.as_ref(), &identity).await?),
        };
        let Some(user) = user.filter(AuthUser::is_active) else {
            tracing::info!(provider = %identity.provider, "provider sign-in refused: the account is inactive or gone");
            return Err(Error::InvalidCredentials);
        };
        self.events
            .emit(AuthEvent::OAuthLogin {
                user_id: user.id().clone(),
                provider: identity.provider.clone(),
            })
            .await;
        self.session_or_challenge(user, options).await
    }

    /// Rules 2 to 4 of [`sign_in_with_provider`](Self::sign_in_with_provider).
    async fn link_or_create(
        &self,
        store: &dyn IdentityStore,
        identity: &ProviderIdentity,
    ) -> Result<U> {
        let email = identity
            .email
            .as_deref()
            .map(normalize_email)
            .transpose()
            .map_err(|_| {
                Error::invalid(
                    "email",
                    "provider_email_unusable",
                    "the provider gave no usable email address",
                )
            })?
            .ok_or_else(|| {
                Error::invalid(
                    "email",
                    "provider_email_missing",
                    "the provider gave no email address: allow access to it, or sign in another way",
                )
            })?;
        if let Some(existing) = self.users.find_by_email(&email).await? {
            if !identity.email_verified {
                tracing::info!(provider = %identity.provider, "provider identity not linked: the provider has not verified the address");
                return Err(Error::EmailTaken);
            }
            if !existing.is_verified() {
                // The provider vouches for an address nobody had proven here: the account
                // becomes its owner's, and nothing set up before stays.
                if !existing.is_active() {
                    return Err(Error::InvalidCredentials);
                }
                self.claim(&existing, "provider", false).await?;
            }
            self.link_to(store, existing.id(), identity).await?;
            return self
                .uncached_users
                .find_by_id(existing.id())
                .await?
                .ok_or(Error::InvalidCredentials);
        }
        if !identity.email_verified {
            tracing::info!(provider = %identity.provider, "provider sign-in refused: the provider has not verified the address");
            return Err(Error::invalid(
                "email",
                "provider_email_unverified",
                "the provider has not verified this email address: verify it there, or sign up with it here",
            ));
        }
        let mut new = NewUser::new(email);
        new.password_hash = Some(crate::make_unusable_password());
        new.is_verified = true;
        let user = match self.users.create(new).await {
            Ok(user) => user,
            // A concurrent first sign-in of the same person created it: the link it writes
            // next decides (waited for briefly).
            Err(Error::EmailTaken) => {
                for _ in 0..10 {
                    if let Some(link) = store.find(&identity.provider, &identity.subject).await? {
                        return self
                            .uncached_users
                            .find_by_id(&link.user_id)
                            .await?
                            .ok_or(Error::InvalidCredentials);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                return Err(Error::EmailTaken);
            }
            Err(e) => return Err(e),
        };
        self.events
            .emit(AuthEvent::UserRegistered {
                user_id: user.id().clone(),
                email: user.email().to_owned(),
            })
            .await;
        self.link_to(store, user.id(), identity).await?;
        Ok(user)
    }

    /// Links `identity` to `user`, or finds it linked to `user` already (a concurrent sign-in
    /// of the same person won the insert).
    async fn link_to(
        &self,
        store: &dyn IdentityStore,
        user: &UserId,
        identity: &ProviderIdentity,
    ) -> Result<()> {
        match self.insert_link(store, user, identity).await {
            Ok(_) => Ok(()),
            Err(Error::EmailTaken) => {
                match store.find(&identity.provider, &identity.subject).await? {
                    Some(link) if &link.user_id == user => Ok(()),
                    _ => Err(Error::EmailTaken),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn insert_link(
        &self,
        store: &dyn IdentityStore,
        user: &UserId,
        identity: &ProviderIdentity,
    ) -> Result<LinkedIdentity> {
        let link = LinkedIdentity::new(
            format!("id_{}", crate::random::token(12)),
            user.clone(),
            identity.provider.clone(),
            identity.subject.clone(),
            identity.email.clone(),
            crate::truncate_to_micros(self.clock.now()),
        );
        if !store.insert(&link).await? {
            return Err(Error::EmailTaken);
        }
        self.events
            .emit(AuthEvent::IdentityLinked {
                user_id: user.clone(),
                provider: identity.provider.clone(),
            })
            .await;
        Ok(link)
    }

    /// Links a provider identity to a signed-in account (routers ask for a fresh login
    /// first): how the owner of an account connects a provider whose address did not match,
    /// or was not proven.
    ///
    /// # Errors
    ///
    /// [`Error::EmailTaken`] when that identity is linked already (to anyone);
    /// [`Error::UserNotFound`]; [`Error::Unsupported`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_identities(MemoryIdentityStore::new());
    /// let user = auth.register("bo@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// let gh = ProviderIdentity::new("github", "77").with_email("bo@work.example", false);
    /// auth.link_identity(&user.id, gh.clone()).await?;
    /// assert_eq!(auth.list_identities(&user.id).await?.len(), 1);
    /// assert!(matches!(auth.link_identity(&user.id, gh).await, Err(Error::EmailTaken)));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn link_identity(
        &self,
        user_id: &UserId,
        identity: ProviderIdentity,
    ) -> Result<LinkedIdentity> {
        let store = Arc::clone(self.identity_store()?);
        self.require_proven(user_id).await?;
        self.insert_link(store.as_ref(), user_id, &identity).await
    }

    /// The account's linked identities, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_identities(MemoryIdentityStore::new());
    /// assert!(auth.list_identities(&UserId::new("1")).await?.is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn list_identities(&self, user_id: &UserId) -> Result<Vec<LinkedIdentity>> {
        self.identity_store()?.by_user(user_id).await
    }

    /// Unlinks one of the account's identities (`false` when it is not theirs), unless it is
    /// the last way to sign in: no usable password, no passkey, no other identity.
    /// Concurrent removals never leave the account without a way in: the one that would is
    /// undone and refused. Emits `IdentityUnlinked`.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`last_sign_in_method`); [`Error::Unsupported`];
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_identities(MemoryIdentityStore::new());
    /// let google = ProviderIdentity::new("google", "9").with_email("cy@example.com", true);
    /// let LoginOutcome::Session(s) = auth.sign_in_with_provider(google, LoginOptions::new()).await? else { unreachable!() };
    /// let link = &auth.list_identities(&s.user.id).await?[0];
    /// // Created by the provider, no password: its only way in stays.
    /// assert!(matches!(auth.unlink_identity(&s.user.id, &link.id).await, Err(Error::Validation(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn unlink_identity(&self, user_id: &UserId, id: &str) -> Result<bool> {
        let store = Arc::clone(self.identity_store()?);
        let ways = self.ways_in(user_id).await?;
        let Some(link) = ways.identities.iter().find(|l| l.id == id).cloned() else {
            return Ok(false);
        };
        ways.check_not_last("identity")?;
        if !store.delete(user_id, id).await? {
            return Ok(false);
        }
        if self.left_without_a_way_in(user_id).await? {
            // Another removal ran at the same time and took the other way in.
            if let Err(e) = store.insert(&link).await {
                tracing::error!(user_id = %user_id, identity_id = id, error = %e,
                    "an identity unlink raced another removal and could not be put back: the account can only recover through a password reset");
                return Err(e);
            }
            return Err(last_way_in("identity"));
        }
        self.events
            .emit(AuthEvent::IdentityUnlinked {
                user_id: user_id.clone(),
                provider: link.provider,
            })
            .await;
        Ok(true)
    }

    /// Removes every linked identity of the account (deletion).
    pub(super) async fn remove_identities(&self, user_id: &UserId) -> Result<u64> {
        match &self.identities {
            Some(store) => store.delete_user(user_id).await,
            None => Ok(0),
        }
    }
}
