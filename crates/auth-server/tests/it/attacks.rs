//! The attack suite: every attack found against `auth-server`, tried as an attacker would,
//! over real HTTP against the server on an SQLite file, PostgreSQL and MariaDB (the last two
//! when `AUTH_TEST_POSTGRES_URL` / `AUTH_TEST_MYSQL_URL` are set, each test in a database of
//! its own), each asserting the defence. Concurrency attacks send 30 requests at once.
//! docs/security.md maps each threat to its test here.

use crate::common;

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
    database_url: String,
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

async fn server(target: Target, vars: &[(&str, &str)]) -> Option<Server> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    server_on(target, listener, vars).await
}

async fn server_on(
    target: Target,
    listener: tokio::net::TcpListener,
    vars: &[(&str, &str)],
) -> Option<Server> {
    let url = auth_testkit::db::fresh_url(target).await?;
    let mut all = vec![
        ("DATABASE_URL", url.as_str()),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    all.extend_from_slice(vars);
    let (base, outbox) = common::start_on(listener, &all).await;
    Some(Server {
        base,
        outbox,
        http: reqwest::Client::new(),
        database_url: url,
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
                Some(&access),
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

    async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        self.call(reqwest::Method::GET, path, "198.51.100.1", bearer, None)
            .await
    }

    /// Asks for the verification mail from the session `access`; the link's token.
    async fn verification_token(&self, email: &str, access: &str) -> String {
        let a = self
            .post(
                "/auth/email/verify/request",
                "198.51.100.1",
                Some(access),
                json!({}),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        self.outbox.token(email, "/verify-email").await
    }

    /// Registers and proves the address from the account's own session; the access token.
    async fn register_proven(&self, email: &str, client: &str) -> String {
        let access = self.register(email, client).await;
        let token = self.verification_token(email, &access).await;
        let a = self
            .post(
                "/auth/email/verify/confirm",
                client,
                Some(&access),
                json!({"token": token}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["claimed"], false, "in session: nothing removed");
        access
    }

    /// The owner's reset from the mailbox; the owner's new access token.
    async fn reset_from_mailbox(&self, email: &str, new_password: &str) -> String {
        let a = self
            .post(
                "/auth/password/reset/request",
                "203.0.113.200",
                None,
                json!({"email": email}),
            )
            .await;
        assert_eq!(a.status, 202);
        let token = self.outbox.token(email, "/reset-password").await;
        let a = self
            .post(
                "/auth/password/reset/confirm",
                "203.0.113.200",
                None,
                json!({"token": token, "new_password": new_password}),
            )
            .await;
        assert_eq!(a.status, 204, "{}", a.body);
        let a = self.login(email, new_password, "203.0.113.200").await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Asks for a sign-in code for `email` from `client`; the flow id it answers.
    async fn ask_sign_in_code(&self, email: &str, client: &str) -> String {
        let a = self
            .post(
                "/auth/magic-link/request",
                client,
                None,
                json!({"email": email}),
            )
            .await;
        assert_eq!(a.status, 202, "{}", a.body);
        a.body["flow"].as_str().unwrap().to_owned()
    }

    /// The code of the `n`th sign-in mail to `to` (waiting for it).
    async fn sign_in_code_number(&self, to: &str, n: usize) -> String {
        for _ in 0..500 {
            if self.mails_to(to, "Your sign-in link") >= n {
                return self.sign_in_code(to).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no sign-in mail number {n} to {to}")
    }

    /// The 6-digit code of the last sign-in mail to `to`.
    async fn sign_in_code(&self, to: &str) -> String {
        self.outbox.sign_in_code(to).await
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
    // One lockout, one mail (issue 30 found five).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.mails_to("alice@example.com", "Sign-in to your account was locked"),
        1
    );
}

/// Finding (issue 30): on MariaDB a race of right and wrong logins sent an "account locked"
/// mail with a limit of 1,000,000, though nothing was locked. No lock event (and so no mail)
/// unless something was locked.
async fn no_lock_mail_unless_locked(target: Target) {
    let Some(s) = server(target, &[("AUTH_RATE_LIMIT_MAX_ATTEMPTS", "1000000")]).await else {
        return;
    };
    s.register("race@example.com", "198.51.100.3").await;
    let attempts = (0..40).map(|i| {
        let s = &s;
        let password = if i % 2 == 0 {
            PASSWORD.to_owned()
        } else {
            format!("wrong-{i}")
        };
        async move { s.login("race@example.com", &password, "203.0.113.67").await }
    });
    let answers = join_all(attempts).await;
    assert_eq!(count(&answers, 429), 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.mails_to("race@example.com", "Sign-in to your account was locked"),
        0
    );
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

// --- Ownership: the squatter ------------------------------------------------------------
// The attacker registers the victim's address first and builds on it; the owner then proves
// the address. Nothing of the attacker's may survive, and no authority comes from an address.

const SQUAT_PASSWORD: &str = "squatters-own-password-77";

async fn squat(s: &Server, email: &str) -> String {
    let a = s
        .post(
            "/auth/register",
            "203.0.113.66",
            None,
            json!({"email": email, "password": SQUAT_PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.body["access_token"].as_str().unwrap().to_owned()
}

/// Finding (critical): the attacker registered an address listed in `AUTH_ADMIN_EMAILS` and
/// created an API key with scope `admin`; the owner's reset left it working, and `/admin`
/// answered it. Now an unproven account gets no key at all, no scope beyond the holder's
/// authority, and the owner's reset ends everything the squatter had.
async fn squatters_admin_key_never_exists(target: Target) {
    let Some(s) = server(target, &[("AUTH_ADMIN_EMAILS", "ops@example.com")]).await else {
        return;
    };
    let squatter = squat(&s, "ops@example.com").await;
    let a = s
        .post(
            "/auth/api-keys",
            "203.0.113.66",
            Some(&squatter),
            json!({"name": "backdoor", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["errors"][0]["code"], "email_not_verified");
    let a = s
        .post(
            "/auth/api-keys",
            "203.0.113.66",
            Some(&squatter),
            json!({"name": "quiet", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(a.status, 422, "no key of any scope: {}", a.body);
    assert_eq!(s.get("/admin/users", Some(&squatter)).await.status, 403);

    // The owner finds the address taken and resets from the mailbox.
    let a = s
        .post(
            "/auth/register",
            "198.51.100.20",
            None,
            json!({"email": "ops@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 409);
    let owner = s.reset_from_mailbox("ops@example.com", PASSWORD).await;
    assert_eq!(s.get("/auth/me", Some(&squatter)).await.status, 401);
    assert_eq!(
        s.login("ops@example.com", SQUAT_PASSWORD, "203.0.113.66")
            .await
            .status,
        401
    );
    // The owner holds the role the configuration named for the address, granted at the
    // moment of the proof.
    let a = s.get("/admin/users", Some(&owner)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = s
        .post(
            "/auth/api-keys",
            "198.51.100.20",
            Some(&owner),
            json!({"name": "ops", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
}

/// Finding: any user could give their own key the `admin` scope (and `*` matched it). Now a
/// scope naming a role needs the role; a key carries only what its owner holds, checked at
/// each use: `/auth/verify?scope=admin` and `/admin` refuse a `*` key of a user without the
/// role, and an administrator's key stops administering when the role is revoked.
async fn api_key_authority_is_bounded_by_the_owner(target: Target) {
    let Some(s) = server(
        target,
        &[("AUTH_ADMIN_EMAILS", "ops@example.com,own@example.com")],
    )
    .await
    else {
        return;
    };
    let dev = s.register_proven("dev@example.com", "198.51.100.30").await;
    let a = s
        .post(
            "/auth/api-keys",
            "198.51.100.30",
            Some(&dev),
            json!({"name": "sneaky", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = s
        .post(
            "/auth/api-keys",
            "198.51.100.30",
            Some(&dev),
            json!({"name": "everything", "scopes": ["*"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let star = a.body["key"].as_str().unwrap().to_owned();
    let verify = |key: String, scope: &'static str| {
        let s = &s;
        async move {
            s.http
                .get(format!("{}/auth/verify?scope={scope}", s.base))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
        }
    };
    let r = verify(star.clone(), "deploy").await;
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["x-auth-authority"]
            .to_str()
            .unwrap()
            .starts_with("user:")
    );
    assert_eq!(verify(star.clone(), "admin").await.status(), 403);
    let a = s
        .http
        .get(format!("{}/admin/users", s.base))
        .header("x-api-key", &star)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 403);

    // Administrators' keys work while the role is held. Two administrators (proven listed
    // addresses), one made owner by the operator.
    let ops = s.register_proven("ops@example.com", "198.51.100.31").await;
    let own = s.register_proven("own@example.com", "198.51.100.32").await;
    let ops_id = s.user_id(&ops).await;
    let a = s
        .post(
            "/auth/api-keys",
            "198.51.100.31",
            Some(&ops),
            json!({"name": "ops", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let ops_key = a.body["key"].as_str().unwrap().to_owned();
    assert_eq!(verify(ops_key.clone(), "admin").await.status(), 204);
    // An administrator acts on another administrator only as an owner.
    let own_id = s.user_id(&own).await;
    let a = s
        .post(
            &format!("/admin/users/{own_id}/deactivate"),
            "198.51.100.31",
            Some(&ops),
            json!({}),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = s
        .call(
            reqwest::Method::DELETE,
            &format!("/admin/users/{own_id}/roles/admin"),
            "198.51.100.31",
            Some(&ops),
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = s
        .post(
            &format!("/admin/users/{ops_id}/roles"),
            "198.51.100.31",
            Some(&ops),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(a.status, 403, "only an owner grants owner: {}", a.body);
    // The operator makes `own` an owner; the owner revokes `ops`'s role: the key stops.
    let url = s.database_url.clone();
    let out = common::cli_ok(&url, &["admin", "grant", "own@example.com", "--owner"]);
    assert!(out.contains("granted"), "{out}");
    let a = s
        .call(
            reqwest::Method::DELETE,
            &format!("/admin/users/{ops_id}/roles/admin"),
            "198.51.100.32",
            Some(&own),
            None,
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(verify(ops_key.clone(), "admin").await.status(), 403);
    let a = s
        .http
        .get(format!("{}/admin/users", s.base))
        .header("x-api-key", &ops_key)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 403);
    // Never the last: the owner cannot drop the last `owner` grant, nor the operator.
    let (ok, _, err) = common::cli(&url, &["admin", "revoke", "own@example.com", "--owner"]);
    assert!(!ok && err.contains("last"), "{err}");
    // The operator's grant refuses an address nobody has proven.
    squat(&s, "later@example.com").await;
    let (ok, _, err) = common::cli(&url, &["admin", "grant", "later@example.com"]);
    assert!(!ok && err.contains("confirm"), "{err}");
    let list = common::cli_ok(&url, &["admin", "list"]);
    assert!(
        list.contains("own@example.com") && !list.contains("ops@example.com"),
        "{list}"
    );
}

/// Finding: the attacker pre-registered an administrator's address and had the verification
/// mailed; the owner's click made the attacker's password and session an administrator's.
/// Now a verification opened outside the account's session is the owner's proof: the
/// squatter's password and sessions end in that step, and the role goes to whoever then
/// proves control of the mailbox.
async fn owners_click_does_not_promote_the_squatter(target: Target) {
    let Some(s) = server(target, &[("AUTH_ADMIN_EMAILS", "ops@example.com")]).await else {
        return;
    };
    let squatter = squat(&s, "ops@example.com").await;
    let token = s.verification_token("ops@example.com", &squatter).await;
    // The owner opens the mailed link in their own browser.
    let a = s
        .post(
            "/auth/email/verify/confirm",
            "198.51.100.40",
            None,
            json!({"token": token}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (
            a.body["claimed"].as_bool(),
            a.body["password_removed"].as_bool()
        ),
        (Some(true), Some(true)),
        "{}",
        a.body
    );
    assert_eq!(s.get("/auth/me", Some(&squatter)).await.status, 401);
    assert_eq!(s.get("/admin/users", Some(&squatter)).await.status, 401);
    assert_eq!(
        s.login("ops@example.com", SQUAT_PASSWORD, "203.0.113.66")
            .await
            .status,
        401
    );
    // The owner chooses a password from the mailbox and administers.
    let owner = s.reset_from_mailbox("ops@example.com", PASSWORD).await;
    assert_eq!(s.get("/admin/users", Some(&owner)).await.status, 200);

    // A bystander's session opening someone's link counts as no session at all.
    let bystander = s.register_proven("by@example.com", "198.51.100.41").await;
    let victim = squat(&s, "vic@example.com").await;
    let token = s.verification_token("vic@example.com", &victim).await;
    let a = s
        .post(
            "/auth/email/verify/confirm",
            "198.51.100.41",
            Some(&bystander),
            json!({"token": token}),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["claimed"], true, "{}", a.body);
    assert_eq!(s.get("/auth/me", Some(&bystander)).await.status, 200);
}

/// Finding: the attacker changed their own address to a listed address that had no account,
/// and the owner pressing "confirm the change" gave the attacker's account that address (and
/// administration). Now the confirmation works only inside a session of the account that
/// asked: the owner's click, or a bystander's session, moves nothing.
async fn email_change_confirmation_needs_the_requesters_session(target: Target) {
    let Some(s) = server(target, &[("AUTH_ADMIN_EMAILS", "ops@example.com")]).await else {
        return;
    };
    let attacker = s
        .register_proven("mallory@example.com", "203.0.113.66")
        .await;
    let a = s
        .post(
            "/auth/email/change",
            "203.0.113.66",
            Some(&attacker),
            json!({"new_email": "ops@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.body);
    let token = s
        .outbox
        .token("ops@example.com", "/confirm-email-change")
        .await;
    let bystander = s.register_proven("by2@example.com", "198.51.100.42").await;
    let confirms = (0..30).map(|i| {
        let s = &s;
        let token = token.clone();
        let bearer = (i % 2 == 0).then(|| bystander.clone());
        async move {
            s.post(
                "/auth/email/change/confirm",
                "198.51.100.42",
                bearer.as_deref(),
                json!({"token": token}),
            )
            .await
        }
    });
    let answers = join_all(confirms).await;
    assert_eq!(
        count(&answers, 403),
        30,
        "the owner's click and a bystander's session move nothing"
    );
    let me = s.get("/auth/me", Some(&attacker)).await;
    assert_eq!(me.body["email"], "mallory@example.com");
    assert_eq!(s.get("/admin/users", Some(&attacker)).await.status, 403);
    // The address is still free for its owner.
    s.register("ops@example.com", "198.51.100.43").await;
}

/// Finding: the owner signed in with a mailed code; the account stayed unverified and the
/// squatter's password and session kept working. Now a sign-in code is the owner's proof:
/// the squatter's password and sessions end, and the account is proven.
async fn sign_in_code_takes_the_account_from_the_squatter(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let squatter = squat(&s, "kim@example.com").await;
    // The squatter cannot add a passkey or link a provider to an unproven account.
    let a = s
        .post(
            "/auth/passkeys/register/options",
            "203.0.113.66",
            Some(&squatter),
            json!({}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    let flow = s.ask_sign_in_code("kim@example.com", "198.51.100.50").await;
    let code = s.sign_in_code("kim@example.com").await;
    let a = s
        .post(
            "/auth/magic-link/verify",
            "198.51.100.50",
            None,
            json!({"email": "kim@example.com", "code": code, "flow": flow}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let owner = a.body["access_token"].as_str().unwrap().to_owned();
    let me = s.get("/auth/me", Some(&owner)).await;
    assert_eq!(me.body["is_verified"], true);
    assert_eq!(s.get("/auth/me", Some(&squatter)).await.status, 401);
    assert_eq!(
        s.login("kim@example.com", SQUAT_PASSWORD, "203.0.113.66")
            .await
            .status,
        401
    );
    // One code used 30 times at once: one sign-in, one claim, and the squatter's session
    // ends.
    let squatter = squat(&s, "lee@example.com").await;
    let flow = s.ask_sign_in_code("lee@example.com", "198.51.102.1").await;
    let code = s.sign_in_code("lee@example.com").await;
    let answers = join_all((0..30).map(|i| {
        let s = &s;
        let (code, flow) = (code.clone(), flow.clone());
        async move {
            s.post(
                "/auth/magic-link/verify",
                &format!("198.51.103.{i}"),
                None,
                json!({"email": "lee@example.com", "code": code, "flow": flow}),
            )
            .await
        }
    }))
    .await;
    assert_eq!(count(&answers, 200), 1, "one code, one sign-in");
    assert_eq!(s.get("/auth/me", Some(&squatter)).await.status, 401);
}

/// Findings: a provider asserting the victim's address with `email_verified=false` created an
/// unverified account linked to the attacker's subject, which survived the victim's reset; and
/// an unproven account could link a provider. Now an unverified provider address creates and
/// claims nothing, linking needs a proven address, and a provider that does vouch for an
/// address nobody proved here is the owner's proof (the squatter's password and sessions end).
/// Against the real oidc-provider: `eve` asserts `victim@example.com` unverified, `ada`
/// asserts `ada@example.com` verified.
async fn provider_sign_in_never_claims_for_the_squatter(target: Target) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let Some(op) =
        auth_testkit::oidc_provider::OidcProvider::start(&format!("{base}/auth/oauth/op/callback"))
            .await
    else {
        return;
    };
    let Some(s) = server_on(
        target,
        listener,
        &[
            ("AUTH_PUBLIC_URL", base.as_str()),
            ("AUTH_OAUTH_PROVIDERS", "op"),
            ("AUTH_OAUTH_OP_ISSUER", op.issuer()),
            ("AUTH_OAUTH_OP_CLIENT_ID", "auth-test"),
            ("AUTH_OAUTH_OP_CLIENT_SECRET", "auth-test-secret"),
        ],
    )
    .await
    else {
        return;
    };
    let welcome = format!("{base}/welcome");
    // Signs in at the provider as `login` and exchanges the code: the exchange's answer.
    // Signs in at the provider as `login` in a browser of its own; that browser and the code
    // the callback handed its page.
    let at_provider = |login: &'static str| {
        let (base, welcome) = (base.clone(), welcome.clone());
        async move {
            let browser = auth_testkit::oidc_provider::Browser::new();
            let start = reqwest::Url::parse_with_params(
                &format!("{base}/auth/oauth/op/start"),
                &[("redirect_to", &welcome)],
            )
            .unwrap();
            let (status, to_provider, _) = browser.get(start.as_str()).await;
            assert_eq!(status, 302);
            let callback = browser
                .dance(
                    &to_provider.unwrap(),
                    &format!("{base}/auth/oauth/op/callback"),
                    login,
                    false,
                )
                .await;
            let (_, landed, _) = browser.get(&callback).await;
            let landed = landed.unwrap();
            let code = reqwest::Url::parse(&landed)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no code: {landed}"));
            (browser, code)
        }
    };
    // `POST /auth/oauth/exchange {code}` from `browser` (with its cookies): status and body.
    let exchange = |browser: auth_testkit::oidc_provider::Browser, code: String| {
        let url = format!("{base}/auth/oauth/exchange");
        async move {
            let (status, _, body) = browser
                .send(
                    reqwest::Client::new()
                        .post(&url)
                        .json(&json!({"code": code})),
                    &url,
                )
                .await;
            Answer {
                status,
                headers: HashMap::new(),
                body: serde_json::from_str(&body).unwrap_or(Value::Null),
            }
        }
    };
    let provider_sign_in = |login: &'static str| async move {
        let (browser, code) = at_provider(login).await;
        exchange(browser, code).await
    };
    // Login CSRF: the attacker finishes a provider sign-in in their own browser and sends the
    // code (`/login?code=…`) to a victim. The victim's browser, which did not start the flow,
    // cannot redeem it, and that spends it.
    let (attacker_browser, code) = at_provider("ada").await;
    let victim_browser = auth_testkit::oidc_provider::Browser::new();
    let a = exchange(victim_browser, code.clone()).await;
    assert_eq!(a.status, 401, "{}", a.body);
    let a = exchange(attacker_browser, code).await;
    assert_eq!(a.status, 401, "spent by the refused attempt: {}", a.body);
    // The attacker, at the provider as `eve` (victim@example.com, unverified): nothing made.
    let a = provider_sign_in("eve").await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["errors"][0]["code"], "provider_email_unverified");
    // So the victim's sign-up works, and their address is theirs.
    s.register("victim@example.com", "198.51.100.60").await;

    // A squatter on ada@example.com cannot link a provider before proving the address.
    let squatter = squat(&s, "ada@example.com").await;
    let a = s
        .post(
            "/auth/oauth/op/link/start",
            "203.0.113.66",
            Some(&squatter),
            json!({"redirect_to": welcome}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(a.body["errors"][0]["code"], "email_not_verified");
    // The provider vouches for ada@example.com: the owner's proof. The squatter's password
    // and session end; the account is the provider identity's.
    let a = provider_sign_in("ada").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let owner = a.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/auth/me", Some(&owner)).await.body["is_verified"],
        true
    );
    assert_eq!(s.get("/auth/me", Some(&squatter)).await.status, 401);
    assert_eq!(
        s.login("ada@example.com", SQUAT_PASSWORD, "203.0.113.66")
            .await
            .status,
        401
    );
}

/// Findings: each request stored another live 6-digit code and superseded none (20 live
/// codes from 4 client addresses, the oldest still signed in); guesses were limited per
/// address only (one client made 60 wrong guesses across 12 addresses with no 429); a sign-in
/// link or code worked in any browser (login CSRF); one client could make the server mail any
/// number of addresses. Now a code works only with the flow of the request that asked, the
/// next request replaces it, three wrong codes end it, guesses and mail are limited per client
/// across addresses.
async fn sign_in_codes_are_bound_to_their_request(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let email = "ivy@example.com";
    s.register(email, "198.51.100.70").await;
    let verify = |code: &str, flow: &str, client: &str| {
        let body = json!({"email": email, "code": code, "flow": flow});
        let (s, client) = (&s, client.to_owned());
        async move {
            s.post("/auth/magic-link/verify", &client, None, body)
                .await
                .status
        }
    };
    // 20 requests from 4 clients: each replaces the one before.
    let mut asked = Vec::new();
    for i in 0..20 {
        let client = format!("198.51.104.{}", i % 4);
        let flow = s.ask_sign_in_code(email, &client).await;
        let code = s.sign_in_code_number(email, i + 1).await;
        asked.push((client, flow, code));
    }
    let (oldest_client, oldest_flow, oldest_code) = asked[0].clone();
    assert_eq!(
        verify(&oldest_code, &oldest_flow, &oldest_client).await,
        401,
        "the oldest code died when the next was asked for"
    );
    let (client, flow, code) = asked[19].clone();
    // The live code in a bystander's browser (no flow, another request's flow): refused.
    assert_eq!(verify(&code, "", "203.0.113.80").await, 401);
    assert_eq!(verify(&code, &oldest_flow, "203.0.113.80").await, 401);
    assert_eq!(
        verify(&code, &flow, &client).await,
        200,
        "where it was asked"
    );

    // Three wrong codes of the right flow end it: the right code then fails too.
    let flow = s.ask_sign_in_code(email, "198.51.104.9").await;
    let code = s.sign_in_code_number(email, 21).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..3 {
        assert_eq!(verify(wrong, &flow, "198.51.104.9").await, 401);
    }
    assert_eq!(verify(&code, &flow, "198.51.104.9").await, 401, "dead");

    // One client guessing across 12 addresses: stopped by its own limit (50 in 5 minutes),
    // below every address's (5 each).
    let mut statuses = Vec::new();
    for i in 0..60 {
        let body =
            json!({"email": format!("guess{}@example.com", i % 12), "code": "123456", "flow": "x"});
        statuses.push(
            s.post("/auth/magic-link/verify", "203.0.113.90", None, body)
                .await
                .status,
        );
    }
    assert_eq!(
        (count_status(&statuses, 401), count_status(&statuses, 429)),
        (50, 10),
        "{statuses:?}"
    );

    // One client asking mail for many addresses (sign-in links and resets alike): 20, then 429.
    let mut statuses = Vec::new();
    for i in 0..25 {
        let path = if i % 2 == 0 {
            "/auth/magic-link/request"
        } else {
            "/auth/password/reset/request"
        };
        let body = json!({"email": format!("mailbox{i}@example.com")});
        statuses.push(s.post(path, "203.0.113.91", None, body).await.status);
    }
    assert_eq!(
        (count_status(&statuses, 202), count_status(&statuses, 429)),
        (20, 5),
        "{statuses:?}"
    );
}

fn count_status(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Finding: correct-password logins were never throttled, the Argon2 queue was unbounded and
/// nothing answered 503: 45 concurrent logins (valid ones from one address, or wrong ones from
/// 45 addresses) pushed another user's login from ~30 ms to ~1 s. Now the queue in front of the
/// hasher is bounded and shared fairly per client address: one client holds at most its share
/// (the calm user from another address gets in during the flood), and past the bounds a call
/// is answered 503 with `Retry-After` at once instead of waiting; addresses that failed wait in
/// a narrow lane, so their flood cannot shed a client that signed in. Timings are measured by
/// `cargo xtask bench` (docs/bench.md), not here.
async fn hashing_sheds_load_and_shares_fairly(target: Target) {
    let Some(s) = server(
        target,
        &[
            ("AUTH_HASH_CONCURRENCY", "1"),
            ("AUTH_HASH_QUEUE", "4"),
            ("AUTH_HASH_QUEUE_PER_CLIENT", "2"),
        ],
    )
    .await
    else {
        return;
    };
    s.register("flood@example.com", "198.51.100.80").await;
    s.register("calm@example.com", "198.51.100.81").await;
    let shed_properly = |a: &Answer| {
        a.status == 503
            && a.body["error"] == "overloaded"
            && a.headers.get("retry-after").is_some_and(|v| v == "1")
    };
    // 45 valid logins at once from one address, and meanwhile a login from another.
    let flood = join_all((0..45).map(|_| s.login("flood@example.com", PASSWORD, "203.0.113.100")));
    let calm = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.login("calm@example.com", PASSWORD, "198.51.100.81").await
    };
    let (flood, calm) = tokio::join!(flood, calm);
    assert_eq!(calm.status, 200, "the other client got in: {}", calm.body);
    let (ok, shed, limited) = (
        count(&flood, 200),
        flood.iter().filter(|a| shed_properly(a)).count(),
        count(&flood, 429),
    );
    println!(
        "{target:?}: 45 valid logins at once from one address -> {ok} x 200, {shed} x 503, {limited} x 429 (the account's throttle reserves before the hash); another address's login 200"
    );
    assert_eq!(
        ok + shed + limited,
        45,
        "every answer a session, a proper 503 or the throttle's 429"
    );
    assert!(shed > 0 && ok > 0);

    // 45 wrong passwords from 45 addresses: past the bounded queue, 503 at once; nothing waits
    // behind the flood, and afterwards sign-in works at once.
    let wrong_from_45 = || {
        join_all((0..45).map(|i| {
            let ip = format!("198.51.105.{i}");
            let s = &s;
            async move { s.login("calm@example.com", "not-the-password-1", &ip).await }
        }))
    };
    let flood = wrong_from_45().await;
    let (denied, shed) = (
        count(&flood, 401),
        flood.iter().filter(|a| shed_properly(a)).count(),
    );
    println!("{target:?}: 45 wrong passwords from 45 addresses -> {denied} x 401, {shed} x 503");
    assert_eq!(denied + shed, 45);
    assert!(shed > 0);

    // Addresses that failed wait in a narrow lane (one place fewer than the running hashes, at least one): once each has
    // failed, their next wave cannot fill the queue ahead of a client that signed in before.
    for (i, a) in flood.iter().enumerate() {
        if a.status != 401 {
            let ip = format!("198.51.105.{i}");
            let again = s.login("calm@example.com", "not-the-password-1", &ip).await;
            assert_eq!(again.status, 401, "{}", again.body);
        }
    }
    let wave = wrong_from_45();
    let calm = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.login("calm@example.com", PASSWORD, "198.51.100.81").await
    };
    let (wave, calm) = tokio::join!(wave, calm);
    let (denied, shed) = (
        count(&wave, 401),
        wave.iter().filter(|a| shed_properly(a)).count(),
    );
    println!(
        "{target:?}: the 45 failed addresses again -> {denied} x 401, {shed} x 503; meanwhile a client that signed in before -> {}",
        calm.status
    );
    assert_eq!(
        calm.status, 200,
        "a returning client is not shed: {}",
        calm.body
    );
    assert_eq!(denied + shed, 45);
    assert!(
        shed > denied,
        "the suspects' lane holds one place at a time"
    );
    // A shed login is not held against its address or the account: the calm user, and each
    // flooding address with the right password, still sign in.
    assert_eq!(
        s.login("calm@example.com", PASSWORD, "198.51.100.81")
            .await
            .status,
        200
    );
    for i in 0..45 {
        let a = s
            .login("calm@example.com", PASSWORD, &format!("198.51.105.{i}"))
            .await;
        assert_eq!(a.status, 200, "address {i}: {}", a.body);
    }
}

/// Finding (silent persistence): with a stolen fresh session the attacker added an API key (and
/// a passkey); no mail told the owner, and both survived a password change and logout-all. Now
/// every new way in is mailed to the owner, and "secure my account" (30 times at once here)
/// revokes what the owner does not keep, exactly once.
async fn new_ways_in_are_told_and_secure_my_account_removes_them(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    let owner = s.register_proven("own@example.com", "198.51.100.90").await;
    let thief = s.login("own@example.com", PASSWORD, "203.0.113.66").await;
    let thief = thief.body["access_token"].as_str().unwrap().to_owned();
    let a = s
        .post(
            "/auth/api-keys",
            "203.0.113.66",
            Some(&thief),
            json!({"name": "backdoor", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let key = a.body["key"].as_str().unwrap().to_owned();
    for _ in 0..500 {
        if s.mails_to("own@example.com", "An API key was created for your account") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.mails_to("own@example.com", "An API key was created for your account"),
        1,
        "the owner is told"
    );
    let with_key = |key: String| {
        let s = &s;
        async move {
            s.http
                .get(format!("{}/auth/me", s.base))
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // A password change ends the thief's session, but a key is not a session.
    let a = s
        .post(
            "/auth/password/change",
            "198.51.100.90",
            Some(&owner),
            json!({"current_password": PASSWORD, "new_password": "amber-heron-dances-7"}),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert_eq!(s.get("/auth/me", Some(&thief)).await.status, 401);
    assert_eq!(with_key(key.clone()).await, 200);
    // Secure my account, 30 times at once: the key is revoked once, the owner stays in.
    let answers = join_all((0..30).map(|_| {
        s.post(
            "/auth/account/secure",
            "198.51.100.90",
            Some(&owner),
            json!({}),
        )
    }))
    .await;
    assert_eq!(count(&answers, 200), 30);
    let revoked: u64 = answers
        .iter()
        .map(|a| a.body["api_keys_revoked"].as_u64().unwrap())
        .sum();
    assert_eq!(revoked, 1, "revoked exactly once");
    assert_eq!(with_key(key).await, 401);
    assert_eq!(s.get("/auth/me", Some(&owner)).await.status, 200);
}

/// Finding: `/auth/activity` showed a later owner of an address the earlier owner's failed
/// sign-ins, with their IP and user agent. Now attempts on the address are listed only from
/// when the account came to hold it (its creation, an email change onto it, or a claim).
async fn activity_shows_only_the_addresss_time_with_this_account(target: Target) {
    let Some(s) = server(target, &[]).await else {
        return;
    };
    s.register("ann@example.com", "198.51.100.95").await;
    for _ in 0..3 {
        assert_eq!(
            s.login("ann@example.com", "not-her-password-1", "198.51.100.96")
                .await
                .status,
            401
        );
    }
    let out = common::cli_ok(
        &s.database_url,
        &["user", "delete", "ann@example.com", "--yes"],
    );
    assert!(out.contains("deleted"), "{out}");
    // A new person registers the freed address.
    let later = s.register("ann@example.com", "203.0.113.97").await;
    let a = s.get("/auth/activity", Some(&later)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let entries = a.body["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["kind"] != "user_login_failed" && e["ip"] != "198.51.100.96"),
        "the earlier owner's attempts stay out: {entries:?}"
    );
    // The new owner's own failed attempts on the address are listed.
    s.login("ann@example.com", "a-wrong-guess-7", "203.0.113.98")
        .await;
    let a = s.get("/auth/activity", Some(&later)).await;
    assert!(
        a.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "user_login_failed" && e["ip"] == "203.0.113.98"),
        "{}",
        a.body
    );
}

/// Finding: correct-password logins were never counted, so one address could sign in (and
/// make the server hash) without end. Now successful logins are counted per client address
/// across accounts, with a generous limit (`AUTH_LOGIN_RATE_LIMIT_*`, 300 in five minutes; 5
/// here): past it 429 + `Retry-After` before any password is checked; other addresses are not
/// affected.
async fn successful_logins_are_counted_per_client(target: Target) {
    let Some(s) = server(target, &[("AUTH_LOGIN_RATE_LIMIT_ATTEMPTS", "5")]).await else {
        return;
    };
    s.register("busy@example.com", "198.51.100.110").await;
    s.register("busier@example.com", "198.51.100.110").await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let email = if i % 2 == 0 {
            "busy@example.com"
        } else {
            "busier@example.com"
        };
        let a = s.login(email, PASSWORD, "203.0.113.120").await;
        if a.status == 429 {
            assert!(a.headers.contains_key("retry-after"));
        }
        statuses.push(a.status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429],
        "across accounts"
    );
    assert_eq!(
        s.login("busy@example.com", PASSWORD, "198.51.100.121")
            .await
            .status,
        200,
        "another address signs in"
    );
}

/// Where sessions live: JWTs with revocations in the database, opaque tokens in the
/// database, and JWTs with revocations in Redis or a Redis Cluster where
/// `AUTH_TEST_REDIS_URL` / `AUTH_TEST_REDIS_CLUSTER_URL` are set.
fn revocation_homes() -> Vec<(String, Vec<(&'static str, String)>)> {
    let mut homes = vec![
        ("database".to_owned(), Vec::new()),
        (
            "opaque tokens in the database".to_owned(),
            vec![("AUTH_TOKEN_BACKEND", "db".to_owned())],
        ),
    ];
    for (name, var, cluster) in [
        ("redis", "AUTH_TEST_REDIS_URL", "false"),
        ("redis cluster", "AUTH_TEST_REDIS_CLUSTER_URL", "true"),
    ] {
        let Ok(url) = std::env::var(var) else {
            auth_testkit::skip(name, &format!("{var} is not set"));
            continue;
        };
        let prefix = format!(
            "{}{}:",
            std::env::var("AUTH_TEST_REDIS_PREFIX").unwrap_or_else(|_| "auth:test:".into()),
            auth_testkit::unique("race")
        );
        let vars = vec![
            ("AUTH_REDIS_URL", url),
            ("AUTH_REDIS_PREFIX", prefix),
            ("AUTH_REDIS_CLUSTER", cluster.to_owned()),
        ];
        let mut opaque = vars.clone();
        opaque.push(("AUTH_TOKEN_BACKEND", "redis".to_owned()));
        homes.push((name.to_owned(), vars));
        homes.push((format!("opaque tokens in {name}"), opaque));
    }
    homes
}

/// Two tabs (here 2, then 30 requests) refresh with the same refresh token at once: within
/// the reuse window every one gets working tokens, the same successor, and the session
/// survives. A replay once the successor was used, or with the window off, still ends it.
async fn racing_refreshes_keep_the_session(target: Target) {
    for (home, extra) in revocation_homes() {
        let vars: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let Some(s) = server(target, &vars).await else {
            return;
        };
        let email = format!("{}@example.com", auth_testkit::unique("tabs"));
        s.register(&email, "198.51.100.7").await;
        let login = s.login(&email, PASSWORD, "198.51.100.7").await;
        let mut refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
        let mut previous = String::new();
        let count = |a: &Answer| a.body["sessions"].as_array().map_or(0, Vec::len);
        let before = count(
            &s.get("/auth/sessions", login.body["access_token"].as_str())
                .await,
        );
        for racers in [2, 30] {
            let answers = join_all((0..racers).map(|_| {
                s.post(
                    "/auth/refresh",
                    "198.51.100.7",
                    None,
                    json!({"refresh_token": refresh}),
                )
            }))
            .await;
            let mut successors = std::collections::HashSet::new();
            for a in &answers {
                assert_eq!(
                    a.status, 200,
                    "{home}: every racing refresh succeeds: {}",
                    a.body
                );
                let access = a.body["access_token"].as_str().unwrap();
                let me = s.get("/auth/me", Some(access)).await;
                assert_eq!(me.status, 200, "{home}: every racer's access token works");
                successors.insert(a.body["refresh_token"].as_str().unwrap().to_owned());
            }
            assert_eq!(
                successors.len(),
                1,
                "{home}: {racers} racing refreshes receive one successor"
            );
            previous = std::mem::replace(&mut refresh, successors.into_iter().next().unwrap());
        }
        let access = s
            .post(
                "/auth/refresh",
                "198.51.100.7",
                None,
                json!({"refresh_token": refresh}),
            )
            .await;
        assert_eq!(access.status, 200, "{home}: the successor works");
        let access = access.body["access_token"].as_str().unwrap().to_owned();
        let sessions = s.get("/auth/sessions", Some(&access)).await;
        assert_eq!(sessions.status, 200);
        assert_eq!(
            count(&sessions),
            before,
            "{home}: the racing refreshes started no session: {}",
            sessions.body
        );
        // The chain moved on (the successor of `previous` was used): `previous` again is a
        // replay, and ends the session.
        let replay = s
            .post(
                "/auth/refresh",
                "198.51.100.7",
                None,
                json!({"refresh_token": previous}),
            )
            .await;
        assert_eq!(
            replay.status, 401,
            "{home}: a replay after the successor was used"
        );
        assert_eq!(
            s.get("/auth/me", Some(&access)).await.status,
            401,
            "{home}: the replay ended the session"
        );
    }
    // With the window off, the second of two racing refreshes is reuse.
    let Some(s) = server(target, &[("AUTH_REFRESH_REUSE_WINDOW", "0")]).await else {
        return;
    };
    let email = format!("{}@example.com", auth_testkit::unique("strict"));
    s.register(&email, "198.51.100.8").await;
    let refresh = s.login(&email, PASSWORD, "198.51.100.8").await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = s
        .post(
            "/auth/refresh",
            "198.51.100.8",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(first.status, 200);
    let again = s
        .post(
            "/auth/refresh",
            "198.51.100.8",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(again.status, 401, "no window: a second use is reuse");
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(s.get("/auth/me", Some(access)).await.status, 401);
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
    no_lock_mail_unless_locked,
    crafted_identifiers_lock_nothing_else,
    look_alike_addresses_open_nothing,
    onboarding_steps_cannot_be_skipped,
    signups_are_throttled_per_client,
    login_right_after_revocation_works,
    change_password_guesses_are_throttled,
    second_factor_guesses_are_throttled,
    reset_link_works_once_under_concurrency,
    login_failures_are_indistinguishable,
    squatters_admin_key_never_exists,
    api_key_authority_is_bounded_by_the_owner,
    owners_click_does_not_promote_the_squatter,
    email_change_confirmation_needs_the_requesters_session,
    sign_in_code_takes_the_account_from_the_squatter,
    provider_sign_in_never_claims_for_the_squatter,
    sign_in_codes_are_bound_to_their_request,
    hashing_sheds_load_and_shares_fairly,
    new_ways_in_are_told_and_secure_my_account_removes_them,
    activity_shows_only_the_addresss_time_with_this_account,
    successful_logins_are_counted_per_client,
    racing_refreshes_keep_the_session,
);
