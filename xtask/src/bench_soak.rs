//! `cargo xtask bench soak`: the release `auth-server` refreshing tokens as fast as this
//! machine lets it for ten minutes (`AUTH_BENCH_SOAK_SECS`), with access tokens that live one
//! minute (`AUTH_BENCH_SOAK_ACCESS_SECS`), so the revocations each rotation leaves in memory
//! expire within the run. Every 30 s it prints the rotations a second, the mirror's entries and
//! the server's resident memory; memory must stop growing once the first entries expire.
//!
//! `AUTH_BENCH_SOAK_URL` (a PostgreSQL or MariaDB URL) soaks that database instead of an
//! SQLite file.

use std::time::Duration;

use serde_json::json;

use crate::bench_scale::memory_kb;
use crate::bench_server::{ServerProcess, post, refresh_chains};

const PASSWORD: &str = "violet-otter-sings-42";
/// Refresh chains running at once (each refreshes again as soon as it has its answer).
const CHAINS: usize = 8;
const SAMPLE: Duration = Duration::from_secs(30);

fn secs(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) async fn run() -> Result<(), String> {
    let length = secs("AUTH_BENCH_SOAK_SECS", 600);
    let access = secs("AUTH_BENCH_SOAK_ACCESS_SECS", 60).to_string();
    let dir = std::env::temp_dir().join(format!("auth-bench-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let url = std::env::var("AUTH_BENCH_SOAK_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("soak.db").display()));
    let server = ServerProcess::start(&[
        ("DATABASE_URL", url.as_str()),
        ("AUTH_ACCESS_TOKEN_LIFETIME", access.as_str()),
    ])
    .await?;
    let client = reqwest::Client::new();
    let creds = json!({"email": "soak@bench.example", "password": PASSWORD});
    post(&client, format!("{}/auth/register", server.base), &creds).await?;
    println!(
        "soak: {CHAINS} refresh chains for {length} s, access tokens of {access} s, on {}",
        if url.starts_with("sqlite") {
            "the SQLite file"
        } else {
            url.split(':').next().unwrap_or("a database")
        }
    );
    println!("   at   rotations/s   failures   mirror entries   memory (MB)");
    let mut samples = Vec::new();
    let mut elapsed = 0;
    while elapsed < length {
        let slice = SAMPLE.min(Duration::from_secs(length - elapsed));
        let (rate, failures) = refresh_chains(&server.base, &creds, CHAINS, slice).await;
        elapsed += slice.as_secs();
        let ready = server.ready().await?;
        let entries = ready["revocations"]["entries"].as_u64().unwrap_or(0);
        let rss = memory_kb(server.pid()).0 / 1024;
        println!("{elapsed:>5} s {rate:>13.0} {failures:>10} {entries:>16} {rss:>13}");
        samples.push((elapsed, rss, entries));
    }
    // Once the first entries have expired (the access lifetime plus a sweep), the mirror holds
    // about rate × lifetime entries and memory should stay where it is.
    let settled = secs("AUTH_BENCH_SOAK_ACCESS_SECS", 60) * 2 + 30;
    let later: Vec<_> = samples.iter().filter(|(at, ..)| *at > settled).collect();
    if let (Some(first), Some(low), Some(high)) = (
        later.first(),
        later.iter().map(|(_, rss, _)| *rss).min(),
        later.iter().map(|(_, rss, _)| *rss).max(),
    ) {
        println!(
            "after {} s: memory {low}-{high} MB ({:+} MB from the first sample to the last), mirror {}-{} entries",
            first.0,
            later.last().map_or(0, |(_, rss, _)| *rss as i64) - first.1 as i64,
            later.iter().map(|(.., e)| *e).min().unwrap_or(0),
            later.iter().map(|(.., e)| *e).max().unwrap_or(0),
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
