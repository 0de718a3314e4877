//! Passwords at run time: hashing off the async runtime with bounded, fair admission, the
//! policy with Django's validators, and the breached-password check.

mod breach;
mod hashing;
mod validation;

pub use breach::{BreachedPasswordValidator, PwnedPasswordsDir};
pub use hashing::{HashLane, PasswordHashing};
pub use validation::{
    CommonPasswordValidator, MinimumLengthValidator, NumericPasswordValidator, PasswordPolicy,
    UserAttributeSimilarityValidator,
};
