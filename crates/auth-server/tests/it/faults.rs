//! Faults of the database, over real HTTP against the server: the database behind a TCP proxy
//! that the test cuts (every connection closed, the port refusing: a stopped server).
//!
//! Finding (issue 30): with PostgreSQL (or MariaDB) stopped, `/ready`, `/auth/me`,
//! `/auth/verify`, refresh, logout and login waited up to the pool's 30 s acquire timeout before
//! a 503 (login 429): a readiness probe timed out instead of failing, and `/auth/me`, which
//! answers from memory when the database is up, stopped answering at all. Now every wait for
//! the database is bounded (`AUTH_DB_TIMEOUT_MS`, 2 s), `/ready` answers within a second, and
//! token checks keep answering from memory for the outage grace (`AUTH_OUTAGE_GRACE_SECS`),
//! then fail closed.

use crate::common;

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
    /// While true, nothing is forwarded and nothing is closed: packets are dropped.
    hole: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
            accept: Mutex::new(None),
            hole: tokio::sync::watch::Sender::new(false),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (tasks, upstream) = (Arc::clone(&self.tasks), self.upstream);
        let hole = self.hole.subscribe();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut hole = hole.clone();
                let task = tokio::spawn(async move {
                    if *hole.borrow() {
                        // Accepted, never answered.
                        return std::future::pending::<()>().await;
                    }
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            () = async { let _ = hole.wait_for(|h| *h).await; } => {
                                // Both sockets stay open; nothing passes any more.
                                std::future::pending::<()>().await;
                            }
                        }
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
        self.hole.send_replace(false);
        // The cut listener closes once its aborted task has been dropped.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// A partition that drops packets: connections stay open and go silent, new ones are
    /// accepted and never answered.
    fn blackhole(&self) {
        self.hole.send_replace(true);
    }
}

/// Asks `/auth/me` until revocations and the user come from memory (`/ready` says so and
/// counts the cache's hits): the mirror loads just after start, and the feed delivers the
/// instance's own earlier changes a moment later, each one emptying the user's entry.
async fn cached(s: &common::Server, access: &str) {
    let ready = || async {
        let body = s.send(s.get("/ready")).await.body;
        (
            body["answers_from"] == "memory",
            body["user_cache"]["hits"].as_u64().unwrap_or(0),
        )
    };
    for _ in 0..50 {
        let me = s.send(s.get("/auth/me").bearer_auth(access)).await;
        assert_eq!(me.status, 200, "{}", me.body);
        let (_, before) = ready().await;
        let me = s.send(s.get("/auth/me").bearer_auth(access)).await;
        assert_eq!(me.status, 200, "{}", me.body);
        let (from_memory, hits) = ready().await;
        if from_memory && hits > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the user is never answered from the cache");
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
    let grace = Duration::from_secs(8);
    let s = common::Server::start(&[
        ("DATABASE_URL", proxied.as_str()),
        ("AUTH_OUTAGE_GRACE_SECS", "8"),
    ])
    .await;
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
    // A second session, logged out before the outage: memory holds its revocation.
    let other = s
        .send(http.post(format!("{}/auth/login", s.base)).json(&creds))
        .await;
    let other_access = other.body["access_token"].as_str().unwrap().to_owned();
    let out = s
        .send(
            http.post(format!("{}/auth/logout", s.base))
                .bearer_auth(&other_access)
                .json(&json!({"refresh_token": other.body["refresh_token"]})),
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.body);
    // A third session nothing touches during the outage (the refresh attempted below revokes
    // its own access token in memory, as it must).
    let spare = s
        .send(http.post(format!("{}/auth/login", s.base)).json(&creds))
        .await;
    let spare_access = spare.body["access_token"].as_str().unwrap().to_owned();
    // The user is loaded once (a sign-in changes the user, so this comes after the last).
    cached(&s, &access).await;

    proxy.cut();
    let cut_at = Instant::now();
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "GET /auth/me",
            http.get(format!("{}/auth/me", s.base)).bearer_auth(&access),
        ),
        (
            "GET /auth/me (logged out before)",
            http.get(format!("{}/auth/me", s.base))
                .bearer_auth(&other_access),
        ),
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
        } else if what == "GET /auth/me" {
            // Answered from memory: the mirror and the user cache vouch for the outage grace.
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.body["email"], "fault@example.com");
        } else if what == "GET /auth/me (logged out before)" {
            assert_eq!(answer.status, 401, "{}", answer.body);
        } else {
            // Nothing is granted while the database is away (a throttle that cannot be asked
            // refuses: 429; anything else: 503).
            assert!(
                matches!(answer.status, 503 | 429),
                "{what}: {} {}",
                answer.status,
                answer.body
            );
        }
    }
    // Past the grace (counted from when the change feed noticed) memory cannot vouch any
    // more: fail closed, fast.
    let (mut answered, mut late) = (0, None);
    while cut_at.elapsed() < grace + Duration::from_secs(8) {
        let started = Instant::now();
        let me = s
            .send(
                http.get(format!("{}/auth/me", s.base))
                    .bearer_auth(&spare_access),
            )
            .await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(4), "{took:?}");
        match me.status {
            200 => answered += 1,
            503 => {
                late = Some(took);
                break;
            }
            other => panic!("GET /auth/me during the outage: {other} {}", me.body),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let late = late.expect("memory stopped vouching once the outage grace was over");
    println!(
        "{target:?}, database stopped: GET /auth/me answered from memory {answered} times, then after {:.1?} (grace {grace:?}) -> 503 in {late:.2?}",
        cut_at.elapsed()
    );
    assert!(
        cut_at.elapsed() >= grace,
        "memory vouched for the whole grace"
    );

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

/// A database that stops answering without closing anything (a partition that drops packets):
/// every request is bounded by `AUTH_REQUEST_TIMEOUT_SECS`, `/ready` by its one second, and
/// `/auth/me` keeps answering from memory. Before, such requests hung for as long as TCP
/// retransmits (minutes).
async fn a_silent_database_bounds_every_request(target: Target) {
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
    let s = common::Server::start(&[
        ("DATABASE_URL", proxied.as_str()),
        ("AUTH_REQUEST_TIMEOUT_SECS", "3"),
    ])
    .await;
    let http = reqwest::Client::new();
    let creds = json!({"email": "silent@example.com", "password": PASSWORD});
    let signup = s
        .send(http.post(format!("{}/auth/register", s.base)).json(&creds))
        .await;
    assert_eq!(signup.status, 201, "{}", signup.body);
    let access = signup.body["access_token"].as_str().unwrap().to_owned();
    let refresh = signup.body["refresh_token"].as_str().unwrap().to_owned();
    cached(&s, &access).await;

    proxy.blackhole();
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "GET /auth/me",
            http.get(format!("{}/auth/me", s.base)).bearer_auth(&access),
        ),
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
            "{target:?}, database silent: {what} -> {} in {took:.2?}",
            answer.status
        );
        assert!(
            took < Duration::from_secs(5),
            "{what} waited {took:?} for a silent database"
        );
        match what {
            "GET /auth/me" => assert_eq!(answer.status, 200, "{}", answer.body),
            "GET /ready" => assert_eq!(answer.status, 503, "{}", answer.body),
            _ => assert!(
                matches!(answer.status, 503 | 429),
                "{what}: {} {}",
                answer.status,
                answer.body
            ),
        }
    }

    // The database restarts (every connection closed, then back): the server answers again.
    proxy.cut();
    proxy.restore().await;
    let started = Instant::now();
    loop {
        let again = s
            .send(http.post(format!("{}/auth/login", s.base)).json(&creds))
            .await;
        if again.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not back: {} {}",
            again.status,
            again.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn postgres_silent_bounds_every_request() {
    a_silent_database_bounds_every_request(Target::Postgres).await;
}

#[tokio::test]
async fn mysql_silent_bounds_every_request() {
    a_silent_database_bounds_every_request(Target::MySql).await;
}

/// A lock held elsewhere (a migration by hand, a long report, a stuck transaction) holds one
/// statement for `AUTH_DB_STATEMENT_TIMEOUT_MS`, then the database cancels it and the request
/// is answered 503: it does not wait for the lock, nor for the request deadline (30 s here).
/// The sign-up that was cancelled created nothing: the same address signs up once the lock is
/// gone.
async fn a_lock_held_elsewhere_bounds_the_statement(target: Target) {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let Some(url) = auth_testkit::db::fresh_url(target).await else {
        return;
    };
    let s = common::Server::start(&[
        ("DATABASE_URL", url.as_str()),
        ("AUTH_DB_STATEMENT_TIMEOUT_MS", "1000"),
        ("AUTH_REQUEST_TIMEOUT_SECS", "30"),
    ])
    .await;
    let http = reqwest::Client::new();
    let first = json!({"email": "first@example.com", "password": PASSWORD});
    let signup = s
        .send(http.post(format!("{}/auth/register", s.base)).json(&first))
        .await;
    assert_eq!(signup.status, 201, "{}", signup.body);

    let other = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let holder = other.begin().await.unwrap();
    let lock = match target {
        Target::Postgres => "LOCK TABLE auth_users IN ACCESS EXCLUSIVE MODE",
        _ => "LOCK TABLES auth_users WRITE",
    };
    holder.execute_unprepared(lock).await.unwrap();

    let late = json!({"email": "late@example.com", "password": PASSWORD});
    let started = Instant::now();
    let answer = s
        .send(http.post(format!("{}/auth/register", s.base)).json(&late))
        .await;
    let took = started.elapsed();
    println!(
        "{target:?}, auth_users locked elsewhere: sign-up -> {} {} in {took:.2?}",
        answer.status, answer.body
    );
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        took < Duration::from_secs(5),
        "the sign-up waited {took:?} for a lock held elsewhere"
    );

    if target == Target::MySql {
        holder.execute_unprepared("UNLOCK TABLES").await.unwrap();
    }
    holder.rollback().await.unwrap();
    let again = s
        .send(http.post(format!("{}/auth/register", s.base)).json(&late))
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test]
async fn postgres_lock_held_elsewhere_bounds_the_statement() {
    a_lock_held_elsewhere_bounds_the_statement(Target::Postgres).await;
}

#[tokio::test]
async fn mysql_lock_held_elsewhere_bounds_the_statement() {
    a_lock_held_elsewhere_bounds_the_statement(Target::MySql).await;
}
