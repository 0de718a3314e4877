//! auth-server over real HTTP, in one test binary: each module is a suite (`cargo test -p
//! auth-server --test it <module>` runs one). Suites needing PostgreSQL, MariaDB, Redis or
//! Chromium read `AUTH_TEST_*` and skip, with the reason printed, without them.

mod common;

mod admin;
mod api_keys;
mod attacks;
mod browser;
mod connections;
mod e2e;
mod faults;
mod fuzz;
mod instances;
mod jwks;
mod lifecycle;
mod links;
mod mail;
mod mfa;
mod oauth;
mod onboarding;
mod passkeys;
mod redis;
mod server;
mod skew;
mod storage;
