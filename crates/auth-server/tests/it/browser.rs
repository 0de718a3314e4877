//! The hosted pages in headless Chromium, driven through chromedriver with fantoccini, and
//! passkeys through Chromium's virtual authenticator (the WebDriver WebAuthn extension):
//! sign-up (onboarding), sign-in with a password, with TOTP, with a passkey and no password,
//! a passkey as the second step, the account page (add and remove a passkey, turn on TOTP,
//! sign out another session), reset and verification from the mailed links. Screenshots of
//! every page at desktop and phone width go to `docs/pages/`. Skipped, with the reason
//! printed, when Chromium or chromedriver is not installed. No test leaves a browser running:
//! the session is closed, and chromedriver and every Chromium process of the profile are
//! killed on drop, also when a test fails.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::mfa::{TotpCode, TotpSettings};
use common::{Outbox, PASSWORD, now, start};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use serde_json::{Value, json};
use webauthn_rs::prelude::Url;

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

/// A command of a WebDriver extension: chromedriver's WebAuthn virtual authenticators
/// (W3C WebAuthn §11) and its DevTools bridge, under `/session/{id}/…`.
#[derive(Debug)]
struct Extension {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }
    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Headless Chromium through fantoccini. `quit` closes the session; dropping it (also on a
/// panic) kills chromedriver and every Chromium process of the profile, and removes it.
struct Browser {
    driver: Client,
    profile: std::path::PathBuf,
    // Dropped last: reaps the processes.
    _chromedriver: Driver,
}

impl Browser {
    async fn launch(name: &str) -> Option<Self> {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let chromedriver = ["/usr/bin/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            auth_testkit::skip(
                "chromium",
                "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; .ci/run installs them)",
            );
            return None;
        };
        let profile =
            std::env::temp_dir().join(format!("auth-chromium-{name}-{}", std::process::id()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chromedriver = Driver {
            child: std::process::Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            profile: profile.clone(),
        };
        let server = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{server}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,900".into(),
        ];
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let driver = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&server)
            .await
            .unwrap();
        Some(Self {
            driver,
            profile,
            _chromedriver: chromedriver,
        })
    }

    /// Closes the session, then checks nothing of the browser is left.
    async fn quit(self) {
        let profile = self.profile.clone();
        let Self {
            driver,
            _chromedriver,
            ..
        } = self;
        driver.close().await.unwrap();
        drop(_chromedriver);
        assert!(
            processes_using(&profile).is_empty() && !profile.exists(),
            "no Chromium process or profile folder is left behind"
        );
    }

    async fn goto(&self, url: &str) {
        self.driver.goto(url).await.unwrap();
    }

    async fn script(&self, script: &str) -> Value {
        self.driver.execute(script, Vec::new()).await.unwrap()
    }

    /// Waits (polling, up to 10 s) until `script` returns something truthy, and returns it.
    async fn until(&self, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.script(script).await;
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                let page = self
                    .script("return location.href + '\\n' + document.body.innerText.slice(0, 600);")
                    .await;
                panic!(
                    "timed out waiting for: {script}\non {}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first shown element matching `css`, waiting (up to 10 s) while the page settles.
    async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let problem = match self.driver.find(Locator::Css(css)).await {
                Ok(element) => match element.is_displayed().await {
                    Ok(true) => return element,
                    Ok(false) => "not shown".to_owned(),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(Instant::now() < deadline, "{css}: {problem}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks `css` once it is shown. A click the driver reports as failed is retried (for up
    /// to 5 s) while the element is still on the page; one that navigated away (the element is
    /// gone) did its work.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) => {
                    let present =
                        format!("return document.querySelector({}) !== null;", json!(css));
                    if self.script(&present).await != json!(true) {
                        return;
                    }
                    assert!(Instant::now() < deadline, "{css}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn title_is(&self, title: &str) {
        self.until(&format!(
            "return document.getElementById('title').textContent === {};",
            json!(title)
        ))
        .await;
    }

    async fn path_is(&self, path: &str) {
        self.until(&format!("return location.pathname === {};", json!(path)))
            .await;
    }

    async fn text(&self, id: &str) -> String {
        self.until(&format!(
            "const e = document.getElementById({}); return e && !e.hidden && e.textContent;",
            json!(id)
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn screenshot(&self) -> Vec<u8> {
        let png = self.driver.screenshot().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        png
    }

    /// Signs out from the account page and in again with `email` and the password.
    async fn sign_out_and_in(&self, email: &str) {
        self.click("#sign-out").await;
        self.path_is("/login").await;
        self.type_into("#email", email).await;
        self.type_into("#password", PASSWORD).await;
        self.click("#sign-in").await;
    }

    /// Screenshots of the current page at desktop and phone width, into `docs/pages/`.
    async fn shots(&self, name: &str) {
        self.shots_of(name, None).await;
    }

    /// Screenshots as [`shots`](Self::shots), scrolled to the element `id` when given.
    async fn shots_of(&self, name: &str, id: Option<&str>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pages");
        std::fs::create_dir_all(&dir).unwrap();
        for (size, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
            self.driver
                .set_window_rect(0, 0, width, height)
                .await
                .unwrap();
            if let Some(id) = id {
                self.script(&format!(
                    "document.getElementById('{id}').scrollIntoView({{block: 'center'}}); return true;"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            let png = self.screenshot().await;
            std::fs::write(dir.join(format!("{name}-{size}.png")), png).unwrap();
        }
        self.driver.set_window_rect(0, 0, 1280, 900).await.unwrap();
    }

    async fn extension(&self, method: http::Method, path: String, body: Option<Value>) -> Value {
        self.driver
            .issue_cmd(Extension { method, path, body })
            .await
            .unwrap()
    }

    /// A virtual authenticator: an internal platform authenticator that keeps discoverable
    /// credentials, verifies its user and consents at once. Its id.
    async fn add_virtual_authenticator(&self) -> String {
        let id = self
            .extension(
                http::Method::POST,
                "webauthn/authenticator".into(),
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "isUserConsenting": true,
                })),
            )
            .await;
        id.as_str().unwrap_or_else(|| panic!("{id}")).to_owned()
    }

    /// From now on, pages see a browser without passkey autofill (conditional UI) while
    /// `localStorage["test:no-autofill"]` is `"1"`: the virtual authenticator answers a pending
    /// autofill request at once, so the passkey button and the password paths need it off.
    async fn autofill_switch(&self) {
        self.extension(
            http::Method::POST,
            "goog/cdp/execute".into(),
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source":
                "if (window.PublicKeyCredential && localStorage.getItem('test:no-autofill') === '1') { \
                   PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false); }"}})),
        )
        .await;
    }

    async fn autofill(&self, on: bool) {
        self.script(&format!(
            "localStorage.setItem('test:no-autofill', '{}'); return true;",
            if on { "0" } else { "1" }
        ))
        .await;
    }

    async fn passkeys_held(&self, authenticator: &str) -> usize {
        let list = self
            .extension(
                http::Method::GET,
                format!("webauthn/authenticator/{authenticator}/credentials"),
                None,
            )
            .await;
        list.as_array().map_or(0, Vec::len)
    }
}

/// auth-server on `http://localhost:<port>` (a secure context for WebAuthn, and the passkeys'
/// relying party), `vars` on top; its base URL and outbox.
async fn start_on_localhost(vars: &[(&str, &str)]) -> (String, Outbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    serve_on(listener, &base, vars).await
}

/// [`start_on_localhost`] on a listener bound already (its URL known to a provider first).
async fn serve_on(
    listener: tokio::net::TcpListener,
    base: &str,
    vars: &[(&str, &str)],
) -> (String, Outbox) {
    let base = base.to_owned();
    let mut map: std::collections::HashMap<String, String> = [
        ("AUTH_SIGNING_SECRET", common::SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
        ("AUTH_PUBLIC_URL", base.as_str()),
        ("AUTH_MFA_ISSUER", "Example"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = auth_server::Settings::from_lookup(|n| map.get(n).cloned()).unwrap();
    let db = auth_server::connect_with(&settings.database_url, settings.sqlite_durability)
        .await
        .unwrap();
    let outbox = Outbox::default();
    let app = auth_server::app_with_mailer(&settings, db, Arc::new(outbox.clone())).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (base, outbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_in_a_browser() {
    let Some(browser) = Browser::launch("onboarding").await else {
        return;
    };
    let (base, outbox) = start(&[("AUTH_ONBOARDING_TOTP", "required")]).await;
    let email = "browser@example.com";
    browser.goto(&format!("{base}/onboarding/")).await;
    browser.title_is("Sign up").await;
    browser.shots("sign-up").await;
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
        .until("return document.getElementById('errors').textContent.includes('the passwords do not match');")
        .await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser
        .type_into("input[name=password_confirm]", PASSWORD)
        .await;
    browser.click("#submit").await;

    browser.title_is("Check your email").await;
    // The code step offers a new code once the cooldown has run.
    browser
        .until("return !document.getElementById('resend').hidden && document.getElementById('resend').textContent.startsWith('Send a new code');")
        .await;
    browser.shots("sign-up-code").await;
    browser
        .type_into("input[name=code]", &outbox.code(email))
        .await;
    browser.click("#submit").await;

    browser.title_is("Set up two-factor authentication").await;
    browser.shots("sign-up-totp").await;
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
    browser.quit().await;
}

/// The pages the mailed links open, in a real browser: reset a password (mismatch and policy
/// errors in plain words, then success, then the spent link), confirm an address, confirm an
/// email change. The token leaves the address bar as soon as the page has read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_pages_in_a_browser() {
    let Some(browser) = Browser::launch("links").await else {
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
    let hints = browser.text("hints").await;
    assert!(
        hints.contains("at least 8 characters"),
        "the policy's rules: {hints}"
    );
    browser.shots("reset-password").await;
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
    browser.shots("verify-email").await;
    browser.click("#submit").await;
    // Opened in a browser that did not ask for it (the request came from an API client): the
    // mailbox alone proved the address, so what was set up before is gone, the password too,
    // and the page asks for a new one at once.
    browser
        .until("return document.getElementById('title').textContent === 'Choose a new password';")
        .await;
    let said = browser.text("description").await;
    assert!(said.contains("its password too"), "{said}");
    browser.shots("verify-email-claimed").await;
    assert_eq!(
        http.get(format!("{base}/auth/me"))
            .bearer_auth(&vera)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "the session from before the proof ended"
    );
    browser
        .type_into("input[name=new_password]", "amber-heron-dances-9")
        .await;
    browser
        .type_into("input[name=confirm]", "amber-heron-dances-9")
        .await;
    browser.click("#submit").await;
    let done = browser.until(&visible("result")).await;
    assert_eq!(
        done,
        "Your password was changed. You can sign in with it now."
    );
    let r: Value = post(
        "/auth/login",
        None,
        json!({"email": "vera@example.com", "password": "amber-heron-dances-9"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let vera = r["access_token"].as_str().unwrap().to_owned();
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
        json!({"new_email": "vera@new.example", "password": "amber-heron-dances-9"}),
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
    // This browser did not ask for the change and holds no session of the account: whoever
    // merely holds the new mailbox cannot move an account onto it.
    let refused = browser.until(&visible("result")).await;
    assert_eq!(
        refused,
        "Open this link in the browser where you asked for the change, signed in to your account."
    );
    // Where the account is signed in, it works.
    let r = post(
        "/auth/email/change/confirm",
        Some(&vera),
        json!({"token": token}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["email"], "vera@new.example");

    // Sign in with a code by email on /login, then with the mailed link on /magic-link: both
    // in this browser, which holds the request's flow (an HttpOnly cookie).
    browser.goto(&format!("{base}/login")).await;
    browser
        .until("return !document.getElementById('password-step').hidden;")
        .await;
    browser.click("#email-code").await;
    browser.type_into("#magic-email", "pat@example.com").await;
    browser.click("#magic-send").await;
    browser
        .until("return !document.getElementById('magic-form').hidden;")
        .await;
    browser.shots("login-email-code").await;
    let mails = |to: &'static str| {
        let outbox = outbox.clone();
        move || {
            outbox
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.to == to && m.subject == "Your sign-in link")
                .count()
        }
    };
    let pat_mails = mails("pat@example.com");
    while pat_mails() < 1 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let body = outbox
        .0
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m.to == "pat@example.com" && m.subject == "Your sign-in link")
        .map(|m| m.body.clone())
        .unwrap();
    let code = body.split("code: ").nth(1).unwrap()[..6].to_owned();
    browser.type_into("#magic-code", &code).await;
    browser.click("#magic-verify").await;
    browser
        .until("return location.pathname === '/account';")
        .await;
    browser.script("sessionStorage.clear(); return true;").await;
    // The link: asked again, opened from the mail in this browser.
    browser.goto(&format!("{base}/login")).await;
    browser
        .until("return !document.getElementById('password-step').hidden;")
        .await;
    browser.click("#email-code").await;
    browser.type_into("#magic-email", "pat@example.com").await;
    browser.click("#magic-send").await;
    browser
        .until("return !document.getElementById('magic-form').hidden;")
        .await;
    while pat_mails() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let token = outbox
        .token("pat@example.com", "https://app.example.com/magic-link")
        .await;
    browser
        .goto(&link(&format!(
            "https://app.example.com/magic-link?token={token}"
        )))
        .await;
    browser
        .until("return location.pathname === '/account';")
        .await;
    let png = browser.screenshot().await;
    let shot = std::env::temp_dir().join("auth-link-page.png");
    std::fs::write(&shot, &png).unwrap();
    println!(
        "link pages: reset (mismatch, policy error in words, success, spent link), address confirmed from another browser (claimed: a new password chosen on the spot), \
         email change refused in a browser that did not ask, confirmed from the account's session; \
         sign-in code by email and the mailed link, each in the browser that asked; screenshot {}",
        shot.display()
    );
    browser.quit().await;
}

async fn api(
    base: &str,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if !body.is_null() {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `/login` and `/account` end to end, with passkeys from Chromium's virtual authenticator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_account_pages_with_passkeys() {
    let Some(browser) = Browser::launch("pages").await else {
        return;
    };
    let (base, outbox) = start_on_localhost(&[("AUTH_TRUSTED_DEVICE_DAYS", "30")]).await;
    let email = "page@example.com";
    let (s, r) = api(
        &base,
        reqwest::Method::POST,
        "/auth/register",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, 201, "{r}");

    // A wrong password, then the right one: /account.
    browser.goto(&format!("{base}/login")).await;
    browser.title_is("Sign in").await;
    browser.shots("login").await;
    browser.type_into("#email", email).await;
    browser.type_into("#password", "not-the-password-1").await;
    browser.click("#sign-in").await;
    assert_eq!(
        browser.text("login-errors").await,
        "The email address or the password is not right."
    );
    browser.type_into("#password", PASSWORD).await;
    browser.click("#sign-in").await;
    browser.path_is("/account").await;
    assert_eq!(browser.text("email").await, email);
    assert_eq!(browser.text("verified").await, "Not confirmed");

    // Confirm the address from the mail the account page asks for.
    browser.click("#send-verification").await;
    assert!(
        browser
            .text("account-status")
            .await
            .contains("We sent you a link")
    );
    let token = outbox.token(email, "/verify-email").await;
    browser
        .goto(&format!("{base}/verify-email?token={token}"))
        .await;
    browser
        .until("return document.getElementById('submit').textContent === 'Confirm my address';")
        .await;
    browser.click("#submit").await;
    assert_eq!(
        browser.text("result").await,
        "Your email address is confirmed. Thank you."
    );

    // Add a passkey on /account (the virtual authenticator verifies its user).
    browser.autofill_switch().await;
    let authenticator = browser.add_virtual_authenticator().await;
    browser.goto(&format!("{base}/account")).await;
    assert_eq!(browser.text("verified").await, "Confirmed");
    browser
        .until(
            "return document.getElementById('passkeys').textContent.includes('No passkeys yet');",
        )
        .await;
    browser.click("#add-passkey").await;
    browser
        .until("return document.getElementById('passkeys').textContent.includes('Passkey');")
        .await;
    assert_eq!(browser.passkeys_held(&authenticator).await, 1);

    // Sign out: the sign-in page offers the passkey in the email field's autofill, and the
    // virtual authenticator (which consents at once) takes it: signed in, no password typed.
    browser.click("#sign-out").await;
    browser.until("return document.getElementById('passkeys') && !document.getElementById('passkeys').textContent.includes('last used never') && document.getElementById('passkeys').textContent.includes('last used');").await;
    browser.path_is("/account").await;
    assert_eq!(browser.text("email").await, email);

    // Without autofill: the "Sign in with a passkey" button.
    browser.autofill(false).await;
    browser.click("#sign-out").await;
    browser.path_is("/login").await;
    browser.click("#passkey").await;
    browser.path_is("/account").await;
    assert_eq!(browser.text("email").await, email);

    // Another session (a second device), signed out from this page.
    let (_, other) = api(
        &base,
        reqwest::Method::POST,
        "/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    let other = other["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        api(
            &base,
            reqwest::Method::GET,
            "/auth/me",
            Some(&other),
            Value::Null
        )
        .await
        .0,
        200
    );
    browser.goto(&format!("{base}/account")).await;
    browser
        .until("return document.querySelectorAll('#sessions li').length >= 2;")
        .await;
    browser.shots("account").await;
    // The sessions: the test's sign-up, this browser, the other device (newest, last).
    let before = browser
        .script("return document.querySelectorAll('#sessions button.danger').length;")
        .await;
    browser.click("#sessions li:last-child button.danger").await;
    browser
        .until(&format!(
            "return document.querySelectorAll('#sessions button.danger').length === {} - 1;",
            before
        ))
        .await;
    assert_eq!(
        api(
            &base,
            reqwest::Method::GET,
            "/auth/me",
            Some(&other),
            Value::Null
        )
        .await
        .0,
        401,
        "the other device is signed out"
    );

    // Secure my account: a stolen session left an API key behind; the owner keeps the passkey.
    let (_, thief) = api(
        &base,
        reqwest::Method::POST,
        "/auth/login",
        None,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    let thief = thief["access_token"].as_str().unwrap().to_owned();
    let (status, key) = api(
        &base,
        reqwest::Method::POST,
        "/auth/api-keys",
        Some(&thief),
        json!({"name": "backdoor", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    browser.goto(&format!("{base}/account")).await;
    browser
        .until("return document.querySelectorAll('#secure-keep-list input[name=passkey]').length === 1;")
        .await;
    browser.click("#secure-keep-list input[name=passkey]").await;
    browser.click("#secure").await;
    let done = browser
        .until("const t = document.getElementById('secure-status').textContent; return t.length > 0 && t;")
        .await;
    let done = done.as_str().unwrap().to_owned();
    assert!(
        done.contains("1 API keys revoked") && done.contains("0 passkeys"),
        "{done}"
    );
    browser.shots("account-secured").await;
    assert_eq!(
        api(
            &base,
            reqwest::Method::GET,
            "/auth/me",
            Some(&thief),
            Value::Null
        )
        .await
        .0,
        401,
        "the thief's session ended"
    );
    let key = key["key"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(format!("{base}/auth/me"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the key left behind is revoked");

    // Turn on two-step verification.
    browser.click("#mfa-setup").await;
    let secret = browser.text("mfa-secret").await;
    let app = TotpCode::from_base32(&secret, TotpSettings::default()).unwrap();
    browser.shots("account-totp").await;
    browser
        .type_into("#mfa-confirm-code", &app.generate(now()))
        .await;
    browser.click("#mfa-enrol button[type=submit]").await;
    assert!(browser.text("recovery").await.contains("recovery codes"));
    assert_eq!(browser.text("mfa-state").await, "On");

    // Password, then the code.
    browser.sign_out_and_in(email).await;
    browser
        .until("return !document.getElementById('code-step').hidden;")
        .await;
    browser.shots("login-code").await;
    browser.type_into("#code", "000000").await;
    browser.click("#verify").await;
    assert!(browser.text("code-errors").await.contains("not right"));
    // Trust this browser (AUTH_TRUSTED_DEVICE_DAYS=30): the account page lists it.
    assert_eq!(
        browser
            .script("return document.getElementById('trust-row').hidden;")
            .await,
        Value::Bool(false),
        "the trust checkbox is offered"
    );
    browser.click("#trust").await;
    browser.type_into("#code", &app.generate(now() + 30)).await;
    browser.click("#verify").await;
    browser.path_is("/account").await;
    browser
        .until("return !document.getElementById('devices-card').hidden;")
        .await;
    browser
        .shots_of("account-trusted-browser", Some("devices-card"))
        .await;

    // The trusted browser signs in with the password alone.
    browser.sign_out_and_in(email).await;
    browser.path_is("/account").await;

    // Forgotten on the account page: the next sign-in asks for the second step again.
    browser
        .until("return document.querySelectorAll('#devices button.danger').length === 1;")
        .await;
    browser.click("#devices button.danger").await;
    browser
        .until("return document.getElementById('devices-card').hidden;")
        .await;

    // Password, then the passkey as the second step.
    browser.sign_out_and_in(email).await;
    browser
        .until("return !document.getElementById('code-step').hidden;")
        .await;
    browser.click("#code-passkey").await;
    browser.path_is("/account").await;

    // Rename it in place.
    browser.click("#passkeys button.secondary").await;
    browser
        .type_into("#passkeys form.rename input[name=name]", "Work laptop")
        .await;
    browser
        .click("#passkeys form.rename button[type=submit]")
        .await;
    browser
        .until("return document.getElementById('passkeys').textContent.includes('Work laptop');")
        .await;

    // Remove the passkey (the password remains).
    browser
        .until("return document.querySelectorAll('#passkeys button.danger').length === 1;")
        .await;
    browser.click("#passkeys button.danger").await;
    browser
        .until(
            "return document.getElementById('passkeys').textContent.includes('No passkeys yet');",
        )
        .await;

    // Forgot the password: the reset link from the mail, on its page.
    browser.click("#sign-out").await;
    browser.path_is("/login").await;
    browser.click("#forgot").await;
    browser.type_into("#reset-email", email).await;
    browser.click("#reset-form button[type=submit]").await;
    assert!(
        browser
            .text("reset-status")
            .await
            .contains("a link is on its way")
    );
    let token = outbox.token(email, "/reset-password").await;
    browser
        .goto(&format!("{base}/reset-password?token={token}"))
        .await;
    browser.title_is("Choose a new password").await;
    browser
        .type_into("input[name=new_password]", "amber-heron-dances-7")
        .await;
    browser
        .type_into("input[name=confirm]", "amber-heron-dances-7")
        .await;
    browser.click("#submit").await;
    assert_eq!(
        browser.text("result").await,
        "Your password was changed. You can sign in with it now."
    );
    let (s, _) = api(
        &base,
        reqwest::Method::POST,
        "/auth/login",
        None,
        json!({"email": email, "password": "amber-heron-dances-7"}),
    )
    .await;
    assert_eq!(s, 200, "the new password works");
    println!(
        "pages: password sign-in (wrong, right), address confirmed, passkey added, passwordless passkey \
         sign-in from autofill and from the button, another session signed out, account secured (a stolen session's API key revoked, the passkey kept), TOTP on, password + code (trusting the browser), password alone on the trusted browser, the browser forgotten, password + passkey, passkey \
         renamed in place, passkey removed, reset from the mailed link; screenshots in docs/pages/"
    );
    browser.quit().await;
}

/// "Continue with <provider>" on `/login`, through a real OpenID provider's login and consent
/// pages in Chromium (panva's oidc-provider on localhost), back to `/login` with a code, then
/// `/account` showing the connected account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_sign_in_in_a_browser() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let Some(op) =
        auth_testkit::oidc_provider::OidcProvider::start(&format!("{base}/auth/oauth/op/callback"))
            .await
    else {
        return;
    };
    let Some(browser) = Browser::launch("oauth").await else {
        return;
    };
    let (base, _outbox) = serve_on(
        listener,
        &base,
        &[
            ("AUTH_OAUTH_PROVIDERS", "op"),
            ("AUTH_OAUTH_OP_ISSUER", op.issuer()),
            ("AUTH_OAUTH_OP_CLIENT_ID", "auth-test"),
            ("AUTH_OAUTH_OP_CLIENT_SECRET", "auth-test-secret"),
        ],
    )
    .await;
    browser.goto(&format!("{base}/login")).await;
    browser.title_is("Sign in").await;
    browser
        .until("return document.querySelector('#providers button') !== null;")
        .await;
    browser.shots("login-providers").await;
    browser.click("#providers button[data-provider=op]").await;
    // The provider's own pages: its login form, then its consent form.
    browser.type_into("input[name=login]", "ada").await;
    browser.type_into("input[name=password]", "pass").await;
    browser.click("button[type=submit]").await;
    browser.until("return document.body.innerText.includes('Authorize') || location.pathname === '/account';").await;
    if browser.script("return location.pathname;").await != json!("/account") {
        browser.click("button[type=submit]").await;
    }
    browser.path_is("/account").await;
    assert_eq!(browser.text("email").await, "ada@example.com");
    assert_eq!(
        browser.text("verified").await,
        "Confirmed",
        "the provider verified it"
    );
    browser.until("return document.getElementById('identities').textContent.includes('Op · ada@example.com');").await;
    assert_eq!(
        browser.script("return location.search;").await,
        "",
        "the code left the address bar"
    );
    println!(
        "provider sign-in in Chromium: /login -> Continue with Op -> oidc-provider login and consent -> /login?code -> /account (ada@example.com, connected account listed)"
    );
    browser.quit().await;
}
