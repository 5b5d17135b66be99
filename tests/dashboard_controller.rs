//! The controller's `--dashboard` flag: off by default (no page, nothing recorded), and when
//! on, the page and its routes on the telemetry address beside `/metrics`. The controller runs
//! for real against the in-process fake API server (real HTTP/JSON over TCP).

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::net::SocketAddr;
use std::time::Duration;

use ebb::kubernetes::{ControllerArgs, run_with_client};
use fake_apiserver::FakeApiServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `path`; the status code and the head of the answer (an SSE stream never ends, so
/// only what arrives within a second is read).
async fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (code, response)
}

/// Runs the controller with `dashboard`, calls `check` with its telemetry address, stops it.
async fn with_controller<F: std::future::Future<Output = ()>>(
    dashboard: bool,
    check: impl FnOnce(SocketAddr) -> F,
) {
    let server = FakeApiServer::start().await;
    let args = ControllerArgs {
        identity: Some("dashboard-test".to_owned()),
        leader_elect: false,
        dashboard,
        ..ControllerArgs::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_with_client(
        server.client(),
        args,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    check(address).await;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("controller stops in time")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_off_by_default_and_served_beside_metrics_when_on() {
    with_controller(false, |address| async move {
        let (code, _) = get(address, "/metrics").await;
        assert_eq!(code, 200);
        let (code, _) = get(address, "/").await;
        assert_eq!(code, 404, "no dashboard without --dashboard");
        let (code, _) = get(address, "/dashboard/objects").await;
        assert_eq!(code, 404);
    })
    .await;

    with_controller(true, |address| async move {
        let (code, page) = get(address, "/").await;
        assert_eq!(code, 200, "{page}");
        assert!(
            page.contains("EventSource(\"/dashboard/events\")"),
            "{page}"
        );
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no CDN"
        );
        let (code, objects) = get(address, "/dashboard/objects").await;
        assert_eq!(code, 200, "{objects}");
        assert!(objects.contains("\"objects\":[]"), "{objects}");
        let (code, events) = get(address, "/dashboard/events").await;
        assert_eq!(code, 200, "{events}");
        assert!(events.contains("text/event-stream"), "{events}");
        let (code, answer) = get(address, "/dashboard/chart?name=x&window=7").await;
        assert_eq!(code, 400, "{answer}");
        assert!(answer.contains("window must be one of"), "{answer}");
        let (code, _) = get(address, "/metrics").await;
        assert_eq!(code, 200);
    })
    .await;
}
