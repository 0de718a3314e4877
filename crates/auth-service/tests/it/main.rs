//! auth-core integration tests: one binary, one module per concern.

mod common;
mod config;
mod conformance;
mod events;
mod hashing;
mod identities;
mod links;
mod mirror;
mod orchestrator;
mod passkeys;
mod s2s;
mod service;
mod signed_links;
mod timing;
mod validation;
