//! A TCP proxy a test can cut, to take a real network path down (a database listener, a
//! Redis subscription) and bring it back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections from a local port to `upstream` until [`cut`](Self::cut): then every
/// open connection is closed and new ones are refused (accepted and closed at once) until
/// [`restore`](Self::restore).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// // An upstream that answers "ok" to anything.
/// let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let at = upstream.local_addr().unwrap();
/// tokio::spawn(async move {
///     loop {
///         let (mut s, _) = upstream.accept().await.unwrap();
///         tokio::spawn(async move { let mut b = [0; 4]; let _ = s.read(&mut b).await; let _ = s.write_all(b"ok").await; });
///     }
/// });
/// let proxy = auth_testkit::CutProxy::start(at).await;
/// let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
/// c.write_all(b"hi").await.unwrap();
/// let mut reply = [0; 2];
/// c.read_exact(&mut reply).await.unwrap();
/// assert_eq!(&reply, b"ok");
/// proxy.cut();
/// let mut c = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
/// let _ = c.write_all(b"hi").await;
/// assert_eq!(c.read(&mut reply).await.unwrap_or(0), 0, "refused while cut");
/// # });
/// ```
#[derive(Debug)]
pub struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: a test environment problem.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let cut = Arc::new(AtomicBool::new(false));
        let (epoch, _) = watch::channel(0_u64);
        let accept = tokio::spawn({
            let cut = Arc::clone(&cut);
            let epoch = epoch.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let mut cut_signal = epoch.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let mut client = client;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut_signal.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            cut,
            epoch,
            accept,
        }
    }

    /// The address to connect to instead of the upstream.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
