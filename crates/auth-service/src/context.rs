//! The request being served, for events and the audit log: a task-local [`RequestContext`].

use std::future::Future;

use auth_core::RequestContext;

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// Runs work inside a [`RequestContext`] and reads the current one. Routers run each request
/// inside [`scope`](Self::scope); events emitted while it runs carry it, and the hashing
/// runtime shares its capacity by the client address in it.
///
/// ```
/// use auth_service::{RequestContext, RequestScope, SessionMeta};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ctx = RequestContext::new(SessionMeta::new().with_ip("203.0.113.9".parse().unwrap()));
/// let seen = ctx.scope(async { RequestContext::current() }).await;
/// assert_eq!(seen.unwrap().meta.ip.unwrap().to_string(), "203.0.113.9");
/// assert!(RequestContext::current().is_none()); // outside the scope
/// # });
/// ```
pub trait RequestScope: Sized {
    /// Runs `fut` with this context current.
    ///
    /// ```
    /// use auth_service::{RequestContext, RequestScope};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let actor = RequestContext::default().with_actor("cli")
    ///     .scope(async { RequestContext::current().and_then(|c| c.actor) }).await;
    /// assert_eq!(actor.as_deref(), Some("cli"));
    /// # });
    /// ```
    fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output>;

    /// The context of the request being served, if any.
    ///
    /// ```
    /// use auth_service::{RequestContext, RequestScope};
    /// assert!(RequestContext::current().is_none());
    /// ```
    fn current() -> Option<Self>;
}

impl RequestScope for RequestContext {
    fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CONTEXT.scope(self, fut)
    }

    fn current() -> Option<Self> {
        CONTEXT.try_with(Clone::clone).ok()
    }
}
