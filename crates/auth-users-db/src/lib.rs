#![doc = include_str!("../README.md")]

pub mod entity;
mod migration;
mod rate_limit;
mod store;

pub use crate::migration::{BinaryCollation, CreateRateLimits, CreateUsers, Migrator, migrations};
pub use crate::rate_limit::DbRateLimiter;
pub use crate::store::DbUserStore;
