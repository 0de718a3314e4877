//! auth-sign integration tests.

mod flows;
mod signing;
mod vectors;
