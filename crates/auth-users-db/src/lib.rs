#![doc = include_str!("../README.md")]

pub mod entity;
mod migration;
mod store;

pub use crate::migration::{CreateUsers, Migrator, migrations};
pub use crate::store::DbUserStore;
