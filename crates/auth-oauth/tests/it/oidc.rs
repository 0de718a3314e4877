//! End to end against a real OpenID provider on localhost: panva's `oidc-provider` (npm,
//! installed into `tests/oidc-provider/` on first run), with the test as the browser (the
//! provider's login and consent forms over real HTTP) and as the application (start, callback,
//! code, `AuthService`). Then the attacks: tampered, replayed and other-browser state, a wrong
//! nonce, an ID token for another audience, a provider code used twice, our code used twice,
//! `redirect_to` off the allow-list, an unverified provider email matching a local account,
//! denied consent, a provider that is down. Skipped, with the reason printed, without Node.js
//! and npm (the provider harness is `auth_testkit::oidc_provider`).

use std::sync::{Arc, Mutex};

use auth_oauth::{CallbackParams, HttpClient, HttpSend, OAuth, OAuthFailure, Provider};
use auth_service::ephemeral::MemoryCeremonyStore;
use auth_service::{
    AuthConfig, AuthService, Error, LoginOptions, LoginOutcome, MemoryIdentityStore,
    MemoryTokenBackend, MemoryUserStore, Result, async_trait,
};
use auth_testkit::oidc_provider::{Browser, OidcProvider};
use serde_json::Value;

const APP: &str = "http://localhost:3000";
const WELCOME: &str = "http://localhost:3000/welcome";

fn oauth(op: &OidcProvider, http: impl HttpSend) -> OAuth {
    OAuth::new(&format!("{APP}/auth/oauth"), MemoryCeremonyStore::new())
        .unwrap()
        .with_http(http)
        .with_provider(Provider::oidc(
            "op",
            op.issuer(),
            "auth-test",
            Some("auth-test-secret"),
        ))
        .allow_redirects([format!("{APP}/")])
        .unwrap()
}

fn service() -> AuthService {
    AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_identities(MemoryIdentityStore::new())
}

async fn provider() -> Option<OidcProvider> {
    OidcProvider::start(&format!("{APP}/auth/oauth/op/callback")).await
}

fn params(callback: &str) -> CallbackParams {
    let url = reqwest::Url::parse(callback).unwrap();
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    CallbackParams::new(get("code"), get("state"), get("error"))
}

fn with_query(url: &str, key: &str, value: &str) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn query(url: &str, key: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_end_to_end() {
    let Some(op) = provider().await else { return };
    let oauth = oauth(&op, HttpClient::new().unwrap());
    let auth = service();
    let browser = Browser::new();

    let started = oauth.start("op", WELCOME, None).await.unwrap();
    assert!(
        started.url.contains("code_challenge_method=S256"),
        "PKCE: {}",
        started.url
    );
    let callback = browser.dance(&started.url, APP, "ada", false).await;
    let p = params(&callback);
    let finished = oauth
        .finish("op", &p, Some(&started.binding))
        .await
        .unwrap();
    assert_eq!(finished.identity.subject, "ada");
    assert_eq!(finished.identity.email.as_deref(), Some("ada@example.com"));
    assert!(finished.identity.email_verified);
    assert_eq!(finished.redirect_to, WELCOME);

    // The application's page gets a single-use code, redeemed once, by the browser that
    // started the flow only (a link to it in another browser is login CSRF).
    let code = oauth
        .issue_code(&finished.identity, &started.binding)
        .await
        .unwrap();
    assert!(matches!(
        oauth.redeem_code(&code, None).await,
        Err(Error::TokenInvalid)
    ));
    let code = oauth
        .issue_code(&finished.identity, &started.binding)
        .await
        .unwrap();
    let identity = oauth
        .redeem_code(&code, Some(&started.binding))
        .await
        .unwrap();
    assert!(
        matches!(
            oauth.redeem_code(&code, Some(&started.binding)).await,
            Err(Error::TokenInvalid)
        ),
        "our code works once"
    );
    let LoginOutcome::Session(session) = auth
        .sign_in_with_provider(identity, LoginOptions::new())
        .await
        .unwrap()
    else {
        panic!("a session")
    };
    let me = auth.authenticate(session.access_token()).await.unwrap();
    assert_eq!(me.email, "ada@example.com");
    assert!(me.is_verified);

    // The same callback again (a replayed state): refused, and nowhere to send it.
    let again = oauth
        .finish("op", &p, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(
        (again.failure, again.redirect_to),
        (OAuthFailure::InvalidState, None)
    );
    println!(
        "oidc-provider {}: start -> login form -> consent -> callback -> code -> session for {} (sub {}); replayed state refused",
        op.issuer(),
        me.email,
        finished.identity.subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_single_use_and_bound_to_the_browser() {
    let Some(op) = provider().await else { return };
    let oauth = oauth(&op, HttpClient::new().unwrap());
    let browser = Browser::new();
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    let callback = browser.dance(&started.url, APP, "ada", false).await;
    let mut p = params(&callback);

    let tampered = CallbackParams::new(p.code.clone(), p.state.clone().map(|s| s + "x"), None);
    let e = oauth
        .finish("op", &tampered, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidState);
    // Another browser (no cookie, or another one) with the right state: refused, and the
    // state is spent, so the attacker's try also ends the victim's.
    let e = oauth
        .finish("op", &p, Some("someone-elses-cookie"))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidState);
    assert_eq!(
        e.redirect_to.as_deref(),
        Some(WELCOME),
        "reported to the application's page"
    );
    let e = oauth
        .finish("op", &p, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidState);
    // Another provider's callback with this provider's state.
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    let callback = browser.dance(&started.url, APP, "ada", false).await;
    p = params(&callback);
    let e = oauth
        .finish("github", &p, Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::UnknownProvider);
    println!(
        "state: tampered -> invalid_state; other browser -> invalid_state (state spent); replay -> invalid_state"
    );
}

/// Replaces the ID token in the provider's token response with `swap`, when set.
struct SwapIdToken {
    inner: HttpClient,
    swap: Arc<Mutex<Option<String>>>,
}

#[async_trait]
impl HttpSend for SwapIdToken {
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        let token_call =
            request.method() == http::Method::POST && request.uri().path().ends_with("/token");
        let response = self.inner.send(request).await?;
        let Some(id_token) = self.swap.lock().unwrap().clone().filter(|_| token_call) else {
            return Ok(response);
        };
        let (parts, body) = response.into_parts();
        let mut json: Value = serde_json::from_slice(&body).unwrap();
        json["id_token"] = Value::from(id_token);
        Ok(http::Response::from_parts(
            parts,
            serde_json::to_vec(&json).unwrap(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_and_audience_are_checked() {
    let Some(op) = provider().await else { return };
    let swap = Arc::new(Mutex::new(None));
    let oauth = oauth(
        &op,
        SwapIdToken {
            inner: HttpClient::new().unwrap(),
            swap: Arc::clone(&swap),
        },
    );
    let browser = Browser::new();

    // The browser changes the nonce on its way to the provider: the ID token carries the
    // forged one.
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    let forged = with_query(&started.url, "nonce", "forged-nonce");
    let callback = browser.dance(&forged, APP, "ada", false).await;
    let e = oauth
        .finish("op", &params(&callback), Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidResponse, "wrong nonce");

    // A genuine ID token of this provider, for this user and this nonce, but issued to
    // another client: substituted into our token response.
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    let nonce = query(&started.url, "nonce");
    let verifier = "other-client-verifier-0123456789012345678901234567890";
    let challenge = {
        use base64::Engine;
        let digest = ring_sha256(verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    };
    let other = format!(
        "{}/auth?client_id=other-client&response_type=code&scope=openid%20email&redirect_uri={}&state=s&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        op.issuer(),
        urlencode(&format!("{APP}/auth/oauth/op/callback")),
    );
    let other_code = query(&browser.dance(&other, APP, "ada", false).await, "code");
    let token: Value = reqwest::Client::new()
        .post(format!("{}/token", op.issuer()))
        .basic_auth("other-client", Some("other-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", other_code.as_str()),
            ("redirect_uri", &format!("{APP}/auth/oauth/op/callback")),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    *swap.lock().unwrap() = Some(token["id_token"].as_str().expect("an ID token").to_owned());
    let callback = browser.dance(&started.url, APP, "ada", false).await;
    let e = oauth
        .finish("op", &params(&callback), Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(
        e.failure,
        OAuthFailure::InvalidResponse,
        "ID token for another audience"
    );
    *swap.lock().unwrap() = None;
    println!(
        "ID token: forged nonce -> invalid_response; token issued to other-client -> invalid_response"
    );
}

fn ring_sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn urlencode(s: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", s)])
        .unwrap()
        .query()
        .unwrap()
        .trim_start_matches("v=")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_redirects_denial_and_outage() {
    let Some(op) = provider().await else { return };
    let oauth = oauth(&op, HttpClient::new().unwrap());
    let browser = Browser::new();

    // A provider code used twice: the first finish spends it at the provider.
    let first = oauth.start("op", WELCOME, None).await.unwrap();
    let p = params(&browser.dance(&first.url, APP, "ada", false).await);
    oauth.finish("op", &p, Some(&first.binding)).await.unwrap();
    let second = oauth.start("op", WELCOME, None).await.unwrap();
    let replay = CallbackParams::new(p.code.clone(), Some(query(&second.url, "state")), None);
    let e = oauth
        .finish("op", &replay, Some(&second.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::InvalidResponse, "a spent code");

    // redirect_to off the allow-list: no redirect at all.
    for evil in [
        "https://evil.example/",
        "http://localhost:3000.evil.example/",
        "/welcome",
        "javascript:alert(1)",
    ] {
        let e = oauth.start("op", evil, None).await.unwrap_err();
        assert_eq!(
            (e.failure, e.redirect_to),
            (OAuthFailure::InvalidState, None),
            "{evil}"
        );
    }

    // The user aborts at the provider.
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    // (A new browser: this one has a session at the provider, which would not ask again.)
    let callback = Browser::new().dance(&started.url, APP, "ada", true).await;
    let e = oauth
        .finish("op", &params(&callback), Some(&started.binding))
        .await
        .unwrap_err();
    assert_eq!(e.failure, OAuthFailure::AccessDenied);
    assert_eq!(e.redirect_to.as_deref(), Some(WELCOME));

    // A provider that is down.
    let down = OAuth::new(&format!("{APP}/auth/oauth"), MemoryCeremonyStore::new())
        .unwrap()
        .with_provider(Provider::oidc(
            "op",
            format!("http://127.0.0.1:{}", auth_testkit::free_port()),
            "auth-test",
            Some("x"),
        ))
        .allow_redirects([format!("{APP}/")])
        .unwrap();
    let e = down.start("op", WELCOME, None).await.unwrap_err();
    assert_eq!(e.failure, OAuthFailure::ProviderUnavailable);
    assert_eq!(e.redirect_to.as_deref(), Some(WELCOME));
    println!(
        "provider code replayed -> invalid_response; redirect_to off the list -> refused; abort -> access_denied; provider down -> provider_unavailable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_provider_email_takes_over_nothing() {
    let Some(op) = provider().await else { return };
    let oauth = oauth(&op, HttpClient::new().unwrap());
    let auth = service();
    let victim = auth
        .register("victim@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.prove_address(&victim.id, auth_service::AddressProof::InSession)
        .await
        .unwrap();
    let browser = Browser::new();
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    let callback = browser.dance(&started.url, APP, "eve", false).await;
    let finished = oauth
        .finish("op", &params(&callback), Some(&started.binding))
        .await
        .unwrap();
    assert_eq!(
        finished.identity.email.as_deref(),
        Some("victim@example.com")
    );
    assert!(!finished.identity.email_verified);
    assert!(matches!(
        auth.sign_in_with_provider(finished.identity, LoginOptions::new())
            .await,
        Err(Error::EmailTaken)
    ));
    assert!(auth.list_identities(&victim.id).await.unwrap().is_empty());
    println!(
        "eve at the provider with victim@example.com unverified -> email_taken, nothing linked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_post_answers_as_apple_sends_them() {
    let Some(op) = provider().await else { return };
    // Apple answers with a form POST; oidc-provider does too when asked (response_mode).
    let oauth = OAuth::new(&format!("{APP}/auth/oauth"), MemoryCeremonyStore::new())
        .unwrap()
        .with_provider(
            Provider::oidc("op", op.issuer(), "auth-test", Some("auth-test-secret"))
                .with_form_post(),
        )
        .allow_redirects([format!("{APP}/")])
        .unwrap();
    assert!(oauth.posts_back("op"));
    let started = oauth.start("op", WELCOME, None).await.unwrap();
    assert!(
        started.url.contains("response_mode=form_post"),
        "{}",
        started.url
    );
    let posted = Browser::new().dance(&started.url, APP, "ada", false).await;
    let finished = oauth
        .finish("op", &params(&posted), Some(&started.binding))
        .await
        .unwrap();
    assert_eq!(finished.identity.subject, "ada");
    println!("form_post: the provider's auto-submitted form carries code and state; identity ada");
}
