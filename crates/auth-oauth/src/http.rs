//! The HTTP client that talks to providers: HTTPS with Mozilla's roots on ring (and plain
//! HTTP, for a provider on localhost in development and tests), a timeout, bounded bodies.
//! Any other client can be given through [`HttpSend`].

use std::fmt;
use std::time::Duration;

use auth_core::{Result, async_trait};

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
    /// [`Error::Backend`](auth_core::Error::Backend) when the provider cannot be reached or answers too much.
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>>;
}

/// The default [`HttpSend`]: the workspace's one HTTPS client (`auth_http::HttpsClient`:
/// hyper with rustls on ring and webpki roots; its own TLS configuration, so it installs no
/// process-wide crypto provider), answers bounded at [`MAX_RESPONSE_BYTES`].
///
/// ```
/// let client = auth_oauth::HttpClient::new()?.with_timeout(std::time::Duration::from_secs(5));
/// # let _ = client;
/// # Ok::<(), auth_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: auth_http::HttpsClient,
}

impl HttpClient {
    /// Ten seconds per request by default.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A client.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](auth_core::Error::Backend) when TLS cannot be configured.
    ///
    /// ```
    /// assert!(auth_oauth::HttpClient::new().is_ok());
    /// ```
    pub fn new() -> Result<Self> {
        Ok(Self {
            client: auth_http::HttpsClient::new()?
                .with_timeout(Self::DEFAULT_TIMEOUT)
                .with_max_body(MAX_RESPONSE_BYTES),
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
        self.client = self.client.with_timeout(timeout);
        self
    }
}

#[async_trait]
impl HttpSend for HttpClient {
    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>> {
        self.client
            .send(request, "calling the sign-in provider")
            .await
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
