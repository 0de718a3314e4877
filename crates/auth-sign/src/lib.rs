#![doc = include_str!("../README.md")]

mod error;
mod flows;
mod onetime;
mod signer;

pub use crate::error::SignError;
pub use crate::flows::{EmailVerificationService, Invite, InviteLinks, PasswordResetService};
pub use crate::onetime::OneTimeTokens;
pub use crate::signer::{SEPARATOR, Signer, TimestampSigner, make_token, verify_token};
