//! Provider sign-in over auth-server's HTTP routes against a real OpenID provider (panva's
//! oidc-provider on localhost, see `auth_testkit::oidc_provider`): `/auth/oauth/op/start` →
//! the provider's login and consent forms → `/auth/oauth/op/callback` → the application's page
//! with a single-use code → `POST /auth/oauth/exchange` → tokens → `/auth/me` and
//! `/auth/identities`; the code twice, another browser's callback, `redirect_to` off the
//! allow-list, an address taken by an unproven account. Skipped without Node.js.

use crate::common;

use std::sync::Arc;

use auth_testkit::oidc_provider::{Browser, OidcProvider};
use common::{Outbox, PASSWORD};
use serde_json::{Value, json};

fn query(url: &str, key: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The exchange, from a browser (with its cookies: the code is bound to the browser that
/// started the flow): status and body.
async fn exchange(base: &str, browser: &Browser, code: String) -> (u16, Value) {
    let url = format!("{base}/auth/oauth/exchange");
    let req = reqwest::Client::new()
        .post(&url)
        .json(&json!({"code": code}));
    let (status, _, body) = browser.send(req, &url).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_provider_over_http() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let Some(op) = OidcProvider::start(&format!(
        "{base}/auth/oauth/op/callback,{base}/auth/oauth/op-post/callback"
    ))
    .await
    else {
        return;
    };
    let vars: std::collections::HashMap<String, String> = [
        ("AUTH_SIGNING_SECRET", common::SECRET),
        ("DATABASE_URL", "sqlite::memory:"),
        ("AUTH_PUBLIC_URL", base.as_str()),
        ("AUTH_OAUTH_PROVIDERS", "op,op-post"),
        ("AUTH_OAUTH_OP_ISSUER", op.issuer()),
        ("AUTH_OAUTH_OP_CLIENT_ID", "auth-test"),
        ("AUTH_OAUTH_OP_CLIENT_SECRET", "auth-test-secret"),
        ("AUTH_OAUTH_OP_POST_ISSUER", op.issuer()),
        ("AUTH_OAUTH_OP_POST_CLIENT_ID", "auth-test"),
        ("AUTH_OAUTH_OP_POST_CLIENT_SECRET", "auth-test-secret"),
        ("AUTH_OAUTH_OP_POST_FORM_POST", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = auth_server::Settings::from_lookup(|n| vars.get(n).cloned()).unwrap();
    let db = auth_server::connect_with(&settings.database_url, settings.sqlite_durability)
        .await
        .unwrap();
    let app = auth_server::app_with_mailer(&settings, db, Arc::new(Outbox::default())).unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let welcome = format!("{base}/welcome");
    let browser = Browser::new();

    // start → provider → callback → the application's page with a code.
    let start = format!(
        "{base}/auth/oauth/op/start?redirect_to={}",
        urlencode(&welcome)
    );
    let (status, to_provider, _) = browser.get(&start).await;
    assert_eq!(status, 302);
    let callback = browser
        .dance(
            &to_provider.unwrap(),
            &format!("{base}/auth/oauth/op/callback"),
            "ada",
            false,
        )
        .await;
    let (status, landed, _) = browser.get(&callback).await;
    assert_eq!(status, 302);
    let landed = landed.unwrap();
    assert!(landed.starts_with(&welcome), "{landed}");
    assert!(
        query(&landed, "access_token").is_none(),
        "never tokens in a URL"
    );
    let code = query(&landed, "code").expect("a code");

    let http = reqwest::Client::new();
    // Another browser (a link to /login?code=… sent to a victim) cannot redeem it.
    let victim = Browser::new();
    let (status, _) = exchange(&base, &victim, code.clone()).await;
    assert_eq!(status, 401, "login CSRF: another browser's code");
    let (_, to_provider, _) = browser.get(&start).await;
    let callback = browser
        .dance(
            &to_provider.unwrap(),
            &format!("{base}/auth/oauth/op/callback"),
            "ada",
            false,
        )
        .await;
    let (_, landed, _) = browser.get(&callback).await;
    let code = query(&landed.unwrap(), "code").expect("a code");
    let (status, tokens) = exchange(&base, &browser, code.clone()).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        exchange(&base, &browser, code).await.0,
        401,
        "the code works once"
    );
    let me: Value = http
        .get(format!("{base}/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["email"].as_str(), me["is_verified"].as_bool()),
        (Some("ada@example.com"), Some(true))
    );
    let ids: Value = http
        .get(format!("{base}/auth/identities"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids["identities"][0]["provider"], "op");
    assert_eq!(ids["identities"][0]["subject"], "ada");

    // A provider that answers with a form POST (as Apple does): the browser posts the
    // provider's form to the callback.
    let post_start = format!(
        "{base}/auth/oauth/op-post/start?redirect_to={}",
        urlencode(&welcome)
    );
    let poster = Browser::new();
    let (_, to_provider, _) = poster.get(&post_start).await;
    let posted = poster
        .dance(
            &to_provider.unwrap(),
            &format!("{base}/auth/oauth/op-post/callback"),
            "ada",
            false,
        )
        .await;
    let (action, fields) = posted.split_once('?').unwrap();
    let (status, landed, _) = poster
        .send(
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(action)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(fields.to_owned()),
            action,
        )
        .await;
    assert_eq!(status, 302);
    let code = query(&landed.unwrap(), "code").expect("a code from the form post");
    assert_eq!(exchange(&base, &poster, code).await.0, 200);

    // Another browser on the callback (the victim's state in an attacker's session): back
    // to the page with ?error=invalid_state.
    let (_, to_provider, _) = browser.get(&start).await;
    let callback = browser
        .dance(
            &to_provider.unwrap(),
            &format!("{base}/auth/oauth/op/callback"),
            "ada",
            false,
        )
        .await;
    let (status, landed, _) = Browser::new().get(&callback).await;
    assert_eq!(status, 302);
    assert_eq!(
        query(&landed.unwrap(), "error").as_deref(),
        Some("invalid_state")
    );

    // redirect_to off the allow-list: no redirect at all.
    let evil = format!(
        "{base}/auth/oauth/op/start?redirect_to={}",
        urlencode("https://evil.example/")
    );
    let (status, location, body) = Browser::new().get(&evil).await;
    assert_eq!((status, location), (400, None));
    assert!(body.contains("invalid_state"), "{body}");

    // Eve's provider account claims victim@example.com (unverified); the local account
    // with that address is not linked, and the exchange says why.
    let r = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": "victim@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let eve = Browser::new();
    let (_, to_provider, _) = eve.get(&start).await;
    let callback = eve
        .dance(
            &to_provider.unwrap(),
            &format!("{base}/auth/oauth/op/callback"),
            "eve",
            false,
        )
        .await;
    let (_, landed, _) = eve.get(&callback).await;
    let code = query(&landed.unwrap(), "code").unwrap();
    let (status, body) = exchange(&base, &eve, code).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"], "email_taken");
    // The routes are in the OpenAPI document.
    let doc: Value = http
        .get(format!("{base}/auth/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/oauth/{provider}/start",
        "/oauth/exchange",
        "/identities/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} in the OpenAPI document"
        );
    }
    println!(
        "auth-server + oidc-provider {}: start 302 -> login, consent -> callback 302 {welcome}?code=… -> exchange 200 -> /auth/me ada@example.com (verified); code twice 401; other browser invalid_state; evil redirect_to 400; eve -> 409 email_taken",
        op.issuer()
    );
}

fn urlencode(s: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", s)])
        .unwrap()
        .query()
        .unwrap()
        .trim_start_matches("v=")
        .to_owned()
}

#[test]
fn provider_settings_say_what_to_set() {
    let error = |vars: &[(&str, &str)]| {
        let map: std::collections::HashMap<String, String> =
            [("AUTH_SIGNING_SECRET", common::SECRET)]
                .iter()
                .chain(vars)
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        auth_server::Settings::from_lookup(|n| map.get(n).cloned())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(error(&[("AUTH_OAUTH_PROVIDERS", "corp")]).contains("AUTH_OAUTH_CORP_CLIENT_ID"));
    assert!(
        error(&[
            ("AUTH_OAUTH_PROVIDERS", "corp"),
            ("AUTH_OAUTH_CORP_CLIENT_ID", "x")
        ])
        .contains("AUTH_OAUTH_CORP_ISSUER")
    );
    assert!(
        error(&[
            ("AUTH_OAUTH_PROVIDERS", "google"),
            ("AUTH_OAUTH_GOOGLE_CLIENT_ID", "x")
        ])
        .contains("AUTH_OAUTH_GOOGLE_CLIENT_SECRET")
    );
    assert!(
        error(&[
            ("AUTH_OAUTH_PROVIDERS", "microsoft"),
            ("AUTH_OAUTH_MICROSOFT_CLIENT_ID", "x"),
            ("AUTH_OAUTH_MICROSOFT_CLIENT_SECRET", "s")
        ])
        .contains("AUTH_OAUTH_MICROSOFT_TENANT")
    );
    assert!(error(&[("AUTH_OAUTH_PROVIDERS", "Bad Name")]).contains("lower-case"));
    assert!(
        error(&[
            ("AUTH_OAUTH_REDIRECT_ALLOWLIST", "not a url"),
            ("AUTH_OAUTH_PROVIDERS", "")
        ])
        .is_empty(),
        "the allow-list is checked when providers are configured"
    );
}
