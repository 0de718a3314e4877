//! `cargo xtask bench peer`: auth-server beside the tortoise-auth peer, the same routes measured
//! alternately with the same load generator in one sitting.
//!
//! The peer is the seed cookbook's "Starlette Full REST API" on tortoise-auth (JWT, its
//! defaults), served by uvicorn with 2 workers on an SQLite file, installed from PyPI into a
//! virtualenv by this bench (`AUTH_BENCH_PEER_VENV` reuses one). auth-server runs its defaults
//! (JWT, SQLite file). Skipped, with the reason, when Python or PyPI is not there.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::bench_server::{ServerProcess, logins, post, refresh_chains, rps};

/// The cookbook's app, mounted under `/auth` like auth-server's routes, plus `/health`; the
/// Tortoise models live in this module and the schema is created at start.
const PEER_APP: &str = r#"
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from tortoise import Tortoise

from tortoise_auth import AbstractUser, AuthConfig, AuthService, configure
from tortoise_auth.exceptions import AuthenticationError, InvalidPasswordError
from tortoise_auth.integrations.starlette import TokenAuthBackend, login_required, require_auth
from tortoise_auth.validators import validate_password


class User(AbstractUser):
    class Meta:
        table = "users"


configure(AuthConfig(user_model="models.User", signing_secret="bench-peer-secret-0123456789abcdef"))
auth = AuthService()


async def register(request: Request) -> JSONResponse:
    body = await request.json()
    email, password = body["email"], body["password"]
    try:
        validate_password(password)
    except InvalidPasswordError as exc:
        return JSONResponse({"errors": exc.errors}, status_code=400)
    user = await User.create(email=email)
    await user.set_password(password)
    result = await auth.login(email, password)
    return JSONResponse({"user_id": str(user.pk), "access_token": result.access_token,
                         "refresh_token": result.refresh_token}, status_code=201)


async def login(request: Request) -> JSONResponse:
    body = await request.json()
    try:
        result = await auth.login(body["email"], body["password"])
    except AuthenticationError:
        return JSONResponse({"error": "Invalid credentials"}, status_code=401)
    return JSONResponse({"access_token": result.access_token, "refresh_token": result.refresh_token})


async def refresh(request: Request) -> JSONResponse:
    body = await request.json()
    tokens = await auth.refresh(body["refresh_token"])
    return JSONResponse({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})


@login_required
async def me(request: Request) -> JSONResponse:
    user = require_auth(request)
    return JSONResponse({"id": str(user.pk), "email": user.email, "is_verified": user.is_verified})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


@asynccontextmanager
async def lifespan(app):
    # The lifespan runs in its own task: the context must be global for the requests.
    await Tortoise.init(db_url="sqlite://peer.db", modules={"models": ["peer"]}, _enable_global_fallback=True)
    await Tortoise.generate_schemas(safe=True)
    yield
    await Tortoise.close_connections()


app = Starlette(
    routes=[
        Route("/health", health),
        Mount("/auth", routes=[
            Route("/register", register, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/refresh", refresh, methods=["POST"]),
            Route("/me", me),
        ]),
    ],
    middleware=[Middleware(AuthenticationMiddleware, backend=TokenAuthBackend())],
    lifespan=lifespan,
)
"#;

/// The peer's uvicorn, killed on drop.
struct Peer {
    child: Child,
    base: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // uvicorn's workers are its children: end the whole process group, then reap.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A virtualenv with tortoise-auth, starlette and uvicorn, or why there is none.
fn venv(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    if let Some(existing) = std::env::var_os("AUTH_BENCH_PEER_VENV") {
        return Ok(existing.into());
    }
    let venv = dir.join("venv");
    let ok = |mut c: Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    if !ok(create) {
        return Err("python3 -m venv failed (Python 3 with venv is needed)".into());
    }
    println!("installing the peer from PyPI: tortoise-auth[starlette], uvicorn[standard]");
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args([
        "install",
        "--quiet",
        "tortoise-auth[starlette]",
        "uvicorn[standard]",
    ]);
    if !ok(pip) {
        return Err("pip could not install tortoise-auth (is PyPI reachable?)".into());
    }
    Ok(venv)
}

async fn start_peer(dir: &std::path::Path, venv: &std::path::Path) -> Result<Peer, String> {
    std::fs::write(dir.join("peer.py"), PEER_APP).map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    use std::os::unix::process::CommandExt as _;
    let child = Command::new(venv.join("bin").join("uvicorn"))
        .args([
            "peer:app",
            "--host",
            "127.0.0.1",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ])
        .arg("--port")
        .arg(port.to_string())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so the workers go with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("uvicorn: {e}"))?;
    let peer = Peer {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let start = Instant::now();
    while !client
        .get(format!("{}/health", peer.base))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("the peer did not answer /health in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(peer)
}

/// One round of every figure against `base`: /health, /auth/me, refresh/s, logins/s.
async fn round(base: &str, access: &str, creds: &Value, length: Duration) -> [f64; 4] {
    [
        rps(&format!("{base}/health"), None, 16, length).await,
        rps(&format!("{base}/auth/me"), Some(access), 16, length).await,
        refresh_chains(base, creds, 4, length).await.0,
        logins(base, creds, 8, length).await,
    ]
}

/// `cargo xtask bench peer`.
pub(crate) async fn run() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("auth-bench-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let venv = match venv(&dir) {
        Ok(v) => v,
        Err(reason) => {
            println!("peer comparison skipped: {reason}");
            return Ok(());
        }
    };
    let peer = start_peer(&dir, &venv).await?;
    let ours = ServerProcess::start(&[(
        "DATABASE_URL",
        &format!("sqlite://{}?mode=rwc", dir.join("auth.db").display()),
    )])
    .await?;
    let client = reqwest::Client::new();
    let creds = json!({"email": "peer-bench@example.com", "password": "violet-otter-sings-42"});
    let mut access = Vec::new();
    for base in [&ours.base, &peer.base] {
        let reg = post(&client, format!("{base}/auth/register"), &creds).await?;
        access.push(
            reg["access_token"]
                .as_str()
                .ok_or_else(|| format!("{base}: register answered {reg}"))?
                .to_owned(),
        );
    }
    println!(
        "auth-server (release, defaults: JWT, SQLite file) beside tortoise-auth 0.6 (Starlette, uvicorn 2 workers, SQLite file),\n\
         the same client, rounds alternating; median of 3 rounds of 2 s per figure\n\
         figure              auth-server          peer     ratio"
    );
    let length = Duration::from_secs(2);
    let mut samples: [[Vec<f64>; 4]; 2] = Default::default();
    for _ in 0..3 {
        for (i, base) in [&ours.base, &peer.base].into_iter().enumerate() {
            for (k, v) in round(base, &access[i], &creds, length)
                .await
                .into_iter()
                .enumerate()
            {
                samples[i][k].push(v);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let names = [
        "GET /health",
        "GET /auth/me",
        "refresh/s (4 chains)",
        "logins/s",
    ];
    let mut figures = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let a = median(&mut samples[0][k]);
        let b = median(&mut samples[1][k]);
        println!("{name:<20} {a:>11.0} {b:>13.0} {:>8.2}x", a / b.max(1e-9));
        figures.push((*name, a, b));
    }
    if std::env::args().any(|a| a == "--chart") {
        use crate::chart::{Group, bars};
        let groups: Vec<Group> = figures
            .iter()
            .map(|(name, a, b)| Group {
                name: (*name).to_owned(),
                bars: vec![("auth-server", *a), ("tortoise-auth peer", *b)],
            })
            .collect();
        let path = crate::workspace_root()
            .join("docs")
            .join("bench")
            .join("peer.svg");
        std::fs::create_dir_all(path.parent().unwrap_or(&dir)).map_err(|e| e.to_string())?;
        std::fs::write(
            &path,
            bars(
                "auth-server beside the tortoise-auth peer (per second)",
                "same machine, same client, rounds alternating; both on an SQLite file with JWTs (cargo xtask bench peer --chart)",
                "/s",
                &groups,
            ),
        )
        .map_err(|e| e.to_string())?;
        println!("chart: {}", path.display());
    }
    drop((ours, peer));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
