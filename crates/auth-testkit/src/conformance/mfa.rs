//! The `MfaStore` suite (feature `mfa`).

use std::sync::Arc;

use auth_mfa::{MfaStore, SecretCipher, TotpRecord, TotpSettings};
use auth_service::UserId;
use time::OffsetDateTime;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn pending(cipher: &SecretCipher) -> TotpRecord {
    TotpRecord::pending(
        cipher.encrypt(&[5u8; 20], b"aad").unwrap(),
        TotpSettings::default(),
        at(1_800_000_000),
    )
}

/// Runs the [`MfaStore`] suite: pending, replaced and confirmed enrolments, strictly increasing
/// TOTP steps, re-sealing only from the expected key, recovery codes spent once, delete, then
/// 20 concurrent callers on one step and one recovery code. `a` and `b` are two distinct
/// existing users. The login challenges are [`challenge_store`](super::challenge_store)'s.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// use auth_service::UserId;
/// auth_testkit::conformance::mfa_store(
///     std::sync::Arc::new(auth_mfa::MemoryMfaStore::new()), UserId::new("1"), UserId::new("2"),
/// ).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn mfa_store(store: Arc<dyn MfaStore>, a: UserId, b: UserId) {
    let cipher = SecretCipher::new("k1", &[1u8; 32]).unwrap();
    assert!(store.totp(&a).await.unwrap().is_none());
    assert!(!store.accept_step(&a, 1).await.unwrap());
    assert!(!store.confirm(&a, 1).await.unwrap());

    // Pending, replaced, confirmed.
    assert!(store.save_pending(&a, &pending(&cipher)).await.unwrap());
    assert!(store.save_pending(&a, &pending(&cipher)).await.unwrap());
    let r = store.totp(&a).await.unwrap().unwrap();
    assert!(!r.confirmed);
    assert_eq!(r.settings, TotpSettings::default());
    assert_eq!(r.created_at, at(1_800_000_000));
    assert_eq!(
        &*cipher.decrypt(&r.secret, b"aad").unwrap(),
        &[5u8; 20],
        "the ciphertext round-trips"
    );
    assert!(
        !store.accept_step(&a, 10).await.unwrap(),
        "pending is not a factor"
    );
    assert!(store.confirm(&a, 10).await.unwrap());
    assert!(!store.confirm(&a, 11).await.unwrap());
    assert!(!store.save_pending(&a, &pending(&cipher)).await.unwrap());
    assert!(store.totp(&a).await.unwrap().unwrap().confirmed);

    // Steps: strictly increasing.
    assert!(!store.accept_step(&a, 10).await.unwrap());
    assert!(!store.accept_step(&a, 9).await.unwrap());
    assert!(store.accept_step(&a, 11).await.unwrap());
    assert_eq!(store.totp(&a).await.unwrap().unwrap().last_step, Some(11));
    assert!(store.totp(&b).await.unwrap().is_none());

    // Re-sealing only from the expected key.
    let other = SecretCipher::new("k2", &[2u8; 32]).unwrap();
    let resealed = other.encrypt(&[5u8; 20], b"aad").unwrap();
    assert!(!store.reseal(&a, "nope", &resealed).await.unwrap());
    assert!(store.reseal(&a, "k1", &resealed).await.unwrap());
    assert_eq!(store.totp(&a).await.unwrap().unwrap().secret, resealed);

    // Recovery codes.
    let hashes: Vec<String> = (0..3).map(|i| format!("{i:064}")).collect();
    store.replace_recovery_codes(&a, &hashes).await.unwrap();
    assert_eq!(store.recovery_codes_left(&a).await.unwrap(), 3);
    assert!(!store.use_recovery_code(&b, &hashes[0]).await.unwrap());
    assert!(store.use_recovery_code(&a, &hashes[0]).await.unwrap());
    assert!(!store.use_recovery_code(&a, &hashes[0]).await.unwrap());
    assert_eq!(store.recovery_codes_left(&a).await.unwrap(), 2);
    store
        .replace_recovery_codes(&a, &[format!("{:064}", 9)])
        .await
        .unwrap();
    assert!(!store.use_recovery_code(&a, &hashes[1]).await.unwrap());
    assert_eq!(store.recovery_codes_left(&a).await.unwrap(), 1);

    // Delete takes the codes too.
    assert!(store.delete(&a).await.unwrap());
    assert!(!store.delete(&a).await.unwrap());
    assert!(store.totp(&a).await.unwrap().is_none());
    assert_eq!(store.recovery_codes_left(&a).await.unwrap(), 0);
    assert!(store.save_pending(&a, &pending(&cipher)).await.unwrap());

    mfa_races(store, b).await;
}

/// 20 concurrent callers: one step accepted once, one recovery code spent once.
async fn mfa_races(store: Arc<dyn MfaStore>, user: UserId) {
    let cipher = SecretCipher::new("k1", &[1u8; 32]).unwrap();
    store.save_pending(&user, &pending(&cipher)).await.unwrap();
    store.confirm(&user, 100).await.unwrap();
    store
        .replace_recovery_codes(&user, &[format!("{:064}", 7)])
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            let step = store.accept_step(&user, 101).await.unwrap();
            let code = store
                .use_recovery_code(&user, &format!("{:064}", 7))
                .await
                .unwrap();
            (step, code)
        }));
    }
    let (mut steps, mut codes) = (0, 0);
    for t in tasks {
        let (s, c) = t.await.unwrap();
        steps += usize::from(s);
        codes += usize::from(c);
    }
    assert_eq!((steps, codes), (1, 1));
}
