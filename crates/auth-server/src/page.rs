//! The hosted pages: the onboarding page (one HTML file and one script that render any
//! pipeline from its client hints), and the pages that mailed links open (reset a password,
//! confirm an address, confirm or stop an email change).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::get;

const HTML: &str = include_str!("page/index.html");
const JS: &str = include_str!("page/app.js");
const CSS: &str = include_str!("page/app.css");
const LINK_HTML: &str = include_str!("page/link.html");
const LINK_JS: &str = include_str!("page/link.js");
const KIT_JS: &str = include_str!("page/kit.js");
const LOGIN_HTML: &str = include_str!("page/login.html");
const LOGIN_JS: &str = include_str!("page/login.js");
const ACCOUNT_HTML: &str = include_str!("page/account.html");
const ACCOUNT_JS: &str = include_str!("page/account.js");

/// The pages mailed links open, by path (the page key the script reads is the same).
pub(crate) const LINK_PAGES: [&str; 4] = [
    "reset-password",
    "verify-email",
    "confirm-email-change",
    "cancel-email-change",
];

/// Scripts only from this server, nothing inline, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(body: impl Into<axum::body::Body>, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // The link pages carry a token in their address: never in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The shared placeholders: the name the pages show, and the password policy's rules.
struct Fill<'a> {
    brand: &'a str,
    hints: String,
    providers: String,
    trust_days: u64,
}

impl Fill<'_> {
    fn page(&self, template: &str) -> axum::body::Bytes {
        axum::body::Bytes::from(
            template
                .replace("__BRAND__", &escape(self.brand))
                .replace("__HINTS__", &self.hints)
                .replace("__PROVIDERS__", &self.providers)
                .replace("__TRUST_DAYS__", &self.trust_days.to_string()),
        )
    }
}

/// `/login` and `/account` (the sign-in page, with passkeys, and the account page), the pages
/// mailed links open (`/reset-password`, `/verify-email`, `/confirm-email-change`,
/// `/cancel-email-change`), and their scripts and style under `/pages/`. `brand` is the name
/// the pages show (`AUTH_MFA_ISSUER`); `hints` the password policy's rules, shown where a new
/// password is chosen; `providers` the sign-in providers (`AUTH_OAUTH_PROVIDERS`), offered as
/// buttons; `trust_days` how long a browser stays trusted when the user ticks "trust this
/// browser" at the second factor (`AUTH_TRUSTED_DEVICE_DAYS`; 0 hides the box).
pub(crate) fn link_routes(
    brand: &str,
    hints: &[String],
    providers: &[&str],
    trust_days: u64,
) -> Router {
    let fill = Fill {
        brand,
        hints: hints
            .iter()
            .map(|h| format!("<li>{}</li>", escape(h)))
            .collect(),
        providers: escape(&providers.join(",")),
        trust_days,
    };
    let login = fill.page(LOGIN_HTML);
    let account = fill.page(ACCOUNT_HTML);
    let mut router = Router::new()
        .route(
            "/login",
            get({
                let html = login.clone();
                move || {
                    let html = html.clone();
                    async move { asset(html, "text/html; charset=utf-8") }
                }
            }),
        )
        // Where a mailed sign-in link lands: the sign-in page, which completes it.
        .route(
            "/magic-link",
            get(move || {
                let html = login.clone();
                async move { asset(html, "text/html; charset=utf-8") }
            }),
        )
        .route(
            "/account",
            get(move || {
                let html = account.clone();
                async move { asset(html, "text/html; charset=utf-8") }
            }),
        )
        .route(
            "/pages/kit.js",
            get(|| async { asset(KIT_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/pages/login.js",
            get(|| async { asset(LOGIN_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/pages/account.js",
            get(|| async { asset(ACCOUNT_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/pages/link.js",
            get(|| async { asset(LINK_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/pages/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        );
    for page in LINK_PAGES {
        let html = fill.page(&LINK_HTML.replace("__PAGE__", page));
        router = router.route(
            &format!("/{page}"),
            get(move || {
                let html = html.clone();
                async move { asset(html, "text/html; charset=utf-8") }
            }),
        );
    }
    router
}

/// The page.
pub(crate) async fn index() -> Response {
    asset(HTML, "text/html; charset=utf-8")
}

/// `GET /` (the page), `/app.js`, `/app.css`, to merge into the onboarding router.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
}
