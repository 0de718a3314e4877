//! Shared by the integration tests: a server on a random port with a capturing mailer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth::async_trait;
use auth_server::mail::{Email, Mailer};

pub(crate) const SECRET: &str = "server-test-secret-0123456789abcdef0123";
pub(crate) const PASSWORD: &str = "violet-otter-sings-42";

/// The hasher's queue opened wide: the suites send 30 requests at once from one loopback
/// client to prove atomicity, which the production bounds would partly shed (503). The
/// shedding itself is tested with the bounds set (`attacks.rs`
/// `hashing_sheds_load_and_shares_fairly`).
pub(crate) const WIDE_HASH_QUEUE: [(&str, &str); 2] = [
    ("AUTH_HASH_QUEUE", "1000"),
    ("AUTH_HASH_QUEUE_PER_CLIENT", "1000"),
];

/// Keeps every message instead of sending it.
#[derive(Default, Clone)]
pub(crate) struct Outbox(pub(crate) Arc<Mutex<Vec<Email>>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, email: &Email) -> Result<(), auth::Error> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

impl Outbox {
    /// The token of the last link sent to `to` under `path`, waiting for delivery (reset
    /// mails go out from a task of their own).
    pub(crate) async fn token(&self, to: &str, path: &str) -> String {
        for _ in 0..500 {
            let found = self.0.lock().unwrap().iter().rev().find_map(|m| {
                let start = m.body.find(&format!("{path}?token="))?;
                (m.to == to).then(|| {
                    m.body[start + path.len() + 7..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            });
            if let Some(t) = found {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no mail to {to}")
    }

    /// The 6-digit code of the last sign-in mail to `to`, waiting for delivery.
    pub(crate) async fn sign_in_code(&self, to: &str) -> String {
        for _ in 0..500 {
            let found = self.0.lock().unwrap().iter().rev().find_map(|m| {
                (m.to == to && m.subject == "Your sign-in link").then(|| {
                    m.body
                        .split("code: ")
                        .nth(1)
                        .map(|rest| rest[..6].to_owned())
                })?
            });
            if let Some(code) = found {
                return code;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no sign-in mail to {to}")
    }

    /// The last 6-digit verification code sent to `to`.
    pub(crate) fn code(&self, to: &str) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m.to == to && m.subject.contains("verification code"))
            .and_then(|m| {
                m.body
                    .split_whitespace()
                    .map(|w| w.trim_end_matches('.'))
                    .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_owned)
            })
            .expect("a code was mailed")
    }
}

/// auth-server on a random port (SQLite in memory, a known secret, links under
/// https://app.example.com), `vars` on top; its base URL and its outbox.
pub(crate) async fn start(vars: &[(&str, &str)]) -> (String, Outbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, vars).await
}

/// [`start`] on a listener bound already (so that its address can be given to another party,
/// an OpenID provider, before the server starts).
pub(crate) async fn start_on(
    listener: tokio::net::TcpListener,
    vars: &[(&str, &str)],
) -> (String, Outbox) {
    let mut map: HashMap<String, String> = [
        ("AUTH_SIGNING_SECRET", SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
        ("AUTH_PUBLIC_URL", "https://app.example.com"),
    ]
    .into_iter()
    .chain(WIDE_HASH_QUEUE)
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in vars {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = auth_server::Settings::from_lookup(|n| map.get(n).cloned()).unwrap();
    let db = auth_server::connect_from(&settings).await.unwrap();
    let outbox = Outbox::default();
    let app = auth_server::app_with_mailer(&settings, db, Arc::new(outbox.clone())).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    (format!("http://{addr}"), outbox)
}

/// Unix time now (TOTP codes for a server on the system clock).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A started server and the requests the HTTP tests send it.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) outbox: Outbox,
}

/// An answer: status, headers, JSON body (`Null` when there is none).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: serde_json::Value,
}

impl Server {
    /// [`start`], kept with its base URL and outbox.
    pub(crate) async fn start(vars: &[(&str, &str)]) -> Self {
        let (base, outbox) = start(vars).await;
        Self { base, outbox }
    }
    pub(crate) async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        }
    }
    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().post(format!("{}{path}", self.base))
    }
    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().get(format!("{}{path}", self.base))
    }
    pub(crate) fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().delete(format!("{}{path}", self.base))
    }
    /// Logs `email` in with [`PASSWORD`] (which must work); the access token.
    pub(crate) async fn access_token(&self, email: &str) -> String {
        let r = self
            .send(
                self.post("/auth/login")
                    .json(&serde_json::json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 200, "{email}: {}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Registers `email` with [`PASSWORD`] and proves the address from the account's own
    /// session (the mailed verification link confirmed with its bearer token, so nothing is
    /// removed); its access token. Lasting credentials (API keys, passkeys, linked
    /// identities, TOTP) need a proven address.
    pub(crate) async fn register_verified(&self, email: &str) -> String {
        let access = self.register(email).await;
        self.verify_in_session(email, &access).await;
        access
    }

    /// Proves `email`'s address from the session `access` of its own account (nothing is
    /// removed).
    pub(crate) async fn verify_in_session(&self, email: &str, access: &str) {
        let r = self
            .send(self.post("/auth/email/verify/request").bearer_auth(access))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
        let token = self
            .outbox
            .token(email, "https://app.example.com/verify-email")
            .await;
        let r = self
            .send(
                self.post("/auth/email/verify/confirm")
                    .bearer_auth(access)
                    .json(&serde_json::json!({"token": token})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["claimed"], false, "in session: nothing removed");
    }

    /// Registers `email` with [`PASSWORD`]; its access token.
    pub(crate) async fn register(&self, email: &str) -> String {
        let r = self
            .send(
                self.post("/auth/register")
                    .json(&serde_json::json!({"email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// A fresh folder with an SQLite database URL in it: `(folder, url)`.
pub(crate) fn sqlite_file(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(auth_testkit::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    (dir, url)
}

/// Runs `auth-server ARGS` as a process on `database_url`: (success, stdout, stderr).
pub(crate) fn cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("AUTH_SIGNING_SECRET", SECRET)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// [`cli`] that must succeed: its stdout.
pub(crate) fn cli_ok(database_url: &str, args: &[&str]) -> String {
    let (success, out, err) = cli(database_url, args);
    assert!(success, "{args:?}: {err}");
    out
}

/// The `auth-server` binary in a process of its own (its open-file limit, its clock), started
/// through `wrapper` (`sh -c 'ulimit …; exec "$0"'`, which must exec it, or nothing), with an
/// SQLite file of its own unless `vars` name a `DATABASE_URL`; killed when dropped.
pub(crate) struct Process {
    child: std::process::Child,
    pub(crate) addr: SocketAddr,
    pub(crate) base: String,
    dir: std::path::PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Process {
    /// Starts the binary and waits for `/health` (at most a minute).
    pub(crate) async fn start(wrapper: &[&str], vars: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = std::env::temp_dir().join(format!("auth-process-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = env!("CARGO_BIN_EXE_auth-server");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(binary);
                c
            }
            None => std::process::Command::new(binary),
        };
        command
            .env("AUTH_SERVER_ADDR", addr.to_string())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", dir.join("auth.db").display()),
            )
            .env("AUTH_SIGNING_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in vars {
            command.env(k, v);
        }
        let process = Self {
            child: command.spawn().unwrap(),
            addr,
            base: format!("http://{addr}"),
            dir,
        };
        let client = reqwest::Client::new();
        let start = std::time::Instant::now();
        while !client
            .get(format!("{}/health", process.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        process
    }
}
