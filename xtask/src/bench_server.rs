//! The release `auth-server` binary as a user runs it (its own process, its default runtime,
//! JWTs with revocations in the database, answered from memory), driven over loopback HTTP
//! from this process: each operation beside the same server's `/health` in the same run, on
//! an SQLite file and, when their URLs are set, PostgreSQL and MariaDB; then how fast a
//! revocation made on one instance is refused by another.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "violet-otter-sings-42";
const SECRET: &str = "bench-signing-secret-0123456789abcdef0123";

/// A running `auth-server` process, killed on drop.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server's `/ready` answers now.
    pub(crate) async fn ready(&self) -> Result<Value, String> {
        reqwest::get(format!("{}/ready", self.base))
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    /// Starts the release binary beside this one with `vars` (plus a bench secret and no
    /// effective login or sign-up limit) on a free port, and waits for `/health`.
    pub(crate) async fn start(vars: &[(&str, &str)]) -> Result<Self, String> {
        // AUTH_BENCH_SERVER_BIN runs another build (an earlier commit's, to compare).
        let binary = match std::env::var_os("AUTH_BENCH_SERVER_BIN") {
            Some(path) => std::path::PathBuf::from(path),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .parent()
                .map(|d| d.join("auth-server"))
                .ok_or("no folder for the auth-server binary")?,
        };
        if !binary.exists() {
            return Err(format!(
                "{} is missing: cargo build --release -p auth-server",
                binary.display()
            ));
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.port()
        };
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&binary);
        cmd.env("AUTH_SERVER_ADDR", &addr)
            .env("AUTH_SIGNING_SECRET", SECRET)
            .env("AUTH_RATE_LIMIT_MAX_ATTEMPTS", "1000000")
            .env("AUTH_SIGNUP_RATE_LIMIT_ATTEMPTS", "1000000")
            .env("AUTH_LOGIN_RATE_LIMIT_ATTEMPTS", "1000000")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let server = Self {
            child,
            base: format!("http://{addr}"),
        };
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/ready", server.base)).send().await
                && r.status().is_success()
                && r.json::<Value>().await.is_ok_and(|v| {
                    // Earlier builds have no `answers_from`: ready is ready.
                    v["answers_from"] == "memory" || v["answers_from"].is_null()
                })
            {
                return Ok(server);
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err("auth-server did not become ready in 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
) -> Result<Value, String> {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Requests per second of `GET url` (2xx only) with `clients` clients for `length`.
pub(crate) async fn rps(url: &str, bearer: Option<&str>, clients: usize, length: Duration) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + length;
    let mut tasks = Vec::new();
    for _ in 0..clients {
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

/// Rotations per second of `chains` sessions each rotating its own refresh token, and how
/// many rotations failed (there should be none).
pub(crate) async fn refresh_chains(
    base: &str,
    creds: &Value,
    chains: usize,
    length: Duration,
) -> (f64, u64) {
    let client = reqwest::Client::new();
    let (rotations, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut refresh = Vec::new();
    for _ in 0..chains {
        let login = post(&client, format!("{base}/auth/login"), creds)
            .await
            .unwrap_or_default();
        refresh.push(
            login["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let begun = Instant::now();
    let stop = begun + length;
    let mut tasks = Vec::new();
    for mut token in refresh {
        let (client, base) = (client.clone(), base.to_owned());
        let (rotations, failures) = (Arc::clone(&rotations), Arc::clone(&failures));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                let next = post(
                    &client,
                    format!("{base}/auth/refresh"),
                    &json!({"refresh_token": token}),
                )
                .await;
                match next
                    .ok()
                    .and_then(|n| n["refresh_token"].as_str().map(str::to_owned))
                {
                    Some(t) => {
                        token = t;
                        rotations.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        rotations.load(Ordering::Relaxed) as f64 / begun.elapsed().as_secs_f64(),
        failures.load(Ordering::Relaxed),
    )
}

pub(crate) async fn logins(base: &str, creds: &Value, clients: usize, length: Duration) -> f64 {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + length;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, creds, done) = (
            client.clone(),
            base.to_owned(),
            creds.clone(),
            Arc::clone(&done),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                if let Ok(r) = client
                    .post(format!("{base}/auth/login"))
                    .json(&creds)
                    .send()
                    .await
                    && r.status().is_success()
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

/// The databases to run on: an SQLite file always, PostgreSQL and MariaDB when
/// `AUTH_BENCH_POSTGRES_URL` / `AUTH_BENCH_MYSQL_URL` are set.
fn databases(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut all = vec![(
        "SQLite file",
        format!("sqlite://{}?mode=rwc", dir.join("auth.db").display()),
    )];
    for (name, var) in [
        ("PostgreSQL", "AUTH_BENCH_POSTGRES_URL"),
        ("MariaDB", "AUTH_BENCH_MYSQL_URL"),
    ] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => all.push((name, url)),
            _ => println!("{name}: skipped (set {var} to a database the bench may use)"),
        }
    }
    all
}

/// Redis for a row: its URL (seed URLs separated by commas for a cluster), this run's key
/// prefix, and whether it is a Redis Cluster.
#[derive(Clone, Default)]
struct RedisVars {
    url: String,
    prefix: String,
    cluster: bool,
}

/// A row: its name, the database URL, Redis when the row has it, and the token backend
/// (`AUTH_TOKEN_BACKEND`).
type Run = (String, String, Option<RedisVars>, &'static str);

/// Redis for the `+ Redis` rows (`AUTH_BENCH_REDIS_URL`) or the `+ Cluster` rows
/// (`AUTH_BENCH_REDIS_CLUSTER_URL`), with a prefix of this run's own.
fn redis_vars(var: &str, cluster: bool) -> Option<RedisVars> {
    let url = std::env::var(var).ok().filter(|u| !u.is_empty())?;
    Some(RedisVars {
        url,
        prefix: format!("auth:bench:{}:", auth_service::random::token(6)),
        cluster,
    })
}

/// `cargo xtask bench stack`: the default stack's figures, then revocation propagation.
pub(crate) async fn run() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("auth-bench-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let durability = std::env::var("AUTH_SQLITE_SYNCHRONOUS").unwrap_or_default();
    println!(
        "the release auth-server process (JWT, revocations in the database answered from memory; \"db tok\": opaque tokens in the database; \"Redis tok\": opaque tokens in Redis), \
         driven over loopback from another process; median of 3 rounds of 2 s per figure\n\
         database                    /health    /auth/me  (ratio)  /auth/verify (ratio)   refresh/s (4 chains)   logins/s"
    );
    let mut runs: Vec<Run> = databases(&dir)
        .into_iter()
        .map(|(name, url)| (name.to_owned(), url, None, "jwt"))
        .collect();
    let redis_rows: Vec<(&str, RedisVars)> = [
        ("Redis", "AUTH_BENCH_REDIS_URL", false),
        ("Cluster", "AUTH_BENCH_REDIS_CLUSTER_URL", true),
    ]
    .into_iter()
    .filter_map(|(label, var, cluster)| match redis_vars(var, cluster) {
        Some(redis) => Some((label, redis)),
        None => {
            println!("+ {label}: skipped (set {var})");
            None
        }
    })
    .collect();
    let sql_rows: Vec<(String, String)> = runs
        .iter()
        .filter(|(name, ..)| name != "MariaDB")
        .map(|(name, url, ..)| (name.clone(), url.clone()))
        .collect();
    // Opaque tokens in the database (`AUTH_TOKEN_BACKEND=db`): a rotation is one transaction.
    for (name, url) in &sql_rows {
        runs.push((format!("{name} db tok"), url.clone(), None, "db"));
    }
    for (label, redis) in &redis_rows {
        for (name, url) in &sql_rows {
            runs.push((
                format!("{name} + {label}"),
                url.clone(),
                Some(redis.clone()),
                "jwt",
            ));
            // Opaque tokens in Redis instead of JWTs.
            runs.push((
                format!("{name} + {label} tok"),
                url.clone(),
                Some(redis.clone()),
                "redis",
            ));
        }
    }
    // AUTH_BENCH_ROWS=tok runs only the rows whose name holds "tok" (to profile one).
    if let Ok(only) = std::env::var("AUTH_BENCH_ROWS") {
        runs.retain(|(name, ..)| name.contains(only.as_str()));
    }
    let mut figures: Vec<(String, [f64; 5])> = Vec::new();
    for (name, url, redis, token_backend) in runs {
        let redis = redis.unwrap_or_default();
        let server = ServerProcess::start(&[
            ("DATABASE_URL", url.as_str()),
            ("AUTH_TOKEN_BACKEND", token_backend),
            ("AUTH_SQLITE_SYNCHRONOUS", durability.as_str()),
            ("AUTH_REDIS_URL", redis.url.as_str()),
            ("AUTH_REDIS_PREFIX", redis.prefix.as_str()),
            (
                "AUTH_REDIS_CLUSTER",
                if redis.cluster { "true" } else { "" },
            ),
        ])
        .await?;
        let base = &server.base;
        let client = reqwest::Client::new();
        let email = format!(
            "stack-{}@example.com",
            auth_service::random::token(6).to_lowercase()
        );
        let creds = json!({"email": email, "password": PASSWORD});
        let reg = post(&client, format!("{base}/auth/register"), &creds).await?;
        let access = reg["access_token"].as_str().unwrap_or_default().to_owned();
        // Three rounds of every figure, alternating; the median of each (this machine's
        // disk and CPU vary from one second to the next).
        let length = Duration::from_secs(2);
        let mut rounds: [Vec<f64>; 5] = Default::default();
        let mut failed = 0;
        for _ in 0..3 {
            rounds[0].push(rps(&format!("{base}/health"), None, 16, length).await);
            rounds[1].push(rps(&format!("{base}/auth/me"), Some(&access), 16, length).await);
            rounds[2].push(rps(&format!("{base}/auth/verify"), Some(&access), 16, length).await);
            let (rate, f) = refresh_chains(base, &creds, 4, length).await;
            rounds[3].push(rate);
            failed += f;
            rounds[4].push(logins(base, &creds, 8, length).await);
        }
        let [health, me, verify, refresh, login] = rounds.map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        });
        figures.push((name.clone(), [health, me, verify, refresh, login]));
        println!(
            "{name:<26} {health:>9.0} {me:>10.0} ({:>5.3}) {verify:>10.0} ({:>5.3}) {refresh:>12.0}{} {login:>16.0}",
            me / health,
            verify / health,
            if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            },
        );
    }
    println!(
        "goals: /auth/me >= 0.5 x /health; refresh >= 3,000/s on SQLite (AUTH_SQLITE_SYNCHRONOUS={}), >= 2,000/s on PostgreSQL",
        if durability.is_empty() {
            "full"
        } else {
            &durability
        }
    );
    if std::env::args().any(|a| a == "--chart") {
        write_charts(&figures)?;
    }
    for (name, url) in databases(&dir).into_iter().skip(1) {
        propagation(name, &url).await?;
    }
    for (_, redis) in &redis_rows {
        forget_redis(redis).await;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Deletes what the `+ Redis` / `+ Cluster` rows left under their prefix: on each node given
/// (a cluster's seeds are its primaries when it is made by `.ci/redis-cluster`), one `DEL` per
/// key, since a cluster refuses a `DEL` across slots.
async fn forget_redis(redis: &RedisVars) {
    for url in redis.url.split(',').map(str::trim) {
        let Ok(client) = redis::Client::open(url) else {
            continue;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", redis.prefix))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("DEL").arg(key).ignore();
            }
            let _: Result<(), _> = pipe.query_async(&mut conn).await;
        }
    }
}

/// Two instances on one database: log out on A, then ask B until it refuses the token; the
/// time from A's answer to B's first refusal, over 200 logouts.
async fn propagation(name: &str, url: &str) -> Result<(), String> {
    let a = ServerProcess::start(&[("DATABASE_URL", url)]).await?;
    let b = ServerProcess::start(&[("DATABASE_URL", url)]).await?;
    let client = reqwest::Client::new();
    let email = format!(
        "spread-{}@example.com",
        auth_service::random::token(6).to_lowercase()
    );
    let creds = json!({"email": email, "password": PASSWORD});
    post(&client, format!("{}/auth/register", a.base), &creds).await?;
    let mut samples = Vec::with_capacity(200);
    let me = |base: &str, access: &str| {
        let request = client.get(format!("{base}/auth/me")).bearer_auth(access);
        async move {
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    for _ in 0..200 {
        // A session started on A, its access token accepted by B...
        let login = post(&client, format!("{}/auth/login", a.base), &creds).await?;
        let access = login["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if me(&b.base, &access).await != 200 {
            return Err(format!("{name}: B refused a fresh token"));
        }
        // ...ends on A; B is asked until it refuses the token.
        let r = client
            .post(format!("{}/auth/logout", a.base))
            .bearer_auth(&access)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().as_u16() != 204 {
            return Err(format!("{name}: logout answered {}", r.status()));
        }
        let logged_out = Instant::now();
        while me(&b.base, &access).await != 401 {
            if logged_out.elapsed() > Duration::from_secs(5) {
                return Err(format!("{name}: B still accepted a token 5 s after logout"));
            }
        }
        samples.push(logged_out.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "revocation propagation, {name}, 2 instances: logout on A refused by B after p50 {:.2?}  p99 {:.2?}  max {:.2?} (200 logouts; goal p99 <= {})",
        pct(0.5),
        pct(0.99),
        samples.last().copied().unwrap_or_default(),
        if name == "PostgreSQL" {
            "100 ms"
        } else {
            "500 ms"
        }
    );
    Ok(())
}

/// `--chart`: the figures as SVG charts in `docs/bench/` (requests per second beside the same
/// server's `/health`; refresh rotations and logins per second).
fn write_charts(figures: &[(String, [f64; 5])]) -> Result<(), String> {
    use crate::chart::{Group, bars};
    let dir = crate::workspace_root().join("docs").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let subtitle = format!(
        "release auth-server, {cores} cores, loopback, 16 connections, median of 3 rounds of 2 s (cargo xtask bench stack --chart)"
    );
    let requests: Vec<Group> = figures
        .iter()
        .map(|(name, f)| Group {
            name: name.clone(),
            bars: vec![
                ("/health", f[0]),
                ("/auth/me", f[1]),
                ("/auth/verify", f[2]),
            ],
        })
        .collect();
    let writes: Vec<Group> = figures
        .iter()
        .map(|(name, f)| Group {
            name: name.clone(),
            bars: vec![("refresh (4 chains)", f[3]), ("logins (Argon2id)", f[4])],
        })
        .collect();
    for (file, title, unit, groups) in [
        (
            "requests.svg",
            "Authenticated requests per second, beside the same server's /health",
            "req/s",
            &requests,
        ),
        (
            "writes.svg",
            "Refresh rotations and logins per second (durable writes, hashing)",
            "/s",
            &writes,
        ),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, bars(title, &subtitle, unit, groups)).map_err(|e| e.to_string())?;
        println!("chart: {}", path.display());
    }
    Ok(())
}
