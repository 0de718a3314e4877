//! Passkeys (WebAuthn) for the `auth` workspace, on [webauthn-rs](https://docs.rs/webauthn-rs).
//!
//! - [`WebauthnPasskeys`]: an [`auth_core::PasskeyBackend`] — registration, sign-in with a
//!   discoverable credential (no address typed; conditional UI) or an account's passkeys, a
//!   passkey as the answer to a second-factor challenge, list, rename, delete. Give it to
//!   `auth_service::AuthService::with_passkeys`: the service applies the throttle, the
//!   account's state, the second factor, the events and the session, as for every other way
//!   in.
//! - Ceremony state waits server side in an [`auth_core::ephemeral::CeremonyStore`] (memory,
//!   SQL here with feature `db`, Redis in auth-redis), taken once, so any instance finishes
//!   what another started and an answer is never checked twice.
//! - [`PasskeyStore`]: [`MemoryPasskeyStore`], and `db::DbPasskeyStore` on sea-orm with its
//!   migration (feature `db` plus a driver feature). Counters and backup flags are stored; a
//!   counter that does not advance is refused and reported (a cloned authenticator).
//!
//! ```
//! use auth_service::ephemeral::MemoryCeremonyStore;
//! use auth_service::{AuthConfig, AuthService, MemoryTokenBackend, MemoryUserStore};
//! use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let passkeys = WebauthnPasskeys::new(
//!     WebauthnConfig::new("localhost", "http://localhost:8080")?.rp_name("Example"),
//!     MemoryPasskeyStore::new(),
//!     MemoryCeremonyStore::new(),
//! )?;
//! let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
//!     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new())?
//!     .with_passkeys(passkeys);
//! let user = auth.register("ada@example.com", "violet-otter-sings-42").await?;
//! auth.prove_address(&user.id, auth_service::AddressProof::InSession).await?; // a proven address first
//! // Send `options.public_key` to navigator.credentials.create({publicKey}), then give the
//! // answer to auth.register_passkey(&user.id, &credential, Some("Laptop")).
//! let options = auth.passkey_registration_options(&user.id).await?;
//! assert_eq!(options.public_key["rp"]["id"], "localhost");
//! # Ok::<(), auth_service::Error>(()) }).unwrap();
//! ```

#[cfg(feature = "db")]
pub mod db;
mod passkeys;
mod store;

pub use passkeys::{DEFAULT_CEREMONY_TTL, WebauthnConfig, WebauthnPasskeys};
pub use store::{MemoryPasskeyStore, PasskeyStore, PasskeyUse, StoredPasskey};
/// URLs, as origins are given (webauthn-rs's re-export of the `url` crate's type).
pub use webauthn_rs::prelude::Url;
