#![doc = include_str!("../README.md")]

mod argon2;
mod bcrypt;
mod crypt;
mod django_argon2;
mod error;
mod multi;
mod pbkdf2;

pub use crate::argon2::{Argon2Hasher, Argon2Params};
pub use crate::bcrypt::{
    BCRYPT_MAX_PASSWORD_BYTES, BcryptHasher, DjangoBcryptHasher, DjangoBcryptSha256Hasher,
    MAX_BCRYPT_COST,
};
pub use crate::crypt::{MAX_SHA_CRYPT_ROUNDS, ShaCryptHasher};
pub use crate::django_argon2::DjangoArgon2Hasher;
pub use crate::error::ParamsError;
pub use crate::multi::MultiHasher;
pub use crate::pbkdf2::{
    DjangoPbkdf2Hasher, MAX_PBKDF2_ITERATIONS, Pbkdf2Digest, TortoisePbkdf2Hasher,
};
/// The hasher contract, re-exported so a project that only hashes passwords needs no other
/// crate: `use auth_hash::{MultiHasher, PasswordHasher};`.
pub use auth_core::{HashError, PasswordHasher};
