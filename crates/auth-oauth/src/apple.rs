//! Sign in with Apple's client secret: a JWT (ES256) the application signs with its team key,
//! valid for minutes, made for each code exchange.

use std::fmt;

use auth_core::{ConfigError, Error, Result};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// How long a client secret is valid (Apple allows up to six months; minutes suffice).
const LIFETIME_SECS: i64 = 300;

/// The team's key for client secrets. `Debug` shows the ids, never the key.
#[derive(Clone)]
pub(crate) struct AppleKey {
    team_id: String,
    key_id: String,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleKey")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn bad_key(why: &str) -> Error {
    Error::Configuration(ConfigError::invalid(
        "AUTH_OAUTH_APPLE_PRIVATE_KEY",
        format!("{why}: give the .p8 file Apple issued (a PKCS#8 P-256 private key in PEM)"),
    ))
}

impl AppleKey {
    pub(crate) fn new(team_id: &str, key_id: &str, pem: &str) -> Result<Self> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let pkcs8 = STANDARD.decode(body).map_err(|_| bad_key("not PEM"))?;
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| bad_key("not a P-256 private key"))?;
        Ok(Self {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            pkcs8,
        })
    }

    /// The client secret for `client_id` at `now` (Unix seconds).
    pub(crate) fn client_secret(&self, client_id: &str, now: i64) -> Result<String> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, &rng)
            .map_err(|_| bad_key("not a P-256 private key"))?;
        let header = serde_json::json!({"alg": "ES256", "kid": self.key_id, "typ": "JWT"});
        let claims = serde_json::json!({
            "iss": self.team_id,
            "iat": now,
            "exp": now + LIFETIME_SECS,
            "aud": "https://appleid.apple.com",
            "sub": client_id,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(&rng, input.as_bytes()).map_err(|_| {
            Error::backend(
                "signing Apple's client secret",
                std::io::Error::other("ECDSA signing failed"),
            )
        })?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    use super::*;

    #[test]
    fn the_client_secret_is_an_es256_jwt_apple_can_verify() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let key = AppleKey::new("TEAM123456", "KEY1234567", &pem).unwrap();
        assert!(!format!("{key:?}").contains(&STANDARD.encode(pkcs8.as_ref())[..20]));
        let jwt = key.client_secret("com.example.web", 1_800_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some("ES256"), Some("KEY1234567"))
        );
        assert_eq!(claims["iss"], "TEAM123456");
        assert_eq!(claims["sub"], "com.example.web");
        assert_eq!(claims["aud"], "https://appleid.apple.com");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
        // The signature verifies with the key's public half, as Apple verifies it.
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(
            public
                .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
                .is_ok()
        );
        assert!(public.verify(b"tampered", &signature).is_err());
    }

    #[test]
    fn keys_that_are_not_p256_pkcs8_are_refused() {
        assert!(
            AppleKey::new(
                "T",
                "K",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .is_err()
        );
        assert!(AppleKey::new("T", "K", "not pem at all!").is_err());
    }
}
