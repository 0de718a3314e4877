#![doc = include_str!("../README.md")]

mod admin;
mod client;
mod error;
mod extract;
#[cfg(feature = "mfa")]
mod mfa;
#[cfg(feature = "onboarding")]
mod onboarding;
mod openapi;
mod router;
mod schemes;

pub use crate::admin::{AdminAccess, AdminRouter};
pub use crate::client::TrustedProxies;
pub use crate::error::{ApiError, Rejection};
pub use crate::extract::{AccessClaims, ApiKeyCaller, Authenticated, Fresh};
#[cfg(feature = "onboarding")]
pub use crate::onboarding::{
    onboarding_openapi, onboarding_router, onboarding_router_with_proxies,
};
pub use crate::router::{AUTH_TIME_CLAIM, AuthRouter, MAX_BODY_BYTES, RefreshCookie, auth_router};
pub use crate::schemes::{
    ApiKeyScheme, AuthLayer, AuthMiddleware, AuthScheme, BasicScheme, BearerScheme, MultiAuth,
    Principal, RequireAuth, RequireAuthService, S2sCaller, S2sScheme, TokenScheme,
};

/// [`RequireAuth::scope`] by the name the API key docs use: `RequireScope::scope("deploy")`
/// answers 401 without credentials and 403 to an API key without the scope.
///
/// ```
/// let _layer = auth_axum::RequireScope::<auth_service::User>::scope("deploy:write");
/// ```
pub type RequireScope<U> = RequireAuth<U>;
