//! auth-mfa integration tests: RFC 6238 and pyotp vectors, the store conformance suite on
//! memory and on every SQL database configured, and the two-step login.

mod common;
mod conformance;
mod flows;
mod vectors;
