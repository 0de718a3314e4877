use std::collections::HashMap;
use std::time::Duration;

use auth_service::{AuthConfig, ConfigError};

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-signing";

#[test]
fn defaults_follow_the_reference() {
    let c = AuthConfig::default();
    assert_eq!(c.lifetimes().access(), Duration::from_secs(900));
    assert_eq!(c.lifetimes().refresh(), Duration::from_secs(604_800));
    assert_eq!(c.lifetimes().absolute(), Duration::from_secs(2_592_000));
    assert_eq!(c.max_password_length(), 4096);
    assert_eq!(c.rate_limit().max_attempts(), 5);
    assert_eq!(c.rate_limit().window(), Duration::from_secs(300));
    assert_eq!(c.rate_limit().lockout(), Duration::from_secs(600));
    assert_eq!(c.password_reset_token_lifetime(), Duration::from_secs(3600));
}

#[test]
fn from_env_names_the_missing_variable() {
    let err = AuthConfig::from_lookup(lookup(&[])).unwrap_err();
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"), "{err}");
}

#[test]
fn from_env_rejects_a_short_secret() {
    let err = AuthConfig::from_lookup(lookup(&[("AUTH_SIGNING_SECRET", "short")])).unwrap_err();
    assert!(matches!(err, ConfigError::WeakSecret { .. }));
    assert!(err.to_string().contains("AUTH_SIGNING_SECRET"));
    assert!(
        !err.to_string().contains("short"),
        "the secret is not echoed"
    );
}

#[test]
fn from_env_reads_every_variable() {
    let c = AuthConfig::from_lookup(lookup(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_ACCESS_TOKEN_LIFETIME", "60"),
        ("AUTH_REFRESH_TOKEN_LIFETIME", "3600"),
        ("AUTH_REFRESH_ABSOLUTE_LIFETIME", "7200"),
        ("AUTH_MAX_PASSWORD_LENGTH", "1000"),
        ("AUTH_RATE_LIMIT_MAX_ATTEMPTS", "7"),
        ("AUTH_RATE_LIMIT_WINDOW", "30"),
        ("AUTH_RATE_LIMIT_LOCKOUT", "90"),
        ("AUTH_PASSWORD_RESET_TOKEN_LIFETIME", "120"),
        ("AUTH_HASH_CONCURRENCY", "3"),
        (
            "AUTH_S2S_TOKENS",
            " svc-token-one-0123456789abcdef0123456, ,svc-token-two-0123456789abcdef0123456 ",
        ),
    ]))
    .unwrap();
    assert_eq!(c.lifetimes().access().as_secs(), 60);
    assert_eq!(c.lifetimes().refresh().as_secs(), 3600);
    assert_eq!(c.lifetimes().absolute().as_secs(), 7200);
    assert_eq!(c.max_password_length(), 1000);
    assert_eq!(c.rate_limit().max_attempts(), 7);
    assert_eq!(c.rate_limit().window().as_secs(), 30);
    assert_eq!(c.rate_limit().lockout().as_secs(), 90);
    assert_eq!(c.password_reset_token_lifetime().as_secs(), 120);
    assert_eq!(c.hash_concurrency(), Some(3));
    assert_eq!(c.s2s_tokens().len(), 2);
    assert_eq!(
        c.signing_secret().unwrap().expose_secret(),
        SECRET.as_bytes()
    );
}

#[test]
fn from_env_names_the_bad_variable() {
    let err = AuthConfig::from_lookup(lookup(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_ACCESS_TOKEN_LIFETIME", "soon"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().contains("AUTH_ACCESS_TOKEN_LIFETIME"),
        "{err}"
    );

    let err = AuthConfig::from_lookup(lookup(&[
        ("AUTH_SIGNING_SECRET", SECRET),
        ("AUTH_ACCESS_TOKEN_LIFETIME", "0"),
    ]))
    .unwrap_err();
    assert!(
        err.to_string().contains("AUTH_ACCESS_TOKEN_LIFETIME"),
        "{err}"
    );
}

#[test]
fn builder_validates() {
    let bad = [
        (
            AuthConfig::builder().refresh_token_lifetime(Duration::from_secs(10)),
            "refresh_token_lifetime",
        ),
        (
            AuthConfig::builder().refresh_absolute_lifetime(Duration::from_secs(10)),
            "refresh_absolute_lifetime",
        ),
        (
            AuthConfig::builder().rate_limit_max_attempts(0),
            "rate_limit_max_attempts",
        ),
        (
            AuthConfig::builder().rate_limit_window(Duration::ZERO),
            "rate_limit_window",
        ),
        (
            AuthConfig::builder().rate_limit_lockout(Duration::ZERO),
            "rate_limit_lockout",
        ),
        (
            AuthConfig::builder().max_password_length(0),
            "max_password_length",
        ),
        (
            AuthConfig::builder().hash_concurrency(0),
            "hash_concurrency",
        ),
        (
            AuthConfig::builder().password_reset_token_lifetime(Duration::ZERO),
            "password_reset_token_lifetime",
        ),
        (
            AuthConfig::builder().signing_secret("x".repeat(31)),
            "signing_secret",
        ),
        (AuthConfig::builder().s2s_tokens(["short"]), "S2S token"),
    ];
    for (builder, name) in bad {
        let err = builder.build().unwrap_err();
        assert!(err.to_string().contains(name), "{err} should name {name}");
    }
}

#[test]
fn debug_never_prints_secrets() {
    let c = AuthConfig::builder()
        .signing_secret(SECRET)
        .s2s_tokens(["svc-token-one-0123456789abcdef0123456"])
        .build()
        .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
    assert!(debug.contains("REDACTED"));
}

#[test]
fn crate_errors_convert_into_the_core_error() {
    let err: auth_service::Error = auth_service::HashError::Malformed.into();
    assert!(matches!(err, auth_service::Error::Backend(_)));
    assert_eq!(err.to_string(), "backend error: password hashing");
    // The chain: Error -> BackendError (what was being done) -> HashError (the cause).
    let context = std::error::Error::source(&err).unwrap();
    assert_eq!(context.to_string(), "password hashing");
    assert_eq!(
        context.source().unwrap().to_string(),
        "malformed password hash"
    );

    let err: auth_service::Error = ConfigError::Missing { var: "AUTH_X" }.into();
    assert!(matches!(err, auth_service::Error::Configuration(_)));
    assert!(err.to_string().contains("AUTH_X"));
}
