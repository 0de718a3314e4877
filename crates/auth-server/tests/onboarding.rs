//! Onboarding through auth-server: over HTTP, and in headless Chromium driven through
//! chromedriver (skipped, with the reason printed, when Chromium is not installed).

mod common;

use std::time::{Duration, Instant};

use auth::mfa::{TotpCode, TotpSettings};
use common::{PASSWORD, now, start};
use serde_json::{Value, json};

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_over_http() {
    let (base, outbox) = start(&[("AUTH_ONBOARDING_TOTP", "required")]).await;
    let (s, started) = post(
        &base,
        "/onboarding/start",
        json!({"email": "ann@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["current_step"], "register");
    let token = started["session_token"].as_str().unwrap().to_owned();
    let advance = |body: Value| {
        let mut body = body;
        body["session_token"] = Value::String(token.clone());
        post(&base, "/onboarding/advance", body)
    };
    let (_, r) = advance(
        json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": "nope"}),
    )
    .await;
    assert!(r["errors"]["password_confirm"].is_string());
    let (_, r) = advance(
        json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
    )
    .await;
    assert_eq!(r["current_step"], "verify_email");
    let code = outbox.code("ann@example.com");
    let (_, r) = advance(json!({"code": code})).await;
    assert_eq!(r["current_step"], "setup_totp");
    let hint = &r["client_hint"];
    assert_eq!(hint["skippable"], false);
    let (_, skipped) = advance(json!({"skip": true})).await;
    assert!(
        skipped["errors"]["skip"].is_string(),
        "required TOTP cannot be skipped"
    );
    let app = TotpCode::from_base32(
        hint["extra"]["secret"].as_str().unwrap(),
        TotpSettings::default(),
    )
    .unwrap();
    let (_, r) = advance(json!({"code": app.generate(now())})).await;
    assert_eq!(r["current_step"], "profile");
    assert_eq!(r["output"]["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, r) = advance(json!({"first_name": "Ann", "last_name": "Lee"})).await;
    assert_eq!(r["status"], "completed");
    let access = r["access_token"].as_str().unwrap();
    assert!(r["refresh_token"].is_string());
    let me: Value = reqwest::Client::new()
        .get(format!("{base}/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["email"].as_str(), me["is_verified"].as_bool()),
        (Some("ann@example.com"), Some(true))
    );

    // The seed's status codes: completed 409, unknown 404; a replaced session is unknown.
    assert_eq!(advance(json!({})).await.0, 409);
    assert_eq!(
        post(
            &base,
            "/onboarding/resume",
            json!({"session_token": "nope"})
        )
        .await
        .0,
        404
    );
    let (_, first) = post(
        &base,
        "/onboarding/start",
        json!({"email": "bo@example.com"}),
    )
    .await;
    post(
        &base,
        "/onboarding/start",
        json!({"email": "bo@example.com"}),
    )
    .await;
    assert_eq!(
        post(
            &base,
            "/onboarding/resume",
            json!({"session_token": first["session_token"]})
        )
        .await
        .0,
        404
    );
    // A malformed email is a typed 422.
    assert_eq!(
        post(&base, "/onboarding/start", json!({"email": "not-an-email"}))
            .await
            .0,
        422
    );
}

/// A minimal W3C WebDriver client over chromedriver's HTTP API. Dropping it (on success,
/// failure or panic) closes the WebDriver session, stops chromedriver, kills any Chromium
/// process still using the profile and removes the profile folder.
struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    // Dropped after `Browser::drop` closed the session.
    _driver: Driver,
}

/// chromedriver and the profile folder: reaped on drop, even when the session never started.
struct Driver {
    child: std::process::Child,
    profile: std::path::PathBuf,
}

/// Processes whose command line names `profile` (Chromium and its helpers).
fn processes_using(profile: &std::path::Path) -> Vec<u32> {
    let needle = profile.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium outlives a killed chromedriver: end what still uses this profile.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_using(&self.profile);
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // DELETE /session/{id} makes chromedriver quit Chromium; blocking std I/O, since a
        // destructor cannot await.
        use std::io::{Read, Write};
        let Some(addr) = self.base.strip_prefix("http://") else {
            return;
        };
        let Ok(addr) = addr.parse() else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                self.session
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn launch(profile: &std::path::Path) -> Option<Self> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let driver = ["/usr/bin/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            auth_testkit::skip(
                "chromium",
                "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; .ci/run installs them)",
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Driver {
            child: std::process::Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            profile: profile.to_path_buf(),
        };
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=900,1400", format!("--user-data-dir={}", profile.display())
            ]}
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned();
        Some(Self {
            http,
            base,
            session,
            _driver: driver,
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.http.request(method, url);
        let req = if body.is_null() { req } else { req.json(&body) };
        req.send().await.unwrap().json::<Value>().await.unwrap()["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Waits (polling, up to 10 s) until `script` returns something truthy, and returns it.
    async fn until(&self, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.script(script).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {script}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    async fn title_is(&self, title: &str) {
        self.until(&format!(
            "return !!document.getElementById('step') && document.getElementById('title').textContent === {title:?};"
        ))
            .await;
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_in_a_browser() {
    let profile = std::env::temp_dir().join(format!("auth-chromium-{}", std::process::id()));
    let Some(browser) = Browser::launch(&profile).await else {
        return;
    };
    let (base, outbox) = start(&[("AUTH_ONBOARDING_TOTP", "required")]).await;
    let email = "browser@example.com";
    browser.goto(&format!("{base}/onboarding/")).await;
    browser.title_is("Sign up").await;
    browser.type_into("input[name=email]", email).await;
    browser.click("#submit").await;

    browser.title_is("Create your account").await;
    // The email field is prefilled from the hint.
    assert_eq!(
        browser
            .script("return document.querySelector('input[name=email]').value;")
            .await,
        email
    );
    browser.type_into("input[name=password]", PASSWORD).await;
    browser
        .type_into("input[name=password_confirm]", "a-different-password-1")
        .await;
    browser.click("#submit").await;
    browser
        .until("return document.getElementById('errors').textContent.includes('password_confirm');")
        .await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser
        .type_into("input[name=password_confirm]", PASSWORD)
        .await;
    browser.click("#submit").await;

    browser.title_is("Check your email").await;
    browser
        .type_into("input[name=code]", &outbox.code(email))
        .await;
    browser.click("#submit").await;

    browser.title_is("Set up two-factor authentication").await;
    assert_eq!(
        browser
            .script("return !!document.querySelector('[data-key=qr_svg] svg');")
            .await,
        true
    );
    let secret_line = browser
        .until("return document.querySelector('[data-key=secret]').textContent;")
        .await;
    let secret = secret_line
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let app = TotpCode::from_base32(&secret, TotpSettings::default()).unwrap();
    browser
        .type_into("input[name=code]", &app.generate(now()))
        .await;
    browser.click("#submit").await;

    browser.title_is("About you").await;
    let notice = browser
        .script("return document.getElementById('notice').textContent;")
        .await;
    assert!(
        notice.as_str().unwrap().contains("Recovery codes"),
        "{notice}"
    );
    browser.type_into("input[name=first_name]", "Brow").await;
    browser.type_into("input[name=last_name]", "Ser").await;
    browser.click("#submit").await;

    let me = browser
        .until("return document.getElementById('me').textContent;")
        .await;
    assert_eq!(me, email);
    let title = browser
        .script("return document.getElementById('title').textContent;")
        .await;
    assert_eq!(title, "Welcome");
    let png = browser.screenshot().await;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let shot = std::env::temp_dir().join("auth-onboarding-final.png");
    std::fs::write(&shot, &png).unwrap();
    println!(
        "final page: title \"Welcome\", \"Signed in as {email}\"; screenshot {}",
        shot.display()
    );
    drop(browser);
    assert!(
        processes_using(&profile).is_empty() && !profile.exists(),
        "no Chromium process or profile folder is left behind"
    );
}

/// The pages the mailed links open, in a real browser: reset a password (mismatch and policy
/// errors in plain words, then success, then the spent link), confirm an address, confirm an
/// email change. The token leaves the address bar as soon as the page has read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_pages_in_a_browser() {
    let profile = std::env::temp_dir().join(format!("auth-chromium-links-{}", std::process::id()));
    let Some(browser) = Browser::launch(&profile).await else {
        return;
    };
    let (base, outbox) = start(&[]).await;
    let http = reqwest::Client::new();
    let post = |path: &str, bearer: Option<&str>, body: Value| {
        let mut req = http.post(format!("{base}{path}")).json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    let link = |url: &str| url.replace("https://app.example.com", &base);
    let text = |id: &str| format!("return document.getElementById('{id}').textContent;");
    let visible = |id: &str| {
        format!(
            "return !document.getElementById('{id}').hidden && document.getElementById('{id}').textContent;"
        )
    };

    // Reset a password.
    let r: Value = post(
        "/auth/register",
        None,
        json!({"email": "pat@example.com", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let access = r["access_token"].as_str().unwrap().to_owned();
    post(
        "/auth/password/reset/request",
        None,
        json!({"email": "pat@example.com"}),
    )
    .await
    .unwrap();
    let token = outbox
        .token("pat@example.com", "https://app.example.com/reset-password")
        .await;
    let url = link(&format!(
        "https://app.example.com/reset-password?token={token}"
    ));
    browser.goto(&url).await;
    browser
        .until("return document.getElementById('title').textContent === 'Choose a new password';")
        .await;
    assert_eq!(
        browser.script("return location.search;").await,
        "",
        "the token left the address bar"
    );
    browser
        .type_into("input[name=new_password]", "amber-heron-dances-7")
        .await;
    browser
        .type_into("input[name=confirm]", "amber-heron-dances-8")
        .await;
    browser.click("#submit").await;
    let errors = browser.until(&text("errors")).await;
    assert_eq!(errors, "The two passwords are not the same.");
    browser.type_into("input[name=new_password]", "short").await;
    browser.type_into("input[name=confirm]", "short").await;
    browser.click("#submit").await;
    let errors = browser
        .until("const t = document.getElementById('errors').textContent; return t.includes('too short') && t;")
        .await;
    assert!(
        !errors.as_str().unwrap().contains("password_too_short"),
        "plain words: {errors}"
    );
    browser
        .type_into("input[name=new_password]", "amber-heron-dances-7")
        .await;
    browser
        .type_into("input[name=confirm]", "amber-heron-dances-7")
        .await;
    browser.click("#submit").await;
    let done = browser.until(&visible("result")).await;
    assert_eq!(
        done,
        "Your password was changed. You can sign in with it now."
    );
    let status = post(
        "/auth/login",
        None,
        json!({"email": "pat@example.com", "password": "amber-heron-dances-7"}),
    )
    .await
    .unwrap()
    .status();
    assert_eq!(status, 200);
    // The same link again: spent.
    browser.goto(&url).await;
    browser
        .until("return document.getElementById('title').textContent === 'Choose a new password';")
        .await;
    browser
        .type_into("input[name=new_password]", "violet-otter-sings-43")
        .await;
    browser
        .type_into("input[name=confirm]", "violet-otter-sings-43")
        .await;
    browser.click("#submit").await;
    let spent = browser.until(&visible("result")).await;
    assert!(
        spent
            .as_str()
            .unwrap()
            .contains("already used or has expired"),
        "{spent}"
    );

    // Confirm an address.
    let r: Value = post(
        "/auth/register",
        None,
        json!({"email": "vera@example.com", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let vera = r["access_token"].as_str().unwrap().to_owned();
    post("/auth/email/verify/request", Some(&vera), Value::Null)
        .await
        .unwrap();
    let token = outbox
        .token("vera@example.com", "https://app.example.com/verify-email")
        .await;
    browser
        .goto(&link(&format!(
            "https://app.example.com/verify-email?token={token}"
        )))
        .await;
    browser
        .until("return document.getElementById('submit').textContent === 'Confirm my address';")
        .await;
    browser.click("#submit").await;
    let done = browser.until(&visible("result")).await;
    assert_eq!(done, "Your email address is confirmed. Thank you.");
    let me: Value = http
        .get(format!("{base}/auth/me"))
        .bearer_auth(&vera)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["is_verified"], true);

    // Confirm an email change.
    let _ = access;
    post(
        "/auth/email/change",
        Some(&vera),
        json!({"new_email": "vera@new.example", "password": PASSWORD}),
    )
    .await
    .unwrap();
    let token = outbox
        .token(
            "vera@new.example",
            "https://app.example.com/confirm-email-change",
        )
        .await;
    browser
        .goto(&link(&format!(
            "https://app.example.com/confirm-email-change?token={token}"
        )))
        .await;
    browser
        .until("return document.getElementById('submit').textContent === 'Confirm the change';")
        .await;
    browser.click("#submit").await;
    let done = browser.until(&visible("result")).await;
    assert_eq!(
        done,
        "Done: your account's email address is now vera@new.example."
    );
    let png = browser.screenshot().await;
    let shot = std::env::temp_dir().join("auth-link-page.png");
    std::fs::write(&shot, &png).unwrap();
    println!(
        "link pages: reset (mismatch, policy error in words, success, spent link), address confirmed, \
         email change confirmed; screenshot {}",
        shot.display()
    );
    drop(browser);
    assert!(
        processes_using(&profile).is_empty() && !profile.exists(),
        "no Chromium process or profile folder is left behind"
    );
}
