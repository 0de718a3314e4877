//! The attack suite: every attack found against `auth-server`, tried as an attacker would,
//! over real HTTP against the server on an SQLite file, PostgreSQL and MariaDB (the last two
//! when `AUTH_TEST_POSTGRES_URL` / `AUTH_TEST_MYSQL_URL` are set, each test in a database of
//! its own), each asserting the defence. Concurrency attacks send 30 requests at once.
//! docs/security.md maps each threat to its test here.

mod common;

use std::collections::HashMap;

use auth::mfa::{TotpCode, TotpSettings};
use auth_testkit::db::Target;
use common::{Outbox, PASSWORD, now};
use futures_util::future::join_all;
use serde_json::{Value, json};

/// A server under attack, behind a trusted proxy at 127.0.0.1 so that each request can say
/// which client it comes from (`X-Forwarded-For`).
struct Server {
    base: String,
    outbox: Outbox,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

async fn server(target: Target, vars: &[(&str, &str)]) -> Option<Server> {
    let url = auth_testkit::db::fresh_url(target).await?;
    let mut all = vec![
        ("DATABASE_URL", url.as_str()),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    all.extend_from_slice(vars);
    let (base, outbox) = common::start(&all).await;
    Some(Server {
        base,
        outbox,
        http: reqwest::Client::new(),
    })
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        client: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-forwarded-for", client);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("the server answers");
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = r.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, client: &str, bearer: Option<&str>, body: Value) -> Answer {
        self.call(reqwest::Method::POST, path, client, bearer, Some(body))
            .await
    }

    async fn login(&self, email: &str, password: &str, client: &str) -> Answer {
        self.post(
            "/auth/login",
            client,
            None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    async fn register(&self, email: &str, client: &str) -> String {
        let a = self
            .post(
                "/auth/register",
                client,
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.status, 201, "register {email}: {}", a.body);
        a.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers, proves the address by the mailed link, turns TOTP on; the access token and
    /// the authenticator.
    async fn enrolled(&self, email: &str, client: &str) -> (String, TotpCode) {
        let access = self.register(email, client).await;
        let a = self
            .post(
                "/auth/email/verify/request",
                client,
                Some(&access),
                json!({}),
            )
            .await;
        assert_eq!(a.status, 202);
        let token = self.outbox.token(email, "/verify-email").await;
        let a = self
            .post(
                "/auth/email/verify/confirm",
                client,
                None,
                json!({"token": token}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let setup = self
            .post("/auth/mfa/totp/setup", client, Some(&access), json!({}))
            .await;
        assert_eq!(setup.status, 200, "{}", setup.body);
        let app = TotpCode::from_base32(
            setup.body["secret"].as_str().unwrap(),
            TotpSettings::default(),
        )
        .unwrap();
        let a = self
            .post(
                "/auth/mfa/totp/confirm",
                client,
                Some(&access),
                json!({"code": app.generate(now())}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        (access, app)
    }

    async fn user_id(&self, access: &str) -> String {
        let me = self
            .call(
                reqwest::Method::GET,
                "/auth/me",
                "198.51.100.1",
                Some(access),
                None,
            )
            .await;
        assert_eq!(me.status, 200, "{}", me.body);
        me.body["id"].as_str().unwrap().to_owned()
    }

    fn mails_to(&self, to: &str, subject: &str) -> usize {
        self.outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to == to && m.subject == subject)
            .count()
    }

    fn mails(&self) -> usize {
        self.outbox.0.lock().unwrap().len()
    }
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// Finding: 30 wrong passwords sent at once all reached the hasher (30 × 401, no 429): the
/// limiter was checked before hashing and recorded after. Now an attempt is reserved before
/// the hash, atomically: exactly 5 are checked, 25 refused; the lockout is per account and
/// client, so the owner on another address still logs in.
async fn lockout_holds_under_concurrency(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    s.register("alice@example.com", "198.51.100.1").await;
    let guesses = (0..30).map(|i| {
        let s = &s;
        async move {
            s.login("alice@example.com", &format!("guess-{i}"), "203.0.113.66")
                .await
        }
    });
    let answers = join_all(guesses).await;
    println!(
        "{target:?}: 30 concurrent guesses -> {} x 401, {} x 429",
        count(&answers, 401),
        count(&answers, 429)
    );
    assert_eq!(
        count(&answers, 401),
        5,
        "exactly max_attempts reach the hasher"
    );
    assert_eq!(count(&answers, 429), 25);
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 429)
            .all(|a| a.headers.contains_key("retry-after"))
    );
    // Locked from the attacking client, even with the right password...
    let a = s.login("alice@example.com", PASSWORD, "203.0.113.66").await;
    assert_eq!(a.status, 429);
    // ...but the lockout is no denial of service: the owner elsewhere logs in.
    let a = s.login("alice@example.com", PASSWORD, "198.51.100.1").await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Finding: all limiters shared one table with no namespace and a malformed login email was
/// used verbatim as the key: `{"email":"ip:127.0.0.1"}` locked an address, `{"email":"mfa:42"}`
/// a second factor. Now keys are namespaced and raw input is hashed inside `login:`.
async fn crafted_identifiers_lock_nothing_else(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let (access, app) = s.enrolled("bob@example.com", "198.51.100.2").await;
    let bob = s.user_id(&access).await;
    let victim_ip = "198.51.100.2";
    let crafted = [format!("ip:{victim_ip}"), format!("mfa:{bob}")];
    for key in &crafted {
        for _ in 0..12 {
            let a = s.login(key, "whatever", "203.0.113.77").await;
            assert!(matches!(a.status, 401 | 429), "{}", a.body);
        }
    }
    // The address and the second factor are untouched: bob logs in from his address with
    // password and code.
    let a = s.login("bob@example.com", PASSWORD, victim_ip).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["mfa_required"], true);
    let a = s
        .post(
            "/auth/mfa/verify",
            victim_ip,
            None,
            json!({"mfa_token": a.body["mfa_token"], "code": app.generate(now() + 30)}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    println!(
        "{target:?}: 24 crafted logins (ip:…, mfa:…) locked neither the address nor the factor"
    );
}

/// Finding: on MariaDB the accent-insensitive collation let `alice@gmäil.com` with Alice's
/// password open `alice@gmail.com`, and mailed a reset for the look-alike to the typed
/// address. Now emails are canonical (NFC, IDNA) and compared in binary; mail goes to the
/// stored address only.
async fn look_alike_addresses_open_nothing(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let alice = s.register("alice@gmail.com", "198.51.100.3").await;
    let alice_id = s.user_id(&alice).await;
    for look_alike in ["alice@gmäil.com", "alice@gmáil.com", "alicé@gmail.com"] {
        let a = s.login(look_alike, PASSWORD, "198.51.100.3").await;
        assert_eq!(a.status, 401, "{look_alike} must not open alice@gmail.com");
        let a = s
            .post(
                "/auth/password/reset/request",
                "198.51.100.3",
                None,
                json!({"email": look_alike}),
            )
            .await;
        assert_eq!(a.status, 202);
    }
    // Reset mail goes out from a task: give it time, then nothing was sent to anyone.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(s.mails(), 0, "no reset mail for a look-alike address");
    // Spellings of the same address do meet in one account.
    let a = s.login(" ALICE@GMAIL.COM ", PASSWORD, "198.51.100.3").await;
    assert_eq!(a.status, 200);
    // The look-alike is an account of its own, stored in its canonical (punycode) form.
    let other = s.register("alice@gmäil.com", "198.51.100.4").await;
    let me = s
        .call(
            reqwest::Method::GET,
            "/auth/me",
            "198.51.100.4",
            Some(&other),
            None,
        )
        .await;
    assert_ne!(me.body["id"].as_str().unwrap(), alice_id);
    assert_eq!(me.body["email"], "alice@xn--gmil-moa.com");
    println!(
        "{target:?}: look-alike logins 401, resets mailed nowhere, look-alike sign-up is its own account"
    );
}

/// Finding: after only the register step of /onboarding, /auth/login returned tokens (email
/// verification and a required TOTP skipped). Now the account is inactive until the flow
/// completes, for every way in.
async fn onboarding_steps_cannot_be_skipped(target: Target) {
    let Some(s) = server(target, &[("AUTH_ONBOARDING_TOTP", "required")]).await else {
        return;
    };
    let ip = "198.51.100.5";
    let started = s
        .post(
            "/onboarding/start",
            ip,
            None,
            json!({"email": "cy@example.com"}),
        )
        .await;
    assert_eq!(started.status, 200);
    let token = started.body["session_token"].as_str().unwrap().to_owned();
    let advance = |body: Value| {
        let mut body = body;
        body["session_token"] = Value::String(token.clone());
        let s = &s;
        async move { s.post("/onboarding/advance", ip, None, body).await }
    };
    let r = advance(
        json!({"email": "cy@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
    )
    .await;
    assert_eq!(r.body["current_step"], "verify_email");
    let refused = |step: &'static str| {
        let s = &s;
        async move {
            let a = s.login("cy@example.com", PASSWORD, ip).await;
            assert_eq!(a.status, 401, "login after {step}: {}", a.body);
            let a = s
                .post(
                    "/auth/password/reset/request",
                    ip,
                    None,
                    json!({"email": "cy@example.com"}),
                )
                .await;
            assert_eq!(a.status, 202);
        }
    };
    refused("register").await;
    let code = s.outbox.code("cy@example.com");
    let r = advance(json!({"code": code})).await;
    assert_eq!(r.body["current_step"], "setup_totp");
    refused("verify_email").await;
    let app = TotpCode::from_base32(
        r.body["client_hint"]["extra"]["secret"].as_str().unwrap(),
        TotpSettings::default(),
    )
    .unwrap();
    let r = advance(json!({"code": app.generate(now())})).await;
    assert_eq!(r.body["current_step"], "profile");
    refused("setup_totp").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !s.outbox
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.body.contains("/reset-password?token=")),
        "no reset link for an account whose onboarding is not done"
    );
    let r = advance(json!({"first_name": "Cy", "last_name": "Ng"})).await;
    assert_eq!(r.body["status"], "completed");
    // Done: the password now leads to the second factor, as for any enrolled account.
    let a = s.login("cy@example.com", PASSWORD, ip).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["mfa_required"], true);
    println!(
        "{target:?}: login refused after register, verify_email and setup_totp; allowed (with TOTP) once completed"
    );
}

/// Finding: sign-ups were unthrottled (a burst of 25 from one address all succeeded, each a
/// password hash and an answer to "is this address taken?"). Now 10 an hour per address,
/// shared with onboarding's register step.
async fn signups_are_throttled_per_client(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let burst = (0..25).map(|i| {
        let s = &s;
        async move {
            s.post(
                "/auth/register",
                "203.0.113.88",
                None,
                json!({"email": format!("bot{i}@example.com"), "password": PASSWORD}),
            )
            .await
        }
    });
    let answers = join_all(burst).await;
    println!(
        "{target:?}: 25 concurrent sign-ups -> {} x 201, {} x 429",
        count(&answers, 201),
        count(&answers, 429)
    );
    assert_eq!(count(&answers, 201), 10);
    assert_eq!(count(&answers, 429), 15);
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 429)
            .all(|a| a.headers.contains_key("retry-after"))
    );
    // Onboarding's register step counts against the same address.
    let started = s
        .post(
            "/onboarding/start",
            "203.0.113.88",
            None,
            json!({"email": "bot99@example.com"}),
        )
        .await;
    let token = started.body["session_token"].as_str().unwrap();
    let a = s
        .post(
            "/onboarding/advance",
            "203.0.113.88",
            None,
            json!({"session_token": token, "email": "bot99@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    // Another address is not affected.
    s.register("human@example.com", "198.51.100.6").await;
}

/// Finding (JWT backend): a login right after logout-all, a password change or a reset
/// returned tokens that `/auth/me` refused for up to a second (the cut-off was now + 1 s).
/// Now cut-offs compare to the microsecond.
async fn login_right_after_revocation_works(target: Target) {
    let Some(s) = server(target, &[("AUTH_TOKEN_BACKEND", "jwt")]).await else {
        return;
    };
    let ip = "198.51.100.7";
    s.register("dee@example.com", ip).await;
    let me = |token: String| {
        let s = &s;
        async move {
            s.call(reqwest::Method::GET, "/auth/me", ip, Some(&token), None)
                .await
                .status
        }
    };
    for round in 0..10 {
        let old = s.login("dee@example.com", PASSWORD, ip).await;
        let old = old.body["access_token"].as_str().unwrap().to_owned();
        let a = s.post("/auth/logout-all", ip, Some(&old), json!({})).await;
        assert_eq!(a.status, 200);
        // The sign-up's (or the previous round's) session and this one: stateless JWTs are
        // counted too (the revocation store tracks the sessions it issued).
        assert_eq!(a.body["sessions_ended"], 2, "round {round}: {}", a.body);
        assert_eq!(me(old).await, 401, "round {round}: the old session ended");
        let new = s.login("dee@example.com", PASSWORD, ip).await;
        let new = new.body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            me(new).await,
            200,
            "round {round}: the new login works at once"
        );
    }
    // Change the password, log in again at once.
    let a = s.login("dee@example.com", PASSWORD, ip).await;
    let access = a.body["access_token"].as_str().unwrap().to_owned();
    let a = s
        .post(
            "/auth/password/change",
            ip,
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": "amber-heron-dances-7"}),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
    let a = s.login("dee@example.com", "amber-heron-dances-7", ip).await;
    let fresh = a.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(fresh).await, 200);
    println!(
        "{target:?}: 10 logins right after logout-all and one after a password change all work at once"
    );
}

/// Also found in review: the current-password check of a password change was not rate
/// limited. Now it reserves an attempt like a login: 30 concurrent guesses, 5 checked.
async fn change_password_guesses_are_throttled(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let ip = "198.51.100.8";
    let access = s.register("eve@example.com", ip).await;
    let guesses = (0..30).map(|i| {
        let s = &s;
        let access = access.clone();
        async move {
            s.post(
                "/auth/password/change",
                ip,
                Some(&access),
                json!({"current_password": format!("guess-{i}"), "new_password": "amber-heron-dances-7"}),
            )
            .await
        }
    });
    let answers = join_all(guesses).await;
    println!(
        "{target:?}: 30 concurrent current-password guesses -> {} x 401, {} x 429",
        count(&answers, 401),
        count(&answers, 429)
    );
    assert_eq!(count(&answers, 401), 5);
    assert_eq!(count(&answers, 429), 25);
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 401)
            .all(|a| a.body["reason"] == "wrong_current_password"),
        "an authenticated caller learns why"
    );
}

/// The same check-then-act gap was in `Mfa::verify`: 30 wrong codes at once against six open
/// challenges get exactly the per-user budget (10) of code checks; the factor then locks.
async fn second_factor_guesses_are_throttled(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let ip = "198.51.100.9";
    let (_, app) = s.enrolled("fay@example.com", ip).await;
    let mut challenges = Vec::new();
    for _ in 0..6 {
        let a = s.login("fay@example.com", PASSWORD, ip).await;
        assert_eq!(a.body["mfa_required"], true, "{}", a.body);
        challenges.push(a.body["mfa_token"].as_str().unwrap().to_owned());
    }
    let right = [
        app.generate(now()),
        app.generate(now() + 30),
        app.generate(now().saturating_sub(30)),
    ];
    let wrong = (0..1_000_000u32)
        .map(|n| format!("{n:06}"))
        .filter(|c| !right.contains(c))
        .take(30)
        .collect::<Vec<_>>();
    let guesses = wrong.iter().enumerate().map(|(i, code)| {
        let s = &s;
        let challenge = challenges[i % challenges.len()].clone();
        async move {
            s.post(
                "/auth/mfa/verify",
                ip,
                None,
                json!({"mfa_token": challenge, "code": code}),
            )
            .await
        }
    });
    let answers = join_all(guesses).await;
    println!(
        "{target:?}: 30 concurrent wrong TOTP codes -> {} x 401, {} x 429",
        count(&answers, 401),
        count(&answers, 429)
    );
    assert_eq!(
        count(&answers, 401),
        10,
        "the per-user budget of code checks"
    );
    assert_eq!(count(&answers, 429), 20);
    // Locked: even the right code on a fresh challenge waits.
    let a = s.login("fay@example.com", PASSWORD, ip).await;
    assert_eq!(a.status, 429, "{}", a.body);
}

/// A reset link confirmed 30 times at once works once (compare-and-set on the password).
async fn reset_link_works_once_under_concurrency(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let ip = "198.51.100.10";
    s.register("gus@example.com", ip).await;
    let a = s
        .post(
            "/auth/password/reset/request",
            ip,
            None,
            json!({"email": "gus@example.com"}),
        )
        .await;
    assert_eq!(a.status, 202);
    let token = s.outbox.token("gus@example.com", "/reset-password").await;
    let confirms = (0..30).map(|i| {
        let s = &s;
        let token = token.clone();
        async move {
            s.post(
                "/auth/password/reset/confirm",
                ip,
                None,
                json!({"token": token, "new_password": format!("amber-heron-dances-{i}")}),
            )
            .await
        }
    });
    let answers = join_all(confirms).await;
    println!(
        "{target:?}: 30 concurrent confirmations of one reset link -> {} x 204, {} x 401",
        count(&answers, 204),
        count(&answers, 401)
    );
    assert_eq!(count(&answers, 204), 1);
    assert_eq!(count(&answers, 401), 29);
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 401)
            .all(|a| a.body["reason"] == "link_used_or_expired")
    );
    assert_eq!(s.mails_to("gus@example.com", "Reset your password"), 1);
    // One reset applied: one notice (sent in the background).
    for _ in 0..500 {
        if s.mails_to("gus@example.com", "Your password was changed") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        s.mails_to("gus@example.com", "Your password was changed"),
        1
    );
}

/// Every login failure looks the same to an unauthenticated client: unknown account, wrong
/// password, deactivated account, not-an-email, over-long input.
async fn login_failures_are_indistinguishable(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let ip = "198.51.100.11";
    s.register("hal@example.com", ip).await;
    let cases = [
        ("nobody@example.com", PASSWORD),
        ("hal@example.com", "wrong-password"),
        ("not an email", PASSWORD),
        ("hal@example.com", &"x".repeat(5000)),
    ];
    let mut seen = Vec::new();
    for (i, (email, password)) in cases.iter().enumerate() {
        let a = s.login(email, password, &format!("198.51.101.{i}")).await;
        seen.push((a.status, a.body));
    }
    assert!(
        seen.iter()
            .all(|a| *a == (401, json!({"error": "unauthorized"}))),
        "{seen:?}"
    );
}

macro_rules! on_every_database {
    ($($attack:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $attack() {
                    super::$attack(super::Target::SqliteFile).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $attack() {
                    super::$attack(super::Target::Postgres).await;
                }
            )*
        }
        mod mariadb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $attack() {
                    super::$attack(super::Target::MySql).await;
                }
            )*
        }
    };
}

on_every_database!(
    lockout_holds_under_concurrency,
    crafted_identifiers_lock_nothing_else,
    look_alike_addresses_open_nothing,
    onboarding_steps_cannot_be_skipped,
    signups_are_throttled_per_client,
    login_right_after_revocation_works,
    change_password_guesses_are_throttled,
    second_factor_guesses_are_throttled,
    reset_link_works_once_under_concurrency,
    login_failures_are_indistinguishable,
);
