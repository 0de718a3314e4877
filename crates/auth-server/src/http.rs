//! The HTTP layers around the app: request ids, request logs (no query strings, no headers, so
//! no tokens), and CORS.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::Settings;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Random request ids (96 bits).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&auth::random::token(12))
            .ok()
            .map(RequestId::new)
    }
}

/// Wraps `app` with request ids (kept from the client's `x-request-id` or generated, and
/// returned), a log line per request inside a span carrying the id, and CORS for
/// `AUTH_CORS_ORIGINS`.
pub fn layers(app: Router, settings: &Settings) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The path only: query strings can carry tokens (reset links).
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.uri().path(),
        )
    });
    let trace = trace.on_failure(
        |failure: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span| {
            match failure {
                // A feature this deployment does not enable (sessions on a backend without
                // them, two-factor not configured): the client is told; nothing is broken.
                ServerErrorsFailureClass::StatusCode(StatusCode::NOT_IMPLEMENTED) => {
                    tracing::info!(?latency, "501: not enabled here");
                }
                other => tracing::error!(failure = %other, ?latency, "response failed"),
            }
        },
    );
    let mut app = app
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            settings.body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            deadline,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(trace)
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId));
    if !settings.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                REQUEST_ID,
                // A trusted device's credential, for API clients of another origin.
                HeaderName::from_static("x-auth-device"),
            ])
            .expose_headers([REQUEST_ID, header::RETRY_AFTER])
            .allow_credentials(settings.refresh_cookie);
        app = app.layer(cors);
    }
    app
}

/// 404 and 405 answers without a body (no route, wrong method) get the JSON shape every other
/// error has; answers that already carry a body are left alone.
/// Every request within `limit` once its headers are in: whatever it waits for (a database
/// that stopped answering without closing its connections, a provider that hangs), past the
/// deadline the client is answered 503 + `Retry-After` and the work is dropped.
async fn deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(
                limit_s = limit.as_secs(),
                "request took longer than AUTH_REQUEST_TIMEOUT_SECS: answered 503"
            );
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": "unavailable"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

async fn json_errors(response: Response) -> Response {
    let code = match response.status() {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        _ => return response,
    };
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let body = axum::Json(serde_json::json!({"error": code})).into_response();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body.into_body())
}
