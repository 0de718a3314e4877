//! The client against a real local server: an answer, a body over the limit, a server that
//! never answers.

use std::time::{Duration, Instant};

use auth_http::HttpsClient;
use axum::Router;
use axum::routing::get;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn get_request(url: String) -> http::Request<Vec<u8>> {
    http::Request::get(url).body(Vec::new()).unwrap()
}

#[tokio::test]
async fn reads_an_answer_whatever_its_status() {
    let base = serve(Router::new().route("/ok", get(|| async { "hello" })).route(
        "/missing",
        get(|| async { (http::StatusCode::NOT_FOUND, "no") }),
    ))
    .await;
    let client = HttpsClient::new().unwrap();
    let ok = client
        .send(get_request(format!("{base}/ok")), "testing")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.body(), b"hello");
    let missing = client
        .send(get_request(format!("{base}/missing")), "testing")
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn refuses_a_body_over_the_limit() {
    let base = serve(Router::new().route("/big", get(|| async { "x".repeat(10_000) }))).await;
    let client = HttpsClient::new().unwrap().with_max_body(1_000);
    let err = client
        .send(get_request(format!("{base}/big")), "reading a big answer")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reading a big answer"), "{err}");
    let roomy = HttpsClient::new().unwrap().with_max_body(10_000);
    assert!(
        roomy
            .send(get_request(format!("{base}/big")), "reading")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_silent_server_costs_the_timeout_and_no_more() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = HttpsClient::new()
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = client
        .send(
            get_request(format!("http://{addr}/")),
            "asking a silent server",
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        format!("{err:?}").contains("no answer within 300ms"),
        "{err:?}"
    );
}
