//! The HTTP client that talks to providers: HTTPS with Mozilla's roots on ring (and plain
//! HTTP, for a provider on localhost in development and tests), a timeout, bounded bodies.
//! Any other client can be given through [`HttpSend`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Error, Result, async_trait};

/// Largest provider answer read (discovery documents, key sets, tokens, user info).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Sends one request to a provider. [`HttpClient`] is the default; tests or deployments with
/// their own proxying give another.
///
/// ```
/// fn takes(_: std::sync::Arc<dyn auth_oauth::HttpSend>) {}
/// takes(std::sync::Arc::new(auth_oauth::HttpClient::new().unwrap()));
/// ```
#[async_trait]
pub trait HttpSend: Send + Sync + 'static {
    /// The response to `request`, whatever its status.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when the provider cannot be reached or answers too much.
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>>;
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The default [`HttpSend`]: hyper with rustls on ring and webpki roots; its own TLS
/// configuration, so it installs no process-wide crypto provider.
///
/// ```
/// let client = auth_oauth::HttpClient::new()?.with_timeout(std::time::Duration::from_secs(5));
/// # let _ = client;
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    client: hyper_util::client::legacy::Client<Connector, http_body_util::Full<hyper::body::Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Ten seconds per request by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when TLS cannot be configured.
    ///
    /// ```
    /// assert!(auth_oauth::HttpClient::new().is_ok());
    /// ```
    pub fn new() -> Result<Self> {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend("configuring TLS for sign-in providers", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector);
        Ok(Self {
            client,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// Allows each request `timeout`.
    ///
    /// ```
    /// let c = auth_oauth::HttpClient::new()?.with_timeout(std::time::Duration::from_secs(3));
    /// assert!(format!("{c:?}").contains("3s"));
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

fn unreachable_provider(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::backend("calling the sign-in provider", e)
}

#[async_trait]
impl HttpSend for HttpClient {
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, http_body_util::Full::new(body.into()));
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| {
                unreachable_provider(std::io::Error::other("the provider did not answer in time"))
            })?
            .map_err(unreachable_provider)?;
        let (parts, body) = response.into_parts();
        let bytes = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            body,
            MAX_RESPONSE_BYTES,
        ))
        .await
        .map_err(|e| unreachable_provider(std::io::Error::other(e.to_string())))?
        .to_bytes();
        Ok(http::Response::from_parts(parts, bytes.to_vec()))
    }
}

/// openidconnect's view of an [`HttpSend`].
#[derive(Debug)]
pub(crate) struct HttpError(pub(crate) String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}
