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
