//! The one throttle: namespaced limiter keys and attempts reserved before the work they guard.
//!
//! Every limiter key starts with the name of the throttle that owns it (`login:`, `ip:`,
//! `signup:`, `reset:`, `reauth:`, `magic:`, `magic-code:`, `magic-guess:`, `mail:`, and
//! auth-mfa's `mfa:`), and what a client typed only ever
//! ends up *after* that prefix, canonicalised or hashed: a login as `ip:127.0.0.1` or `mfa:42`
//! is the key `login:#<sha-256>`, never another throttle's key.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::AuthEvent;
use crate::random::sha256_hex;
use crate::rate_limit::{RateLimitStatus, RateLimiter};
use crate::user::AuthUser;

use super::AuthService;

/// The bucket a client address is counted in: an IPv4 address itself (IPv4-mapped IPv6 as
/// IPv4), an IPv6 address by its /64, the smallest block one subscriber is usually given, so
/// rotating through a /64 does not buy fresh attempts.
///
/// ```
/// use auth_core::client_bucket;
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
/// use auth_core::redact_identifier;
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

/// One attempt reserved from a limiter; `last` when it used the key's final attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grant {
    pub(crate) last: bool,
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
        let status = match limiter.acquire(key).await {
            Ok(status) => status,
            // Storage that refuses writes is said as such (503 storage_unavailable), not as a
            // rate limit: the attempt is refused all the same.
            Err(e) if e.is_storage_failure() => return Err(e),
            Err(e) => {
                tracing::error!(
                    key = %redact_identifier(key),
                    error = %e,
                    "the rate limiter cannot be reached: the attempt is refused (fail closed)"
                );
                return Err(Error::RateLimited {
                    retry_after: Duration::from_secs(UNAVAILABLE_RETRY_SECS),
                });
            }
        };
        match status {
            RateLimitStatus::Allowed { remaining } => Ok(Grant {
                last: remaining == 0,
            }),
            RateLimitStatus::Limited { retry_after } => {
                tracing::info!(key = %redact_identifier(key), retry_after_s = retry_after.as_secs(), "attempt refused by rate limit");
                self.events
                    .emit(AuthEvent::RateLimitExceeded {
                        identifier: key.to_owned(),
                        retry_after,
                    })
                    .await;
                Err(Error::RateLimited { retry_after })
            }
        }
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
    /// # use auth_core::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(), auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?;
    /// let client = SessionMeta::new().with_ip("203.0.113.5".parse().unwrap());
    /// for _ in 0..20 { RequestContext::new(client.clone()).scope(auth.reserve_mail()).await?; }
    /// assert!(matches!(RequestContext::new(client).scope(auth.reserve_mail()).await, Err(Error::RateLimited { .. })));
    /// # Ok::<(), auth_core::Error>(()) }).unwrap();
    /// ```
    pub async fn reserve_mail(&self) -> Result<()> {
        self.throttle_mail(None).await
    }

    /// Whether `key` is free now, without counting anything: `RateLimited` when it is locked
    /// or when the limiter cannot be asked (fail closed, as [`reserve`](Self::reserve) does).
    pub(super) async fn peek(&self, limiter: &dyn RateLimiter, key: &str) -> Result<()> {
        match limiter.check(key).await {
            Ok(RateLimitStatus::Limited { retry_after }) => Err(Error::RateLimited { retry_after }),
            Ok(_) => Ok(()),
            Err(e) if e.is_storage_failure() => Err(e),
            Err(e) => {
                tracing::error!(
                    key = %redact_identifier(key),
                    error = %e,
                    "the rate limiter cannot be reached: the attempt is refused (fail closed)"
                );
                Err(Error::RateLimited {
                    retry_after: Duration::from_secs(UNAVAILABLE_RETRY_SECS),
                })
            }
        }
    }

    pub(crate) async fn locked(&self, limiter: &dyn RateLimiter, key: &str) {
        let retry_after: Duration = limiter.policy().lockout();
        tracing::warn!(key = %redact_identifier(key), retry_after_s = retry_after.as_secs(), "rate limit key locked");
        self.events
            .emit(AuthEvent::AccountLocked {
                identifier: key.to_owned(),
                retry_after,
            })
            .await;
    }
}
