//! Project automation, in Rust instead of shell scripts.
//!
//! - `cargo xtask ci`: what CI runs: fmt check, clippy -D warnings, rustdoc -D warnings,
//!   `cargo test --workspace`
//!   (unit, integration, doc and policy tests), cargo-deny bans/licenses/sources.
//! - `cargo xtask bench`: each operation as a ratio against the raw work it wraps (release build);
//!   `cargo xtask bench stack --chart` also writes the HTTP figures as SVG charts in `docs/bench/`;
//!   `cargo xtask bench peer [--chart]` runs auth-server beside the tortoise-auth peer.
//! - `cargo xtask deny`: cargo-deny alone.

// A command-line tool reports on stderr.
#![allow(clippy::print_stderr)]

mod bench;
mod bench_db;
mod bench_http;
mod bench_peer;
mod bench_redis;
mod bench_scale;
mod bench_server;
mod bench_soak;
mod chart;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(),
        Some("deny") => deny(),
        // The flood of `bench flood`, run by the bench itself as a process of its own.
        Some("flood-client") => bench_http::flood_client(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <ci|bench|deny>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| ".".into(), std::path::Path::to_path_buf)
}

fn run(step: &str, cmd: &mut Command) -> Result<(), String> {
    println!("==> {step}");
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn ci() -> Result<(), String> {
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // Every intra-doc link resolves and rustdoc has nothing to say.
    run(
        "docs",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // The README's test command, exactly: unit, integration and doc tests of every crate.
    // Every skip is logged (auth_testkit::skip) for the summary below.
    let skip_log = std::env::temp_dir().join(format!("auth-ci-skips-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&skip_log);
    run(
        "tests",
        cargo()
            .args(["test", "--workspace"])
            .env("AUTH_TEST_SKIP_LOG", &skip_log),
    )?;
    let skips = std::fs::read_to_string(&skip_log).unwrap_or_default();
    let _ = std::fs::remove_file(&skip_log);
    skip_summary(&skips)?;
    deny()
}

/// Prints one line on what the tests skipped and why, and fails when a service this run was
/// given (its `AUTH_TEST_*` variable set, or named in `AUTH_CI_EXPECT` by `.ci/run`) was
/// skipped anyway.
fn skip_summary(log: &str) -> Result<(), String> {
    use std::collections::BTreeMap;
    let mut by_service: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for line in log.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(service), Some(_test), Some(reason)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let entry = by_service.entry(service).or_insert((0, reason));
        entry.0 += 1;
    }
    if by_service.is_empty() {
        println!("== skipped: nothing (every service the tests can use was there)");
    } else {
        let summary: Vec<String> = by_service
            .iter()
            .map(|(service, (n, reason))| format!("{service} x{n} ({reason})"))
            .collect();
        println!("== skipped: {}", summary.join("; "));
    }
    let mut expected: Vec<String> = [
        ("AUTH_TEST_POSTGRES_URL", "postgres"),
        ("AUTH_TEST_MYSQL_URL", "mysql"),
        ("AUTH_TEST_REDIS_URL", "redis"),
        ("AUTH_TEST_REDIS_CLUSTER_URL", "redis-cluster"),
    ]
    .into_iter()
    .filter(|(var, _)| std::env::var(var).is_ok_and(|v| !v.is_empty()))
    .map(|(_, service)| service.to_owned())
    .collect();
    if let Ok(more) = std::env::var("AUTH_CI_EXPECT") {
        expected.extend(
            more.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    let missed: Vec<&String> = expected
        .iter()
        .filter(|s| by_service.contains_key(s.as_str()))
        .collect();
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "tests were skipped for services this run provides: {missed:?} (see the skipped lines above)"
        ))
    }
}

fn deny() -> Result<(), String> {
    let installed = Command::new("cargo-deny")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err(
            "cargo-deny is not installed: cargo install --locked cargo-deny --version 0.20.2"
                .into(),
        );
    }
    // Advisories need the RustSec database from the network, which CI here cannot reach.
    run(
        "cargo deny (bans, licenses, sources)",
        cargo().args(["deny", "--offline", "check", "bans", "licenses", "sources"]),
    )
}
