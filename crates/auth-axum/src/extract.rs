//! Extractors: the authenticated user, an optional user, claims only.

use auth_service::{AuthService, AuthUser, Claims, MAX_TOKEN_LENGTH};
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;

use crate::error::unauthorized;

/// An `Authorization` header that is present but not a usable Bearer credential.
#[derive(Debug)]
pub(crate) struct BadCredential;

impl From<BadCredential> for Response {
    fn from(_: BadCredential) -> Self {
        unauthorized()
    }
}

/// The Bearer token of a request: `None` when there is no `Authorization` header, `Err` when
/// there is one that is not a well-formed Bearer credential (presented but invalid).
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<&str>, BadCredential> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| BadCredential)?;
    if value.len() > MAX_TOKEN_LENGTH + 16 {
        return Err(BadCredential);
    }
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(BadCredential),
    }
}

/// The authenticated user: 401 when the `Authorization: Bearer` token is missing or invalid,
/// or the user is inactive. The state must provide the `AuthService` (`FromRef`).
///
/// ```
/// use auth_axum::Authenticated;
/// use auth_service::{AuthUser, User};
/// async fn me(Authenticated(user): Authenticated<User>) -> String {
///     user.email().to_owned()
/// }
/// # let _ = me;
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated<U>(pub U);

impl<U, S> FromRequestParts<S> for Authenticated<U>
where
    U: AuthUser,
    AuthService<U>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Authenticated once already by an AuthLayer: use its answer.
        if let Some(principal) = parts.extensions.get::<crate::Principal<U>>() {
            return principal
                .user()
                .cloned()
                .map(Authenticated)
                .ok_or_else(unauthorized);
        }
        let token = bearer(&parts.headers)?.ok_or_else(unauthorized)?;
        let auth = AuthService::<U>::from_ref(state);
        auth.authenticate(token)
            .await
            .map(Authenticated)
            .map_err(|e| axum::response::IntoResponse::into_response(crate::ApiError(e)))
    }
}

/// A fresh sign-in: the user and the claims of a Bearer token whose password (or second-factor)
/// entry is within the service's window (`AuthService::with_fresh_login_window`, 15 minutes
/// by default). The service decides ([`AuthService::authenticate_fresh`]): the token is verified
/// once, and a stale one is refused with 403 `reauthentication_required` (and `max_age`), a
/// missing or invalid one with 401. For routes that add a credential or change the ways in.
///
/// ```
/// use auth_axum::Fresh;
/// use auth_service::{AuthUser, SignedIn, User};
/// async fn add_key(Fresh(SignedIn { user, .. }): Fresh<User>) -> String {
///     user.email().to_owned()
/// }
/// # let _ = add_key;
/// ```
#[derive(Debug, Clone)]
pub struct Fresh<U>(pub auth_service::SignedIn<U>);

impl<U, S> FromRequestParts<S> for Fresh<U>
where
    U: AuthUser,
    AuthService<U>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?.ok_or_else(unauthorized)?;
        AuthService::<U>::from_ref(state)
            .authenticate_fresh(token)
            .await
            .map(Fresh)
            .map_err(|e| axum::response::IntoResponse::into_response(crate::ApiError(e)))
    }
}

/// `Option<Authenticated<U>>`: `None` without an `Authorization` header; a header that is present
/// but invalid is still a 401 (credentials given but wrong never become anonymous).
impl<U, S> OptionalFromRequestParts<S> for Authenticated<U>
where
    U: AuthUser,
    AuthService<U>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<crate::Principal<U>>() {
            return Ok(principal.user().cloned().map(Authenticated));
        }
        if bearer(&parts.headers)?.is_none() {
            return Ok(None);
        }
        <Self as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

/// The access token's claims, verified without loading the user (no user-store access; with
/// stateless JWTs and revocation off, no store access at all).
///
/// ```
/// use auth_axum::AccessClaims;
/// async fn whoami(AccessClaims(claims): AccessClaims) -> String {
///     claims.sub
/// }
/// # let _ = whoami;
/// ```
#[derive(Debug, Clone)]
pub struct AccessClaims(pub Claims);

impl<S> FromRequestParts<S> for AccessClaims
where
    AuthService: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?.ok_or_else(unauthorized)?;
        AuthService::from_ref(state)
            .verify_access(token)
            .await
            .map(AccessClaims)
            .map_err(|e| axum::response::IntoResponse::into_response(crate::ApiError(e)))
    }
}

/// The API key a request authenticated with: its record (id, scopes) and its owning user
/// (`None` for a service account). From an [`crate::AuthLayer`] with an
/// [`crate::ApiKeyScheme`], or checked here from `X-API-Key` / a Bearer value with the key
/// prefix; 401 otherwise.
///
/// ```
/// use auth_axum::ApiKeyCaller;
/// use auth_service::User;
/// async fn deploy(ApiKeyCaller(caller): ApiKeyCaller<User>) -> String {
///     if caller.key.has_scope("deploy:write") { "ok".into() } else { "no".into() }
/// }
/// # let _ = deploy;
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeyCaller<U>(pub auth_service::ApiKeyAuth<U>);

impl<U, S> FromRequestParts<S> for ApiKeyCaller<U>
where
    U: AuthUser,
    AuthService<U>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(crate::Principal::ApiKey(caller)) =
            parts.extensions.get::<crate::Principal<U>>()
        {
            return Ok(Self((**caller).clone()));
        }
        let auth = AuthService::<U>::from_ref(state);
        let key = match crate::schemes::api_key(&auth, &parts.headers) {
            Some(Ok(key)) => key,
            Some(Err(e)) => {
                return Err(axum::response::IntoResponse::into_response(
                    crate::ApiError(e),
                ));
            }
            None => return Err(unauthorized()),
        };
        auth.authenticate_api_key(key, None)
            .await
            .map(Self)
            .map_err(|e| axum::response::IntoResponse::into_response(crate::ApiError(e)))
    }
}
