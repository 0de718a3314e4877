//! `cargo xtask bench scale`: the release `auth-server` started on a database that a week of
//! traffic filled: millions of live revocations and users, inserted directly. How long the
//! server takes to load its revocation mirror, how much memory it then holds, and `/auth/me`
//! beside the same server's `/health`.
//!
//! `AUTH_BENCH_SCALE_REVOCATIONS` (default 10,000,000) and `AUTH_BENCH_SCALE_USERS` (default
//! 1,000,000) set the volume; `AUTH_BENCH_SCALE_DB` keeps the seeded SQLite file between runs;
//! `AUTH_BENCH_SCALE_URL` (a PostgreSQL or MariaDB URL of an empty database) runs the same on
//! that server instead of an SQLite file.

use std::time::{Duration, Instant};

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::bench_server::{ServerProcess, post, rps};

const PASSWORD: &str = "violet-otter-sings-42";
/// Rows per INSERT (SQLite allows 32,766 parameters a statement).
const ROWS: usize = 5_000;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Kilobytes of a process's resident memory: now and at its peak.
pub(crate) fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Inserts `users` users and `revocations` revoked token ids (live for a week) directly.
async fn seed(url: &str, users: usize, revocations: usize) -> Result<(), String> {
    let db = auth_server::connect_with(url, auth_server::SqliteDurability::Normal)
        .await
        .map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let week = now + time::Duration::days(7);
    let started = Instant::now();
    let txn = db.begin().await.map_err(|e| e.to_string())?;
    for first in (0..users).step_by(ROWS) {
        let mut insert = Query::insert()
            .into_table(Alias::new("auth_users"))
            .columns([
                Alias::new("email"),
                Alias::new("created_at"),
                Alias::new("updated_at"),
            ])
            .to_owned();
        for n in first..(first + ROWS).min(users) {
            insert.values_panic([
                format!("user{n}@scale.example").into(),
                now.into(),
                now.into(),
            ]);
        }
        txn.execute(&insert).await.map_err(|e| e.to_string())?;
    }
    for first in (0..revocations).step_by(ROWS) {
        let mut insert = Query::insert()
            .into_table(Alias::new("auth_revoked_tokens"))
            .columns([Alias::new("jti"), Alias::new("expires_at")])
            .to_owned();
        for n in first..(first + ROWS).min(revocations) {
            // As long as a real token id (16 random bytes, base64url: 22 characters).
            insert.values_panic([format!("scale-{n:016x}").into(), week.into()]);
        }
        txn.execute(&insert).await.map_err(|e| e.to_string())?;
    }
    txn.commit().await.map_err(|e| e.to_string())?;
    // What a database that filled over a week has done meanwhile: PostgreSQL's autovacuum has
    // set the rows' visibility hints (else the first read writes every page), SQLite has
    // checkpointed its log into the file.
    let settle = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "VACUUM ANALYZE",
        sea_orm::DatabaseBackend::MySql => "ANALYZE TABLE auth_revoked_tokens, auth_users",
        _ => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    db.execute_unprepared(settle)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "seeded {users} users and {revocations} live revocations in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) async fn run() -> Result<(), String> {
    let revocations = count("AUTH_BENCH_SCALE_REVOCATIONS", 10_000_000);
    let users = count("AUTH_BENCH_SCALE_USERS", 1_000_000);
    let kept = std::env::var_os("AUTH_BENCH_SCALE_DB").map(std::path::PathBuf::from);
    let dir = std::env::temp_dir().join(format!("auth-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = kept.clone().unwrap_or_else(|| dir.join("scale.db"));
    let server_url = std::env::var("AUTH_BENCH_SCALE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let (url, what) = match &server_url {
        Some(url) => (
            url.clone(),
            if url.starts_with("postgres") {
                "PostgreSQL"
            } else {
                "MariaDB"
            },
        ),
        None => (
            format!("sqlite://{}?mode=rwc", file.display()),
            "SQLite file",
        ),
    };
    if server_url.is_some() || kept.as_ref().is_none_or(|f| !f.exists()) {
        seed(&url, users, revocations).await?;
    } else {
        println!("reusing {}", file.display());
    }

    let started = Instant::now();
    let server = ServerProcess::start(&[("DATABASE_URL", url.as_str())]).await?;
    let load = started.elapsed();
    let ready = server.ready().await?;
    let (rss, peak) = memory_kb(server.pid());
    println!(
        "started on {revocations} live revocations and {users} users ({what}): ready, answering from {}, in {:.1} s; \
         mirror {} entries; memory {} MB (peak {} MB)",
        ready["answers_from"],
        load.as_secs_f64(),
        ready["revocations"]["entries"],
        rss / 1024,
        peak / 1024
    );

    let client = reqwest::Client::new();
    let creds = json!({"email": "bench@scale.example", "password": PASSWORD});
    post(&client, format!("{}/auth/register", server.base), &creds).await?;
    let login = post(&client, format!("{}/auth/login", server.base), &creds).await?;
    let access = login["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_owned();
    for clients in [4, 32] {
        let length = Duration::from_secs(3);
        let health = rps(&format!("{}/health", server.base), None, clients, length).await;
        let me = rps(
            &format!("{}/auth/me", server.base),
            Some(&access),
            clients,
            length,
        )
        .await;
        println!(
            "{clients:>2} clients: /health {health:>8.0}/s   /auth/me {me:>8.0}/s   ratio {:.2}",
            me / health
        );
    }
    let (rss, peak) = memory_kb(server.pid());
    println!(
        "after the load: memory {} MB (peak {} MB)",
        rss / 1024,
        peak / 1024
    );
    drop(server);
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
