//! Asymmetric tokens and the JWKS: auth-server signs with EdDSA, publishes its keys at
//! `/.well-known/jwks.json`, and another implementation (PyJWT, fetching that document)
//! verifies its tokens without any secret; `auth-server jwt rotate` reaches the running server,
//! which then signs with the key it published ahead of time while earlier tokens stay valid.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{PASSWORD, SECRET};

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .unwrap_or_default()
}

async fn jwks(base: &str) -> (reqwest::header::HeaderMap, Value) {
    let r = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let headers = r.headers().clone();
    (
        headers,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

/// Verifies `token` as another service would: the key named by its `kid`, from our JWKS only.
fn verify_like_a_stranger(jwks: &Value, token: &str) -> Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set.find(&kid(token)).expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

/// PyJWT with `cryptography`, fetching the JWKS itself; `None` (with the reason printed) when
/// Python or PyJWT is missing here.
fn pyjwt(jwks_url: &str, token: &str) -> Option<Value> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
client = jwt.PyJWKClient(sys.argv[1])
key = client.get_signing_key_from_jwt(sys.argv[2])
claims = jwt.decode(sys.argv[2], key.key, algorithms=["EdDSA"], options={"verify_aud": False})
print(json.dumps({"claims": claims, "pyjwt": jwt.__version__}))
"#;
    let probe = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        _ => {
            auth_testkit::skip(
                "pyjwt",
                "python3 with PyJWT and cryptography is not installed (pip install 'pyjwt[crypto]'; .ci/run installs it)",
            );
            return None;
        }
    }
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, jwks_url, token])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyJWT refused our token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_verify_with_the_published_keys_and_rotate() {
    let dir = std::env::temp_dir().join(auth_testkit::unique("jwks"));
    let keys_dir = dir.to_string_lossy().into_owned();
    let (base, _) = common::start(&[
        ("AUTH_JWT_ALGORITHM", "EdDSA"),
        ("AUTH_JWT_KEYS_DIR", keys_dir.as_str()),
    ])
    .await;
    let client = reqwest::Client::new();
    let reg: Value = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = reg["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&first).unwrap().alg,
        jsonwebtoken::Algorithm::EdDSA
    );

    let (headers, document) = jwks(&base).await;
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let published: Vec<&str> = document["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(published.len(), 2, "current and next: {document}");
    assert_eq!(published[0], kid(&first), "the signing key first");
    let next = published[1].to_owned();
    for k in document["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none(), "no private member: {k}");
    }
    let claims = verify_like_a_stranger(&document, &first);
    assert_eq!(claims["sub"], reg["user_id"]);
    if let Some(py) = pyjwt(&format!("{base}/.well-known/jwks.json"), &first) {
        assert_eq!(py["claims"]["sub"], reg["user_id"], "{py}");
        println!(
            "PyJWT {} verified an EdDSA access token through /.well-known/jwks.json",
            py["pyjwt"]
        );
    }

    // `auth-server jwt rotate`, from another process, on the same folder.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["jwt", "rotate"])
        .env("AUTH_JWT_ALGORITHM", "EdDSA")
        .env("AUTH_JWT_KEYS_DIR", &keys_dir)
        .env("AUTH_SIGNING_SECRET", SECRET)
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listing.contains(&format!("{next}  Current")), "{listing}");

    // The running server picks it up: new tokens carry the key published ahead of time.
    let start = Instant::now();
    let second = loop {
        let login: Value = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"email": "kim@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        if kid(&token) == next {
            break token;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the rotation was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, document) = jwks(&base).await;
    assert_eq!(
        document["keys"].as_array().unwrap().len(),
        3,
        "current, next, retired: {document}"
    );
    verify_like_a_stranger(&document, &first);
    verify_like_a_stranger(&document, &second);
    for token in [&first, &second] {
        let r = client
            .get(format!("{base}/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "tokens of the retired and the current key both work"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn production_needs_a_keys_folder_for_asymmetric_tokens() {
    let err = auth_server::Settings::from_lookup(|name| match name {
        "AUTH_ENV" => Some("production".into()),
        "AUTH_SIGNING_SECRET" => Some(SECRET.into()),
        "AUTH_MFA_KEY" => Some("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY".into()),
        "AUTH_SMTP_URL" => Some("smtp://localhost:25".into()),
        "AUTH_PUBLIC_URL" => Some("https://auth.example.com".into()),
        "AUTH_JWT_ALGORITHM" => Some("EdDSA".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_JWT_KEYS_DIR"), "{err}");
    let err = auth_server::Settings::from_lookup(|name| match name {
        "AUTH_SIGNING_SECRET" => Some(SECRET.into()),
        "AUTH_JWT_ALGORITHM" => Some("none".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_JWT_ALGORITHM"), "{err}");
}
