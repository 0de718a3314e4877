#![doc = include_str!("../README.md")]

mod backend;
pub mod entity;
mod feed;
mod lookup;
mod migration;
mod revocation;

pub use crate::backend::{CLEANUP_BATCH, DbTokenBackend, TOKEN_BYTES};
pub use crate::feed::{DbChangeFeed, DbFeedOptions};
pub use crate::migration::{
    ConsumedAt, CreateJwtSessions, CreateRevocations, CreateTokens, JwtSessionDetails,
    NotBeforeMicros, RevocationMirrorSupport, migrations,
};
pub use crate::revocation::DbRevocationStore;
