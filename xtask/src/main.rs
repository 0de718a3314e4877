//! Project automation, in Rust instead of shell scripts.
//!
//! - `cargo xtask ci`: what CI runs: fmt check, clippy -D warnings, `cargo test --workspace`
//!   (unit, integration, doc and policy tests), cargo-deny bans/licenses/sources.
//! - `cargo xtask bench`: each operation as a ratio against the raw work it wraps (release build).
//! - `cargo xtask deny`: cargo-deny alone.

// A command-line tool reports on stderr.
#![allow(clippy::print_stderr)]

mod bench;
mod bench_db;
mod bench_http;
mod bench_redis;
mod bench_server;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(),
        Some("deny") => deny(),
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
    // The README's test command, exactly: unit, integration and doc tests of every crate.
    run("tests", cargo().args(["test", "--workspace"]))?;
    deny()
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
