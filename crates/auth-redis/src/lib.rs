//! Redis for the `auth` workspace: the state that is short-lived and shared by every instance
//! of a service, kept off the primary database.
//!
//! - [`RedisRateLimiter`]: the throttle, one atomic Lua script per reservation (a sliding
//!   window of failures and an enforced lockout), like the memory and SQL limiters;
//! - [`RedisRevocationStore`]: revoked and consumed token ids, revoked sessions, per-user
//!   cut-offs (combined by `auth_service::Cutoff`'s order-independent rule) and tracked JWT
//!   sessions, for `auth_tokens_jwt::JwtBackend` — usually under a
//!   [`RevocationMirror`](auth_service::RevocationMirror);
//! - [`RedisTokenBackend`]: opaque tokens (stored as SHA-256) with refresh families, reuse
//!   detection in one script and per-user session lists, for services that keep sessions out
//!   of SQL;
//! - [`RedisChallengeStore`]: second-factor login challenges, so a challenge started on one
//!   instance completes on another (`auth_mfa::Mfa::with_challenge_store`, enrolments stay in
//!   SQL); [`RedisSessionStore`]: onboarding sessions, likewise.
//!   [`RedisCeremonyStore`]: passkey ceremonies, finished on any instance. All three
//!   implement the traits of `auth_service::ephemeral`, so this crate depends on no sibling;
//! - [`RedisApiKeyStore`]: API keys and service accounts (`auth_service::ApiKeyStore`), one
//!   script per verification and per roll, per-key limits by `INCR` in window counters;
//! - [`RedisFeed`]: the change feed over pub/sub, with a heartbeat, so every instance's mirror
//!   and user cache learn of every revocation and user change.
//!
//! Every key lives under a prefix ([`Redis::with_prefix`], default `auth:`), so several
//! services (or test runs) share a server.
//!
//! With the feature `cluster`, `Redis::connect_cluster` puts the same stores on a Redis
//! Cluster: the keys each script or transaction touches share a hash tag (one slot), steps
//! that span slots are ordered so that a failure between them leaves nothing usable that should
//! not be, reads across slots go to their nodes concurrently, and cleanup scans every primary. Time is read from a `Clock` and passed to the
//! scripts, so expiry is tested without sleeping; Redis expiry only collects garbage.
//!
//! When Redis is unreachable every operation fails within the response timeout (1 s by
//! default) with [`auth_service::Error::Backend`]: a revocation check then fails closed (the
//! request is refused), and `AuthService` turns a throttle that cannot be asked into a refusal
//! of the attempt (429). The connection manager reconnects by itself when Redis returns.
//!
//! ```no_run
//! use auth_service::{RevocationMirror, RateLimitPolicy};
//! use auth_redis::{Redis, RedisFeed, RedisRateLimiter, RedisRevocationStore};
//! # async fn f() -> auth_service::Result<()> {
//! let redis = Redis::connect("redis://127.0.0.1:6379/").await?.with_prefix("myapp:auth:");
//! let feed = RedisFeed::start(&redis);
//! let revocations = RevocationMirror::new(RedisRevocationStore::new(redis.clone()), feed.clone());
//! let limiter = RedisRateLimiter::new(redis.clone(), RateLimitPolicy::default());
//! # let _ = (revocations, limiter);
//! # Ok(()) }
//! ```

mod api_keys;
mod ceremonies;
mod challenges;
mod connection;
mod feed;
mod onboarding;
mod rate_limit;
mod revocation;
mod tokens;

pub use crate::api_keys::RedisApiKeyStore;
pub use crate::ceremonies::RedisCeremonyStore;
pub use crate::challenges::RedisChallengeStore;
pub use crate::connection::Redis;
pub use crate::feed::RedisFeed;
pub use crate::onboarding::RedisSessionStore;
pub use crate::rate_limit::RedisRateLimiter;
pub use crate::revocation::RedisRevocationStore;
pub use crate::tokens::RedisTokenBackend;
