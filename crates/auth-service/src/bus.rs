use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use crate::RequestScope;
use crate::*;

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;

struct FnHandler<F>(F);

#[async_trait]
impl<F> EventHandler for FnHandler<F>
where
    F: Fn(AuthEvent) -> BoxFuture + Send + Sync + 'static,
{
    async fn handle(&self, event: &AuthEvent) -> Result<(), HandlerError> {
        (self.0)(event.clone()).await
    }
}

type Handlers = HashMap<AuthEventKind, Vec<Arc<dyn EventHandler>>>;

/// Delivers events to async handlers registered per kind. Cheap to clone; clones share handlers.
///
/// - Handlers of one kind run in registration order, awaited inline, so a delivery handler
///   (email) has run when the flow returns.
/// - A handler that fails or panics is logged and the others still run; the flow goes on.
/// - Every event is also a `tracing` event (target `auth::events`) without secrets.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
/// use auth_service::{AuthEvent, AuthEventKind, EventBus, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bus = EventBus::new();
/// let logins = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&logins);
/// bus.on_fn(AuthEventKind::UserLogin, move |_event| {
///     let counter = Arc::clone(&counter);
///     async move { counter.fetch_add(1, Ordering::SeqCst); Ok(()) }
/// });
/// assert!(bus.has_handler(AuthEventKind::UserLogin));
/// bus.emit(AuthEvent::UserLogin { user_id: UserId::new("1"), email: "a@b.c".into() }).await;
/// assert_eq!(logins.load(Ordering::SeqCst), 1);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct EventBus {
    handlers: Arc<RwLock<Handlers>>,
}

impl EventBus {
    /// A bus with no handlers.
    ///
    /// ```
    /// # use auth_service::{AuthEventKind, EventBus};
    /// assert!(!EventBus::new().has_handler(AuthEventKind::UserLogin));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a handler for one kind.
    ///
    /// ```
    /// # use auth_service::{AuthEvent, AuthEventKind, EventBus, EventHandler, HandlerError};
    /// # #[derive(Debug)] struct H;
    /// # #[async_trait::async_trait] impl EventHandler for H {
    /// #     async fn handle(&self, _: &AuthEvent) -> Result<(), HandlerError> { Ok(()) } }
    /// let bus = EventBus::new();
    /// bus.on(AuthEventKind::PasswordChanged, H);
    /// assert!(bus.has_handler(AuthEventKind::PasswordChanged));
    /// ```
    pub fn on(&self, kind: AuthEventKind, handler: impl EventHandler) {
        let mut handlers = self
            .handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        handlers.entry(kind).or_default().push(Arc::new(handler));
    }

    /// Registers an async closure for one kind.
    ///
    /// ```
    /// # use auth_service::{AuthEventKind, EventBus};
    /// let bus = EventBus::new();
    /// bus.on_fn(AuthEventKind::UserLogout, |_e| async { Ok(()) });
    /// assert!(bus.has_handler(AuthEventKind::UserLogout));
    /// ```
    pub fn on_fn<F, Fut>(&self, kind: AuthEventKind, handler: F)
    where
        F: Fn(AuthEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.on(
            kind,
            FnHandler(move |event| -> BoxFuture { Box::pin(handler(event)) }),
        );
    }

    /// Whether at least one handler listens to `kind`: a flow that must deliver something
    /// (a verification code) refuses to start when nothing would deliver it.
    ///
    /// ```
    /// # use auth_service::{AuthEventKind, EventBus};
    /// assert!(!EventBus::new().has_handler(AuthEventKind::VerificationCodeGenerated));
    /// ```
    #[must_use]
    pub fn has_handler(&self, kind: AuthEventKind) -> bool {
        self.handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kind)
            .is_some_and(|h| !h.is_empty())
    }

    /// Emits `event` in a task of its own, after the caller's answer (a mail that must not
    /// make the answer wait, or tell by its timing that an account exists). The task carries
    /// the [`RequestContext`](crate::RequestContext) of the request being served, so its audit
    /// entry keeps the client's address and user agent. Needs a Tokio runtime.
    ///
    /// ```
    /// # use auth_service::{AuthEvent, AuthEventKind, EventBus, RequestContext, RequestScope, SessionMeta, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bus = EventBus::new();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let tx = std::sync::Mutex::new(Some(tx));
    /// bus.on_fn(AuthEventKind::PasswordChanged, move |_e| {
    ///     let ip = RequestContext::current().and_then(|c| c.meta.ip);
    ///     if let Some(tx) = tx.lock().unwrap().take() { tx.send(ip).ok(); }
    ///     async { Ok(()) }
    /// });
    /// let ctx = RequestContext::new(SessionMeta::new().with_ip("203.0.113.9".parse().unwrap()));
    /// ctx.scope(async { bus.emit_detached(AuthEvent::PasswordChanged { user_id: UserId::new("1") }) }).await;
    /// assert_eq!(rx.await.unwrap().unwrap().to_string(), "203.0.113.9");
    /// # });
    /// ```
    pub fn emit_detached(&self, event: AuthEvent) {
        let bus = self.clone();
        let ctx = crate::RequestContext::current().unwrap_or_default();
        tokio::spawn(ctx.scope(async move { bus.emit(event).await }));
    }

    /// Logs the event and runs its handlers; never fails. The log line shows login
    /// identifiers and limiter keys only hashed ([`crate::redact_identifier`]): what a client
    /// typed into an email field may be a password.
    ///
    /// ```
    /// # use auth_service::{AuthEvent, EventBus, UserId};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// EventBus::new().emit(AuthEvent::PasswordChanged { user_id: UserId::new("1") }).await;
    /// # });
    /// ```
    pub async fn emit(&self, event: AuthEvent) {
        let kind = event.kind();
        tracing::info!(target: "auth::events", event = kind.as_str(), detail = %LogView(&event), "auth event");
        let handlers: Vec<Arc<dyn EventHandler>> = self
            .handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&kind)
            .cloned()
            .unwrap_or_default();
        for (index, handler) in handlers.iter().enumerate() {
            match (CatchUnwind {
                inner: handler.handle(&event),
            })
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(
                    target: "auth::events",
                    event = kind.as_str(),
                    handler = index,
                    error = %error,
                    "event handler failed"
                ),
                Err(()) => tracing::error!(
                    target: "auth::events",
                    event = kind.as_str(),
                    handler = index,
                    "event handler panicked"
                ),
            }
        }
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handlers = self
            .handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut kinds: Vec<_> = handlers
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        kinds.sort_unstable();
        f.debug_struct("EventBus")
            .field("handlers", &kinds)
            .finish()
    }
}

/// Polls a future, turning a panic inside it into `Err(())`, so one handler's panic cannot
/// break the flow that emitted the event.
struct CatchUnwind<F> {
    inner: F,
}

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

/// An event as the log shows it: identifiers typed by clients are hashed.
struct LogView<'a>(&'a AuthEvent);

impl fmt::Display for LogView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::service::redact_identifier;
        match self.0 {
            AuthEvent::UserLoginFailed { identifier, reason } => write!(
                f,
                "UserLoginFailed {{ identifier: {}, reason: {reason:?} }}",
                redact_identifier(identifier)
            ),
            AuthEvent::RateLimitExceeded {
                identifier,
                retry_after,
            } => write!(
                f,
                "RateLimitExceeded {{ identifier: {}, retry_after: {retry_after:?} }}",
                redact_identifier(identifier)
            ),
            AuthEvent::AccountLocked {
                identifier,
                retry_after,
            } => write!(
                f,
                "AccountLocked {{ identifier: {}, retry_after: {retry_after:?} }}",
                redact_identifier(identifier)
            ),
            other => write!(f, "{other:?}"),
        }
    }
}
