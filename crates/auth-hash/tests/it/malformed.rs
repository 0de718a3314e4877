//! Damaged, truncated, empty and unknown hashes are a typed error or `false`, never a panic.

use auth_hash::{Argon2Hasher, BcryptHasher, DjangoPbkdf2Hasher, MultiHasher, ShaCryptHasher};
use auth_service::{HashError, PasswordHasher};

#[test]
fn every_truncation_of_every_vector_is_handled() {
    let multi = MultiHasher::default();
    let mut checked = 0;
    for v in crate::vectors::load() {
        // Costly defaults are skipped here: the point is parsing, not cost.
        if crate::vectors::costly(&v) {
            continue;
        }
        for end in 0..v.hash.len() {
            let Some(prefix) = v.hash.get(..end) else {
                continue;
            };
            match multi.verify(&v.password, prefix) {
                Ok(false) | Err(_) => {}
                Ok(true) => panic!("a truncated hash verified: {prefix}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 5_000, "{checked}");
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let multi = MultiHasher::default();
    let cases = [
        "",
        "$",
        "$$$$",
        "!",
        "plaintext",
        "$argon2id$",
        "$argon2id$v=19$m=abc,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
        "$argon2id$v=19$m=19456,t=2,p=1$$",
        "$argon2id$v=19$m=19456,t=2,p=1$%%%%$%%%%",
        "pbkdf2_sha256$",
        "pbkdf2_sha256$abc$salt$hash",
        "pbkdf2_sha256$0$salt$aGFzaA==",
        "pbkdf2_sha256$1000$salt$***",
        "pbkdf2_sha256$1000$salt",
        "bcrypt_sha256$",
        "bcrypt_sha256$$2b$04$short",
        "bcrypt$$2b$xx$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "$2b$04$aaaaaaaaaaaaaaaaaaaaa£aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "$2c$04$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "$5$",
        "$6$rounds=abc$salt$hash",
        "$6$salt$%%%",
        "argon2$",
        "argon2$argon2id$v=19$m=19456",
        "\u{0}\u{1}\u{2}",
        "日本語$日本語$日本語$日本語",
    ];
    for case in cases {
        let r = multi.verify("password", case);
        assert!(!matches!(r, Ok(true)), "{case:?} verified");
        let _ = multi.needs_update(case);
        let _ = multi.identifies(case);
    }
    assert_eq!(
        multi.verify("x", "md5$abc$def"),
        Err(HashError::UnknownFormat)
    );
    assert_eq!(multi.verify("x", ""), Ok(false), "empty = unusable");
    assert_eq!(multi.verify("x", "!abc"), Ok(false), "! = unusable");
}

#[test]
fn stored_hashes_cannot_demand_unbounded_work() {
    let argon = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$5iPeF6E5qrUhkNCC3e8T5Jq4g4LPCUXLTRFPx2rFm+Y";
    assert!(matches!(
        Argon2Hasher::default().verify("x", argon),
        Err(HashError::Unsupported(_))
    ));
    let pbkdf2 = "pbkdf2_sha256$999999999$salt$aGFzaA==";
    assert!(matches!(
        DjangoPbkdf2Hasher::sha256().verify("x", pbkdf2),
        Err(HashError::Unsupported(_))
    ));
    let bcrypt = "$2b$31$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert!(matches!(
        BcryptHasher::default().verify("x", bcrypt),
        Err(HashError::Unsupported(_))
    ));
    let crypt = "$6$rounds=999999999$salt$aaaa";
    assert!(matches!(
        ShaCryptHasher.verify("x", crypt),
        Err(HashError::Unsupported(_))
    ));
}

/// Argon2 parameters are written `m=…,t=…,p=…`, in that order, by libargon2 and every library
/// that follows it; argon2-cffi (and so Django) refuses any other order, a repeated or missing
/// one, an unknown one, a sign or an empty value. So does this crate: a hash that another
/// verifier would refuse is malformed here too, whatever its password.
#[test]
fn argon2_parameters_out_of_order_are_malformed() {
    let argon = Argon2Hasher::default();
    let good = argon.hash("password").unwrap();
    assert!(good.contains("$m=19456,t=2,p=1$"), "{good}");
    assert_eq!(argon.verify("password", &good), Ok(true));
    let django = format!("argon2{good}");
    assert_eq!(MultiHasher::default().verify("password", &django), Ok(true));
    for params in [
        "t=2,m=19456,p=1",
        "p=1,t=2,m=19456",
        "m=19456,p=1,t=2",
        "m=19456,t=2",
        "m=19456,t=2,p=1,p=1",
        "m=19456,t=2,p=1,keyid=x",
        "m=+19456,t=2,p=1",
        "m=19456,t=,p=1",
        "M=19456,t=2,p=1",
        "m =19456,t=2,p=1",
    ] {
        let bad = good.replace("m=19456,t=2,p=1", params);
        assert_eq!(
            argon.verify("password", &bad),
            Err(HashError::Malformed),
            "{bad}"
        );
        assert_eq!(
            MultiHasher::default().verify("password", &format!("argon2{bad}")),
            Err(HashError::Malformed),
            "django's {bad}"
        );
    }
}
