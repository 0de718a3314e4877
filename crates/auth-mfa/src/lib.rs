//! TOTP two-factor authentication for auth.
//!
//! - [`TotpCode`]: RFC 6238 codes on totp-rs (SHA1/SHA256/SHA512, 6 or 8 digits, ±skew steps).
//! - [`Mfa`]: enrolment (secret, otpauth URI, QR code as SVG and PNG) confirmed by a code;
//!   verification that accepts each time step once (replay protection, atomic in the store);
//!   ten single-use recovery codes stored hashed; disable and regenerate behind a valid code;
//!   a per-user failure lockout; and the two-step login: [`Mfa::login`] answers
//!   [`LoginOutcome::Challenge`] with a short-lived, single-use challenge that
//!   [`Mfa::complete_login`] turns into tokens. As a [`auth_service::SecondFactorGate`] it also
//!   stops `AuthService::login` from issuing tokens on a password alone.
//! - [`SecretCipher`]: secrets sealed at rest with AES-256-GCM, a key id beside each ciphertext
//!   so keys rotate.
//! - [`MfaStore`]: [`MemoryMfaStore`], and `DbMfaStore` on sea-orm with its migration (feature
//!   `db` plus a driver feature).
//!
//! ```
//! use auth_mfa::{TotpCode, TotpSettings, TotpAlgorithm};
//! // RFC 6238 Appendix B: SHA256, T = 1111111109 s.
//! let totp = TotpCode::new(b"12345678901234567890123456789012",
//!     TotpSettings { algorithm: TotpAlgorithm::Sha256, digits: 8, ..Default::default() }).unwrap();
//! assert_eq!(totp.generate(1_111_111_109), "68084774");
//! ```

mod cipher;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "db")]
mod devices;
mod mfa;
#[cfg(feature = "qr")]
mod qr;
mod store;
mod totp;

pub use cipher::{EncryptedSecret, KEY_LEN, SecretCipher};
#[cfg(feature = "db")]
pub use devices::{CreateTrustedDevices, DbTrustedDevices};
pub use mfa::{
    Enrollment, FactorUsed, LoginOutcome, Mfa, MfaChallenge, MfaConfig, MfaStatus, RecoveryCodes,
    SECRET_BYTES,
};
#[cfg(feature = "qr")]
pub use qr::{qr_png, qr_svg};
pub use store::{ChallengeRecord, ChallengeStore, MemoryMfaStore, MfaStore, TotpRecord};
pub use totp::{TotpAlgorithm, TotpCode, TotpSettings};
