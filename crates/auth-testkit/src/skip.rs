//! Skips that show: a test that cannot run here says why, where the test output shows it, and
//! leaves a line for the run's summary.

use std::io::Write;

/// The file skips are appended to (`AUTH_TEST_SKIP_LOG`), one `service<TAB>test<TAB>reason`
/// line each; `cargo xtask ci` sets it, prints the summary and fails when a service it was
/// given was skipped.
pub const SKIP_LOG_VAR: &str = "AUTH_TEST_SKIP_LOG";

/// Reports that the current test skips its work because `service` (`postgres`, `mysql`,
/// `redis`, `chromium`, `pyjwt`...) is absent, and why.
///
/// libtest captures `println!` and `eprintln!` of passing tests, so a skip printed that way is
/// invisible and the test looks like it ran. This writes to the process's standard error
/// directly (shown by `cargo test` whatever the capture), naming the test, and appends to the
/// file in [`SKIP_LOG_VAR`] when set.
///
/// ```no_run
/// // In a test that needs PostgreSQL (not run here: a CI run counts every skip it logs).
/// if std::env::var("AUTH_TEST_POSTGRES_URL").is_err() {
///     auth_testkit::skip("postgres", "AUTH_TEST_POSTGRES_URL is not set");
///     return;
/// }
/// ```
pub fn skip(service: &str, reason: &str) {
    let current = std::thread::current();
    let test = current.name().unwrap_or("a test");
    // Straight to the file descriptor: not captured by the test harness.
    let _ = writeln!(std::io::stderr(), "skipped {test} ({service}): {reason}");
    if let Some(path) = std::env::var_os(SKIP_LOG_VAR) {
        let line = format!("{service}\t{test}\t{}\n", reason.replace(['\t', '\n'], " "));
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            // One write per line: appends from concurrent tests do not interleave.
            let _ = file.write_all(line.as_bytes());
        }
    }
}
