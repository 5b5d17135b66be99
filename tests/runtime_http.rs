//! The telemetry server over real HTTP: metrics, health, readiness and host routes.

use std::sync::Arc;

use ebb::runtime::{Readiness, RuntimeMetrics, serve};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn serves_metrics_health_readiness_and_extra_routes() {
    let mut registry = Registry::default();
    let metrics = RuntimeMetrics::register(&mut registry);
    metrics.scaled_objects.set(7);
    let readiness = Readiness::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let extra =
        axum::Router::new().route("/status", axum::routing::get(|| async { "host status" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Arc::new(registry),
        readiness.clone(),
        extra,
        async {
            let _ = stopped.await;
        },
    ));

    let (status, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("ebb_scaled_objects 7"), "{body}");
    assert!(body.contains("ebb_scale_loop_lag_seconds"), "{body}");
    assert_eq!(get(address, "/healthz").await.0, 200);
    assert_eq!(get(address, "/readyz").await.0, 503);
    readiness.set_ready(true);
    assert_eq!(get(address, "/readyz").await.0, 200);
    assert_eq!(
        get(address, "/status").await,
        (200, "host status".to_owned())
    );
    assert_eq!(get(address, "/nothing").await.0, 404);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
