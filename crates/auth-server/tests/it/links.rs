//! Email change and sign-in by link or code over real HTTP: the mails to both addresses,
//! cancel from the old one, confirm from the new one (once; raced 30 ways; raced against a
//! sign-up of the same address), the old address dead afterwards; the sign-in link and code
//! (the same answer for unknown addresses, once each and once together, 30 concurrent uses of
//! one code, wrong codes locked out, the second factor still asked). Security notices by mail.
//! On an SQLite file, and on PostgreSQL and MariaDB when their URLs are set.

use crate::common;

use futures_util::future::join_all;
use serde_json::json;

use common::{PASSWORD, Server};

const BASE: &str = "https://app.example.com";

/// The 6-digit code of the last sign-in mail to `to`.
async fn magic_code(s: &Server, to: &str) -> String {
    s.outbox.sign_in_code(to).await
}

fn mails_to(s: &Server, to: &str, subject: &str) -> usize {
    s.outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to == to && m.subject == subject)
        .count()
}

async fn login(s: &Server, email: &str) -> u16 {
    s.send(
        s.post("/auth/login")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await
    .status
}

async fn email_change(s: &Server, what: &str) {
    let token = s.register("amy@example.com").await;
    let other = s.access_token("amy@example.com").await;

    // Wrong password: refused, nothing sent.
    let r = s
        .send(
            s.post("/auth/email/change")
                .bearer_auth(&token)
                .json(&json!({"new_email": "amy2@example.com", "password": "not-the-password"})),
        )
        .await;
    assert_eq!(r.status, 401, "{what}: {}", r.body);
    assert_eq!(r.body["reason"], "wrong_password");
    assert_eq!(
        mails_to(s, "amy2@example.com", "Confirm your new email address"),
        0
    );

    // Asked, then cancelled from the old address.
    let r = s
        .send(
            s.post("/auth/email/change")
                .bearer_auth(&token)
                .json(&json!({"new_email": "Thief@Example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 202, "{what}: {}", r.body);
    let cancel = s
        .outbox
        .token("amy@example.com", &format!("{BASE}/cancel-email-change"))
        .await;
    let confirm = s
        .outbox
        .token("thief@example.com", &format!("{BASE}/confirm-email-change"))
        .await;
    let r = s
        .send(
            s.post("/auth/email/change/cancel")
                .json(&json!({"token": cancel})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .send(
            s.post("/auth/email/change/confirm")
                .bearer_auth(&token)
                .json(&json!({"token": confirm})),
        )
        .await;
    assert_eq!(r.status, 401, "{what}: a cancelled change: {}", r.body);
    assert_eq!(r.body["reason"], "link_used_or_expired");

    // Asked again, confirmed 30 times at once: exactly one applies.
    s.send(
        s.post("/auth/email/change")
            .bearer_auth(&token)
            .json(&json!({"new_email": "amy.new@example.com", "password": PASSWORD})),
    )
    .await;
    let confirm = s
        .outbox
        .token(
            "amy.new@example.com",
            &format!("{BASE}/confirm-email-change"),
        )
        .await;
    let answers = join_all((0..30).map(|_| {
        s.send(
            s.post("/auth/email/change/confirm")
                .bearer_auth(&token)
                .json(&json!({"token": confirm})),
        )
    }))
    .await;
    let ok: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{what}: 30 confirmations, one applies");
    assert!(answers.iter().all(|r| r.status == 200 || r.status == 401));
    assert_eq!(ok[0].body["email"], "amy.new@example.com");
    assert_eq!(ok[0].body["is_verified"], true);
    // The confirming session stays, the other ended; the old address no longer signs in.
    let me = s.send(s.get("/auth/me").bearer_auth(&token)).await;
    assert_eq!(
        me.body["email"], "amy.new@example.com",
        "{what}: {}",
        me.body
    );
    assert_eq!(
        s.send(s.get("/auth/me").bearer_auth(&other)).await.status,
        401
    );
    assert_eq!(login(s, "amy@example.com").await, 401);
    assert_eq!(login(s, "amy.new@example.com").await, 200);
    assert_eq!(
        mails_to(s, "amy@example.com", "Your email address was changed"),
        1,
        "{what}: the old address is told"
    );

    // A confirmation racing a sign-up of the same address: one of them gets it.
    s.send(
        s.post("/auth/email/change")
            .bearer_auth(&token)
            .json(&json!({"new_email": "contested@example.com", "password": PASSWORD})),
    )
    .await;
    let confirm = s
        .outbox
        .token(
            "contested@example.com",
            &format!("{BASE}/confirm-email-change"),
        )
        .await;
    let confirms = (0..15).map(|_| {
        s.send(
            s.post("/auth/email/change/confirm")
                .bearer_auth(&token)
                .json(&json!({"token": confirm})),
        )
    });
    let signups = (0..15).map(|_| {
        s.send(
            s.post("/auth/register")
                .json(&json!({"email": "contested@example.com", "password": PASSWORD})),
        )
    });
    let (confirms, signups) = tokio::join!(join_all(confirms), join_all(signups));
    let confirmed = confirms.iter().filter(|r| r.status == 200).count();
    let signed_up = signups.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        confirmed + signed_up,
        1,
        "{what}: one account holds the address ({confirmed} confirmations, {signed_up} sign-ups)"
    );
    let holders = s
        .send(
            s.post("/auth/login")
                .json(&json!({"email": "contested@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(holders.status, 200);

    // Taken addresses are answered like free ones, and nothing is sent.
    let amy_now = if confirms.iter().any(|r| r.status == 200) {
        "contested@example.com"
    } else {
        "amy.new@example.com"
    };
    s.register("bea@example.com").await;
    let fresh = s.access_token(amy_now).await;
    let r = s
        .send(
            s.post("/auth/email/change")
                .bearer_auth(&fresh)
                .json(&json!({"new_email": "bea@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        mails_to(s, "bea@example.com", "Confirm your new email address"),
        0
    );
    println!(
        "{what}: email change: cancel kills the link; 30 concurrent confirmations -> one 200; \
         confirm vs sign-up raced 15+15 -> one holder ({}); taken address answered 202, nothing sent",
        if amy_now.starts_with("contested") {
            "the confirmation"
        } else {
            "a sign-up"
        }
    );
}

async fn magic_link(s: &Server, what: &str) {
    s.register("mel@example.com").await;
    let mut flows = Vec::new();
    for email in ["mel@example.com", "ghost@example.com"] {
        let r = s
            .send(
                s.post("/auth/magic-link/request")
                    .json(&json!({"email": email})),
            )
            .await;
        assert_eq!(r.status, 202, "{what}: the same answer for {email}");
        // The flow, in the body and in an HttpOnly cookie for this browser.
        let cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
        let flow = r.body["flow"].as_str().unwrap().to_owned();
        assert!(
            cookie.starts_with(&format!("auth_magic_flow={flow};"))
                && cookie.contains("HttpOnly")
                && cookie.contains("Path=/auth/magic-link"),
            "{cookie}"
        );
        flows.push(flow);
    }
    let (mel_flow, ghost_flow) = (flows[0].clone(), flows[1].clone());
    let token = s
        .outbox
        .token("mel@example.com", &format!("{BASE}/magic-link"))
        .await;
    let code = magic_code(s, "mel@example.com").await;
    assert_eq!(mails_to(s, "ghost@example.com", "Your sign-in link"), 0);
    // Look-alike addresses reach nobody's account; crafted input is not an address at all.
    // ("magic-code:mel@example.com" and "*|mel@example.com" are addresses too: others, each
    // with throttle keys of its own.)
    for look_alike in [
        "m\u{e9}l@example.com",
        "mel@ex\u{e4}mple.com",
        "magic-code:mel@example.com",
        "*|mel@example.com",
    ] {
        let r = s
            .send(
                s.post("/auth/magic-link/request")
                    .json(&json!({"email": look_alike})),
            )
            .await;
        assert_eq!(r.status, 202, "{what}: {look_alike}");
    }
    for crafted in ["", "mel at example.com", "mel@"] {
        let r = s
            .send(
                s.post("/auth/magic-link/request")
                    .json(&json!({"email": crafted})),
            )
            .await;
        assert_eq!(r.status, 422, "{what}: {crafted:?}");
        let r = s
            .send(
                s.post("/auth/magic-link/verify")
                    .json(&json!({"email": crafted, "code": "123456"})),
            )
            .await;
        assert_eq!(r.status, 401, "{what}: {crafted:?}");
    }
    // Wrong codes under a key-shaped address lock that address, not mel's code sign-in (the
    // 30 uses of mel's code below would find it locked).
    for _ in 0..6 {
        s.send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"email": "magic-code:mel@example.com", "code": "123456"})),
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        mails_to(s, "mel@example.com", "Your sign-in link"),
        1,
        "{what}: look-alikes mailed mel nothing"
    );
    // Only the browser that asked: without its flow, or with another request's, the link is
    // refused (a link sent to a victim signs them into nothing).
    for bystander in [
        json!({"token": token}),
        json!({"token": token, "flow": ghost_flow}),
    ] {
        let r = s
            .send(s.post("/auth/magic-link/verify").json(&bystander))
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.body);
    }
    // The link logs in once, with the flow as a cookie; the code of the same mail is spent
    // with it.
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .header("cookie", format!("auth_magic_flow={mel_flow}"))
                .json(&json!({"token": token})),
        )
        .await;
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    assert!(r.body["access_token"].is_string());
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"token": token, "flow": mel_flow})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"email": "mel@example.com", "code": code, "flow": mel_flow})),
        )
        .await;
    assert_eq!(r.status, 401, "{what}: the code went with the link");

    // One code, 30 concurrent uses: one session.
    let r = s
        .send(
            s.post("/auth/magic-link/request")
                .header("x-forwarded-for", "1.2.3.4")
                .json(&json!({"email": "mel@example.com"})),
        )
        .await;
    let mel_flow = r.body["flow"].as_str().unwrap().to_owned();
    let code = loop {
        let c = magic_code(s, "mel@example.com").await;
        if mails_to(s, "mel@example.com", "Your sign-in link") == 2 {
            break c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let answers = join_all((0..30).map(|i| {
        s.send(
            s.post("/auth/magic-link/verify")
                .header("x-forwarded-for", format!("10.9.8.{i}"))
                .json(&json!({"email": "MEL@example.com", "code": code, "flow": mel_flow})),
        )
    }))
    .await;
    let sessions = answers.iter().filter(|r| r.status == 200).count();
    assert_eq!(sessions, 1, "{what}: 30 uses of one code, one session");

    // Wrong codes: a few, then locked (the right code too). Another address: the 30 uses
    // above counted against mel's code throttle in an order that depends on timing.
    s.register("mia@example.com").await;
    let r = s
        .send(
            s.post("/auth/magic-link/request")
                .json(&json!({"email": "mia@example.com"})),
        )
        .await;
    let mia_flow = r.body["flow"].as_str().unwrap().to_owned();
    let good = magic_code(s, "mia@example.com").await;
    let wrong = if good == "000000" { "000001" } else { "000000" };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            s.send(
                s.post("/auth/magic-link/verify")
                    .json(&json!({"email": "mia@example.com", "code": wrong, "flow": mia_flow})),
            )
            .await
            .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{what}");
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"email": "mia@example.com", "code": good, "flow": mia_flow})),
        )
        .await;
    assert_eq!(r.status, 429, "{what}: code sign-in locked for the address");
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"token": "x.y.z"})),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .send(
            s.post("/auth/magic-link/verify")
                .json(&json!({"email": "mel@example.com"})),
        )
        .await;
    assert_eq!(r.status, 422);
    // Requests are throttled per address and client, alike for known and unknown addresses.
    for email in ["mel@example.com", "ghost@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(
                s.send(
                    s.post("/auth/magic-link/request")
                        .header("x-forwarded-for", "5.6.7.8")
                        .json(&json!({"email": email})),
                )
                .await
                .status,
            );
        }
        assert_eq!(statuses, [202, 202, 202, 202, 202, 429], "{what}: {email}");
    }
    println!(
        "{what}: sign-in links: unknown address 202 and no mail; requests throttled alike for known and unknown; link once, its code spent with it; \
         30 concurrent uses of one code -> one session; 5 wrong codes then 429"
    );
}

async fn notices(s: &Server, what: &str) {
    let token = s.register("nia@example.com").await;
    let r = s
        .send(
            s.post("/auth/password/change").bearer_auth(&token).json(
                &json!({"current_password": PASSWORD, "new_password": "amber-heron-dances-7"}),
            ),
        )
        .await;
    assert_eq!(r.status, 204);
    for _ in 0..5 {
        s.send(
            s.post("/auth/login")
                .json(&json!({"email": "nia@example.com", "password": "wrong-password-entirely"})),
        )
        .await;
    }
    for _ in 0..500 {
        if mails_to(s, "nia@example.com", "Your password was changed") == 1
            && mails_to(s, "nia@example.com", "Sign-in to your account was locked") == 1
        {
            println!("{what}: notices: password changed, account locked");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{what}: the notices were not mailed");
}

async fn run(db_url: &str, what: &str) {
    let s = Server::start(&[
        ("DATABASE_URL", db_url),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1"),
        // The sign-up race below sends 15 sign-ups from one address.
        ("AUTH_SIGNUP_RATE_LIMIT_ATTEMPTS", "1000"),
    ])
    .await;
    email_change(&s, what).await;
    magic_link(&s, what).await;
    notices(&s, what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_on_sqlite_file() {
    let (dir, url) = common::sqlite_file("auth-links");
    run(&url, "SQLite").await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_on_postgres() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::Postgres).await {
        run(&url, "PostgreSQL").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn links_on_mariadb() {
    if let Some(url) = auth_testkit::db::fresh_url(auth_testkit::db::Target::MySql).await {
        run(&url, "MariaDB").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_device_notice_is_opt_in() {
    let s = Server::start(&[("AUTH_NOTIFY_NEW_DEVICE", "true")]).await;
    // Signed up from the laptop: its sign-ins are not new; the phone's first is.
    let r = s
        .send(
            s.post("/auth/register")
                .header("user-agent", "Laptop/1")
                .json(&json!({"email": "ned@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 201);
    let login_as = |ua: &'static str| {
        s.send(
            s.post("/auth/login")
                .header("user-agent", ua)
                .json(&json!({"email": "ned@example.com", "password": PASSWORD})),
        )
    };
    assert_eq!(login_as("Laptop/1").await.status, 200);
    assert_eq!(login_as("Laptop/1").await.status, 200);
    assert_eq!(login_as("Phone/9").await.status, 200);
    // Give a wrongly sent second notice the time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for _ in 0..500 {
        if mails_to(&s, "ned@example.com", "New sign-in to your account") == 1 {
            let body = s
                .outbox
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|m| m.subject == "New sign-in to your account")
                .unwrap()
                .body
                .clone();
            assert!(body.contains("Phone/9"), "{body}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let subjects: Vec<String> = s
        .outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.subject.clone())
        .collect();
    panic!("no new-device notice: {subjects:?}");
}
