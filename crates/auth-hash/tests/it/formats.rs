//! Round trips, parameters and the 72-byte rule.

use auth_hash::{
    Argon2Hasher, Argon2Params, BcryptHasher, DjangoArgon2Hasher, DjangoBcryptHasher,
    DjangoBcryptSha256Hasher, DjangoPbkdf2Hasher, MultiHasher, TortoisePbkdf2Hasher,
};
use auth_service::{HashError, PasswordHasher};

const PASSWORDS: [&str; 4] = [
    "correct horse battery staple",
    "",
    "pässwörd-日本語-🔑",
    "a$b:c",
];

#[test]
fn every_hasher_round_trips() {
    let hashers: Vec<Box<dyn PasswordHasher>> = vec![
        Box::new(Argon2Hasher::new(Argon2Params::new(8192, 1, 1).unwrap())),
        Box::new(DjangoPbkdf2Hasher::sha256().with_iterations(1000)),
        Box::new(DjangoPbkdf2Hasher::sha1().with_iterations(1000)),
        Box::new(DjangoArgon2Hasher::new(
            Argon2Params::new(8192, 1, 1).unwrap(),
        )),
        Box::new(DjangoBcryptSha256Hasher::new(4)),
        Box::new(DjangoBcryptHasher::new(4)),
        Box::new(TortoisePbkdf2Hasher::new(1000)),
        Box::new(BcryptHasher::new(4)),
    ];
    let multi = MultiHasher::default();
    for h in &hashers {
        for pw in PASSWORDS {
            let a = h.hash(pw).unwrap();
            let b = h.hash(pw).unwrap();
            assert_ne!(a, b, "{}: salts differ", h.algorithm());
            assert!(
                h.identifies(&a),
                "{} identifies its own hash",
                h.algorithm()
            );
            assert!(h.verify(pw, &a).unwrap(), "{}", h.algorithm());
            assert!(!h.verify("not it", &a).unwrap(), "{}", h.algorithm());
            assert!(
                multi.verify(pw, &a).unwrap(),
                "the chain verifies {}",
                h.algorithm()
            );
        }
    }
}

#[test]
fn argon2_needs_update_when_parameters_differ() {
    let default = Argon2Hasher::default();
    let tortoise = Argon2Hasher::new(Argon2Params::TORTOISE_AUTH);
    let h = Argon2Hasher::new(Argon2Params::new(8192, 1, 1).unwrap())
        .hash("pw")
        .unwrap();
    assert!(default.needs_update(&h));
    assert!(tortoise.needs_update(&h));
    let own = default.hash("pw").unwrap();
    assert!(!default.needs_update(&own));
    assert!(tortoise.needs_update(&own));
}

#[test]
fn argon2_params_are_validated() {
    assert!(Argon2Params::new(8191, 2, 1).is_err());
    assert!(Argon2Params::new(1024 * 1024 + 1, 2, 1).is_err());
    assert!(Argon2Params::new(19_456, 0, 1).is_err());
    assert!(Argon2Params::new(19_456, 65, 1).is_err());
    assert!(Argon2Params::new(19_456, 2, 0).is_err());
    assert!(Argon2Params::new(19_456, 2, 65).is_err());
    assert_eq!(
        Argon2Params::new(19_456, 2, 1).unwrap(),
        Argon2Params::DEFAULT
    );
    let err: auth_service::Error = Argon2Params::new(1, 1, 1).unwrap_err().into();
    assert!(matches!(err, auth_service::Error::Configuration(_)));
}

#[test]
fn bcrypt_never_truncates_new_hashes() {
    let h = BcryptHasher::new(4);
    let at_limit = "a".repeat(72);
    assert!(h.verify(&at_limit, &h.hash(&at_limit).unwrap()).unwrap());
    assert!(matches!(
        h.hash(&"a".repeat(73)),
        Err(HashError::Unsupported(_))
    ));
    assert!(matches!(
        DjangoBcryptHasher::new(4).hash(&"a".repeat(73)),
        Err(HashError::Unsupported(_))
    ));
    // bcrypt_sha256 takes any length, and the 73rd byte matters.
    let long = DjangoBcryptSha256Hasher::new(4);
    let hash = long.hash(&"a".repeat(100)).unwrap();
    assert!(!long.verify(&format!("{}b", "a".repeat(99)), &hash).unwrap());
}

#[test]
fn legacy_bcrypt_hashes_verify_as_they_were_made() {
    // A hash made by a library that truncated at 72 bytes (what the bcrypt crate's `hash`
    // still does): the stored hash covers the first 72 bytes only.
    let legacy = bcrypt::hash("b".repeat(100), 4).unwrap();
    let h = BcryptHasher::default();
    assert!(h.verify(&"b".repeat(100), &legacy).unwrap());
    assert!(
        h.verify(&"b".repeat(72), &legacy).unwrap(),
        "documented: bcrypt reads 72 bytes"
    );
    assert!(h.needs_update(&legacy), "and the next login replaces it");
}

#[test]
fn multi_hasher_upgrade_rules() {
    let multi = MultiHasher::default();
    assert_eq!(multi.algorithm(), "argon2id");
    let bcrypt_hash = BcryptHasher::new(4).hash("pw").unwrap();
    assert!(multi.needs_update(&bcrypt_hash));
    let weak_argon = Argon2Hasher::new(Argon2Params::new(8192, 1, 1).unwrap())
        .hash("pw")
        .unwrap();
    assert!(multi.needs_update(&weak_argon));
    assert!(!multi.needs_update(&multi.hash("pw").unwrap()));
    assert!(multi.needs_update("garbage"));
    // A custom chain: bcrypt primary.
    let custom = MultiHasher::new(BcryptHasher::new(4)).with(Argon2Hasher::default());
    assert!(custom.hash("pw").unwrap().starts_with("$2b$04$"));
    assert!(custom.needs_update(&weak_argon));
}

#[test]
fn debug_prints_no_secret_material() {
    let multi = MultiHasher::default();
    let debug = format!("{multi:?}");
    assert!(debug.contains("argon2id"));
    assert!(!format!("{:?}", Argon2Hasher::default()).contains('$'));
}
