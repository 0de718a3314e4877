//! Every way a token can be wrong, and the typed error each gets (RFC 8725).

use std::time::Duration;

use auth_service::{Error, FixedClock, IssueRequest, TokenBackend, TokenKind, UserId};
use auth_tokens_jwt::{Algorithm, JwtBackend};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::conformance::{SECRET, key};

const NOW: i64 = 1_795_345_084;

fn b64(v: &serde_json::Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

fn claims(kind: &str, exp: i64) -> serde_json::Value {
    serde_json::json!({"sub": "42", "token_type": kind, "jti": "j1", "iat": NOW, "exp": exp})
}

/// Signs `header.payload` with HMAC-SHA256 under `secret`: how an attacker would.
fn hs256(header: &serde_json::Value, payload: &serde_json::Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    format!(
        "{input}.{}",
        B64.encode(ring::hmac::sign(&key, input.as_bytes()))
    )
}

async fn verify(
    backend: &JwtBackend,
    token: &str,
    kind: TokenKind,
) -> Result<auth_service::Claims, Error> {
    backend.verify(token, kind).await
}

fn backend() -> JwtBackend {
    JwtBackend::hmac(Algorithm::HS256, SECRET).with_clock(FixedClock::from_unix(NOW))
}

#[tokio::test]
async fn attack_cases_each_get_a_typed_error() {
    let b = backend();
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let good = hs256(&header, &claims("access", NOW + 60), SECRET.as_bytes());
    assert_eq!(
        verify(&b, &good, TokenKind::Access).await.unwrap().sub,
        "42",
        "the forge is faithful"
    );

    // alg: none, with and without a signature.
    let none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none"})),
        b64(&claims("access", NOW + 60))
    );
    assert!(
        matches!(
            verify(&b, &none, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "alg none"
    );
    let none_sig = format!("{none}{}", good.rsplit('.').next().unwrap());
    assert!(matches!(
        verify(&b, &none_sig, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));

    // Another HMAC algorithm than the pinned one.
    let hs512 = serde_json::json!({"alg": "HS512", "typ": "JWT"});
    let input = format!("{}.{}", b64(&hs512), b64(&claims("access", NOW + 60)));
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, SECRET.as_bytes());
    let other_alg = format!(
        "{input}.{}",
        B64.encode(ring::hmac::sign(&k, input.as_bytes()))
    );
    assert!(
        matches!(
            verify(&b, &other_alg, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "alg not pinned"
    );

    // Wrong kind, both ways.
    let refresh = hs256(&header, &claims("refresh", NOW + 60), SECRET.as_bytes());
    assert!(
        matches!(
            verify(&b, &refresh, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "refresh as access"
    );
    assert!(
        matches!(
            verify(&b, &good, TokenKind::Refresh).await,
            Err(Error::TokenInvalid)
        ),
        "access as refresh"
    );
    let unknown_kind = hs256(&header, &claims("id", NOW + 60), SECRET.as_bytes());
    assert!(matches!(
        verify(&b, &unknown_kind, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));

    // Time.
    let expired = hs256(&header, &claims("access", NOW - 1), SECRET.as_bytes());
    assert!(
        matches!(
            verify(&b, &expired, TokenKind::Access).await,
            Err(Error::TokenExpired)
        ),
        "expired"
    );
    let mut early = claims("access", NOW + 600);
    early["nbf"] = (NOW + 300).into();
    let early = hs256(&header, &early, SECRET.as_bytes());
    assert!(
        matches!(
            verify(&b, &early, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "not yet valid"
    );

    // Tampered payload, wrong key, missing claims, garbage.
    let mut parts: Vec<&str> = good.split('.').collect();
    let evil = b64(
        &serde_json::json!({"sub": "1", "token_type": "access", "jti": "j1", "iat": NOW, "exp": NOW + 60}),
    );
    parts[1] = &evil;
    assert!(
        matches!(
            verify(&b, &parts.join("."), TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "tampered"
    );
    let wrong_key = hs256(
        &header,
        &claims("access", NOW + 60),
        b"another-secret-0123456789abcdef0123456789",
    );
    assert!(
        matches!(
            verify(&b, &wrong_key, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "wrong key"
    );
    let no_jti = hs256(
        &header,
        &serde_json::json!({"sub": "42", "token_type": "access", "iat": NOW, "exp": NOW + 60}),
        SECRET.as_bytes(),
    );
    assert!(
        matches!(
            verify(&b, &no_jti, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "no jti"
    );
    let no_exp = hs256(
        &header,
        &serde_json::json!({"sub": "42", "token_type": "access", "jti": "j", "iat": NOW}),
        SECRET.as_bytes(),
    );
    assert!(
        matches!(
            verify(&b, &no_exp, TokenKind::Access).await,
            Err(Error::TokenInvalid)
        ),
        "no exp"
    );
    for garbage in ["", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
        assert!(
            matches!(
                verify(&b, garbage, TokenKind::Access).await,
                Err(Error::TokenInvalid)
            ),
            "{garbage:.20}"
        );
    }
}

#[tokio::test]
async fn algorithm_confusion_with_a_public_key_is_refused() {
    // The classic attack: take the RS256 public key and use it as an HS256 secret.
    let public = key("rs256.pub.pem");
    let b = JwtBackend::from_pem(Algorithm::RS256, &key("rs256.pem"), &public)
        .unwrap()
        .with_clock(FixedClock::from_unix(NOW));
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let forged = hs256(&header, &claims("access", NOW + 60), &public);
    assert!(matches!(
        verify(&b, &forged, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));
    // The genuine article still works, and a verifier with the public key alone accepts it.
    let pair = b
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    let verifier = JwtBackend::verifier(Algorithm::RS256, &public)
        .unwrap()
        .with_clock(FixedClock::from_unix(NOW));
    assert_eq!(
        verifier
            .verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .unwrap()
            .sub,
        "42"
    );
    assert!(matches!(
        verifier.issue(&IssueRequest::new(UserId::new("1"))).await,
        Err(Error::Unsupported(_))
    ));
}

#[tokio::test]
async fn issuer_audience_and_leeway() {
    let clock = FixedClock::from_unix(NOW);
    let strict = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .with_issuer("https://auth.example.com")
        .with_audience("api")
        .with_clock(clock.clone());
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let mut c = claims("access", NOW + 60);
    c["iss"] = "https://auth.example.com".into();
    c["aud"] = "api".into();
    assert!(
        verify(
            &strict,
            &hs256(&header, &c, SECRET.as_bytes()),
            TokenKind::Access
        )
        .await
        .is_ok()
    );
    let mut wrong_iss = c.clone();
    wrong_iss["iss"] = "https://evil.example.com".into();
    assert!(
        matches!(
            verify(
                &strict,
                &hs256(&header, &wrong_iss, SECRET.as_bytes()),
                TokenKind::Access
            )
            .await,
            Err(Error::TokenInvalid)
        ),
        "wrong issuer"
    );
    let mut wrong_aud = c.clone();
    wrong_aud["aud"] = "billing".into();
    assert!(
        matches!(
            verify(
                &strict,
                &hs256(&header, &wrong_aud, SECRET.as_bytes()),
                TokenKind::Access
            )
            .await,
            Err(Error::TokenInvalid)
        ),
        "wrong audience"
    );
    let mut list_aud = c.clone();
    list_aud["aud"] = serde_json::json!(["billing", "api"]);
    assert!(
        verify(
            &strict,
            &hs256(&header, &list_aud, SECRET.as_bytes()),
            TokenKind::Access
        )
        .await
        .is_ok(),
        "aud list containing ours"
    );
    let mut no_iss = c.clone();
    no_iss.as_object_mut().unwrap().remove("iss");
    assert!(
        matches!(
            verify(
                &strict,
                &hs256(&header, &no_iss, SECRET.as_bytes()),
                TokenKind::Access
            )
            .await,
            Err(Error::TokenInvalid)
        ),
        "missing issuer"
    );
    let mut no_aud = c.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert!(
        matches!(
            verify(
                &strict,
                &hs256(&header, &no_aud, SECRET.as_bytes()),
                TokenKind::Access
            )
            .await,
            Err(Error::TokenInvalid)
        ),
        "missing audience"
    );

    // Leeway on exp and nbf.
    let lenient = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .with_leeway(Duration::from_secs(30))
        .with_clock(clock.clone());
    let just_expired = hs256(&header, &claims("access", NOW - 10), SECRET.as_bytes());
    assert!(
        verify(&lenient, &just_expired, TokenKind::Access)
            .await
            .is_ok()
    );
    let long_expired = hs256(&header, &claims("access", NOW - 31), SECRET.as_bytes());
    assert!(matches!(
        verify(&lenient, &long_expired, TokenKind::Access).await,
        Err(Error::TokenExpired)
    ));
}

#[tokio::test]
async fn key_ids_and_rotation() {
    let clock = FixedClock::from_unix(NOW);
    let old = JwtBackend::hmac(Algorithm::HS256, "old-secret-0123456789abcdef0123456789ab")
        .with_key_id("2025")
        .with_clock(clock.clone());
    let issued_before = old
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(issued_before.access_token.expose_secret()).unwrap();
    assert_eq!(header.kid.as_deref(), Some("2025"));

    let rotated = JwtBackend::hmac(Algorithm::HS256, "new-secret-0123456789abcdef0123456789ab")
        .with_key_id("2026")
        .with_fallback_secret(Some("2025"), "old-secret-0123456789abcdef0123456789ab")
        .with_clock(clock.clone());
    assert!(
        rotated
            .verify(
                issued_before.access_token.expose_secret(),
                TokenKind::Access
            )
            .await
            .is_ok()
    );
    let issued_after = rotated
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    assert!(
        old.verify(issued_after.access_token.expose_secret(), TokenKind::Access)
            .await
            .is_err()
    );

    // A kid that names no key, or names the wrong key, is refused.
    let mut token = issued_before.access_token.expose_secret().to_owned();
    let bad_header = B64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"nope"}"#);
    token.replace_range(..token.find('.').unwrap(), &bad_header);
    assert!(matches!(
        rotated.verify(&token, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));

    // Asymmetric rotation: the old public key verifies old tokens.
    let old_ed = JwtBackend::from_pem(
        Algorithm::EdDSA,
        &key("other-ed25519.pem"),
        &key("other-ed25519.pub.pem"),
    )
    .unwrap()
    .with_key_id("ed-old")
    .with_clock(clock.clone());
    let before = old_ed
        .issue(&IssueRequest::new(UserId::new("7")))
        .await
        .unwrap();
    let new_ed = JwtBackend::from_pem(
        Algorithm::EdDSA,
        &key("ed25519.pem"),
        &key("ed25519.pub.pem"),
    )
    .unwrap()
    .with_key_id("ed-new")
    .with_fallback_public_pem(Some("ed-old"), &key("other-ed25519.pub.pem"))
    .unwrap()
    .with_clock(clock);
    assert!(
        new_ed
            .verify(before.access_token.expose_secret(), TokenKind::Access)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn mismatched_key_pairs_are_refused_at_construction() {
    assert!(
        JwtBackend::from_pem(
            Algorithm::EdDSA,
            &key("ed25519.pem"),
            &key("other-ed25519.pub.pem")
        )
        .is_err()
    );
    assert!(
        JwtBackend::from_pem(
            Algorithm::ES256,
            &key("ed25519.pem"),
            &key("ed25519.pub.pem")
        )
        .is_err()
    );
    assert!(JwtBackend::verifier(Algorithm::HS256, &key("rs256.pub.pem")).is_err());
    let misconfigured = JwtBackend::hmac(Algorithm::EdDSA, SECRET);
    assert!(matches!(
        misconfigured
            .issue(&IssueRequest::new(UserId::new("1")))
            .await,
        Err(Error::Configuration(_))
    ));
    let empty = JwtBackend::hmac(Algorithm::HS256, "");
    assert!(matches!(
        empty.issue(&IssueRequest::new(UserId::new("1"))).await,
        Err(Error::Configuration(_))
    ));
}

#[tokio::test]
async fn without_revocation_logout_says_so() {
    let b = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .insecure_without_revocation()
        .with_clock(FixedClock::from_unix(NOW));
    let pair = b
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    let err = b
        .revoke(pair.access_token.expose_secret())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)));
    assert!(err.to_string().contains("revocation is disabled"), "{err}");
    assert!(matches!(
        b.revoke_all(&UserId::new("42"), None).await,
        Err(Error::Unsupported(_))
    ));
    assert!(
        b.verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .is_ok()
    );
}

/// A token verified once is remembered by its exact text, but expiry, kind and revocation are
/// still checked on every use, and a backend with different keys does not share the memory.
#[tokio::test]
async fn verified_token_memory_never_skips_time_kind_or_revocation() {
    let clock = FixedClock::from_unix(NOW);
    let backend = JwtBackend::hmac(Algorithm::HS256, SECRET).with_clock(clock.clone());
    let pair = backend
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    let access = pair.access_token.expose_secret().to_owned();
    for _ in 0..3 {
        backend.verify(&access, TokenKind::Access).await.unwrap();
    }
    assert!(matches!(
        backend.verify(&access, TokenKind::Refresh).await,
        Err(Error::TokenInvalid)
    ));
    // A clone given another key set starts afresh: the remembered token must verify again,
    // and with only the other key it cannot.
    let other = JwtBackend::hmac(
        Algorithm::HS256,
        "another-secret-0123456789abcdef0123456789",
    )
    .with_clock(clock.clone());
    assert!(other.verify(&access, TokenKind::Access).await.is_err());
    backend.revoke(&access).await.unwrap();
    assert!(matches!(
        backend.verify(&access, TokenKind::Access).await,
        Err(Error::TokenRevoked)
    ));
    let second = backend
        .issue(&IssueRequest::new(UserId::new("42")))
        .await
        .unwrap();
    let second = second.access_token.expose_secret().to_owned();
    backend.verify(&second, TokenKind::Access).await.unwrap();
    clock.advance(Duration::from_secs(3_600));
    assert!(matches!(
        backend.verify(&second, TokenKind::Access).await,
        Err(Error::TokenExpired)
    ));
    // A one-byte change is a different text: verified from scratch, and refused.
    let mut tampered = second.clone();
    tampered.pop();
    tampered.push(if second.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        backend.verify(&tampered, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));
}

/// Finding (issue 30): two instances, one with its clock 10 minutes ahead. A token it issued
/// (`iat` = now + 600 s) was accepted by both and survived "log out everywhere" made on the
/// other: per-user cut-offs compare issue instants across machines. Now logout-all also revokes
/// every tracked session by family (no clock outruns that), and a token issued further in the
/// future than the tolerance is refused by an instance with a correct clock.
#[tokio::test]
async fn a_fast_clock_does_not_outlive_logout_everywhere() {
    use auth_service::{AllowAll, MemoryRevocationStore, RotateRequest};
    let store = MemoryRevocationStore::new().with_clock(FixedClock::from_unix(NOW));
    let fast = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .with_clock(FixedClock::from_unix(NOW + 600))
        .with_revocation_store(store.clone());
    let slow = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .with_clock(FixedClock::from_unix(NOW))
        .with_revocation_store(store.clone());
    let user = UserId::new("42");
    let pair = fast.issue(&IssueRequest::new(user.clone())).await.unwrap();
    let access = pair.access_token.expose_secret().to_owned();
    let refresh = pair.refresh_token.expose_secret().to_owned();
    // The correct clock refuses a token from ten minutes ahead outright.
    assert!(matches!(
        slow.verify(&access, TokenKind::Access).await,
        Err(Error::TokenInvalid)
    ));
    // The fast instance accepts its own token, until logout-all on the correct one.
    assert!(fast.verify(&access, TokenKind::Access).await.is_ok());
    assert_eq!(slow.revoke_all(&user, None).await.unwrap(), 1);
    assert!(matches!(
        fast.verify(&access, TokenKind::Access).await,
        Err(Error::TokenRevoked)
    ));
    let rotated = fast
        .rotate(&refresh, &RotateRequest::new(), &AllowAll)
        .await;
    assert!(
        matches!(rotated, Err(Error::TokenRevoked)),
        "the refresh token outlived logout-all: {:?}",
        rotated.map(|_| ())
    );
    // A token within the tolerance is accepted by both.
    let near = JwtBackend::hmac(Algorithm::HS256, SECRET)
        .with_clock(FixedClock::from_unix(
            NOW + auth_tokens_jwt::ISSUED_AHEAD_TOLERANCE,
        ))
        .with_revocation_store(store.clone());
    let pair = near
        .issue(&IssueRequest::new(UserId::new("7")))
        .await
        .unwrap();
    assert!(
        slow.verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .is_ok()
    );
}
