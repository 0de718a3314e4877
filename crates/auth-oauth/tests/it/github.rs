//! GitHub's OAuth 2.0 path against a local stand-in that speaks GitHub's endpoints
//! (`/login/oauth/authorize`, `/login/oauth/access_token`, `/user`, `/user/emails`) — named as
//! such: github.com cannot be reached from here. The stand-in checks what GitHub checks
//! (client credentials, the redirect URI, the PKCE verifier against the challenge, one use
//! per code) and answers as GitHub does (JSON errors with status 200 on the token endpoint).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auth_oauth::{CallbackParams, OAuth, OAuthFailure, Provider};
use auth_service::ephemeral::MemoryCeremonyStore;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

const APP: &str = "http://localhost:3000";

#[derive(Default)]
struct StandIn {
    /// code → (PKCE challenge, redirect URI, user login)
    codes: HashMap<String, (String, String, String)>,
    /// access token → user login
    tokens: HashMap<String, String>,
}

type Shared = Arc<Mutex<StandIn>>;

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    // The user "octocat" signs in and authorizes at once; "denier" declines.
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("login").map(String::as_str) == Some("denier") {
        return Redirect::to(&format!("{redirect}?error=access_denied&state={state}"))
            .into_response();
    }
    let login = q.get("login").cloned().unwrap_or_else(|| "octocat".into());
    let code = format!("code-{}", s.lock().unwrap().codes.len());
    s.lock().unwrap().codes.insert(
        code.clone(),
        (
            q.get("code_challenge").cloned().unwrap_or_default(),
            redirect.clone(),
            login,
        ),
    );
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn access_token(State(s): State<Shared>, body: String) -> Response {
    let f: HashMap<String, String> = reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let fail = |e: &str| Json(json!({"error": e})).into_response();
    if f.get("client_id").map(String::as_str) != Some("gh-client")
        || f.get("client_secret").map(String::as_str) != Some("gh-secret")
    {
        return fail("incorrect_client_credentials");
    }
    let Some((challenge, redirect, login)) = f
        .get("code")
        .and_then(|c| s.lock().unwrap().codes.remove(c))
    else {
        return fail("bad_verification_code");
    };
    if f.get("redirect_uri") != Some(&redirect) {
        return fail("redirect_uri_mismatch");
    }
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let digest = ring_free_sha256(verifier.as_bytes());
    if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) != challenge {
        return fail("bad_verification_code");
    }
    let token = format!("gho_{login}");
    s.lock().unwrap().tokens.insert(token.clone(), login);
    Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}))
        .into_response()
}

fn ring_free_sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn caller(s: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    s.lock().unwrap().tokens.get(token).cloned()
}

async fn user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match caller(&s, &headers) {
        Some(login) => Json(json!({"id": if login == "octocat" { 583231 } else { 9 }, "login": login, "email": null})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match caller(&s, &headers).as_deref() {
        Some("octocat") => Json(json!([
            {"email": "octo@old.example", "primary": false, "verified": true},
            {"email": "octocat@example.com", "primary": true, "verified": true},
        ]))
        .into_response(),
        Some(_) => {
            Json(json!([{"email": "unverified@example.com", "primary": true, "verified": false}]))
                .into_response()
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn stand_in() -> String {
    let app = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user", get(user))
        .route("/api/user/emails", get(emails))
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Follows the stand-in's redirect back to the application: the callback's parameters.
async fn visit(url: &str) -> CallbackParams {
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(APP), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    CallbackParams::new(get("code"), get("state"), get("error"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_sign_in_against_a_stand_in() {
    let base = stand_in().await;
    let oauth = OAuth::new(&format!("{APP}/auth/oauth"), MemoryCeremonyStore::new())
        .unwrap()
        .with_provider(Provider::github_at(
            "gh-client",
            "gh-secret",
            &base,
            &format!("{base}/api"),
        ))
        .allow_redirects([format!("{APP}/")])
        .unwrap();

    let started = oauth
        .start("github", &format!("{APP}/done"), None)
        .await
        .unwrap();
    assert!(
        started.url.contains("code_challenge_method=S256")
            && started.url.contains("scope=read%3Auser+user%3Aemail")
    );
    let p = visit(&started.url).await;
    let finished = oauth
        .finish("github", &p, Some(&started.binding))
        .await
        .unwrap();
    assert_eq!(
        finished.identity.subject, "583231",
        "GitHub's numeric id, not the login"
    );
    assert_eq!(
        finished.identity.email.as_deref(),
        Some("octocat@example.com"),
        "the primary email"
    );
    assert!(finished.identity.email_verified);

    // The stand-in spends codes: the same callback in a new flow is refused.
    let again = oauth
        .start("github", &format!("{APP}/done"), None)
        .await
        .unwrap();
    let state = reqwest::Url::parse(&again.url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    let replay = CallbackParams::new(p.code.clone(), state, None);
    let e = oauth
        .finish("github", &replay, Some(&again.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidResponse);

    // An unverified primary email comes through as unverified.
    let started = oauth
        .start("github", &format!("{APP}/done"), None)
        .await
        .unwrap();
    let p = visit(&format!("{}&login=someone", started.url)).await;
    let finished = oauth
        .finish("github", &p, Some(&started.binding))
        .await
        .unwrap();
    assert_eq!(
        finished.identity.email.as_deref(),
        Some("unverified@example.com")
    );
    assert!(!finished.identity.email_verified);

    // Declined at GitHub.
    let started = oauth
        .start("github", &format!("{APP}/done"), None)
        .await
        .unwrap();
    let p = visit(&format!("{}&login=denier", started.url)).await;
    let e = oauth
        .finish("github", &p, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::AccessDenied);

    // Wrong client secret: the code is refused.
    let wrong = OAuth::new(&format!("{APP}/auth/oauth"), MemoryCeremonyStore::new())
        .unwrap()
        .with_provider(Provider::github_at(
            "gh-client",
            "not-the-secret",
            &base,
            &format!("{base}/api"),
        ))
        .allow_redirects([format!("{APP}/")])
        .unwrap();
    let started = wrong
        .start("github", &format!("{APP}/done"), None)
        .await
        .unwrap();
    let p = visit(&started.url).await;
    let e = wrong
        .finish("github", &p, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidResponse);
    println!(
        "GitHub stand-in {base}: octocat -> subject 583231, primary verified email; replayed code, decline and bad secret refused"
    );
}
