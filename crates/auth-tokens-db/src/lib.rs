#![doc = include_str!("../README.md")]

mod backend;
pub mod entity;
mod feed;
mod group;
mod lookup;
mod migration;
mod revocation;
mod scan;
mod signing_keys;

pub use crate::backend::{CLEANUP_BATCH, DbTokenBackend, TOKEN_BYTES};
pub use crate::feed::{DbChangeFeed, DbFeedOptions};
pub use crate::migration::{
    ConsumedAt, CreateJwtSessions, CreateRevocations, CreateSigningKeys, CreateTokens,
    JwtSessionDetails, NotBeforeMicros, RevocationMirrorSupport, migrations,
};
pub use crate::revocation::DbRevocationStore;
pub use crate::signing_keys::{DbSigningKeyStore, StoredKeys};
