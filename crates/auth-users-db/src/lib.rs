#![doc = include_str!("../README.md")]

mod audit;
pub mod entity;
mod grant;
mod migration;
mod rate_limit;
mod store;

pub use crate::audit::{CreateAuditLog, DbAuditStore};
pub use crate::grant::{CreateGrants, DbGrantStore};
pub use crate::migration::{BinaryCollation, CreateRateLimits, CreateUsers, Migrator, migrations};
pub use crate::rate_limit::DbRateLimiter;
pub use crate::store::DbUserStore;
