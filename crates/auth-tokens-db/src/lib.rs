#![doc = include_str!("../README.md")]

mod backend;
pub mod entity;
mod lookup;
mod migration;
mod revocation;

pub use crate::backend::{CLEANUP_BATCH, DbTokenBackend, TOKEN_BYTES};
pub use crate::migration::{
    CreateJwtSessions, CreateRevocations, CreateTokens, NotBeforeMicros, migrations,
};
pub use crate::revocation::DbRevocationStore;
