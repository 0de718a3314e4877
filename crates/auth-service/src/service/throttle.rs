//! The one throttle: namespaced limiter keys and attempts reserved before the work they guard.
//!
//! Every limiter key starts with the name of the throttle that owns it (`login:`, `ip:`,
//! `signup:`, `reset:`, `reauth:`, `magic:`, `magic-code:`, `magic-guess:`, `mail:`, and
//! auth-mfa's `mfa:`), and what a client typed only ever
//! ends up *after* that prefix, canonicalised or hashed: a login as `ip:127.0.0.1` or `mfa:42`
//! is the key `login:#<sha-256>`, never another throttle's key.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::AuthUser;
use crate::RequestScope;
use crate::random::sha256_hex;
use crate::{AuthEvent, EventBus};
use crate::{Error, Result};
use crate::{RateLimitStatus, RateLimiter};

use super::AuthService;

/// The bucket a client address is counted in: an IPv4 address itself (IPv4-mapped IPv6 as
/// IPv4), an IPv6 address by its /64, the smallest block one subscriber is usually given, so
/// rotating through a /64 does not buy fresh attempts.
///
/// ```
/// use auth_service::client_bucket;
/// assert_eq!(client_bucket("203.0.113.7".parse().unwrap()), "203.0.113.7");
/// assert_eq!(client_bucket("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
/// assert_eq!(client_bucket("2001:db8:1:2:ffff::9".parse().unwrap()), "2001:db8:1:2::/64");
/// assert_eq!(client_bucket("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
/// ```
#[must_use]
pub fn client_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// What a login identifier that is not an address (a password typed into the email field, a
/// crafted key) is counted and logged as: `#` and the SHA-256 of at most 256 of its bytes.
pub(crate) fn opaque(raw: &str) -> String {
    let mut end = raw.len().min(256);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("#{}", sha256_hex(&raw[..end]))
}

/// The per-account login key: by account and client address when the address is known
/// (`login:<bucket>|<email>`), by account alone otherwise (`login:*|<email>`); see
/// docs/security.md for why the lockout is keyed this way. The part before the first `|` is an
/// address bucket or `*`, neither of which contains `|`, so no email (which may) can make one
/// key look like another.
pub(crate) fn login_key(identifier: &str, client: Option<&str>) -> String {
    format!("login:{}|{identifier}", client.unwrap_or("*"))
}

/// A form of a limiter key or identifier safe for logs: the namespace, then a short hash.
///
/// ```
/// use auth_service::redact_identifier;
/// let shown = redact_identifier("login:203.0.113.7|alice@example.com");
/// assert!(shown.starts_with("login:sha256:"));
/// assert!(!shown.contains("alice"));
/// ```
#[must_use]
pub fn redact_identifier(key: &str) -> String {
    let (namespace, rest) = match key.split_once(':') {
        Some((ns, rest)) if ns.chars().all(|c| c.is_ascii_lowercase()) && ns.len() <= 8 => {
            (Some(ns), rest)
        }
        _ => (None, key),
    };
    let digest = &sha256_hex(rest)[..16];
    match namespace {
        Some(ns) => format!("{ns}:sha256:{digest}"),
        None => format!("sha256:{digest}"),
    }
}

/// What a refused attempt is told to wait while the limiter's store is unreachable.
const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// One attempt reserved from a limiter ([`Throttle::reserve`]).
///
/// ```
/// # use auth_service::{EventBus, MemoryRateLimiter, RateLimitPolicy, Throttle};
/// # use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let throttle = Throttle::new(Arc::new(MemoryRateLimiter::new(RateLimitPolicy::default())), EventBus::new());
/// assert!(!throttle.reserve("mfa:1").await?.is_last());
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub(crate) last: bool,
}

impl Grant {
    /// Whether this attempt used the key's final one: if it fails, the key is now locked
    /// (say so with [`Throttle::locked`]).
    #[must_use]
    pub fn is_last(&self) -> bool {
        self.last
    }
}

/// The service's throttle for a limiter of a layer's own (auth-mfa's `mfa:` keys): the same
/// reservation before the work, the same fail-closed answer when the limiter cannot be reached,
/// and the same `RateLimitExceeded` and `AccountLocked` events (so the audit log sees every
/// lockout) as [`AuthService`]'s own throttles.
///
/// ```
/// # use auth_service::*;
/// # use std::sync::Arc;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let events = EventBus::new();
/// let throttle = Throttle::new(Arc::new(MemoryRateLimiter::new(RateLimitPolicy::default())), events.clone());
/// for _ in 0..4 {
///     assert!(!throttle.reserve("mfa:7").await?.is_last());
/// }
/// let grant = throttle.reserve("mfa:7").await?;
/// assert!(grant.is_last()); // the code was wrong: say the key is locked
/// throttle.locked("mfa:7").await;
/// assert!(matches!(throttle.reserve("mfa:7").await, Err(Error::RateLimited { .. })));
/// assert!(matches!(throttle.peek("mfa:7").await, Err(Error::RateLimited { .. })));
/// # Ok::<(), auth_service::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Throttle {
    limiter: Arc<dyn RateLimiter>,
    events: EventBus,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("policy", &self.limiter.policy())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle counting in `limiter` and telling `events` (share the service's bus).
    #[must_use]
    pub fn new(limiter: Arc<dyn RateLimiter>, events: EventBus) -> Self {
        Self { limiter, events }
    }

    /// The limiter it counts in (to [`reset`](RateLimiter::reset) a key after a success).
    #[must_use]
    pub fn limiter(&self) -> &dyn RateLimiter {
        self.limiter.as_ref()
    }

    /// Reserves one attempt on `key` before the work it guards, or refuses.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] (with the `RateLimitExceeded` event) while the key is locked or
    /// when the limiter cannot be reached (fail closed); a storage failure as itself.
    pub async fn reserve(&self, key: &str) -> Result<Grant> {
        reserve_on(self.limiter.as_ref(), &self.events, key).await
    }

    /// Whether `key` is free now, counting nothing.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`] while it is locked or when the limiter cannot be reached.
    pub async fn peek(&self, key: &str) -> Result<()> {
        peek_on(self.limiter.as_ref(), key).await
    }

    /// After a failed attempt whose grant [was the last](Grant::is_last): the
    /// `AccountLocked` event.
    pub async fn locked(&self, key: &str) {
        locked_on(self.limiter.as_ref(), &self.events, key).await;
    }
}

/// What a limiter that cannot answer means for an attempt: refused, as a short rate limit
/// (an unthrottled credential check is what an attacker would wait for), or a storage failure
/// said as such.
fn unreachable(key: &str, e: Error) -> Error {
    if e.is_storage_failure() {
        return e;
    }
    tracing::error!(
        key = %redact_identifier(key),
        error = %e,
        "the rate limiter cannot be reached: the attempt is refused (fail closed)"
    );
    Error::RateLimited {
        retry_after: Duration::from_secs(UNAVAILABLE_RETRY_SECS),
    }
}

async fn reserve_on(limiter: &dyn RateLimiter, events: &EventBus, key: &str) -> Result<Grant> {
    let status = limiter
        .acquire(key)
        .await
        .map_err(|e| unreachable(key, e))?;
    match status {
        RateLimitStatus::Allowed { remaining } => Ok(Grant {
            last: remaining == 0,
        }),
        RateLimitStatus::Limited { retry_after } => {
            tracing::info!(key = %redact_identifier(key), retry_after_s = retry_after.as_secs(), "attempt refused by rate limit");
            events
                .emit(AuthEvent::RateLimitExceeded {
                    identifier: key.to_owned(),
                    retry_after,
                })
                .await;
            Err(Error::RateLimited { retry_after })
        }
    }
}

async fn peek_on(limiter: &dyn RateLimiter, key: &str) -> Result<()> {
    match limiter.check(key).await.map_err(|e| unreachable(key, e))? {
        RateLimitStatus::Limited { retry_after } => Err(Error::RateLimited { retry_after }),
        RateLimitStatus::Allowed { .. } => Ok(()),
    }
}

async fn locked_on(limiter: &dyn RateLimiter, events: &EventBus, key: &str) {
    let retry_after: Duration = limiter.policy().lockout();
    tracing::warn!(key = %redact_identifier(key), retry_after_s = retry_after.as_secs(), "rate limit key locked");
    events
        .emit(AuthEvent::AccountLocked {
            identifier: key.to_owned(),
            retry_after,
        })
        .await;
}

impl<U: AuthUser> AuthService<U> {
    /// Reserves one attempt on `key`, or refuses with [`Error::RateLimited`] (and the
    /// `RateLimitExceeded` event) when the key is locked or used up.
    ///
    /// A limiter that cannot answer (its store is down) refuses the attempt too, as
    /// [`Error::RateLimited`] with a short wait: an unthrottled credential check is what an
    /// attacker would wait for. The outage is logged at ERROR with the store's error. A
    /// limiter whose storage refuses writes (a full disk, a read-only database) refuses with
    /// that error instead ([`Error::is_storage_failure`]), so it is not mistaken for a limit.
    pub(crate) async fn reserve(&self, limiter: &dyn RateLimiter, key: &str) -> Result<Grant> {
        reserve_on(limiter, &self.events, key).await
    }

    /// After a failed attempt that used a key's last attempt: the key is now locked.
    /// Counts one mail a client makes the service send, per client address across the
    /// addresses mailed (`mail:<bucket>`, on the mail limiter), before the work. The address
    /// comes from `ip`, else from the request's [`crate::RequestContext`]; without one nothing
    /// is counted here (the per-address throttles still hold).
    pub(super) async fn throttle_mail(&self, ip: Option<IpAddr>) -> Result<()> {
        let ip = ip.or_else(|| crate::RequestContext::current().and_then(|c| c.meta.ip));
        if let Some(ip) = ip {
            let key = format!("mail:{}", client_bucket(ip));
            let grant = self.reserve(self.mail_limiter.as_ref(), &key).await?;
            if grant.last {
                self.locked(self.mail_limiter.as_ref(), &key).await;
            }
        }
        Ok(())
    }

    /// A mail about to be sent to the account's own address on a signed-in request
    /// (verification, email change): counted per client like every other mail.
    ///
    /// # Errors
    ///
    /// [`Error::RateLimited`].
    ///
    /// ```
    /// # use auth_service::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let client = SessionMeta::new().with_ip("203.0.113.5".parse().unwrap());
    /// for _ in 0..20 { RequestContext::new(client.clone()).scope(auth.reserve_mail()).await?; }
    /// assert!(matches!(RequestContext::new(client).scope(auth.reserve_mail()).await, Err(Error::RateLimited { .. })));
    /// # Ok::<(), auth_service::Error>(()) }).unwrap();
    /// ```
    pub async fn reserve_mail(&self) -> Result<()> {
        self.throttle_mail(None).await
    }

    /// Whether `key` is free now, without counting anything: `RateLimited` when it is locked
    /// or when the limiter cannot be asked (fail closed, as [`reserve`](Self::reserve) does).
    pub(super) async fn peek(&self, limiter: &dyn RateLimiter, key: &str) -> Result<()> {
        peek_on(limiter, key).await
    }

    pub(crate) async fn locked(&self, limiter: &dyn RateLimiter, key: &str) {
        locked_on(limiter, &self.events, key).await;
    }
}
