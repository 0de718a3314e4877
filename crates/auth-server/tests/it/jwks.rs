//! Asymmetric tokens and the JWKS: auth-server signs with EdDSA, publishes its keys at
//! `/.well-known/jwks.json`, and another implementation (PyJWT, fetching that document)
//! verifies its tokens without any secret; `auth-server jwt rotate` reaches the running server,
//! which then signs with the key it published ahead of time while earlier tokens stay valid.
//!
//! Finding (issue 29): with `AUTH_JWT_ALGORITHM=EdDSA` each instance started without
//! `AUTH_JWT_KEYS_DIR` made its own keys, so three instances on one PostgreSQL refused each
//! other's tokens. Now the keys live in the database, sealed, and every instance loads them.

use crate::common;

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
fn production_keeps_asymmetric_keys_in_the_database_without_a_folder() {
    let lookup = |extra: Option<(&'static str, &'static str)>| {
        move |name: &str| match name {
            "AUTH_ENV" => Some("production".into()),
            "AUTH_SIGNING_SECRET" => Some(SECRET.into()),
            "AUTH_MFA_KEY" => Some("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY".into()),
            "AUTH_SMTP_URL" => Some("smtp://localhost:25".into()),
            "AUTH_PUBLIC_URL" => Some("https://auth.example.com".into()),
            "AUTH_JWT_ALGORITHM" => Some("EdDSA".into()),
            n => extra.filter(|(k, _)| *k == n).map(|(_, v)| v.to_owned()),
        }
    };
    let settings = auth_server::Settings::from_lookup(lookup(None)).unwrap();
    assert!(
        settings.jwt_keys_dir.is_none(),
        "the keys live in the database"
    );
    let err = auth_server::Settings::from_lookup(lookup(Some(("AUTH_JWT_KEYS_SECRET", "short"))))
        .unwrap_err();
    assert!(err.to_string().contains("AUTH_JWT_KEYS_SECRET"), "{err}");
    let err = auth_server::Settings::from_lookup(|name| match name {
        "AUTH_SIGNING_SECRET" => Some(SECRET.into()),
        "AUTH_JWT_ALGORITHM" => Some("none".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("AUTH_JWT_ALGORITHM"), "{err}");
}

async fn login(base: &str, email: &str) -> String {
    let r: Value = reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("a token").to_owned()
}

async fn me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Three instances started together on an empty database, EdDSA and no key folder: they agree
/// on one key set (stored sealed: no private key readable in the table), accept each other's
/// tokens and publish the same JWKS; `auth-server jwt rotate` from another process reaches
/// all three through the change feed, earlier tokens stay valid, and a server whose
/// `AUTH_JWT_KEYS_SECRET` cannot open the stored keys refuses to start, naming it.
async fn keys_in_the_database(url: &str, what: &str) {
    use sea_orm::ConnectionTrait;

    let vars = [("DATABASE_URL", url), ("AUTH_JWT_ALGORITHM", "EdDSA")];
    let (a, b, c) = tokio::join!(
        common::start(&vars),
        common::start(&vars),
        common::start(&vars)
    );
    let bases = [a.0, b.0, c.0];
    let client = reqwest::Client::new();
    let reg = client
        .post(format!("{}/auth/register", bases[0]))
        .json(&json!({"email": "shared@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let mut tokens = Vec::new();
    for base in &bases {
        tokens.push(login(base, "shared@example.com").await);
    }
    let first_kid = kid(&tokens[0]);
    let (_, published) = jwks(&bases[0]).await;
    for (i, base) in bases.iter().enumerate() {
        assert_eq!(
            kid(&tokens[i]),
            first_kid,
            "{what}: one signing key for all"
        );
        assert_eq!(jwks(base).await.1, published, "{what}: one JWKS for all");
        for token in &tokens {
            assert_eq!(
                me(base, token).await,
                200,
                "{what}: instance {i} accepts every token"
            );
        }
    }

    let db = sea_orm::Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT sealed FROM auth_signing_keys",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{what}: one stored set");
    let sealed: String = rows[0].try_get("", "sealed").unwrap();
    assert!(
        sealed.starts_with("v1.") && !sealed.contains("PRIVATE"),
        "{what}: sealed"
    );

    // A rotation from another process.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["jwt", "rotate"])
        .env("AUTH_JWT_ALGORITHM", "EdDSA")
        .env("AUTH_SIGNING_SECRET", SECRET)
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let rotated = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let next = published["keys"][1]["kid"].as_str().unwrap().to_owned();
    assert!(
        listing.contains(&format!("{next}  Current")),
        "{what}: {listing}"
    );
    let mut taken = Vec::new();
    for base in &bases {
        loop {
            let token = login(base, "shared@example.com").await;
            if kid(&token) == next {
                break;
            }
            assert!(
                rotated.elapsed() < Duration::from_secs(10),
                "{what}: the rotation did not reach {base} through the change feed (the 30 s check would)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        taken.push(rotated.elapsed());
    }
    println!("{what}: the rotation signed on the three instances after {taken:.2?}");
    for base in &bases {
        for token in &tokens {
            assert_eq!(
                me(base, token).await,
                200,
                "{what}: the retired key still verifies"
            );
        }
    }

    // Another secret cannot open the stored keys: the server does not start.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env("AUTH_JWT_ALGORITHM", "EdDSA")
        .env("AUTH_SIGNING_SECRET", SECRET)
        .env(
            "AUTH_JWT_KEYS_SECRET",
            "another-secret-of-at-least-32-bytes",
        )
        .env("AUTH_SERVER_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what}: started with the wrong secret"
    );
    assert!(log.contains("AUTH_JWT_KEYS_SECRET"), "{what}: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_in_the_database_sqlite_file() {
    let (dir, url) = common::sqlite_file("keys-db");
    Box::pin(keys_in_the_database(&url, "sqlite")).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_in_the_database_postgres() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await {
        Box::pin(keys_in_the_database(&url, "postgres")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_in_the_database_mysql() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::MySql).await {
        Box::pin(keys_in_the_database(&url, "mysql")).await;
    }
}
