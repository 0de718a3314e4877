//! Test support for the `auth` workspace.
//!
//! - [`conformance`]: suites that every implementation of a core trait runs with one call, so
//!   the memory, SQLite, PostgreSQL, MySQL and Redis backends behave the same.
//! - [`TestHasher`]: a fast, clearly insecure password hasher for tests.
//! - [`CountingHasher`]: wraps a hasher and records how many hashes ran at once and on which threads.
//! - [`CutProxy`]: a TCP proxy a test cuts to take a real network path down.
//! - [`FixedClock`]: re-exported from `auth-core`.
//!
//! ```
//! use auth_service::MemoryTokenBackend;
//! # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
//! auth_testkit::conformance::token_backend(|clock| async move {
//!     MemoryTokenBackend::new().with_clock(clock)
//! })
//! .await;
//! # });
//! ```

pub mod conformance;
#[cfg(feature = "db")]
pub mod db;
mod events;
mod hasher;
#[cfg(feature = "oidc-provider")]
pub mod oidc_provider;
mod proxy;
mod skip;

pub use auth_service::FixedClock;
pub use events::EventLog;
pub use hasher::{CountingHasher, HashStats, TestHasher};
pub use proxy::CutProxy;
pub use skip::{SKIP_LOG_VAR, skip};

/// A unique suffix for test data (emails, keys), so suites can share a database.
///
/// ```
/// assert_ne!(auth_testkit::unique("a"), auth_testkit::unique("a"));
/// ```
#[must_use]
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        auth_service::random::token(9)
            .to_lowercase()
            .replace(['-', '_'], "x")
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a server a test starts).
///
/// # Panics
///
/// When no port can be bound (a test harness: it fails the test).
///
/// ```
/// assert_ne!(auth_testkit::free_port(), 0);
/// ```
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A free port on 127.0.0.1 below the kernel's ephemeral range (Linux: 32768–60999), for a
/// server that a client dials before it listens. A port from [`free_port`] lies in that range,
/// so a client that keeps dialling it while nothing listens can be handed the same port for
/// its own outgoing socket and connect to itself (a TCP self-connect); the server then cannot
/// bind it.
///
/// ```
/// let port = auth_testkit::free_port_outside_ephemeral();
/// assert!((20_000..32_000).contains(&port));
/// ```
#[must_use]
pub fn free_port_outside_ephemeral() -> u16 {
    use std::hash::{BuildHasher as _, Hasher as _};
    loop {
        let mut random = std::collections::hash_map::RandomState::new().build_hasher();
        random.write_u64(u64::from(std::process::id()));
        let port = 20_000 + u16::try_from(random.finish() % 12_000).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
