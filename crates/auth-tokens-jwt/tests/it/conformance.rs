//! The JWT backend passes the shared suite, with every algorithm family.

use auth_service::MemoryRevocationStore;
use auth_testkit::conformance;
use auth_tokens_jwt::{Algorithm, JwtBackend};

pub(crate) const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef0123456789abcdef01234";

pub(crate) fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hs256_with_default_revocation() {
    conformance::token_backend(|clock| async move {
        JwtBackend::hmac(Algorithm::HS256, SECRET).with_clock(clock)
    })
    .await;
    conformance::refresh_reuse_window(|clock| async move {
        JwtBackend::hmac(Algorithm::HS256, SECRET)
            .with_revocation_store(MemoryRevocationStore::new().with_clock(clock.clone()))
            .with_clock(clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hs512_with_issuer_audience_and_a_shared_store() {
    conformance::token_backend(|clock| async move {
        JwtBackend::try_hmac(Algorithm::HS512, SECRET)
            .unwrap()
            .with_issuer("https://auth.example.com")
            .with_audience("api")
            .with_revocation_store(MemoryRevocationStore::new().with_clock(clock.clone()))
            .with_clock(clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asymmetric_algorithms() {
    for (alg, private, public) in [
        (Algorithm::EdDSA, "ed25519.pem", "ed25519.pub.pem"),
        (Algorithm::ES256, "es256.pem", "es256.pub.pem"),
        (Algorithm::RS256, "rs256.pem", "rs256.pub.pem"),
    ] {
        let (private, public) = (key(private), key(public));
        conformance::token_backend(|clock| {
            let (private, public) = (private.clone(), public.clone());
            async move {
                JwtBackend::from_pem(alg, &private, &public)
                    .unwrap()
                    .with_key_id("k1")
                    .with_clock(clock)
            }
        })
        .await;
        // ES256 signs with a fresh nonce: racing clients' successors differ in signature,
        // never in their claims.
        conformance::refresh_reuse_window(|clock| {
            let (private, public) = (private.clone(), public.clone());
            async move {
                JwtBackend::from_pem(alg, &private, &public)
                    .unwrap()
                    .with_revocation_store(MemoryRevocationStore::new().with_clock(clock.clone()))
                    .with_clock(clock)
            }
        })
        .await;
    }
}
