#![doc = include_str!("../README.md")]

mod error;
mod onetime;
mod signer;

pub use crate::error::SignError;
pub use crate::onetime::OneTimeTokens;
pub use crate::signer::{SEPARATOR, Signer, TimestampSigner, make_token, verify_token};
