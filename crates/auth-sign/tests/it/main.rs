//! auth-sign integration tests.

mod signing;
mod vectors;
