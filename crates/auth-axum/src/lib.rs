#![doc = include_str!("../README.md")]

mod error;
mod extract;
mod router;

pub use crate::error::ApiError;
pub use crate::extract::{AccessClaims, Authenticated};
pub use crate::router::{MAX_BODY_BYTES, auth_router};
