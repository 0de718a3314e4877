#![doc = include_str!("../README.md")]

mod error;
mod extract;
#[cfg(feature = "mfa")]
mod mfa;
mod router;

pub use crate::error::ApiError;
pub use crate::extract::{AccessClaims, Authenticated};
pub use crate::router::{AuthRouter, MAX_BODY_BYTES, auth_router};
