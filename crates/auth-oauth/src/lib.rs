//! Sign-in with OpenID Connect and OAuth 2.0 providers for the `auth` workspace.
//!
//! - [`OAuth`]: the redirect to a provider and the check of its answer — PKCE (S256),
//!   `state` stored server side (single use) and bound to the browser by a cookie, the nonce
//!   and the ID token checked by [openidconnect](https://docs.rs/openidconnect) (signature,
//!   issuer, audience, expiry), GitHub's user and verified emails from its API — giving a
//!   [`auth_core::ProviderIdentity`]. The application then redeems a single-use, 60-second
//!   code (never tokens in a URL), and `AuthService::sign_in_with_provider` applies the
//!   linking rules, the second factor and the session, as for every other way in.
//! - [`Provider`]: any issuer URL (discovery), presets for Google, Microsoft, GitLab, Apple
//!   (client-secret JWT, form-post answers), and GitHub (also at other addresses: Enterprise
//!   Server, a stand-in in tests).
//! - [`HttpClient`] (hyper + rustls on ring, webpki roots, timeout, bounded bodies), or any
//!   [`HttpSend`].
//! - `db::DbIdentityStore` (feature `db`): linked identities in SQL, with their migration.
//!
//! ```
//! use auth_service::ephemeral::MemoryCeremonyStore;
//! use auth_oauth::{OAuth, Provider};
//! let oauth = OAuth::new("https://app.example.com/auth/oauth", MemoryCeremonyStore::new())?
//!     .with_provider(Provider::google("id.apps.googleusercontent.com", "secret"))
//!     .with_provider(Provider::github("Iv1.abc", "secret"))
//!     .allow_redirects(["https://app.example.com/"])?;
//! assert_eq!(oauth.provider_names(), ["github", "google"]);
//! # Ok::<(), auth_service::Error>(())
//! ```

mod apple;
#[cfg(feature = "db")]
pub mod db;
mod error;
mod flow;
mod github;
mod http;
mod provider;

pub use error::OAuthFailure;
pub use flow::{CODE_LIFETIME, CallbackParams, Failed, Finished, OAuth, STATE_LIFETIME, Started};
pub use http::{HttpClient, HttpSend, MAX_RESPONSE_BYTES};
pub use provider::{Protocol, Provider};
