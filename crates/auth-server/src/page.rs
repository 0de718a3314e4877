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

/// `/reset-password`, `/verify-email`, `/confirm-email-change`, `/cancel-email-change` and
/// their script and style under `/pages/`: the targets of the links in the mails.
pub(crate) fn link_routes() -> Router {
    let mut router = Router::new()
        .route(
            "/pages/link.js",
            get(|| async { asset(LINK_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/pages/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        );
    for page in LINK_PAGES {
        let html = axum::body::Bytes::from(LINK_HTML.replace("__PAGE__", page));
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
