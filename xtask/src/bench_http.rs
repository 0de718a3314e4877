//! HTTP figures: `GET /me` with a Bearer JWT against the same handler without auth, and
//! `/health` latency during a login flood, over real loopback HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_axum::Authenticated;
use auth_service::{AuthConfig, AuthService, AuthUser, MemoryUserStore, User};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

const PASSWORD: &str = "violet-otter-sings-42";

/// The legitimate logins measured under each flood (their p99 is the 2nd slowest).
const LEGIT_LOGINS: usize = 200;

fn body(user: &User) -> Json<serde_json::Value> {
    Json(
        json!({"id": user.id().to_string(), "email": user.email(), "is_verified": user.is_verified()}),
    )
}

async fn serve(app: Router) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// The release `auth-server` app with a bench secret, no effective login limit, and `vars`
/// on top, on a random loopback port; its base URL.
async fn serve_server(vars: &[(&str, &str)]) -> Result<String, String> {
    let mut all = vec![
        (
            "AUTH_SIGNING_SECRET",
            "bench-signing-secret-0123456789abcdef0123",
        ),
        ("AUTH_RATE_LIMIT_MAX_ATTEMPTS", "1000000"),
        ("AUTH_LOGIN_RATE_LIMIT_ATTEMPTS", "1000000"),
    ];
    all.extend_from_slice(vars);
    let settings = auth_server::Settings::from_lookup(|n| {
        all.iter()
            .rev()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| (*v).to_owned())
    })
    .map_err(|e| e.to_string())?;
    let db = auth_server::connect_with(&settings.database_url, settings.sqlite_durability)
        .await
        .map_err(|e| e.to_string())?;
    let app = auth_server::app(&settings, db).map_err(|e| e.to_string())?;
    serve(app).await
}

/// Requests per second of `GET url` with `concurrency` clients for `length`.
async fn rps(url: &str, bearer: Option<&str>, concurrency: usize, length: Duration) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + length;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, done, url) = (client.clone(), Arc::clone(&done), url.to_owned());
        let bearer = bearer.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                let mut req = client.get(&url);
                if let Some(t) = &bearer {
                    req = req.bearer_auth(t);
                }
                if let Ok(r) = req.send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / length.as_secs_f64()
}

async fn oneshot(app: &Router, path: &str, bearer: Option<&str>) -> u16 {
    use tower::ServiceExt as _;
    let mut req = axum::http::Request::builder().uri(path);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let Ok(req) = req.body(axum::body::Body::empty()) else {
        return 0;
    };
    match app.clone().oneshot(req).await {
        Ok(r) => r.status().as_u16(),
        Err(never) => match never {},
    }
}

pub(crate) async fn run() -> Result<(), String> {
    me_vs_no_auth().await?;
    crate::bench_server::run().await?;
    health_under_login_flood().await?;
    login_under_flood().await
}

/// Latencies of a legitimate user's logins, one after another from their own address: the
/// answered ones (sorted), how many the hash queue shed (503 `overloaded`), and how many failed
/// otherwise (any other status, such as a 503 `unavailable` from a busy database).
async fn legit_logins(base: &str, n: usize) -> (Vec<Duration>, usize, usize) {
    let client = reqwest::Client::new();
    let creds = json!({"email": "legit@example.com", "password": PASSWORD});
    let (mut answered, mut shed, mut other) = (Vec::with_capacity(n), 0, 0);
    for _ in 0..n {
        let t = Instant::now();
        let answer = client
            .post(format!("{base}/auth/login"))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&creds)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 200 => answered.push(t.elapsed()),
            Ok(r) if r.status().as_u16() == 503 => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if body["error"] == "overloaded" {
                    shed += 1;
                } else {
                    other += 1;
                }
            }
            _ => other += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answered.sort();
    (answered, shed, other)
}

/// What a flooding connection sends, in a loop, as fast as it is answered.
#[derive(Clone, Copy)]
enum Flood {
    /// `GET /health`: no hashing at all, the machine's share of the flood (the floor).
    Health,
    /// Valid logins, every connection from one address.
    ValidOneAddress,
    /// Wrong passwords, each connection from an address and for an account of its own.
    WrongManyAddresses,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::ValidOneAddress => "valid-one-address",
            Self::WrongManyAddresses => "wrong-many-addresses",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Health,
            Self::ValidOneAddress,
            Self::WrongManyAddresses,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// `xtask flood-client KIND BASE CONNECTIONS`: the flood, in a process of its own (as an
/// attacker's client is: it must not share the measured client's runtime), looping until its
/// standard input closes; then it prints how many requests were answered.
pub(crate) fn flood_client(args: &[String]) -> Result<(), String> {
    let usage = "usage: xtask flood-client <health|valid-one-address|wrong-many-addresses> BASE CONNECTIONS";
    let (Some(kind), Some(base), Some(connections)) = (
        args.first().and_then(|k| Flood::from_name(k)),
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        return Err(usage.into());
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let tasks = flood(base, connections, kind, &stop, &answered);
        // Until the parent closes our standard input.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        println!("answered {}", answered.load(Ordering::Relaxed));
    });
    Ok(())
}

/// A flood of `connections` looping on `kind`'s request until `stop`, counting answers.
fn flood(
    base: &str,
    connections: usize,
    kind: Flood,
    stop: &Arc<AtomicBool>,
    answered: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..connections)
        .map(|i| {
            let (client, base, stop) = (reqwest::Client::new(), base.to_owned(), Arc::clone(stop));
            let answered = Arc::clone(answered);
            let (address, body) = match kind {
                Flood::Health => (format!("198.19.0.{i}"), None),
                Flood::ValidOneAddress => (
                    "203.0.113.9".to_owned(),
                    Some(json!({"email": "flood@example.com", "password": PASSWORD})),
                ),
                Flood::WrongManyAddresses => (
                    format!("198.18.0.{i}"),
                    Some(
                        json!({"email": format!("victim{i}@example.com"), "password": "a-wrong-guess-1"}),
                    ),
                ),
            };
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = match &body {
                        Some(body) => client.post(format!("{base}/auth/login")).json(body),
                        None => client.get(format!("{base}/health")),
                    };
                    if request.header("x-forwarded-for", &address).send().await.is_ok() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

/// The flood client started as its own process; dropping it stops it.
struct FloodProcess {
    child: std::process::Child,
    started: Instant,
}

impl FloodProcess {
    /// `apart`: the flood runs at the lowest CPU priority (`nice -n 19`), standing in for an
    /// attacker's own machine: the server's cores are its own, while the flood still sends as
    /// fast as it is answered whenever a core is idle.
    fn start(base: &str, connections: usize, kind: Flood, apart: bool) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = if apart {
            let mut c = std::process::Command::new("nice");
            c.args(["-n", "19"]).arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        let child = command
            .args(["flood-client", kind.name(), base, &connections.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the flood client: {e}"))?;
        Ok(Self {
            child,
            started: Instant::now(),
        })
    }

    /// Stops the flood; the requests it had answered per second.
    fn stop(mut self) -> Result<f64, String> {
        drop(self.child.stdin.take());
        let elapsed = self.started.elapsed();
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut out).map_err(|e| e.to_string())?;
        }
        let _ = self.child.wait();
        let answered: f64 = out
            .trim()
            .strip_prefix("answered ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("the flood client said {out:?}"))?;
        Ok(answered / elapsed.as_secs_f64().max(1e-9))
    }
}

impl Drop for FloodProcess {
    fn drop(&mut self) {
        if self.child.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A legitimate login's latency idle and under two 45-connection floods (valid logins from one
/// address; wrong passwords from 45 addresses), beside the raw Argon2id verification, on the
/// release `auth-server` process with its default hash queue (SQLite file). The queue is bounded and shared
/// per address, so an answered login waits for at most a few hashes; past the bounds a login
/// is shed (503 + Retry-After) at once, counted here.
pub(crate) async fn login_under_flood() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("auth-bench-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    // The release binary in its own process, as a user runs it: the floods and the measured
    // client are this process's.
    let server = crate::bench_server::ServerProcess::start(&[
        ("DATABASE_URL", url.as_str()),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await?;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    for email in ["legit@example.com", "flood@example.com"] {
        client
            .post(format!("{base}/auth/register"))
            .header("x-forwarded-for", "192.0.2.1")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    // The floor: the primitive itself, off the server.
    let hasher = auth_hash::Argon2Hasher::default();
    let hash = auth_service::PasswordHasher::hash(&hasher, PASSWORD).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = auth_service::PasswordHasher::verify(&hasher, PASSWORD, &hash);
        raw.push(t.elapsed());
    }
    raw.sort();
    let pct = |v: &[Duration], p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let (idle, _, _) = legit_logins(&base, LEGIT_LOGINS).await;
    let idle_p99 = pct(&idle, 0.99);
    println!(
        "login, Argon2id, release server, SQLite file: raw verify p50 {:.1?} p99 {:.1?}; idle login p50 {:.1?} p99 {:.1?}",
        pct(&raw, 0.5),
        pct(&raw, 0.99),
        pct(&idle, 0.5),
        idle_p99
    );
    for (apart, how) in [
        (
            false,
            "the flood's client on the server's two cores, at the same priority (the attacker shares the machine)",
        ),
        (
            true,
            "the flood's client at nice 19 (a stand-in for an attacker's own machine: the server keeps its cores, the flood sends whenever one is idle)",
        ),
    ] {
        println!(" {how}:");
        let mut floor_p99 = None;
        for (kind, what) in [
            (
                Flood::Health,
                "45 connections of GET /health (no hashing: the machine's floor)",
            ),
            (
                Flood::ValidOneAddress,
                "45 connections of valid logins from one address",
            ),
            (
                Flood::WrongManyAddresses,
                "45 connections of wrong passwords from 45 addresses",
            ),
        ] {
            let flood = FloodProcess::start(&base, 45, kind, apart)?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (answered, shed, other) = legit_logins(&base, LEGIT_LOGINS).await;
            let rate = flood.stop()?;
            let p99 = pct(&answered, 0.99);
            let beside_floor = match floor_p99 {
                Some(floor) => format!(
                    ", {:.2}x the /health flood's p99",
                    p99.as_secs_f64() / Duration::as_secs_f64(&floor).max(1e-9)
                ),
                None => String::new(),
            };
            floor_p99.get_or_insert(p99);
            println!(
                "  under {what} ({rate:.0} answered/s): legit login p50 {:.1?} p99 {:.1?} ({:.2}x idle p99; goal <= 3x{beside_floor}), of {LEGIT_LOGINS}: {} answered, {shed} shed (503 overloaded + Retry-After), {other} failed otherwise",
                pct(&answered, 0.5),
                p99,
                p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9),
                answered.len()
            );
        }
    }
    drop(server);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

async fn me_vs_no_auth() -> Result<(), String> {
    let secret = "bench-jwt-secret-0123456789abcdef0123456789";
    // Revocation on (the default), its store in memory: the check costs no I/O.
    let jwt = auth_tokens_jwt::JwtBackend::hmac(auth_tokens_jwt::Algorithm::HS256, secret);
    let users = MemoryUserStore::new();
    let auth = AuthService::new(
        AuthConfig::default(),
        users,
        auth_hash::Argon2Hasher::default(),
        jwt,
    )
    .map_err(|e| e.to_string())?;
    let user = auth
        .register("bench@example.com", PASSWORD)
        .await
        .map_err(|e| e.to_string())?;
    let token = auth
        .login("bench@example.com", PASSWORD)
        .await
        .map_err(|e| e.to_string())?
        .access_token()
        .to_owned();
    let fixed = user.clone();
    let app = Router::new()
        .route(
            "/me",
            get(|Authenticated(u): Authenticated<User>| async move { body(&u) }),
        )
        .route(
            "/plain",
            get(move || {
                let u = fixed.clone();
                async move { body(&u) }
            }),
        )
        .with_state(auth.clone());
    let (op, raw) = crate::bench::paired(
        20_000,
        15,
        || async { auth_service::random::sha256_hex(&token) },
        || auth.authenticate(&token),
    )
    .await;
    crate::bench::row(
        "AuthService::authenticate (JWT)",
        op,
        "SHA-256 of the token",
        raw,
    );
    // In process (no sockets): the router's own cost per request, paired rounds.
    let (op, raw) = crate::bench::paired(
        20_000,
        15,
        || oneshot(&app, "/plain", None),
        || oneshot(&app, "/me", Some(&token)),
    )
    .await;
    crate::bench::row(
        "router: GET /me with Bearer JWT",
        op,
        "router: same handler, no auth",
        raw,
    );
    let base = serve(app).await?;
    let (mut with, mut without): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        without.push(
            rps(
                &format!("{base}/plain"),
                None,
                16,
                Duration::from_millis(1500),
            )
            .await,
        );
        with.push(
            rps(
                &format!("{base}/me"),
                Some(&token),
                16,
                Duration::from_millis(1500),
            )
            .await,
        );
    }
    // Each round pairs the two back to back; the median of the per-round ratios resists the
    // machine's drift better than comparing bests.
    let mut ratios: Vec<f64> = with.iter().zip(&without).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut with), median(&mut without));
    println!(
        "GET /me, Bearer JWT (HS256, user from memory)   {a:>9.0} req/s   same handler, no auth   {b:>9.0} req/s   ratio {:>6.3}   (goal >= 0.9; median of 5 paired rounds of 1.5 s, 16 clients on loopback; per-round ratios {:.3?})",
        ratios[ratios.len() / 2],
        ratios
    );
    Ok(())
}

async fn health_under_login_flood() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("auth.db").display());
    let base = serve_server(&[("DATABASE_URL", url.as_str())]).await?;
    let client = reqwest::Client::new();
    let creds = json!({"email": "flood@example.com", "password": PASSWORD});
    client
        .post(format!("{base}/auth/register"))
        .json(&creds)
        .send()
        .await
        .map_err(|e| e.to_string())?;

    let health = |n: usize| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let ok = client
                    .get(format!("{base}/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    samples.push(t.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            samples.sort();
            samples
        }
    };
    let quiet = health(300).await;

    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for _ in 0..64 {
        let (client, base, creds) = (client.clone(), base.clone(), creds.clone());
        let (stop, logins) = (Arc::clone(&stop), Arc::clone(&logins));
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = client
                    .post(format!("{base}/auth/login"))
                    .json(&creds)
                    .send()
                    .await
                    && r.status().is_success()
                {
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let loaded = health(600).await;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        let _ = t.await;
    }
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    println!(
        "GET /health during a 64-client login flood (Argon2id, SQLite file): p50 {:.2?}  p99 {:.2?}  max {:.2?}   quiet p99 {:.2?}   ({} logins/s meanwhile; goal p99 < 5 ms)",
        pct(&loaded, 0.5),
        pct(&loaded, 0.99),
        loaded.last().copied().unwrap_or_default(),
        pct(&quiet, 0.99),
        logins.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
