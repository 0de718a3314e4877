//! A real OpenID provider on localhost for end-to-end tests (feature `oidc-provider`):
//! panva's `oidc-provider` (npm, certified by the OpenID Foundation), installed with `npm ci`
//! into `crates/auth-oauth/tests/oidc-provider/` on first use, started per test on a free
//! port; and [`Browser`], the user at its login and consent forms over real HTTP. Without
//! Node.js and npm the tests are skipped with a printed reason ([`crate::skip`]).
//!
//! Accounts (any password): `ada` (`ada@example.com`, verified), `eve`
//! (`victim@example.com`, unverified). Clients: `auth-test` / `auth-test-secret` and
//! `other-client` / `other-secret`, both with the redirect URI given to [`OidcProvider::start`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../auth-oauth/tests/oidc-provider")
}

fn on_path(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Node.js, npm, and oidc-provider installed (once per test process); prints the skip reason
/// otherwise.
fn node_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    let ready = *READY.get_or_init(|| {
        if !(on_path("node") && on_path("npm")) {
            return false;
        }
        if !dir().join("node_modules/oidc-provider").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(dir())
                .status()
                .expect("run npm ci");
            assert!(status.success(), "npm ci in {} failed", dir().display());
        }
        true
    });
    if !ready {
        crate::skip(
            "node",
            "Node.js and npm are not installed (the test runs panva's oidc-provider; apt-get install nodejs npm)",
        );
    }
    ready
}

/// The provider process, killed on drop.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OidcProvider {
    /// Starts a provider whose clients redirect to `redirect_uri`; `None` (skip printed)
    /// without Node.js.
    ///
    /// # Panics
    ///
    /// When it cannot be installed or does not start within 20 s.
    pub async fn start(redirect_uri: &str) -> Option<Self> {
        if !node_ready() {
            return None;
        }
        let port = crate::free_port();
        let child = Command::new("node")
            .arg("provider.mjs")
            .arg(port.to_string())
            .arg(redirect_uri)
            .current_dir(dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oidc-provider");
        let provider = Self {
            child,
            issuer: format!("http://localhost:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        while !reqwest::get(&discovery)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "oidc-provider did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(provider)
    }

    /// Its issuer URL (`http://localhost:<port>`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// A user's browser: cookies by name, no automatic redirects.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

fn absolute(location: &str, from: &str) -> String {
    reqwest::Url::parse(from)
        .and_then(|u| u.join(location))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| location.to_owned())
}

impl Browser {
    /// A browser with no cookies.
    ///
    /// # Panics
    ///
    /// When the HTTP client cannot be built.
    #[must_use]
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .map(|jar| {
                jar.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn absorb(&self, headers: &reqwest::header::HeaderMap) {
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for value in headers.get_all(reqwest::header::SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if text.contains("1970") || value.is_empty() || text.contains("Max-Age=0") {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
    }

    /// Sends `req` (to `url`) with the cookies: `(status, absolute Location, body)`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> (u16, Option<String>, String) {
        let r = req
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("the server answers");
        self.absorb(r.headers());
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| absolute(l, url));
        (status, location, r.text().await.unwrap_or_default())
    }

    /// `GET url`: `(status, absolute Location, body)`.
    pub async fn get(&self, url: &str) -> (u16, Option<String>, String) {
        self.send(self.http.get(url), url).await
    }

    /// Follows redirects from `url` until one leaves for a URL starting with `until`: logs
    /// in as `login` on the provider's form and consents on its consent form (or, with
    /// `deny`, aborts at the first form). The URL it was sent to (for a form post to `until`,
    /// the form's action with its fields as the query).
    ///
    /// # Panics
    ///
    /// When a page is neither a redirect nor one of the provider's forms.
    pub async fn dance(&self, url: &str, until: &str, login: &str, deny: bool) -> String {
        let mut url = url.to_owned();
        for _ in 0..16 {
            let (status, location, body) = self.get(&url).await;
            // A form post back to the application (response_mode=form_post): returned as the
            // equivalent URL with its fields in the query.
            if status == 200 && body.contains(&format!("action=\"{until}")) {
                return form_as_url(&body);
            }
            let (status, location, body) = if status == 200 && body.contains("name=\"prompt\"") {
                if deny {
                    let abort = format!("{url}/abort");
                    self.get(&abort).await
                } else {
                    let start = body.find("action=\"").expect("a form") + 8;
                    let end = body[start..].find('"').expect("a closed attribute");
                    let action = body[start..start + end].to_owned();
                    let form: Vec<(&str, &str)> = if body.contains("value=\"login\"") {
                        vec![("prompt", "login"), ("login", login), ("password", "pass")]
                    } else {
                        vec![("prompt", "consent")]
                    };
                    self.send(self.http.post(&action).form(&form), &action)
                        .await
                }
            } else {
                (status, location, body)
            };
            let next = location.unwrap_or_else(|| panic!("{status}: {body}"));
            if next.starts_with(until) {
                return next;
            }
            url = next;
        }
        panic!("the provider never sent the browser back")
    }
}

/// An auto-submitting form (a provider's `form_post` answer) as `action?field=value&…`.
fn form_as_url(body: &str) -> String {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')?;
        Some(tag[start..start + end].replace("&amp;", "&"))
    };
    let form_start = body.find("<form").expect("a form");
    let form_tag = &body[form_start..form_start + body[form_start..].find('>').expect("a tag")];
    let action = attr(form_tag, "action").expect("an action");
    let mut url = reqwest::Url::parse(&action).expect("an absolute action");
    {
        let mut query = url.query_pairs_mut();
        for piece in body.split("<input").skip(1) {
            let tag = &piece[..piece.find('>').unwrap_or(piece.len())];
            if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
                query.append_pair(&name, &value);
            }
        }
    }
    url.to_string()
}
