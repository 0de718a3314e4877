#![doc = include_str!("../README.md")]

mod algorithm;
mod backend;
mod claims;
mod error;
mod keys;
mod provider;

pub use crate::algorithm::Algorithm;
pub use crate::backend::{ISSUED_AHEAD_TOLERANCE, JwtBackend};
pub use crate::error::JwtError;
pub use crate::keys::{JwtKey, JwtKeySet, KeyState};
