use std::time::Duration;

use auth_core::FixedClock;
use auth_sign::{SignError, Signer, TimestampSigner};

const SECRET: &str = "0123456789abcdef0123456789abcdef-signing";

#[test]
fn weak_secrets_are_a_configuration_error() {
    for weak in ["", "k", "change-me-in-production", &"x".repeat(31)] {
        assert_eq!(
            Signer::new(weak).unwrap_err(),
            SignError::WeakSecret { min: 32 }
        );
        assert!(TimestampSigner::new(weak).is_err());
    }
    assert!(
        Signer::new(SECRET)
            .unwrap()
            .with_fallback_keys(["short"])
            .is_err()
    );
    let err: auth_core::Error = SignError::WeakSecret { min: 32 }.into();
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"));
}

#[test]
fn values_with_separators_and_unicode_round_trip() {
    let signer = Signer::new(SECRET).unwrap();
    let ts = TimestampSigner::new(SECRET).unwrap();
    for value in ["", ":", "a:b:c", "::", "ünïcödé:✓", "trailing:"] {
        assert_eq!(signer.unsign(&signer.sign(value)).unwrap(), value);
        assert_eq!(
            ts.unsign(&ts.sign(value), Some(Duration::from_secs(5)))
                .unwrap(),
            value
        );
    }
}

#[test]
fn tampering_is_a_bad_signature() {
    let signer = Signer::new(SECRET).unwrap();
    let signed = signer.sign("user:42");
    let (value, sig) = signed.rsplit_once(':').unwrap();
    let cases = [
        format!("user:43:{sig}"),
        format!("{value}:{}", &sig[..sig.len() - 1]),
        format!("{value}:{sig}A"),
        format!("{value}:{sig}="), // padded: not the canonical encoding
        format!("{value}:"),
        format!("{value}:ünïcödé"),
        format!("{value}:{}", sig.to_uppercase()),
    ];
    for case in &cases {
        assert_eq!(signer.unsign(case), Err(SignError::BadSignature), "{case}");
    }
    assert_eq!(
        signer.unsign("no-separator"),
        Err(SignError::Malformed("no separator"))
    );
    assert_eq!(
        signer.unsign(&"a:".repeat(5000)),
        Err(SignError::Malformed("too long"))
    );
}

#[test]
fn timestamps_expire_by_the_clock_and_say_how_long_ago() {
    let clock = FixedClock::from_unix(1_000_000);
    let ts = TimestampSigner::new(SECRET)
        .unwrap()
        .with_clock(clock.clone());
    let token = ts.sign("v");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        ts.unsign(&token, Some(Duration::from_secs(3600))).unwrap(),
        "v",
        "age == max_age is valid"
    );
    clock.advance(Duration::from_secs(125));
    assert_eq!(
        ts.unsign(&token, Some(Duration::from_secs(3600))),
        Err(SignError::Expired {
            expired_for: Duration::from_secs(125)
        })
    );
    assert_eq!(
        ts.unsign(&token, None).unwrap(),
        "v",
        "no max_age: no expiry (tortoise-auth's rule)"
    );
    let err: auth_core::Error = SignError::Expired {
        expired_for: Duration::from_secs(1),
    }
    .into();
    assert!(matches!(err, auth_core::Error::TokenExpired));

    let future = TimestampSigner::new(SECRET)
        .unwrap()
        .with_clock(FixedClock::from_unix(2_000_000))
        .sign("v");
    assert_eq!(
        ts.unsign(&future, Some(Duration::from_secs(60))),
        Err(SignError::NotYetValid)
    );
    // A signed value without a valid timestamp.
    let plain = ts.signer().sign("v:not-base64!");
    assert_eq!(
        ts.unsign(&plain, None),
        Err(SignError::Malformed("invalid timestamp"))
    );
    assert_eq!(
        ts.unsign(&ts.signer().sign("v"), None),
        Err(SignError::Malformed("no timestamp"))
    );
}

#[test]
fn key_rotation() {
    let old_key = "old-key-0123456789abcdef0123456789ab";
    let new_key = "new-key-0123456789abcdef0123456789ab";
    let old = TimestampSigner::new(old_key).unwrap().with_salt("invite");
    let issued_before = old.sign("v");
    let rotated = TimestampSigner::new(new_key)
        .unwrap()
        .with_fallback_keys([old_key])
        .unwrap()
        .with_salt("invite");
    assert_eq!(
        rotated.unsign(&issued_before, None).unwrap(),
        "v",
        "old values verify"
    );
    let issued_after = rotated.sign("v");
    assert!(
        old.unsign(&issued_after, None).is_err(),
        "new values use the new key"
    );
    let retired = TimestampSigner::new(new_key).unwrap().with_salt("invite");
    assert!(
        retired.unsign(&issued_before, None).is_err(),
        "removing the fallback retires old values"
    );
}

#[test]
fn purposes_never_mix() {
    let purposes = [
        "password-reset",
        "email-verification",
        "invite",
        "unsubscribe",
    ];
    let base = Signer::new(SECRET).unwrap();
    for a in purposes {
        let signed = base.clone().with_salt(a).sign("42");
        assert!(base.unsign(&signed).is_err(), "{a} vs unsalted");
        for b in purposes.iter().filter(|b| **b != a) {
            assert!(
                base.clone().with_salt(*b).unsign(&signed).is_err(),
                "{a} accepted as {b}"
            );
        }
    }
}

#[test]
fn debug_prints_no_key() {
    let debug = format!("{:?}", TimestampSigner::new(SECRET).unwrap().with_salt("p"));
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
}
