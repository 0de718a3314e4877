//! Tokens issued by tortoise-auth's JWTBackend and by PyJWT verify here.

use auth_service::{FixedClock, TokenBackend, TokenKind};
use auth_tokens_jwt::{Algorithm, JwtBackend};
use serde::Deserialize;

use crate::conformance::{SECRET, key};

#[derive(Deserialize)]
struct Vector {
    source: String,
    alg: String,
    kind: String,
    token: String,
    now: i64,
    sub: String,
    issuer: Option<String>,
    audience: Option<String>,
    extra: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

fn backend(v: &Vector) -> JwtBackend {
    let clock = FixedClock::from_unix(v.now);
    let mut b = match v.alg.as_str() {
        "HS256" => JwtBackend::hmac(Algorithm::HS256, SECRET),
        "HS384" => JwtBackend::hmac(Algorithm::HS384, SECRET),
        "HS512" => JwtBackend::hmac(Algorithm::HS512, SECRET),
        "EdDSA" => JwtBackend::verifier(Algorithm::EdDSA, &key("ed25519.pub.pem"))
            .unwrap()
            .with_key_id("k1"),
        "ES256" => JwtBackend::verifier(Algorithm::ES256, &key("es256.pub.pem"))
            .unwrap()
            .with_key_id("k1"),
        "RS256" => JwtBackend::verifier(Algorithm::RS256, &key("rs256.pub.pem"))
            .unwrap()
            .with_key_id("k1"),
        other => panic!("{other}"),
    };
    if let Some(iss) = &v.issuer {
        b = b.with_issuer(iss);
    }
    if let Some(aud) = &v.audience {
        b = b.with_audience(aud);
    }
    b.with_clock(clock)
}

#[tokio::test]
async fn tortoise_auth_and_pyjwt_tokens_verify() {
    let file: File = serde_json::from_str(include_str!("../vectors/vectors.json")).unwrap();
    assert_eq!(file.vectors.len(), 12);
    for v in &file.vectors {
        let kind = if v.kind == "access" {
            TokenKind::Access
        } else {
            TokenKind::Refresh
        };
        let b = backend(v);
        let claims = b
            .verify(&v.token, kind)
            .await
            .unwrap_or_else(|e| panic!("{} {} {}: {e}", v.source, v.alg, v.kind));
        assert_eq!(claims.sub, v.sub);
        assert_eq!(claims.kind, kind);
        assert_eq!(claims.extra, v.extra, "{} {}", v.source, v.alg);
        let other = if kind == TokenKind::Access {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        };
        assert!(b.verify(&v.token, other).await.is_err(), "kinds never mix");
        // A tortoise-auth refresh token can be rotated here (no family claim: its jti stands in).
        if v.source == "tortoise-auth" && kind == TokenKind::Refresh {
            let outcome = b
                .rotate(
                    &v.token,
                    &auth_service::RotateRequest::new(),
                    &auth_service::AllowAll,
                )
                .await
                .unwrap();
            assert!(matches!(
                outcome,
                auth_service::RotateOutcome::Rotated { .. }
            ));
            // Outside any reuse window (off here): single use.
            let again = b
                .rotate(
                    &v.token,
                    &auth_service::RotateRequest::new()
                        .with_reuse_window(std::time::Duration::ZERO),
                    &auth_service::AllowAll,
                )
                .await
                .unwrap();
            assert!(
                matches!(again, auth_service::RotateOutcome::Reused { .. }),
                "single use"
            );
        }
    }
}
