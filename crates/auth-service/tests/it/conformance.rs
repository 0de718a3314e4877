//! The in-memory implementations pass the shared suites.

use auth_service::{MemoryRateLimiter, MemoryRevocationStore, MemoryTokenBackend, MemoryUserStore};
use auth_testkit::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_user_store() {
    conformance::user_store(|| async { MemoryUserStore::new() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_token_backend() {
    conformance::token_backend(|clock| async move { MemoryTokenBackend::new().with_clock(clock) })
        .await;
    // With a successor key: its own racing client within the reuse window keeps the session.
    conformance::refresh_reuse_window(|clock| async move {
        MemoryTokenBackend::new()
            .with_random_successor_key()
            .with_clock(clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_revocation_store() {
    conformance::revocation_store(
        |clock| async move { MemoryRevocationStore::new().with_clock(clock) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_rate_limiter() {
    conformance::rate_limiter(|clock, policy| async move {
        MemoryRateLimiter::new(policy).with_clock(clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_api_key_store() {
    conformance::api_key_store(|_clock| async {
        (
            auth_service::MemoryApiKeyStore::new(),
            MemoryUserStore::new(),
        )
    })
    .await;
    conformance::api_key_cleanup(auth_service::MemoryApiKeyStore::new(), "1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_audit_store() {
    conformance::audit_store(|| async { auth_service::MemoryAuditStore::new() }).await;
}
