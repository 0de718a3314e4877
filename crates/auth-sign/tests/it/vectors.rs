//! Byte-identical to tortoise-auth: every vector it made verifies, and we make the same bytes.

use auth_core::FixedClock;
use auth_sign::{Signer, TimestampSigner};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    kind: String,
    secret: String,
    value: String,
    signed: String,
    now: Option<i64>,
}

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[test]
fn tortoise_auth_vectors() {
    let file: File = serde_json::from_str(include_str!("../vectors/vectors.json")).unwrap();
    assert_eq!(file.vectors.len(), 34);
    let mut kinds = std::collections::BTreeMap::new();
    for v in &file.vectors {
        match v.kind.as_str() {
            "signer" => {
                let signer = Signer::new(&v.secret).unwrap();
                assert_eq!(signer.sign(&v.value), v.signed, "sign {:?}", v.value);
                assert_eq!(signer.unsign(&v.signed).unwrap(), v.value);
            }
            "timestamp" | "make_token" => {
                let now = v.now.unwrap();
                let signer = TimestampSigner::new(&v.secret)
                    .unwrap()
                    .with_clock(FixedClock::from_unix(now));
                assert_eq!(signer.sign(&v.value), v.signed, "sign {:?}", v.value);
                assert_eq!(
                    signer
                        .unsign(&v.signed, Some(std::time::Duration::from_secs(10)))
                        .unwrap(),
                    v.value
                );
                assert_eq!(
                    auth_sign::verify_token(&v.secret, &v.signed, None).unwrap(),
                    v.value,
                    "verify_token"
                );
            }
            other => panic!("unknown kind {other}"),
        }
        *kinds.entry(v.kind.clone()).or_insert(0) += 1;
        // A salted signer never accepts them.
        let salted = Signer::new(&v.secret).unwrap().with_salt("password-reset");
        assert!(salted.unsign(&v.signed).is_err());
    }
    assert_eq!(kinds.get("signer"), Some(&16));
    assert_eq!(kinds.get("timestamp"), Some(&16));
    assert_eq!(kinds.get("make_token"), Some(&2));
}

#[derive(Deserialize)]
struct SeparatorFile {
    versions: std::collections::BTreeMap<String, String>,
    secret: String,
    vectors: Vec<SeparatorVector>,
}

#[derive(Deserialize)]
struct SeparatorVector {
    kind: String,
    separator: String,
    value: String,
    now: Option<i64>,
    signed: String,
}

/// Values tortoise-auth signed with custom separators verify, and are re-made byte for byte,
/// when the signer has the same separator; with the default one they do not.
#[test]
fn tortoise_auth_custom_separators() {
    let file: SeparatorFile =
        serde_json::from_str(include_str!("../vectors/separators.json")).unwrap();
    assert!(file.versions.contains_key("tortoise-auth"));
    for v in &file.vectors {
        let signer = Signer::new(&file.secret)
            .unwrap()
            .with_separator(v.separator.clone())
            .unwrap();
        match v.kind.as_str() {
            "signer" => {
                assert_eq!(signer.sign(&v.value), v.signed);
                assert_eq!(signer.unsign(&v.signed).unwrap(), v.value);
            }
            "timestamp" => {
                let ts = TimestampSigner::from_signer(signer)
                    .with_clock(FixedClock::from_unix(v.now.unwrap()));
                assert_eq!(ts.sign(&v.value), v.signed);
                assert_eq!(ts.unsign(&v.signed, None).unwrap(), v.value);
            }
            other => panic!("unknown kind {other}"),
        }
        if !v.signed.contains(':') {
            assert!(
                Signer::new(&file.secret)
                    .unwrap()
                    .unsign(&v.signed)
                    .is_err()
            );
        }
    }
    println!(
        "tortoise-auth {}: {} values with separators . | ~ :: verified",
        file.versions["tortoise-auth"],
        file.vectors.len()
    );
}
