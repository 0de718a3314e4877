//! auth-hash integration tests.

mod formats;
mod login;
mod malformed;
mod vectors;
