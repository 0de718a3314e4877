//! auth-axum: every route and error status through the router.

mod features;
mod routes;
