#![doc = include_str!("../README.md")]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{Error, Result};

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// An HTTPS (and plain HTTP) client with a deadline per request and a bounded answer. Cheap to
/// clone: one connection pool.
///
/// ```
/// let client = auth_http::HttpsClient::new()?;
/// assert_eq!(client.timeout(), auth_http::HttpsClient::DEFAULT_TIMEOUT);
/// assert_eq!(client.max_body(), auth_http::HttpsClient::DEFAULT_MAX_BODY);
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct HttpsClient {
    client: hyper_util::client::legacy::Client<Connector, http_body_util::Full<bytes::Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsClient")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// Ten seconds per request (connection, answer and body) unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// At most 1 MiB of body unless told otherwise.
    pub const DEFAULT_MAX_BODY: usize = 1 << 20;

    /// A client trusting Mozilla's root certificates, TLS 1.2 and 1.3 on ring.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] when TLS cannot be configured.
    pub fn new() -> Result<Self> {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::backend("configuring TLS for outbound requests", e))?
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
            max_body: Self::DEFAULT_MAX_BODY,
        })
    }

    /// Allows each request `timeout`, connection, answer and body together.
    ///
    /// ```
    /// let c = auth_http::HttpsClient::new()?.with_timeout(std::time::Duration::from_secs(3));
    /// assert!(format!("{c:?}").contains("3s"));
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses answers whose body is longer than `bytes`.
    ///
    /// ```
    /// let c = auth_http::HttpsClient::new()?.with_max_body(4096);
    /// assert_eq!(c.max_body(), 4096);
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The time allowed for one request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest body accepted, in bytes.
    #[must_use]
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Sends `request` and reads the whole answer, any status. `doing` names the call in an
    /// error (`"asking the breached-password API"`).
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] (with `doing` as its context) when the remote cannot be reached, does
    /// not answer within the timeout, or answers a body over the limit.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
        doing: &'static str,
    ) -> Result<http::Response<Vec<u8>>> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, http_body_util::Full::new(body.into()));
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::backend(doing, e))?;
            let (parts, body) = response.into_parts();
            let bytes =
                http_body_util::BodyExt::collect(http_body_util::Limited::new(body, self.max_body))
                    .await
                    .map_err(|e| Error::backend(doing, std::io::Error::other(e.to_string())))?
                    .to_bytes();
            Ok(http::Response::from_parts(parts, bytes.to_vec()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::backend(
                    doing,
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", self.timeout),
                    ),
                )
            })?
    }
}
