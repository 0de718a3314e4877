//! The OpenAPI document against the running server, fuzzed: schemathesis (PyPI) reads
//! `/openapi.json`, generates requests for every operation it lists (`/auth`, `/onboarding`,
//! `/admin`: valid, boundary and malformed bodies, parameters and headers) and checks each
//! answer: no 5xx, no status the document does not list for that operation, the documented
//! content type and the documented schema. Needs `AUTH_TEST_SCHEMATHESIS`, the `schemathesis`
//! executable (`.ci/run` installs it from PyPI into a virtual environment); skipped, with the
//! reason printed, without it.

use std::time::Duration;

use crate::common::Server;

/// Throttles opened wide: one client sends thousands of requests, and a 429 where the
/// document lists none would be a finding about the fuzzer, not the server.
const WIDE_LIMITS: [(&str, &str); 5] = [
    ("AUTH_RATE_LIMIT_MAX_ATTEMPTS", "1000000"),
    ("AUTH_SIGNUP_RATE_LIMIT_ATTEMPTS", "1000000"),
    ("AUTH_LOGIN_RATE_LIMIT_ATTEMPTS", "1000000"),
    ("AUTH_IP_RATE_LIMIT_ATTEMPTS", "1000000"),
    ("AUTH_MAIL_RATE_LIMIT_ATTEMPTS", "1000000"),
];

/// The operations that end the caller's session or account (or may, given an id the fuzzer
/// chose): fuzzed in a second pass, so that the first keeps a live token for everything else.
const SESSION_ENDING: &str = r"^(POST /auth/(logout|logout-all|account/secure|password/change|sessions/revoke-others|email/change/confirm)|DELETE /auth/(me|sessions/\{id\})|(POST|DELETE) /admin/users/\{id\}(/deactivate|/logout-all|/roles|/roles/\{role\})?)$";

/// Runs schemathesis over `document` as the bearer of `token`, with `filter` (an include or
/// exclude option and its regex); its output, and whether it found nothing.
fn schemathesis(
    exe: &std::ffi::OsStr,
    document: &str,
    token: &str,
    filter: [&str; 2],
) -> (bool, String) {
    let out = std::process::Command::new(exe)
        .args([
            "run",
            document,
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-time",
            "45",
            "--workers",
            "2",
            "--seed",
            "31",
            filter[0],
            filter[1],
        ])
        .env("NO_COLOR", "1")
        // Its cache of examples (.schemathesis/) stays out of the source tree.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number after `label` in schemathesis's summary ("Tested: 57").
fn number_after(text: &str, label: &str) -> Option<usize> {
    let rest = text.split(label).nth(1)?.trim_start();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn summary(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzing_finds_no_undocumented_status_no_5xx_and_no_schema_mismatch() {
    let Some(exe) = std::env::var_os("AUTH_TEST_SCHEMATHESIS") else {
        auth_testkit::skip(
            "schemathesis",
            "AUTH_TEST_SCHEMATHESIS is not set (the schemathesis executable; pip install schemathesis, .ci/run does)",
        );
        return;
    };
    // An administrator with a proven address, so the admin routes answer past their 403.
    let mut vars = WIDE_LIMITS.to_vec();
    vars.push(("AUTH_ADMIN_EMAILS", "fuzz@example.com,ender@example.com"));
    let server = Server::start(&vars).await;
    let token = server.register_verified("fuzz@example.com").await;
    // Its own account for the pass that ends sessions and accounts.
    let ender = server.register_verified("ender@example.com").await;
    let document = format!("{}/openapi.json", server.base);
    let passes = tokio::task::spawn_blocking(move || {
        let first = schemathesis(
            &exe,
            &document,
            &token,
            ["--exclude-name-regex", SESSION_ENDING],
        );
        let second = schemathesis(
            &exe,
            &document,
            &ender,
            ["--include-name-regex", SESSION_ENDING],
        );
        (first, second)
    });
    let (first, second) = tokio::time::timeout(Duration::from_secs(600), passes)
        .await
        .expect("schemathesis ends within 10 minutes")
        .expect("the blocking task");
    for (pass, (ok, text)) in [("everything else", &first), ("session-ending", &second)] {
        println!("schemathesis, {pass} operations:\n{}", summary(text));
        assert!(
            ok,
            "schemathesis found failures ({pass} operations):\n{text}"
        );
    }
    // Every operation of the document was exercised by one pass or the other.
    let tested = number_after(&first.1, "Tested:").unwrap_or(0)
        + number_after(&second.1, "Tested:").unwrap_or(0);
    let total = first
        .1
        .split("Selected:")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .and_then(|n| {
            n.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        total >= 50 && tested == total,
        "{tested} of {total} operations tested:\n{}\n{}",
        summary(&first.1),
        summary(&second.1)
    );
}
