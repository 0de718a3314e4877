#![doc = include_str!("../README.md")]

mod backend;
pub mod entity;
mod migration;

pub use crate::backend::{CLEANUP_BATCH, DbTokenBackend, TOKEN_BYTES};
pub use crate::migration::{CreateTokens, migrations};
