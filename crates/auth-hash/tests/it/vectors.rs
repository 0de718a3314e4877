//! Every hash made by the real Python libraries verifies with its password and no other.

use std::collections::BTreeMap;

use auth_hash::{
    Argon2Hasher, BcryptHasher, DjangoArgon2Hasher, DjangoBcryptHasher, DjangoBcryptSha256Hasher,
    DjangoPbkdf2Hasher, MultiHasher, ShaCryptHasher, TortoisePbkdf2Hasher,
};
use auth_service::PasswordHasher;
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct Vector {
    pub(crate) library: String,
    pub(crate) scheme: String,
    pub(crate) password: String,
    pub(crate) hash: String,
    pub(crate) wrong: Vec<String>,
    pub(crate) note: String,
}

#[derive(Deserialize)]
struct File {
    versions: BTreeMap<String, String>,
    vectors: Vec<Vector>,
}

/// Vectors made at a library's default (slow) cost: checked with fewer wrong passwords.
pub(crate) fn costly(v: &Vector) -> bool {
    v.note.contains("default")
}

pub(crate) fn load() -> Vec<Vector> {
    let text = include_str!("../vectors/vectors.json");
    let file: File = serde_json::from_str(text).expect("vectors.json parses");
    assert!(file.versions.contains_key("Django"));
    file.vectors
}

/// The specific hasher for a scheme: the vector must verify through it, not only the chain.
fn specific(scheme: &str) -> Box<dyn PasswordHasher> {
    match scheme {
        "pbkdf2_sha256" => Box::new(DjangoPbkdf2Hasher::sha256()),
        "pbkdf2_sha1" => Box::new(DjangoPbkdf2Hasher::sha1()),
        "argon2" => Box::new(DjangoArgon2Hasher::default()),
        "bcrypt_sha256" => Box::new(DjangoBcryptSha256Hasher::default()),
        "bcrypt" => Box::new(DjangoBcryptHasher::default()),
        "argon2id" | "argon2i" | "argon2d" => Box::new(Argon2Hasher::default()),
        "tortoise-pbkdf2" => Box::new(TortoisePbkdf2Hasher::default()),
        "sha256_crypt" | "sha512_crypt" => Box::new(ShaCryptHasher),
        s if s.starts_with("bcrypt-2") => Box::new(BcryptHasher::default()),
        other => panic!("no hasher for scheme {other}"),
    }
}

#[test]
fn every_vector_verifies_with_its_password_only() {
    let vectors = load();
    assert_eq!(vectors.len(), 83);
    let multi = MultiHasher::default();
    let mut per_library: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &vectors {
        let what = format!("{} {} ({}) {:?}", v.library, v.scheme, v.note, v.hash);
        let hasher = specific(&v.scheme);
        assert!(hasher.identifies(&v.hash), "{what}: not identified");
        assert!(
            hasher.verify(&v.password, &v.hash).unwrap(),
            "{what}: right password refused"
        );
        assert!(
            multi.verify(&v.password, &v.hash).unwrap(),
            "{what}: MultiHasher refused"
        );
        assert!(!v.wrong.is_empty());
        let wrongs = if costly(v) {
            &v.wrong[..1]
        } else {
            &v.wrong[..]
        };
        for wrong in wrongs {
            // bcrypt reads 72 bytes: a wrong password that only differs after them is accepted,
            // exactly as the library that wrote the hash accepts it.
            let bcrypt_equal = v.scheme.starts_with("bcrypt")
                && v.scheme != "bcrypt_sha256"
                && wrong.len() > 72
                && wrong.as_bytes()[..72] == v.password.as_bytes()[..72.min(v.password.len())];
            let accepted = multi.verify(wrong, &v.hash).unwrap();
            assert_eq!(accepted, bcrypt_equal, "{what}: wrong password {wrong:?}");
        }
        *per_library.entry(v.library.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_library,
        BTreeMap::from([
            ("argon2-cffi", 13),
            ("bcrypt", 14),
            ("django", 30),
            ("passlib", 11),
            ("tortoise-auth", 15),
        ])
    );
}

#[test]
fn every_legacy_vector_needs_an_update_and_ours_do_not() {
    let multi = MultiHasher::default();
    for v in load() {
        let ours = v.note.starts_with("OWASP parameters");
        assert_eq!(
            multi.needs_update(&v.hash),
            !ours,
            "{} {} {}",
            v.library,
            v.scheme,
            v.note
        );
    }
}

#[test]
fn django_and_tortoise_pbkdf2_are_told_apart() {
    let vectors = load();
    let django = DjangoPbkdf2Hasher::sha256();
    let tortoise = TortoisePbkdf2Hasher::default();
    for v in vectors
        .iter()
        .filter(|v| v.hash.starts_with("pbkdf2_sha256$"))
    {
        let is_tortoise = v.library == "tortoise-auth";
        assert_eq!(tortoise.identifies(&v.hash), is_tortoise, "{}", v.hash);
        assert_eq!(django.identifies(&v.hash), !is_tortoise, "{}", v.hash);
    }
}

#[derive(Deserialize)]
struct ShortVector {
    hash_len: usize,
    password: String,
    wrong: String,
    encoded: String,
}

#[derive(Deserialize)]
struct ShortFile {
    versions: BTreeMap<String, String>,
    vectors: Vec<ShortVector>,
}

/// argon2-cffi allows outputs of 4 to 9 bytes, which the `password-hash` crate's output type
/// refuses: they verify here, in both PHC and Django's `argon2$` form, and ask for an upgrade.
#[test]
fn argon2_hashes_with_short_outputs_verify() {
    let file: ShortFile =
        serde_json::from_str(include_str!("../vectors/argon2_short.json")).expect("parses");
    assert!(file.versions.contains_key("argon2-cffi"));
    let argon2 = Argon2Hasher::default();
    let django = DjangoArgon2Hasher::default();
    let mut lengths = std::collections::BTreeSet::new();
    for v in &file.vectors {
        assert_eq!(
            argon2.verify(&v.password, &v.encoded),
            Ok(true),
            "{}",
            v.encoded
        );
        assert_eq!(
            argon2.verify(&v.wrong, &v.encoded),
            Ok(false),
            "{}",
            v.encoded
        );
        assert!(
            argon2.needs_update(&v.encoded),
            "a short output is upgraded"
        );
        let django_form = format!("argon2{}", v.encoded);
        assert_eq!(django.verify(&v.password, &django_form), Ok(true));
        assert_eq!(django.verify(&v.wrong, &django_form), Ok(false));
        lengths.insert(v.hash_len);
    }
    assert_eq!(
        lengths.into_iter().collect::<Vec<_>>(),
        (4..=9).collect::<Vec<_>>()
    );
    println!(
        "argon2-cffi {}: {} hashes with 4-9 byte outputs (argon2id/i/d) verified",
        file.versions["argon2-cffi"],
        file.vectors.len()
    );
}
