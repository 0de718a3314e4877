//! GitHub's OAuth 2.0: the code for an access token, then the user and their emails.

use auth_core::ProviderIdentity;
use serde::Deserialize;

use crate::error::OAuthFailure;
use crate::flow::OAuth;
use crate::provider::Provider;

#[derive(Deserialize)]
struct Token {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

const AGENT: &str = concat!("auth-oauth/", env!("CARGO_PKG_VERSION"));

fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = openidconnect::url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

async fn call<T: for<'de> Deserialize<'de>>(
    oauth: &OAuth,
    request: http::Request<Vec<u8>>,
) -> Result<T, OAuthFailure> {
    let response = oauth.http_send(request).await.map_err(|e| {
        tracing::warn!(error = %e, "GitHub unavailable");
        OAuthFailure::ProviderUnavailable
    })?;
    if response.status().is_server_error() {
        return Err(OAuthFailure::ProviderUnavailable);
    }
    if !response.status().is_success() {
        tracing::info!(status = %response.status(), "GitHub refused");
        return Err(OAuthFailure::InvalidResponse);
    }
    serde_json::from_slice(response.body()).map_err(|_| OAuthFailure::InvalidResponse)
}

/// The identity behind `code`: subject = GitHub's numeric user id; email = the primary email
/// (verified or not, as GitHub says).
pub(crate) async fn identity(
    oauth: &OAuth,
    p: &Provider,
    token_url: &str,
    api_url: &str,
    code: &str,
    verifier: &str,
) -> Result<ProviderIdentity, OAuthFailure> {
    let callback = oauth.callback_url(p.name());
    let secret = p
        .client_secret()
        .map(|s| s.expose_secret().to_owned())
        .unwrap_or_default();
    let body = form(&[
        ("client_id", p.client_id()),
        ("client_secret", &secret),
        ("code", code),
        ("redirect_uri", &callback),
        ("code_verifier", verifier),
        ("grant_type", "authorization_code"),
    ]);
    let request = http::Request::post(token_url)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::USER_AGENT, AGENT)
        .body(body.into_bytes())
        .map_err(|_| OAuthFailure::ProviderUnavailable)?;
    let token: Token = call(oauth, request).await?;
    let Some(access) = token.access_token.filter(|_| token.error.is_none()) else {
        tracing::info!(error = ?token.error, "GitHub refused the code");
        return Err(OAuthFailure::InvalidResponse);
    };
    let get = |path: &str| {
        http::Request::get(format!("{api_url}{path}"))
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header(http::header::AUTHORIZATION, format!("Bearer {access}"))
            .header(http::header::USER_AGENT, AGENT)
            .body(Vec::new())
            .map_err(|_| OAuthFailure::ProviderUnavailable)
    };
    let user: User = call(oauth, get("/user")?).await?;
    let emails: Vec<Email> = call(oauth, get("/user/emails")?).await?;
    let mut identity = ProviderIdentity::new(p.name(), user.id.to_string());
    if let Some(primary) = emails.iter().find(|e| e.primary) {
        identity = identity.with_email(primary.email.clone(), primary.verified);
    }
    Ok(identity)
}
