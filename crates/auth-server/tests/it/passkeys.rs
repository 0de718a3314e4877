//! Passkeys over real HTTP, answered by webauthn-authenticator-rs's software authenticator
//! (real keys and signatures): register behind a fresh login, sign in by address and
//! discoverably (no address), the second factor of a password login, rename and delete; a
//! replayed answer, 30 concurrent submissions of one answer, and refusals that look like every
//! other failed credential; 30 simultaneous deletions of a passwordless account's passkeys
//! that always leave one. On SQLite, and on PostgreSQL and MariaDB when their URLs are set.

use crate::common;

use auth::mfa::{TotpCode, TotpSettings};
use auth_testkit::db::{Target, fresh_url};
use common::{PASSWORD, Server, now};
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "https://app.example.com";

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn server(target: Target) -> Option<Server> {
    let url = match target {
        Target::SqliteMemory => "sqlite::memory:".to_owned(),
        other => fresh_url(other).await?,
    };
    Some(Server::start(&[("DATABASE_URL", &url)]).await)
}

fn creation(body: &Value) -> CreationChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

fn request(body: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": body["publicKey"] })).unwrap()
}

impl Server {
    fn bearer_post(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.post(path).bearer_auth(token)
    }
}

/// Registers a passkey held by `key` for the account of `token`; the passkey's JSON and the
/// WebAuthn user handle the authenticator was given.
async fn enrol(s: &Server, token: &str, key: &mut SoftPasskey, name: &str) -> (Value, String) {
    let r = s
        .send(s.bearer_post("/auth/passkeys/register/options", token))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["publicKey"]["rp"]["id"], "app.example.com");
    let handle = r.body["publicKey"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = key.do_registration(origin(), creation(&r.body)).unwrap();
    let mut body = serde_json::to_value(&answer).unwrap();
    body["name"] = Value::from(name);
    let r = s
        .send(s.bearer_post("/auth/passkeys/register", token).json(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (r.body, handle)
}

/// Options for `body` and `key`'s answer: `(challenge_id, credential)`.
async fn answer(s: &Server, body: Value, key: &mut SoftPasskey) -> (String, Value) {
    let r = s
        .send(s.post("/auth/passkeys/login/options").json(&body))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = key.do_authentication(origin(), request(&r.body)).unwrap();
    (
        r.body["challenge_id"].as_str().unwrap().to_owned(),
        serde_json::to_value(answer).unwrap(),
    )
}

async fn flow(target: Target) {
    let Some(s) = server(target).await else {
        return;
    };
    let token = s.register_verified("ada@example.com").await;

    // Registration needs a signed-in account.
    let r = s.send(s.post("/auth/passkeys/register/options")).await;
    assert_eq!(r.status, 401);
    let mut key = SoftPasskey::new(true);
    let (passkey, handle) = enrol(&s, &token, &mut key, "Laptop").await;
    assert_eq!(passkey["name"], "Laptop");
    let id = passkey["id"].as_str().unwrap().to_owned();
    let r = s.send(s.get("/auth/passkeys").bearer_auth(&token)).await;
    assert_eq!(
        r.body["passkeys"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    assert_eq!(r.body["passkeys"][0]["last_used_at"], Value::Null);

    // Sign in by address, without a password.
    let (challenge, credential) = answer(&s, json!({"email": "ada@example.com"}), &mut key).await;
    let login = json!({"challenge_id": challenge, "credential": credential});
    let r = s.send(s.post("/auth/passkeys/login").json(&login)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let me = s.send(s.get("/auth/me").bearer_auth(&access)).await;
    assert_eq!(me.body["email"], "ada@example.com");

    // The same answer again: the ceremony is spent; the refusal is a wrong password's.
    let replay = s.send(s.post("/auth/passkeys/login").json(&login)).await;
    let wrong = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "ada@example.com", "password": "wrong-password-1"})),
        )
        .await;
    assert_eq!((replay.status, &replay.body), (wrong.status, &wrong.body));
    assert_eq!(replay.status, 401);

    // Discoverable (conditional UI): no address; the authenticator names the account by the
    // user handle it was given at registration.
    let r = s
        .send(s.post("/auth/passkeys/login/options").json(&json!({})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["mediation"], "conditional");
    assert!(
        r.body["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    let mine = s
        .send(
            s.post("/auth/passkeys/login/options")
                .json(&json!({"email": "ada@example.com"})),
        )
        .await;
    let mut shown = request(&r.body).public_key;
    shown.allow_credentials = request(&mine.body).public_key.allow_credentials;
    let mut credential = serde_json::to_value(
        AuthenticatorBackend::perform_auth(&mut key, origin(), shown, 60_000).unwrap(),
    )
    .unwrap();
    credential["response"]["userHandle"] = Value::from(handle.clone());
    let r = s
        .send(
            s.post("/auth/passkeys/login")
                .json(&json!({"challenge_id": r.body["challenge_id"], "credential": credential})),
        )
        .await;
    assert_eq!(r.status, 200, "discoverable sign-in: {}", r.body);

    // 30 concurrent submissions of one valid answer: one session.
    let (challenge, credential) = answer(&s, json!({"email": "ada@example.com"}), &mut key).await;
    let login = json!({"challenge_id": challenge, "credential": credential});
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let req = s.post("/auth/passkeys/login").json(&login);
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    // The others are refused alike (401), within the address's budget of failures.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );

    // Rename; delete (the password remains).
    let r = s
        .send(
            reqwest::Client::new()
                .patch(format!("{}/auth/passkeys/{id}", s.base))
                .bearer_auth(&access)
                .json(&json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (200, Some("Work laptop"))
    );
    let r = s.send(s.get("/auth/passkeys").bearer_auth(&access)).await;
    assert!(
        r.body["passkeys"][0]["last_used_at"].is_string(),
        "{}",
        r.body
    );
    let r = s
        .send(s.delete("/auth/passkeys/nope").bearer_auth(&access))
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .send(
            s.delete(&format!("/auth/passkeys/{id}"))
                .bearer_auth(&access),
        )
        .await;
    assert_eq!(r.status, 204);
    let (challenge, credential) = {
        let r = s
            .send(
                s.post("/auth/passkeys/login/options")
                    .json(&json!({"email": "ada@example.com"})),
            )
            .await;
        let mut shown = request(&r.body).public_key;
        shown.allow_credentials = request(&mine.body).public_key.allow_credentials;
        let c = AuthenticatorBackend::perform_auth(&mut key, origin(), shown, 60_000).unwrap();
        (
            r.body["challenge_id"].clone(),
            serde_json::to_value(c).unwrap(),
        )
    };
    let r = s
        .send(
            s.post("/auth/passkeys/login")
                .json(&json!({"challenge_id": challenge, "credential": credential})),
        )
        .await;
    assert_eq!(r.status, 401, "a deleted passkey signs nobody in");

    // Another account's address gets options shaped like Ada's; garbage bodies are 422.
    let r = s
        .send(
            s.post("/auth/passkeys/login/options")
                .json(&json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["publicKey"]["allowCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for bad in [
        json!({"challenge_id": 5}),
        json!({"credential": {}}),
        json!("x"),
    ] {
        let r = s.send(s.post("/auth/passkeys/login").json(&bad)).await;
        assert_eq!(r.status, 422, "{bad}");
    }
}

/// A password login of an account with TOTP answers its challenge with a passkey.
async fn second_factor(target: Target) {
    let Some(s) = server(target).await else {
        return;
    };
    let token = s.register("bo@example.com").await;
    let r = s
        .send(s.bearer_post("/auth/email/verify/request", &token))
        .await;
    assert_eq!(r.status, 202);
    let link = s.outbox.token("bo@example.com", "/verify-email").await;
    let r = s
        .send(
            s.post("/auth/email/verify/confirm")
                .bearer_auth(&token)
                .json(&json!({"token": link})),
        )
        .await;
    assert_eq!(r.status, 200);
    let setup = s.send(s.bearer_post("/auth/mfa/totp/setup", &token)).await;
    let app = TotpCode::from_base32(
        setup.body["secret"].as_str().unwrap(),
        TotpSettings::default(),
    )
    .unwrap();
    let r = s
        .send(
            s.bearer_post("/auth/mfa/totp/confirm", &token)
                .json(&json!({"code": app.generate(now())})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut key = SoftPasskey::new(true);
    enrol(&s, &token, &mut key, "Key").await;

    let r = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "bo@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.body["mfa_required"], true);
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let (challenge, credential) = answer(&s, json!({"mfa_token": mfa_token}), &mut key).await;
    let r = s
        .send(s.post("/auth/passkeys/login").json(
            &json!({"challenge_id": challenge, "credential": credential, "mfa_token": mfa_token}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["access_token"].is_string());
    // The challenge is spent: a code no longer answers it.
    let r = s
        .send(
            s.post("/auth/mfa/verify")
                .json(&json!({"mfa_token": mfa_token, "code": app.generate(now() + 30)})),
        )
        .await;
    assert_eq!(r.status, 401);
    // An unknown challenge gives no options.
    let r = s
        .send(
            s.post("/auth/passkeys/login/options")
                .json(&json!({"mfa_token": "forged"})),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// A passwordless account's 30 passkeys, deleted by 30 simultaneous requests: each deletion
/// that succeeds leaves another passkey, the others are refused as the last way in (422), and
/// the account keeps at least one.
async fn concurrent_deletions(target: Target) {
    let Some(url) = fresh_url(target).await else {
        return;
    };
    let s = Server::start(&[("DATABASE_URL", &url)]).await;
    let token = s.register_verified("eve@example.com").await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let mut key = SoftPasskey::new(true);
        let (passkey, _) = enrol(&s, &token, &mut key, &format!("Key {n}")).await;
        ids.push(passkey["id"].as_str().unwrap().to_owned());
    }
    // No password any more (as an account made by a provider sign-in has none).
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = sea_orm::Database::connect(&url).await.unwrap();
        db.execute_raw(Statement::from_string(
            db.get_database_backend(),
            "UPDATE auth_users SET password_hash = '!no-password' WHERE email = 'eve@example.com'",
        ))
        .await
        .unwrap();
    }
    let replies = futures_util::future::join_all(ids.iter().map(|id| {
        s.send(
            s.delete(&format!("/auth/passkeys/{id}"))
                .bearer_auth(&token),
        )
    }))
    .await;
    let deleted = replies.iter().filter(|r| r.status == 204).count();
    for r in replies.iter().filter(|r| r.status != 204) {
        assert_eq!(
            (r.status, r.body["errors"][0]["code"].as_str()),
            (422, Some("last_sign_in_method")),
            "{}",
            r.body
        );
    }
    let r = s.send(s.get("/auth/passkeys").bearer_auth(&token)).await;
    let left = r.body["passkeys"].as_array().unwrap().len();
    assert!(left >= 1, "no passkey left: {deleted} deleted");
    assert_eq!(deleted + left, 30);
    println!(
        "{target:?}: 30 concurrent deletions of a passwordless account's 30 passkeys -> {deleted} x 204, {} x 422, {left} left",
        30 - deleted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    flow(Target::SqliteMemory).await;
    second_factor(Target::SqliteMemory).await;
    concurrent_deletions(Target::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    flow(Target::Postgres).await;
    second_factor(Target::Postgres).await;
    concurrent_deletions(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    flow(Target::MySql).await;
    second_factor(Target::MySql).await;
    concurrent_deletions(Target::MySql).await;
}

/// Passkeys are on by default where browsers allow them; a server on an IP address still
/// starts (passkeys off); asking for them there, or a mismatched RP id, is an error that says
/// what to set.
#[test]
fn relying_party_settings() {
    let settings = |vars: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> =
            [("AUTH_SIGNING_SECRET", common::SECRET)]
                .iter()
                .chain(vars)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        auth_server::Settings::from_lookup(|n| map.get(n).cloned())
    };
    let rp = |vars: &[(&str, &str)]| {
        settings(vars)
            .unwrap()
            .passkeys
            .map(|c| (c.rp_id().to_owned(), c.origins()[0].to_string()))
    };
    assert_eq!(
        rp(&[]),
        Some(("localhost".into(), "http://localhost:8080/".into()))
    );
    assert_eq!(
        rp(&[("AUTH_SERVER_ADDR", "0.0.0.0:8080")]),
        Some(("localhost".into(), "http://localhost:8080/".into()))
    );
    assert_eq!(
        rp(&[("AUTH_PUBLIC_URL", "https://auth.example.com")]),
        Some((
            "auth.example.com".into(),
            "https://auth.example.com/".into()
        ))
    );
    assert_eq!(
        rp(&[
            ("AUTH_PUBLIC_URL", "https://auth.example.com"),
            ("AUTH_WEBAUTHN_RP_ID", "example.com")
        ]),
        Some(("example.com".into(), "https://auth.example.com/".into()))
    );
    assert_eq!(
        rp(&[("AUTH_PUBLIC_URL", "http://10.0.0.5:8080")]),
        None,
        "off, and the server starts"
    );
    assert_eq!(rp(&[("AUTH_PASSKEYS", "false")]), None);
    let error = settings(&[
        ("AUTH_PUBLIC_URL", "http://10.0.0.5:8080"),
        ("AUTH_PASSKEYS", "true"),
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("AUTH_WEBAUTHN_RP_ID"), "{error}");
    let error = settings(&[
        ("AUTH_PUBLIC_URL", "https://auth.example.com"),
        ("AUTH_WEBAUTHN_RP_ID", "other.org"),
    ])
    .unwrap_err()
    .to_string();
    assert!(error.contains("AUTH_WEBAUTHN_RP_ID"), "{error}");
}
