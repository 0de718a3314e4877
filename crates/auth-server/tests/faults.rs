//! Faults of the database, over real HTTP against the server: the database behind a TCP proxy
//! that the test cuts (every connection closed, the port refusing: a stopped server).
//!
//! Finding (issue 30): with PostgreSQL (or MariaDB) stopped, `/ready`, `/auth/me`,
//! `/auth/verify`, refresh, logout and login waited up to the pool's 30 s acquire timeout before
//! a 503 (login 429): a readiness probe timed out instead of failing. Now every wait for the
//! database is bounded (`AUTH_DB_TIMEOUT_MS`, 2 s) and `/ready` answers within a second.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_testkit::db::Target;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use common::PASSWORD;

/// A TCP proxy in front of the database that can be cut and restored on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
            accept: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (tasks, upstream) = (Arc::clone(&self.tasks), self.upstream);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// Every connection closed, the port closed: the database is gone.
    fn cut(&self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// The database is back, on the same port.
    async fn restore(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

async fn a_stopped_database_fails_fast_everywhere(target: Target) {
    let Some(url) = auth_testkit::db::fresh_url(target).await else {
        return;
    };
    let mut proxied = url::Url::parse(&url).unwrap();
    let upstream: SocketAddr = format!(
        "{}:{}",
        proxied.host_str().unwrap(),
        proxied.port_or_known_default().unwrap()
    )
    .parse()
    .unwrap();
    let proxy = Proxy::start(upstream).await;
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let s = common::Server::start(&[("DATABASE_URL", proxied.as_str())]).await;
    let http = reqwest::Client::new();
    let creds = json!({"email": "fault@example.com", "password": PASSWORD});
    let signup = s
        .send(http.post(format!("{}/auth/register", s.base)).json(&creds))
        .await;
    assert_eq!(signup.status, 201, "{}", signup.body);
    let login = s
        .send(http.post(format!("{}/auth/login", s.base)).json(&creds))
        .await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();

    proxy.cut();
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("GET /ready", http.get(format!("{}/ready", s.base))),
        (
            "POST /auth/login",
            http.post(format!("{}/auth/login", s.base)).json(&creds),
        ),
        (
            "POST /auth/refresh",
            http.post(format!("{}/auth/refresh", s.base))
                .json(&json!({"refresh_token": refresh})),
        ),
        (
            "GET /auth/me",
            http.get(format!("{}/auth/me", s.base)).bearer_auth(&access),
        ),
        (
            "POST /auth/register",
            http.post(format!("{}/auth/register", s.base))
                .json(&json!({"email": "late@example.com", "password": PASSWORD})),
        ),
    ];
    for (what, request) in requests {
        let started = Instant::now();
        let answer = s.send(request).await;
        let took = started.elapsed();
        println!(
            "{target:?}, database stopped: {what} -> {} in {took:.2?}",
            answer.status
        );
        assert!(
            took < Duration::from_secs(4),
            "{what} waited {took:?} for a stopped database"
        );
        if what == "GET /ready" {
            assert_eq!(answer.status, 503, "{}", answer.body);
            assert!(took < Duration::from_millis(2500), "{took:?}");
        } else if what != "GET /auth/me" {
            // Nothing is granted while the database is away (a throttle that cannot be asked
            // refuses: 429; anything else: 503).
            assert!(
                matches!(answer.status, 503 | 429),
                "{what}: {} {}",
                answer.status,
                answer.body
            );
        } else {
            assert!(
                matches!(answer.status, 200 | 503),
                "{what}: {} {}",
                answer.status,
                answer.body
            );
        }
    }

    // Back: the server answers again without a restart.
    proxy.restore().await;
    let started = Instant::now();
    loop {
        let ready = s.send(http.get(format!("{}/ready", s.base))).await;
        if ready.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not ready again: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = s
        .send(http.post(format!("{}/auth/login", s.base)).json(&creds))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
}

#[tokio::test]
async fn postgres_stopped_fails_fast_everywhere() {
    a_stopped_database_fails_fast_everywhere(Target::Postgres).await;
}

#[tokio::test]
async fn mysql_stopped_fails_fast_everywhere() {
    a_stopped_database_fails_fast_everywhere(Target::MySql).await;
}
