//! The listener over real sockets, on the release of the binary as operators run it (its own
//! process, so its open-file limit is its own): idle and trickling connections from one client
//! cannot take the server from everyone, and are closed after the header deadline.
//!
//! Finding (issue 30): there was no header-read or idle timeout and no connection cap; under
//! `ulimit -n 1024`, 1,100 idle sockets from one client made `/health` time out for every other
//! client (`accept error: Too many open files`) until they closed.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common;

use common::Process;

/// The binary under `ulimit -n 1024`, with a 2 s header deadline.
async fn start() -> Process {
    Process::start(
        &["sh", "-c", r#"ulimit -n 1024 && exec "$0""#],
        &[("AUTH_HEADER_TIMEOUT_SECS", "2")],
    )
    .await
}

/// A connection from a given loopback address (Linux routes all of 127/8 to lo).
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(to).await
}

async fn health_from(from: &str, to: SocketAddr) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    client
        .get(format!("http://{to}/health"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Reads until the server closes the connection (or `within` passes): what it said, if
/// anything, and whether it closed.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut said = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => said.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&said).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_client_leave_the_server_to_everyone_else() {
    // This test opens 2,000 sockets of its own.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = start().await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        match connect_from("127.0.0.1", server.addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    // Another client is served at once; the flooding address itself is refused (a 503, or
    // its connection closed when the server is already answering many refusals).
    assert_eq!(health_from("127.0.0.2", server.addr).await, Ok(200));
    let flooder = health_from("127.0.0.1", server.addr).await;
    assert!(matches!(flooder, Ok(503) | Err(_)), "{flooder:?}");

    // Past the per-client cap each socket was answered 503 (the first 64 refusals at a time)
    // or closed at once; the admitted ones are closed when the header deadline (2 s) passes.
    // None stays open.
    let results = futures_util::future::join_all(
        idle.iter_mut()
            .map(|s| until_closed(s, Duration::from_secs(15))),
    )
    .await;
    let refused = results
        .iter()
        .filter(|(said, _)| said.starts_with("HTTP/1.1 503") && said.contains("retry-after: 1"))
        .count();
    let still_open = results.iter().filter(|(_, closed)| !closed).count();
    println!(
        "2,000 idle sockets from one address under ulimit -n 1024: {refused} answered 503, the rest closed (refused, or past the header deadline); {still_open} still open"
    );
    assert_eq!(still_open, 0);
    assert!(refused > 0);
    // Once they are gone, the address is served again.
    assert_eq!(health_from("127.0.0.1", server.addr).await, Ok(200));
}

#[tokio::test]
async fn trickling_and_idle_keep_alive_connections_are_closed_after_the_header_deadline() {
    let server = start().await;

    // Headers sent a byte every 300 ms: the deadline (2 s) passes before they end.
    let mut slow = connect_from("127.0.0.3", server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..40 {
            if slow.write_all(b"x").await.is_err() {
                break;
            }
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(300), slow.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => {
                    assert!(
                        !String::from_utf8_lossy(&buf[..n]).contains("200 OK"),
                        "a trickled request was served"
                    );
                    break;
                }
                Err(_) => {}
            }
        }
        started.elapsed()
    };
    let closed_after = trickle.await;
    assert!(
        closed_after < Duration::from_secs(8),
        "trickling connection still open after {closed_after:?}"
    );

    // A keep-alive connection: one request answered, then silence: closed after the deadline.
    let mut kept = connect_from("127.0.0.4", server.addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (said, closed) = until_closed(&mut kept, Duration::from_secs(8)).await;
    assert!(closed, "idle keep-alive connection still open");
    assert!(!said.contains("200 OK"), "{said}");
}
