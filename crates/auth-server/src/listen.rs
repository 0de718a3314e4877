//! The listener: every connection has a deadline for its headers (and for the next request's,
//! so an idle keep-alive socket is closed too), and connections are capped in all and per client
//! address, so idle or trickling sockets from one client cannot take the server from everyone.
//!
//! Past a cap a connection is answered `503` with `Retry-After` and closed at once; an accept
//! error (out of file descriptors) backs off instead of spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How connections are bounded (`AUTH_HEADER_TIMEOUT_SECS`, `AUTH_MAX_CONNECTIONS`,
/// `AUTH_MAX_CONNECTIONS_PER_CLIENT`; the body's deadline, `AUTH_BODY_TIMEOUT_SECS`, is a layer
/// of the app).
///
/// ```
/// use std::time::Duration;
/// let limits = auth_server::ConnectionLimits::new(Duration::from_secs(10), 1000, 100);
/// assert_eq!(limits.max_per_client, 100);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers, counted from the connection's
    /// start or from the previous response (an idle keep-alive connection is closed after it).
    pub header_timeout: Duration,
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one client address (trusted proxies are exempt: their
    /// clients are told apart by `X-Forwarded-For`, past the connection).
    pub max_per_client: usize,
    /// Addresses exempt from the per-client cap.
    pub trusted_proxies: auth_axum::TrustedProxies,
}

impl ConnectionLimits {
    /// Limits with no trusted proxies.
    #[must_use]
    pub fn new(header_timeout: Duration, max_connections: usize, max_per_client: usize) -> Self {
        Self {
            header_timeout,
            max_connections: max_connections.max(1),
            max_per_client: max_per_client.max(1),
            trusted_proxies: auth_axum::TrustedProxies::none(),
        }
    }

    /// Sets the addresses exempt from the per-client cap.
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: auth_axum::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}

/// Raises this process's soft open-file limit to its hard limit and returns the limit now in
/// force (`None` where it cannot be read), so the connection cap can be sized below it.
#[must_use]
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "the open-file limit could not be read or raised");
            None
        }
    }
}

/// Connections open now, in all and per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
struct Place {
    open: Arc<Mutex<Open>>,
    client: Option<IpAddr>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        open.total = open.total.saturating_sub(1);
        if let Some(ip) = self.client
            && let Some(n) = open.by_client.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_client.remove(&ip);
            }
        }
    }
}

fn admit(open: &Arc<Mutex<Open>>, limits: &ConnectionLimits, peer: IpAddr) -> Option<Place> {
    let mut o = open.lock().ok()?;
    if o.total >= limits.max_connections {
        return None;
    }
    let client = (!limits.trusted_proxies.contains(peer)).then_some(peer);
    if let Some(ip) = client {
        let n = o.by_client.entry(ip).or_insert(0);
        if *n >= limits.max_per_client {
            return None;
        }
        *n += 1;
    }
    o.total += 1;
    Some(Place {
        open: Arc::clone(open),
        client,
    })
}

/// Refusals answered at once, at most.
const POLITE_REFUSALS: usize = 64;

/// One refusal being answered; dropping it frees its place.
struct Refusal(Arc<AtomicUsize>);

impl Refusal {
    fn start(refusing: &Arc<AtomicUsize>) -> Option<Self> {
        refusing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < POLITE_REFUSALS).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(Arc::clone(refusing)))
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection past a cap and closes it, spending at most two seconds on it: the
/// request's head is read first (a client that sees an answer before it has sent its request
/// may take it for a broken connection), for at most a second, then the answer is written, and
/// whatever else arrives is dropped until the client closes too (closing a socket with unread
/// data would reset it, and the client could lose the answer).
async fn refuse(mut stream: TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: 73\r\nconnection: close\r\n\r\n{\"error\":\"overloaded\",\"message\":\"Too many connections: try again later.\"}";
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(ANSWER).await;
        let _ = stream.shutdown().await;
        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish.
///
/// # Errors
///
/// Never in practice: accept errors are logged and retried after a back-off.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open::default()));
    let refusing = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut backoff = Duration::from_millis(10);
    let mut refused_logged = tokio::time::Instant::now();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => {
                backoff = Duration::from_millis(10);
                conn
            }
            Err(e) => {
                // Out of file descriptors (or another transient failure): wait instead of
                // spinning on the same error, longer each time.
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Some(place) = admit(&open, &limits, peer.ip()) else {
            if refused_logged.elapsed() >= Duration::from_secs(1) {
                refused_logged = tokio::time::Instant::now();
                tracing::warn!(client = %peer.ip(), "connection refused: too many connections (503)");
            }
            // A few refusals are answered politely; past that a socket is closed at once, so
            // refusing never holds the descriptors the cap keeps free.
            if let Some(refusal) = Refusal::start(&refusing) {
                tokio::spawn(async move {
                    let _refusal = refusal;
                    refuse(stream).await;
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            let mut router = router.clone();
            async move {
                Ok::<_, Infallible>(
                    tower::Service::call(&mut router, request.map(axum::body::Body::new))
                        .await
                        .unwrap_or_else(|never| match never {}),
                )
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _place = place;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    tracing::info!("shutting down: finishing requests in flight");
    graceful.shutdown().await;
    Ok(())
}
