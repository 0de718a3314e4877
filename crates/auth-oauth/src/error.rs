//! What can go wrong between the redirect to a provider and its answer, as the codes the
//! application's page receives (`?error=`).

use std::fmt;

/// Why a provider sign-in failed before any account was involved. [`code`](Self::code) is
/// what `redirect_to` receives as `?error=`.
///
/// ```
/// assert_eq!(auth_oauth::OAuthFailure::InvalidState.code(), "invalid_state");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthFailure {
    /// The user declined at the provider (or the provider refused to ask).
    AccessDenied,
    /// Unknown, spent, expired or tampered state, or a state from another browser.
    InvalidState,
    /// The provider's answer did not check: code refused, ID token with another nonce,
    /// audience, issuer or signature, no subject.
    InvalidResponse,
    /// The provider could not be reached or answered with an error.
    ProviderUnavailable,
    /// No such provider is configured.
    UnknownProvider,
}

impl OAuthFailure {
    /// The code for `?error=`.
    ///
    /// ```
    /// assert_eq!(auth_oauth::OAuthFailure::AccessDenied.code(), "access_denied");
    /// ```
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InvalidState => "invalid_state",
            Self::InvalidResponse => "invalid_response",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::UnknownProvider => "unknown_provider",
        }
    }
}

impl fmt::Display for OAuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for OAuthFailure {}
