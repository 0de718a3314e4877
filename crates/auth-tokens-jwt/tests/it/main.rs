//! auth-tokens-jwt integration tests.

mod attacks;
mod conformance;
mod interop;
mod keys;
mod service;
