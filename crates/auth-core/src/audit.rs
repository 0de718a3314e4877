//! A durable audit log: every auth event, without its secrets, with the client's address and
//! user agent where a request is being served, in an append-only store.
//!
//! `AuditLog` is an event handler: install it on the service's `EventBus` and each event
//! becomes an [`AuditEntry`] in an [`AuditStore`] (in memory here; in SQL with
//! auth-users-db's `DbAuditStore`). Routers run each request inside a [`RequestContext`](crate::RequestContext)
//! (`RequestContext::scope`), which is where the address, user agent and acting administrator
//! come from.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::events::{AuthEvent, AuthEventKind};
use crate::token::SessionMeta;
use crate::user::UserId;

/// Who is asking, for the audit log: the client (address, user agent) and, for administrative
/// calls, the acting administrator. Routers run each request inside its scope
/// (`auth_service::RequestScope::scope`); events emitted while it runs carry it.
///
/// ```
/// use auth_core::{RequestContext, SessionMeta};
/// let ctx = RequestContext::new(SessionMeta::new().with_ip("203.0.113.9".parse().unwrap()));
/// assert_eq!(ctx.meta.ip.unwrap().to_string(), "203.0.113.9");
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client's address and user agent.
    pub meta: SessionMeta,
    /// The administrator acting (`user:<id>` or `api_key:<id>`), for administrative calls.
    pub actor: Option<String>,
}

impl RequestContext {
    /// A context for a client.
    ///
    /// ```
    /// let ctx = auth_core::RequestContext::new(auth_core::SessionMeta::new());
    /// assert!(ctx.actor.is_none());
    /// ```
    #[must_use]
    pub fn new(meta: SessionMeta) -> Self {
        Self { meta, actor: None }
    }

    /// Names the administrator acting.
    ///
    /// ```
    /// let ctx = auth_core::RequestContext::default().with_actor("user:1");
    /// assert_eq!(ctx.actor.as_deref(), Some("user:1"));
    /// ```
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
}

/// One line of the audit log. It never holds a secret: events that carry one (a reset token,
/// a verification code) are recorded without it.
///
/// ```
/// use auth_core::{AuditEntry, AuthEvent, RequestContext, UserId};
/// let event = AuthEvent::UserLogin { user_id: UserId::new("7"), email: "a@b.c".into() };
/// let entry = AuditEntry::from_event(&event, None, time::OffsetDateTime::UNIX_EPOCH);
/// assert_eq!(entry.kind, "user_login");
/// assert_eq!(entry.user_id.as_ref().map(|u| u.as_str()), Some("7"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When, to the microsecond.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The event kind (`user_login`, `password_changed`, …: [`AuthEventKind::as_str`](crate::AuthEventKind::as_str)).
    pub kind: String,
    /// The account concerned, when the event names one.
    pub user_id: Option<UserId>,
    /// What a client typed, for events about an attempt rather than an account (a failed
    /// login's canonical email, or `#<sha-256>` for input that is not an address).
    pub identifier: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The administrator who acted, for administrative calls.
    pub actor: Option<String>,
    /// The event's other fields, secrets left out.
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl AuditEntry {
    /// An entry of `kind` at `at` with nothing else (for stores reading rows back).
    ///
    /// ```
    /// let e = auth_core::AuditEntry::new(time::OffsetDateTime::UNIX_EPOCH, "user_login");
    /// assert!(e.user_id.is_none() && e.detail.is_empty());
    /// ```
    #[must_use]
    pub fn new(at: OffsetDateTime, kind: impl Into<String>) -> Self {
        Self {
            at,
            kind: kind.into(),
            user_id: None,
            identifier: None,
            ip: None,
            user_agent: None,
            actor: None,
            detail: serde_json::Map::new(),
        }
    }

    /// The entry for `event`, at `at`, with the request's context.
    ///
    /// ```
    /// use auth_core::{AuditEntry, AuthEvent, SecretString, UserId};
    /// let event = AuthEvent::PasswordResetRequested {
    ///     user_id: UserId::new("1"), email: "a@b.c".into(), token: SecretString::from("s3cr3t"),
    /// };
    /// let entry = AuditEntry::from_event(&event, None, time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(!serde_json::to_string(&entry).unwrap().contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn from_event(event: &AuthEvent, ctx: Option<&RequestContext>, at: OffsetDateTime) -> Self {
        let mut entry = Self::new(at, event.kind().as_str());
        entry.ip = ctx.and_then(|c| c.meta.ip).map(|ip| ip.to_string());
        entry.user_agent = ctx.and_then(|c| c.meta.user_agent.clone());
        entry.actor = ctx.and_then(|c| c.actor.clone());
        entry.user_id = event.user_id().cloned();
        entry.detail = detail_of(event);
        match event {
            AuthEvent::UserLoginFailed { identifier, reason } => {
                // An address with no account is nobody's business: kept hashed, like the logs
                // keep it (it also belongs to no account's list).
                entry.identifier = Some(match reason {
                    crate::events::LoginFailureReason::NotFound if !identifier.starts_with('#') => {
                        format!("#{}", crate::random::sha256_hex(identifier))
                    }
                    _ => identifier.clone(),
                });
            }
            AuthEvent::RateLimitExceeded { identifier, .. }
            | AuthEvent::AccountLocked { identifier, .. } => match split_limiter_key(identifier) {
                ("reauth" | "mfa", subject, _) => entry.user_id = Some(UserId::new(subject)),
                (_, subject, _) => entry.identifier = Some(subject.to_owned()),
            },
            AuthEvent::OnboardingStarted { email, .. }
            | AuthEvent::OnboardingSessionExpired { email, .. }
            | AuthEvent::VerificationCodeGenerated { email, .. } => {
                entry.identifier = Some(email.clone());
            }
            _ => {}
        }
        entry
    }
}

/// What an entry records of `event` beside its account: every field but secrets, under the
/// audit log's names (`session` for a token family, `service` for a service name). Exhaustive,
/// so a new event cannot reach the log without deciding what it keeps.
fn detail_of(event: &AuthEvent) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::json;
    let mut detail = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        detail.insert(key.to_owned(), value);
    };
    match event {
        AuthEvent::UserRegistered { email, .. }
        | AuthEvent::UserLogin { email, .. }
        | AuthEvent::UserDeleted { email, .. }
        | AuthEvent::PasswordResetRequested { email, .. }
        | AuthEvent::EmailVerificationRequested { email, .. }
        | AuthEvent::MagicLinkRequested { email, .. } => put("email", json!(email)),
        AuthEvent::UserLoginFailed { reason, .. } => put("reason", json!(reason.as_str())),
        AuthEvent::RateLimitExceeded {
            identifier,
            retry_after,
        }
        | AuthEvent::AccountLocked {
            identifier,
            retry_after,
        } => {
            let (throttle, _, client) = split_limiter_key(identifier);
            put("throttle", json!(throttle));
            put("retry_after_secs", json!(retry_after.as_secs()));
            if let Some(client) = client {
                put("client", json!(client));
            }
        }
        AuthEvent::UserLogout { all, .. } => put("all", json!(all)),
        AuthEvent::PasswordRehashed { algorithm, .. } => put("algorithm", json!(algorithm)),
        AuthEvent::TokenRefreshed { family, .. } => put("session", json!(family)),
        AuthEvent::RefreshReuseDetected { family, .. } => put("session", json!(family)),
        AuthEvent::S2sAuthSuccess { service_name } | AuthEvent::S2sAuthFailed { service_name } => {
            put("service", json!(service_name));
        }
        AuthEvent::OnboardingStarted { session_id, .. }
        | AuthEvent::OnboardingSessionExpired { session_id, .. }
        | AuthEvent::OnboardingCompleted { session_id, .. } => {
            put("onboarding_session", json!(session_id));
        }
        AuthEvent::OnboardingStepCompleted {
            session_id,
            step_name,
            ..
        }
        | AuthEvent::OnboardingStepSkipped {
            session_id,
            step_name,
        }
        | AuthEvent::OnboardingStepFailed {
            session_id,
            step_name,
            ..
        } => {
            put("onboarding_session", json!(session_id));
            put("step", json!(step_name));
        }
        AuthEvent::RecoveryCodeUsed { remaining, .. } => put("remaining", json!(remaining)),
        AuthEvent::ApiKeyCreated { key_id, owner }
        | AuthEvent::ApiKeyUsed { key_id, owner }
        | AuthEvent::ApiKeyRolled { key_id, owner }
        | AuthEvent::ApiKeyRevoked { key_id, owner } => {
            put("api_key", json!(key_id));
            if let crate::ApiKeyOwner::Service(name) = owner {
                put("service_account", json!(name));
            }
        }
        AuthEvent::ApiKeyOwnerInactive { key_id, .. } => put("api_key", json!(key_id)),
        AuthEvent::UserActiveChanged { active, .. } => put("active", json!(active)),
        AuthEvent::EmailChangeRequested {
            old_email,
            new_email,
            ..
        }
        | AuthEvent::EmailChanged {
            old_email,
            new_email,
            ..
        } => {
            put("old_email", json!(old_email));
            put("new_email", json!(new_email));
        }
        AuthEvent::PasskeyAdded {
            passkey_id, name, ..
        } => {
            put("passkey", json!(passkey_id));
            put("name", json!(name));
        }
        AuthEvent::PasskeyRemoved { passkey_id, .. }
        | AuthEvent::PasskeyCloneDetected { passkey_id, .. } => put("passkey", json!(passkey_id)),
        AuthEvent::OAuthLogin { provider, .. }
        | AuthEvent::IdentityLinked { provider, .. }
        | AuthEvent::IdentityUnlinked { provider, .. } => put("provider", json!(provider)),
        AuthEvent::AccountClaimed {
            email,
            proof,
            removed,
            ..
        } => {
            put("email", json!(email));
            put("proof", json!(proof));
            put("removed", json!(removed));
        }
        AuthEvent::AccountSecured { removed, .. } => put("removed", json!(removed)),
        AuthEvent::RoleGranted {
            role, granted_by, ..
        } => {
            put("role", json!(role.as_str()));
            put("granted_by", json!(granted_by));
        }
        AuthEvent::RoleRevoked { role, .. } => put("role", json!(role.as_str())),
        AuthEvent::DeviceTrusted { device_id, .. } => put("device", json!(device_id)),
        AuthEvent::DeviceForgotten { devices, .. } => put("devices", json!(devices)),
        AuthEvent::PasswordChanged { .. }
        | AuthEvent::PasswordResetCompleted { .. }
        | AuthEvent::EmailVerified { .. }
        | AuthEvent::MfaEnabled { .. }
        | AuthEvent::MfaDisabled { .. }
        | AuthEvent::MfaFailed { .. }
        | AuthEvent::RecoveryCodesRegenerated { .. }
        | AuthEvent::AccountUnlocked { .. }
        | AuthEvent::EmailChangeCancelled { .. }
        | AuthEvent::VerificationCodeGenerated { .. } => {}
    }
    detail
}

/// `(throttle, subject, client bucket)` of a limiter key such as `login:203.0.113.7|a@b.c`,
/// `login:*|a@b.c`, `magic:*|a@b.c`, `magic-code:a@b.c`, `reauth:42` or `ip:203.0.113.7`.
fn split_limiter_key(key: &str) -> (&str, &str, Option<&str>) {
    let (throttle, rest) = key.split_once(':').unwrap_or(("", key));
    match throttle {
        "login" | "magic" => match rest.split_once('|') {
            Some((client, subject)) => (throttle, subject, (client != "*").then_some(client)),
            None => (throttle, rest, None),
        },
        "ip" => (throttle, rest, Some(rest)),
        _ => (throttle, rest, None),
    }
}

/// Which entries [`AuditStore::list`] returns: one account's, newest first.
///
/// ```
/// use auth_core::{AuditQuery, UserId};
/// let q = AuditQuery::for_user(UserId::new("1")).with_email("a@b.c").limit(20);
/// assert_eq!(q.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// The account.
    pub user_id: UserId,
    /// Its email: entries about attempts on that address (failed logins, lockouts) are
    /// included.
    pub email: Option<String>,
    /// Attempts on `email` only from this instant on: when the account came to hold the
    /// address, so a later owner of an address never sees an earlier owner's attempts.
    pub email_since: Option<OffsetDateTime>,
    /// Only entries strictly before this instant (for the next page).
    pub before: Option<OffsetDateTime>,
    /// Only entries of these kinds (all when empty).
    pub kinds: Vec<String>,
    /// At most this many (1 to [`AuditQuery::MAX_LIMIT`]).
    pub limit: u64,
}

impl AuditQuery {
    /// The largest page.
    pub const MAX_LIMIT: u64 = 500;

    /// The newest 50 entries of `user_id`.
    ///
    /// ```
    /// assert_eq!(auth_core::AuditQuery::for_user(auth_core::UserId::new("1")).limit, 50);
    /// ```
    #[must_use]
    pub fn for_user(user_id: UserId) -> Self {
        Self {
            user_id,
            email: None,
            email_since: None,
            before: None,
            kinds: Vec::new(),
            limit: 50,
        }
    }

    /// Also the attempts on `email`.
    ///
    /// ```
    /// # use auth_core::{AuditQuery, UserId};
    /// assert!(AuditQuery::for_user(UserId::new("1")).with_email("a@b.c").email.is_some());
    /// ```
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The attempts on the email only from `instant` on.
    ///
    /// ```
    /// # use auth_core::{AuditQuery, UserId};
    /// let q = AuditQuery::for_user(UserId::new("1")).with_email("a@b.c").email_since(time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(q.email_since.is_some());
    /// ```
    #[must_use]
    pub fn email_since(mut self, instant: OffsetDateTime) -> Self {
        self.email_since = Some(instant);
        self
    }

    /// Only entries before `instant`.
    ///
    /// ```
    /// # use auth_core::{AuditQuery, UserId};
    /// assert!(AuditQuery::for_user(UserId::new("1")).before(time::OffsetDateTime::UNIX_EPOCH).before.is_some());
    /// ```
    #[must_use]
    pub fn before(mut self, instant: OffsetDateTime) -> Self {
        self.before = Some(instant);
        self
    }

    /// Only entries of these kinds.
    ///
    /// ```
    /// # use auth_core::{AuditQuery, AuthEventKind, UserId};
    /// let q = AuditQuery::for_user(UserId::new("1")).kinds([AuthEventKind::UserLogin]);
    /// assert_eq!(q.kinds, vec!["user_login".to_owned()]);
    /// ```
    #[must_use]
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = AuthEventKind>) -> Self {
        self.kinds = kinds.into_iter().map(|k| k.as_str().to_owned()).collect();
        self
    }

    /// At most `limit` entries (clamped to 1..=[`Self::MAX_LIMIT`]).
    ///
    /// ```
    /// # use auth_core::{AuditQuery, UserId};
    /// assert_eq!(AuditQuery::for_user(UserId::new("1")).limit(10_000).limit, 500);
    /// ```
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = limit.clamp(1, Self::MAX_LIMIT);
        self
    }

    /// Whether `entry` belongs to this query's account and filters (for stores that filter in
    /// memory).
    ///
    /// ```
    /// use auth_core::{AuditEntry, AuditQuery, AuthEvent, UserId};
    /// let e = AuditEntry::from_event(&AuthEvent::PasswordChanged { user_id: UserId::new("1") }, None, time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(AuditQuery::for_user(UserId::new("1")).matches(&e));
    /// assert!(!AuditQuery::for_user(UserId::new("2")).matches(&e));
    /// ```
    #[must_use]
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let mine = entry.user_id.as_ref() == Some(&self.user_id)
            || (entry.user_id.is_none()
                && self.email.is_some()
                && entry.identifier.as_deref() == self.email.as_deref()
                && self.email_since.is_none_or(|since| entry.at >= since));
        mine && self.before.is_none_or(|b| entry.at < b)
            && (self.kinds.is_empty() || self.kinds.contains(&entry.kind))
    }
}

/// Where audit entries are kept: append-only, listed per account, trimmed by age. Every
/// implementation runs `auth_testkit::conformance::audit_store`.
///
/// ```
/// use auth_service::{AuditEntry, AuditQuery, AuditStore, AuthEvent, MemoryAuditStore, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryAuditStore::new();
/// let event = AuthEvent::PasswordChanged { user_id: UserId::new("1") };
/// store.append(&AuditEntry::from_event(&event, None, time::OffsetDateTime::now_utc())).await?;
/// assert_eq!(store.list(&AuditQuery::for_user(UserId::new("1"))).await?.len(), 1);
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends one entry.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn append(&self, entry: &AuditEntry) -> Result<()>;

    /// One account's entries, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Removes entries older than `cutoff` (retention); how many.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend).
    async fn delete_before(&self, cutoff: OffsetDateTime) -> Result<u64>;
}

#[async_trait]
impl<T: AuditStore + ?Sized> AuditStore for Arc<T> {
    async fn append(&self, entry: &AuditEntry) -> Result<()> {
        (**self).append(entry).await
    }
    async fn list(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        (**self).list(query).await
    }
    async fn delete_before(&self, cutoff: OffsetDateTime) -> Result<u64> {
        (**self).delete_before(cutoff).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::LoginFailureReason;
    use crate::secret::SecretString;
    use std::time::Duration;

    #[test]
    fn limiter_keys_name_their_subject() {
        assert_eq!(
            split_limiter_key("login:203.0.113.7|a|b@c.d"),
            ("login", "a|b@c.d", Some("203.0.113.7"))
        );
        assert_eq!(split_limiter_key("login:*|a@b.c"), ("login", "a@b.c", None));
        assert_eq!(split_limiter_key("reauth:42"), ("reauth", "42", None));
        assert_eq!(
            split_limiter_key("magic:10.0.0.1|a@b.c"),
            ("magic", "a@b.c", Some("10.0.0.1"))
        );
        assert_eq!(
            split_limiter_key("magic-code:a@b.c"),
            ("magic-code", "a@b.c", None)
        );
        assert_eq!(
            split_limiter_key("ip:2001:db8::/64"),
            ("ip", "2001:db8::/64", Some("2001:db8::/64"))
        );
        let e = AuditEntry::from_event(
            &AuthEvent::AccountLocked {
                identifier: "login:10.0.0.1|eve@example.com".into(),
                retry_after: Duration::from_secs(900),
            },
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(e.identifier.as_deref(), Some("eve@example.com"));
        assert_eq!(e.detail["client"], "10.0.0.1");
        assert_eq!(e.detail["retry_after_secs"], 900);
    }

    #[test]
    fn no_entry_carries_a_secret() {
        let secret = "s3cr3t-value-never-logged";
        let events = [
            AuthEvent::PasswordResetRequested {
                user_id: UserId::new("1"),
                email: "a@b.c".into(),
                token: SecretString::from(secret),
            },
            AuthEvent::EmailVerificationRequested {
                user_id: UserId::new("1"),
                email: "a@b.c".into(),
                token: SecretString::from(secret),
            },
            AuthEvent::VerificationCodeGenerated {
                email: "a@b.c".into(),
                code: SecretString::from(secret),
            },
            AuthEvent::UserLoginFailed {
                identifier: "a@b.c".into(),
                reason: LoginFailureReason::BadPassword,
            },
        ];
        for event in &events {
            let entry = AuditEntry::from_event(event, None, OffsetDateTime::UNIX_EPOCH);
            let text = serde_json::to_string(&entry).unwrap();
            assert!(!text.contains(secret), "{text}");
        }
    }
}
