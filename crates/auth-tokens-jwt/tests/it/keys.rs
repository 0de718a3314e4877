//! Key sets: generated keys sign, a verifier built from the published JWKS alone accepts the
//! tokens, rotation keeps earlier tokens valid until their key is pruned, the next key is
//! published before it signs, files round-trip and stay private.

use std::time::Duration;

use auth_service::{Error, IssueRequest, TokenBackend, TokenKind, UserId};
use auth_tokens_jwt::{Algorithm, JwtBackend, JwtKeySet, KeyState};
use time::OffsetDateTime;

/// What another service does with our JWKS: a key per `kid`, nothing else.
fn verify_with_jwks(jwks: &serde_json::Value, token: &str) -> Result<serde_json::Value, String> {
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or("unknown kid")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn token(jwt: &JwtBackend) -> String {
    jwt.issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn generated_keys_sign_and_the_jwks_verifies() {
    let now = OffsetDateTime::now_utc();
    for algorithm in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384] {
        let keys = JwtKeySet::generate(algorithm, now).unwrap();
        let jwt = JwtBackend::from_key_set(&keys).unwrap();
        let t = token(&jwt).await;
        let header = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(header.kid.as_deref(), Some(keys.current().unwrap().kid()));
        let jwks = keys.jwks(now, Duration::from_secs(3_600));
        for jwk in jwks["keys"].as_array().unwrap() {
            assert!(jwk.get("d").is_none(), "{algorithm:?}: no private member");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], algorithm.name());
        }
        let claims = verify_with_jwks(&jwks, &t).unwrap();
        assert_eq!(claims["sub"], "42", "{algorithm:?}");
        jwt.verify(&t, TokenKind::Access).await.unwrap();
    }
}

#[tokio::test]
async fn rotation_keeps_earlier_tokens_until_their_key_is_pruned() {
    let now = OffsetDateTime::now_utc();
    let mut keys = JwtKeySet::generate(Algorithm::EdDSA, now).unwrap();
    let first = keys.current().unwrap().kid().to_owned();
    let next = keys.next().unwrap().kid().to_owned();
    let old = token(&JwtBackend::from_key_set(&keys).unwrap()).await;
    // The next key is in the document before any token carries it.
    let published = keys.jwks(now, Duration::from_secs(60));
    assert!(
        published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == next.as_str())
    );

    keys.rotate(now).unwrap();
    assert_eq!(keys.current().unwrap().kid(), next);
    assert_eq!(keys.retired().next().unwrap().kid(), first);
    assert_eq!(keys.next().unwrap().state(), KeyState::Next);
    let jwt = JwtBackend::from_key_set(&keys).unwrap();
    let new = token(&jwt).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some(next.as_str())
    );
    jwt.verify(&old, TokenKind::Access).await.unwrap();
    let retention = Duration::from_secs(7 * 86_400);
    verify_with_jwks(&keys.jwks(now, retention), &old).unwrap();

    // Once every token the retired key signed has expired, it leaves the set and the document.
    let later = now + time::Duration::days(8);
    assert_eq!(keys.prune(later, retention), vec![first.clone()]);
    assert!(verify_with_jwks(&keys.jwks(later, retention), &old).is_err());
    let jwt = JwtBackend::from_key_set(&keys).unwrap();
    assert!(matches!(
        jwt.verify(&old, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));
}

#[tokio::test]
async fn key_files_round_trip_and_stay_private() {
    let dir = std::env::temp_dir().join(auth_testkit::unique("jwt-keys"));
    let now = OffsetDateTime::now_utc();
    let mut keys = JwtKeySet::generate(Algorithm::ES256, now).unwrap();
    keys.rotate(now).unwrap();
    keys.save(&dir).unwrap();
    let loaded = JwtKeySet::load(&dir).unwrap();
    assert_eq!(loaded.keys().len(), 3);
    assert_eq!(
        loaded.current().unwrap().kid(),
        keys.current().unwrap().kid()
    );
    let t = token(&JwtBackend::from_key_set(&keys).unwrap()).await;
    JwtBackend::from_key_set(&loaded)
        .unwrap()
        .verify(&t, TokenKind::Access)
        .await
        .unwrap();
    #[cfg(unix)]
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", entry.file_name());
    }
    // Debug never shows key material.
    let debug = format!("{loaded:?}");
    assert!(!debug.contains("PRIVATE") && debug.contains("kid"));
    // Pruned keys' files go at the next save.
    let mut pruned = loaded.clone();
    pruned.prune(now + time::Duration::days(30), Duration::from_secs(86_400));
    pruned.save(&dir).unwrap();
    let pems = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pem"))
        .count();
    assert_eq!(pems, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn rsa_keys_are_imported() {
    let now = OffsetDateTime::now_utc();
    let pem = std::fs::read_to_string(format!(
        "{}/tests/keys/rs256.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut keys = JwtKeySet::empty(Algorithm::RS256).unwrap();
    assert!(JwtKeySet::generate(Algorithm::RS256, now).is_err());
    keys.add_pem("rsa-1", &pem, KeyState::Current, now).unwrap();
    // Rotation needs a next key: RSA keys are not generated here.
    assert!(keys.clone().rotate(now).is_err());
    let jwt = JwtBackend::from_key_set(&keys).unwrap();
    let t = token(&jwt).await;
    let claims = verify_with_jwks(&keys.jwks(now, Duration::from_secs(60)), &t).unwrap();
    assert_eq!(claims["sub"], "42");
}
