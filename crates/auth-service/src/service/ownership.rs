//! Who an account belongs to, and what authority it holds.
//!
//! **An account belongs to whoever proves its address.** Until its address is proven an
//! account may sign in, but it may not gain lasting credentials or authority: no API keys, no
//! passkeys, no linked identities, no second factor, no role. When the owner of the address
//! proves it by a route that does not rest on the account's existing secrets (a reset link, a
//! verification link opened outside the account's session, a sign-in code or link, a provider
//! that vouches for the address), everything set up before the proof by someone who had not
//! proven it is removed in that same step ([`AuthService::prove_address`]): sessions, API keys,
//! passkeys, linked identities, second factors, grants, and the password unless the proof set a
//! new one. Every proof route calls the one rule here.
//!
//! **Authority is granted, never matched.** Roles are stored grants ([`crate::GrantStore`]),
//! given by the operator or an administrator ([`AuthService::grant_role`]) to accounts whose
//! address is proven. An address in configuration ([`AuthService::with_role_on_proof`]) only
//! gives its role at the moment its owner proves it, after that step has removed whatever
//! anyone else had set up.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::AuthService;
use crate::ApiKeyOwner;
use crate::AuthEvent;
use crate::{AuthUser, UserId, normalize_email};
use crate::{Error, Result};
use crate::{GrantStore, Revoked, Role, RoleGrant};

/// How an address was proven.
///
/// ```
/// use auth_service::AddressProof;
/// assert_ne!(AddressProof::InSession, AddressProof::Mailbox("verification_link"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressProof {
    /// The code or link came back inside a session of the account itself (or its onboarding
    /// flow): the proof rests on the account's own secrets as well as the mailbox, so what the
    /// account holds stays.
    InSession,
    /// The mailbox alone (the value names the route: `verification_link`, `password_reset`,
    /// `sign_in_code`, `sign_in_link`, `provider`): on an account whose address was never
    /// proven, everything set up before is removed.
    Mailbox(&'static str),
}

/// What a proof removed from an account whose address nobody had proven.
///
/// ```
/// let report = auth_service::ClaimReport::default();
/// assert!(!report.claimed && report.removed().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimReport {
    /// Whether the proof took the account over from whoever had set it up (the address was
    /// unproven and the proof did not rest on the account's secrets).
    pub claimed: bool,
    /// Sessions ended.
    pub sessions: u64,
    /// API keys revoked.
    pub api_keys: u64,
    /// Passkeys removed.
    pub passkeys: u64,
    /// Provider identities unlinked.
    pub identities: u64,
    /// Whether a second factor was removed (the gate removes every factor).
    pub second_factor: bool,
    /// Grants revoked.
    pub grants: u64,
    /// Whether the password was made unusable (the owner chooses a new one).
    pub password: bool,
}

impl ClaimReport {
    /// What was removed, as the `AccountClaimed` event lists it.
    ///
    /// ```
    /// let mut report = auth_service::ClaimReport::default();
    /// report.api_keys = 2;
    /// report.password = true;
    /// assert_eq!(report.removed(), vec!["api_keys:2", "password"]);
    /// ```
    #[must_use]
    pub fn removed(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.sessions > 0 {
            out.push("sessions".to_owned());
        }
        for (name, n) in [
            ("api_keys", self.api_keys),
            ("passkeys", self.passkeys),
            ("identities", self.identities),
        ] {
            if n > 0 {
                out.push(format!("{name}:{n}"));
            }
        }
        if self.second_factor {
            out.push("second_factor".to_owned());
        }
        if self.grants > 0 {
            out.push(format!("grants:{}", self.grants));
        }
        if self.password {
            out.push("password".to_owned());
        }
        out
    }
}

/// The refusal of a lasting credential on an account whose address is not proven.
pub(super) fn not_proven(what: &str) -> Error {
    Error::invalid(
        "email",
        "email_not_verified",
        format!("confirm the account's email address before adding {what}"),
    )
}

impl<U: AuthUser> AuthService<U> {
    /// Keeps grants in `store` (the default keeps them in memory).
    ///
    /// ```
    /// # use auth_service::*;
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
    ///     .with_grants(MemoryGrantStore::new());
    /// # let _ = auth;
    /// ```
    #[must_use]
    pub fn with_grants(mut self, store: impl GrantStore) -> Self {
        self.grants = Arc::new(store);
        self
    }

    /// Gives `role` to the account of each of `emails` at the moment its owner proves the
    /// address (a verification, a reset, a sign-in code or link, a provider that vouches for
    /// it), in the same step that removes whatever was set up before the proof. An address
    /// listed here confers nothing by itself: an account that registered it without proving it
    /// holds nothing, and an account proven before this was configured is granted with
    /// [`grant_role`](Self::grant_role). Entries that are not addresses are dropped.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
    ///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
    ///     .with_role_on_proof(["ops@example.com"], Role::Admin);
    /// let ops = auth.register("ops@example.com", "violet-otter-sings-42").await?;
    /// assert!(!auth.has_role(&ops.id, Role::Admin).await?);
    /// auth.prove_address(&ops.id, AddressProof::InSession).await?;
    /// assert!(auth.has_role(&ops.id, Role::Admin).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn with_role_on_proof<S: AsRef<str>>(
        mut self,
        emails: impl IntoIterator<Item = S>,
        role: Role,
    ) -> Self {
        let mut map = (*self.proof_grants).clone();
        for email in emails {
            if let Ok(email) = normalize_email(email.as_ref()) {
                map.insert(email, role);
            }
        }
        self.proof_grants = Arc::new(map);
        self
    }

    /// The account's grants.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("rho@example.com", "violet-otter-sings-42").await?;
    /// assert!(auth.roles(&user.id).await?.is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn roles(&self, user_id: &UserId) -> Result<Vec<RoleGrant>> {
        self.grants.grants_of(user_id).await
    }

    /// Whether the account holds `role` (an owner holds `admin` too).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("sig@example.com", "violet-otter-sings-42").await?;
    /// assert!(!auth.has_role(&user.id, Role::Admin).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn has_role(&self, user_id: &UserId, role: Role) -> Result<bool> {
        Ok(self
            .roles(user_id)
            .await?
            .iter()
            .any(|g| g.role.includes(role)))
    }

    /// The accounts holding `role` (exactly: an owner is listed under `owner` only), in id order.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert!(auth.role_holders(Role::Owner).await?.is_empty());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn role_holders(&self, role: Role) -> Result<Vec<UserId>> {
        self.grants.holders(role).await
    }

    /// Grants `role` to an active account whose address is proven. `granted_by` says who
    /// (`operator`, `user:<id>`, `api_key:<id>`). `false` when it was held already. Emits
    /// `RoleGranted`.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Validation`] (`email_not_verified`) for an address
    /// nobody has proven, [`Error::InactiveUser`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("tau@example.com", "violet-otter-sings-42").await?;
    /// // Nobody has proven the address: no authority.
    /// assert!(auth.grant_role(&user.id, Role::Admin, "operator").await.is_err());
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// assert!(auth.grant_role(&user.id, Role::Admin, "operator").await?);
    /// assert!(auth.has_role(&user.id, Role::Admin).await?);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn grant_role(&self, user_id: &UserId, role: Role, granted_by: &str) -> Result<bool> {
        let user = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        if !user.is_active() {
            return Err(Error::InactiveUser);
        }
        if !user.is_verified() {
            return Err(not_proven("a role"));
        }
        let grant = RoleGrant::new(user_id.clone(), role, granted_by, self.clock.now());
        if !self.grants.grant(&grant).await? {
            return Ok(false);
        }
        self.events
            .emit(AuthEvent::RoleGranted {
                user_id: user_id.clone(),
                role,
                granted_by: granted_by.to_owned(),
            })
            .await;
        Ok(true)
    }

    /// [`grant_role`](Self::grant_role) by an administrator: `actor` is the administrator's
    /// account (`None` for a service account's key), recorded as `user:<id>` / `api_key`;
    /// `owner` is granted only by an owner.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for `owner` granted by anyone but an owner; as
    /// [`grant_role`](Self::grant_role) otherwise.
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let a = auth.register("ga@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&a.id, AddressProof::InSession).await?;
    /// auth.grant_role(&a.id, Role::Admin, "operator").await?;
    /// assert!(matches!(auth.grant_role_as(Some(&a.id), &a.id, Role::Owner).await, Err(Error::Forbidden(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn grant_role_as(
        &self,
        actor: Option<&UserId>,
        user_id: &UserId,
        role: Role,
    ) -> Result<bool> {
        let actor_is_owner = match actor {
            Some(a) => self.has_role(a, Role::Owner).await?,
            None => false,
        };
        if role == Role::Owner && !actor_is_owner {
            return Err(Error::Forbidden("only an owner may grant `owner`".into()));
        }
        let by = actor.map_or_else(|| "api_key".to_owned(), |a| format!("user:{a}"));
        self.grant_role(user_id, role, &by).await
    }

    /// [`revoke_role`](Self::revoke_role) by an administrator (`actor`, `None` for a service
    /// account's key): another administrator's role only by an owner
    /// ([`may_act_on`](Self::may_act_on)), never from its last holder.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`]; [`Error::Backend`].
    pub async fn revoke_role_as(
        &self,
        actor: Option<&UserId>,
        user_id: &UserId,
        role: Role,
    ) -> Result<bool> {
        self.may_act_on(actor, user_id, false).await?;
        self.revoke_role(user_id, role).await
    }

    /// Revokes `role`, never from its last holder. `false` when it was not held. Emits
    /// `RoleRevoked`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] for the last holder; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("ups@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// auth.grant_role(&user.id, Role::Admin, "operator").await?;
    /// assert!(matches!(auth.revoke_role(&user.id, Role::Admin).await, Err(Error::Forbidden(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn revoke_role(&self, user_id: &UserId, role: Role) -> Result<bool> {
        match self.grants.revoke_unless_last(user_id, role).await? {
            Revoked::NotHeld => Ok(false),
            Revoked::Last => Err(Error::Forbidden(
                format!("this is the last account holding `{role}`: grant it to another first")
                    .into(),
            )),
            Revoked::Yes => {
                self.events
                    .emit(AuthEvent::RoleRevoked {
                        user_id: user_id.clone(),
                        role,
                    })
                    .await;
                Ok(true)
            }
        }
    }

    /// Whether `actor` (an administrator's account; `None` for a service account's key) may
    /// act on `target`: an account holding `admin` or `owner` is acted on only by an owner
    /// (or by itself), and an action that takes access away (`removes_access`: deactivate,
    /// delete) is never allowed on the last account holding `admin` or `owner`.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] saying why; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let a = auth.register("a1@example.com", "violet-otter-sings-42").await?;
    /// let b = auth.register("b1@example.com", "violet-otter-sings-42").await?;
    /// for u in [&a, &b] {
    ///     auth.prove_address(&u.id, AddressProof::InSession).await?;
    ///     auth.grant_role(&u.id, Role::Admin, "operator").await?;
    /// }
    /// // One administrator may not deactivate another...
    /// assert!(matches!(auth.may_act_on(Some(&a.id), &b.id, true).await, Err(Error::Forbidden(_))));
    /// // ...an owner may.
    /// auth.grant_role(&a.id, Role::Owner, "operator").await?;
    /// auth.may_act_on(Some(&a.id), &b.id, true).await?;
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn may_act_on(
        &self,
        actor: Option<&UserId>,
        target: &UserId,
        removes_access: bool,
    ) -> Result<()> {
        let target_roles = self.roles(target).await?;
        if target_roles.is_empty() {
            return Ok(());
        }
        let actor_is_owner = match actor {
            Some(actor) => self.has_role(actor, Role::Owner).await?,
            None => false,
        };
        if actor != Some(target) && !actor_is_owner {
            return Err(Error::Forbidden(
                "the account is an administrator's: only an owner may act on it".into(),
            ));
        }
        if removes_access {
            let mut others = BTreeSet::new();
            for role in Role::ALL {
                others.extend(self.grants.holders(role).await?);
            }
            others.remove(target);
            if others.is_empty() {
                return Err(Error::Forbidden(
                    "the account is the last administrator: grant the role to another first".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether an authenticated API key carries `scope`: the key must list it, and when the
    /// scope names a role (`admin`, `owner`) a user's key carries it only while its owner holds
    /// that role (a service account's key carries what the operator gave it). This is the one
    /// check behind `/admin` and `/auth/verify?scope=`.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// let user = auth.register("kay@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// let issued = auth.create_api_key(&ApiKeyOwner::User(user.id.clone()), NewApiKey::new("all").with_scopes(["*"])).await?;
    /// let found = auth.authenticate_api_key(issued.key.expose_secret(), None).await?;
    /// assert!(auth.api_key_carries(&found, "deploy").await?);
    /// assert!(!auth.api_key_carries(&found, "admin").await?, "`*` never carries a role the owner lacks");
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn api_key_carries(&self, key: &super::ApiKeyAuth<U>, scope: &str) -> Result<bool> {
        if !key.key.has_scope(scope) {
            return Ok(false);
        }
        match (Role::parse(scope), &key.user) {
            (Some(role), Some(user)) => {
                Ok(user.is_verified() && self.has_role(user.id(), role).await?)
            }
            _ => Ok(true),
        }
    }

    /// A value that binds a browser to `user_id` for `purpose` (`verify-email`,
    /// `email-change`): set it as an HttpOnly cookie on a signed-in request that mails a link,
    /// and the link opened later in any tab of that browser counts as opened in the account's
    /// session ([`binding_user`](Self::binding_user)). A MAC under the signing secret over the
    /// purpose, the account and a random nonce; nothing is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] without a signing secret.
    ///
    /// ```
    /// # use auth_service::*;
    /// let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-binding").build()?;
    /// let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let value = auth.browser_binding("verify-email", &UserId::new("7"))?;
    /// assert_eq!(auth.binding_user("verify-email", &value), Some(UserId::new("7")));
    /// assert_eq!(auth.binding_user("email-change", &value), None, "one purpose");
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    pub fn browser_binding(&self, purpose: &str, user_id: &UserId) -> Result<String> {
        let nonce = crate::random::token(16);
        let user = super::links::b64(user_id.as_str());
        let mac = self.link_mac(&format!("binding:{purpose}"), &[&user, &nonce])?;
        Ok(format!("{user}.{nonce}.{mac}"))
    }

    /// The account a [`browser_binding`](Self::browser_binding) value names, if it is genuine
    /// (constant-time check) and for `purpose`.
    ///
    /// ```
    /// # use auth_service::*;
    /// # let config = AuthConfig::builder().signing_secret("0123456789abcdef0123456789abcdef-binding").build()?;
    /// # let auth = AuthService::new(config, MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// assert_eq!(auth.binding_user("verify-email", "forged.value.here"), None);
    /// # Ok::<(), auth_service::Error>(())
    /// ```
    #[must_use]
    pub fn binding_user(&self, purpose: &str, value: &str) -> Option<UserId> {
        if value.len() > 512 {
            return None;
        }
        let mut parts = value.split('.');
        let (Some(user), Some(nonce), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        self.link_mac_ok(mac, &format!("binding:{purpose}"), &[user, nonce])
            .ok()
            .filter(|ok| *ok)?;
        super::links::unb64(user).ok().map(UserId::new)
    }

    /// The account, if it may gain lasting credentials (API keys, passkeys, linked identities,
    /// second factors, roles): active, with its address proven. Read from the store, not the
    /// user cache. Routers call it before starting a ceremony whose end would add one.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`email_not_verified`); [`Error::UserNotFound`];
    /// [`Error::InactiveUser`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let user = auth.register("unp@example.com", "violet-otter-sings-42").await?;
    /// assert!(matches!(auth.require_proven(&user.id).await, Err(Error::Validation(_))));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn require_proven(&self, user_id: &UserId) -> Result<U> {
        let user = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        if !user.is_active() {
            return Err(Error::InactiveUser);
        }
        if !user.is_verified() {
            return Err(not_proven("a way to sign in or act for it"));
        }
        Ok(user)
    }

    /// "Secure my account": ends every session but `keep_session`, revokes every API key, and
    /// removes the passkeys and linked identities whose ids are not in `keep_passkeys` /
    /// `keep_identities`, in one call, with `AccountSecured` (audited). The second factor and
    /// the password stay (change the password first if it may be known). Refused, with nothing
    /// removed, when it would leave the account no way in.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] (`last_sign_in_method`) when nothing would be left to sign in
    /// with; [`Error::UserNotFound`]; [`Error::Backend`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?.with_api_keys(MemoryApiKeyStore::new());
    /// let user = auth.register("sec@example.com", "violet-otter-sings-42").await?;
    /// auth.prove_address(&user.id, AddressProof::InSession).await?;
    /// let stolen = auth.login("sec@example.com", "violet-otter-sings-42").await?;
    /// let key = auth.create_api_key(&ApiKeyOwner::User(user.id.clone()), NewApiKey::new("left behind")).await?;
    /// let mine = auth.login("sec@example.com", "violet-otter-sings-42").await?;
    /// let keep = auth.verify_access(mine.access_token()).await?.family;
    /// let report = auth.secure_account(&user.id, keep.as_deref(), &[], &[]).await?;
    /// assert_eq!(report.api_keys, 1);
    /// assert!(auth.authenticate(stolen.access_token()).await.is_err());
    /// assert!(auth.authenticate(mine.access_token()).await.is_ok());
    /// assert!(auth.authenticate_api_key(key.key.expose_secret(), None).await.is_err());
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn secure_account(
        &self,
        user_id: &UserId,
        keep_session: Option<&str>,
        keep_passkeys: &[String],
        keep_identities: &[String],
    ) -> Result<ClaimReport> {
        let ways = self.ways_in(user_id).await?;
        let password = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?
            .password_hash()
            .is_some_and(|h| crate::is_password_usable(Some(h)));
        let kept_passkeys = ways
            .passkeys
            .iter()
            .filter(|p| keep_passkeys.contains(&p.id))
            .count();
        let kept_identities = ways
            .identities
            .iter()
            .filter(|i| keep_identities.contains(&i.id))
            .count();
        if !password && kept_passkeys == 0 && kept_identities == 0 {
            return Err(super::ways_in::last_way_in("keep"));
        }
        let mut report = ClaimReport {
            sessions: self.end_sessions(user_id, keep_session).await?,
            ..ClaimReport::default()
        };
        if self.api_keys.is_some() {
            let owner = ApiKeyOwner::User(user_id.clone());
            for key in self.list_api_keys(&owner).await? {
                if self.revoke_api_key(&owner, &key.id).await? {
                    report.api_keys += 1;
                }
            }
        }
        for passkey in &ways.passkeys {
            if !keep_passkeys.contains(&passkey.id)
                && let Some(backend) = &self.passkeys
                && backend.remove(user_id, &passkey.id).await?
            {
                report.passkeys += 1;
                self.events
                    .emit(AuthEvent::PasskeyRemoved {
                        user_id: user_id.clone(),
                        passkey_id: passkey.id.clone(),
                    })
                    .await;
            }
        }
        for identity in &ways.identities {
            if !keep_identities.contains(&identity.id)
                && let Some(store) = &self.identities
                && store.delete(user_id, &identity.id).await?
            {
                report.identities += 1;
                self.events
                    .emit(AuthEvent::IdentityUnlinked {
                        user_id: user_id.clone(),
                        provider: identity.provider.clone(),
                    })
                    .await;
            }
        }
        tracing::info!(user_id = %user_id, removed = ?report.removed(), "account secured by its owner");
        self.events
            .emit(AuthEvent::AccountSecured {
                user_id: user_id.clone(),
                removed: report.removed(),
            })
            .await;
        Ok(report)
    }

    /// Records that the account's address is proven, and settles whose account it is. With
    /// [`AddressProof::Mailbox`] on an account whose address nobody had proven, everything set
    /// up before is removed first (see [`ClaimReport`]); with [`AddressProof::InSession`], or
    /// on an account proven already, nothing is. Then the address is marked proven, roles
    /// configured for it ([`with_role_on_proof`](Self::with_role_on_proof)) are granted, and
    /// `AccountClaimed` (when something was taken over) and `EmailVerified` are emitted.
    ///
    /// # Errors
    ///
    /// [`Error::UserNotFound`]; [`Error::Backend`] (a proof that failed halfway leaves the
    /// address unproven, so the account still cannot gain credentials, and can be proven
    /// again).
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// // Someone registers an address that is not theirs and signs in.
    /// let squat = auth.register("owner@example.com", "squatters-password-99").await?;
    /// let session = auth.login("owner@example.com", "squatters-password-99").await?;
    /// // The owner proves the address from the mailbox: the squatter's password and session go.
    /// let report = auth.prove_address(&squat.id, AddressProof::Mailbox("verification_link")).await?;
    /// assert!(report.claimed && report.password);
    /// assert!(auth.authenticate(session.access_token()).await.is_err());
    /// assert!(auth.login("owner@example.com", "squatters-password-99").await.is_err());
    /// assert!(auth.find_user(&squat.id).await?.unwrap().is_verified);
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn prove_address(
        &self,
        user_id: &UserId,
        proof: AddressProof,
    ) -> Result<ClaimReport> {
        let user = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .ok_or(Error::UserNotFound)?;
        match proof {
            AddressProof::Mailbox(route) if !user.is_verified() => {
                self.claim(&user, route, false).await
            }
            _ => {
                let was_verified = user.is_verified();
                if !was_verified {
                    self.users.set_verified(user.id(), true).await?;
                }
                self.proven(&user, was_verified).await?;
                Ok(ClaimReport::default())
            }
        }
    }

    /// Takes an unproven account over for the owner of its address: removes everything set
    /// up before (the password too unless `keep_password`, for a proof that has just set
    /// one), then marks the address proven. Removal comes first, so a failure halfway leaves
    /// the address unproven; a final end of sessions catches a sign-in that raced the steps.
    pub(super) async fn claim(
        &self,
        user: &U,
        route: &'static str,
        keep_password: bool,
    ) -> Result<ClaimReport> {
        let id = user.id();
        let mut report = ClaimReport {
            claimed: true,
            ..ClaimReport::default()
        };
        if !keep_password {
            self.users
                .set_password_hash(id, &crate::make_unusable_password())
                .await?;
            report.password = true;
        }
        report.sessions = self.end_sessions(id, None).await?;
        if self.api_keys.is_some() {
            let owner = ApiKeyOwner::User(id.clone());
            for key in self.list_api_keys(&owner).await? {
                if self.revoke_api_key(&owner, &key.id).await? {
                    report.api_keys += 1;
                }
            }
        }
        if let Some(gate) = &self.second_factor
            && gate.is_required(id).await?
        {
            gate.remove_all(id).await?;
            report.second_factor = true;
        }
        report.passkeys = self.remove_passkeys(id).await?;
        report.identities = self.remove_identities(id).await?;
        report.grants = self.grants.revoke_all(id).await?;
        self.users.set_verified(id, true).await?;
        report.sessions += self.end_sessions(id, None).await?;
        tracing::warn!(user_id = %id, proof = route, removed = ?report.removed(), "address proven by its owner: what was set up before is removed");
        self.events
            .emit(AuthEvent::AccountClaimed {
                user_id: id.clone(),
                email: user.email().to_owned(),
                proof: route.to_owned(),
                removed: report.removed(),
            })
            .await;
        self.proven(user, false).await?;
        Ok(report)
    }

    /// After the first proof of the address: the role configured for it, and `EmailVerified`.
    async fn proven(&self, user: &U, was_verified: bool) -> Result<()> {
        if was_verified {
            return Ok(());
        }
        if let Some(role) = self.proof_grants.get(user.email()).copied() {
            let grant = RoleGrant::new(user.id().clone(), role, "config", self.clock.now());
            if self.grants.grant(&grant).await? {
                self.events
                    .emit(AuthEvent::RoleGranted {
                        user_id: user.id().clone(),
                        role,
                        granted_by: "config".to_owned(),
                    })
                    .await;
            }
        }
        self.events
            .emit(AuthEvent::EmailVerified {
                user_id: user.id().clone(),
            })
            .await;
        Ok(())
    }
}
