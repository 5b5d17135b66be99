//! The controller's `--dashboard` flag: off by default (no page, nothing recorded), and when
//! on, the page and its routes on the telemetry address beside `/metrics`. The controller runs
//! for real against the real control plane (`scripts/cluster.sh`), watching only a namespace
//! of its own, as a ServiceAccount with the RBAC of `deploy/`.

mod in_process_controller;
mod real_clients;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ebb::kubernetes::ControllerArgs;
use in_process_controller::{InProcessController, test_args};
use real_clients::cluster::Cluster;
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

/// Runs the controller with `dashboard` in a new namespace (no objects: the dashboard's list
/// is empty), calls `check` with its telemetry address, stops it.
async fn with_controller<F: std::future::Future<Output = ()>>(
    dashboard: bool,
    check: impl FnOnce(SocketAddr) -> F,
) {
    let cluster = Cluster::running();
    {
        let _cluster_wide = cluster.exclusive();
        cluster.install_crds();
    }
    let namespace = cluster.namespace("dashboard");
    let account = cluster.controller_account(&namespace.name);
    let mark = cluster.audit_mark();
    let args = ControllerArgs {
        leader_elect: false,
        dashboard,
        namespace: namespace.name.clone(),
        watch_namespace: Some(namespace.name.clone()),
        ..test_args("dashboard-test")
    };
    let client = cluster.client(Some(&account.kubeconfig)).await;
    let controller = InProcessController::start(client, args).await;
    check(controller.telemetry).await;
    controller.stop().await;
    cluster.assert_nothing_forbidden(&mark, &account.user);
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
