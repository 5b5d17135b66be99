//! The official Kubernetes Python client (PyPI `kubernetes`), as a separate process, against
//! the real kube-apiserver (`scripts/cluster.sh`): watch, status changes, and 410 Gone for a
//! watch resumed from a resourceVersion older than the apiserver's watch cache
//! (`tests/python/watch_scaledobjects.py`).

mod real_clients;
mod support;

use real_clients::cluster::Cluster;
use real_clients::{require_python_module, text};

#[test]
fn python_client_watches_status_changes_and_gets_gone_for_an_expired_resource_version() {
    require_python_module("kubernetes");
    let cluster = Cluster::running();
    cluster.install_crds();
    let namespace = cluster.namespace("python-watch");
    let output = cluster.python("watch_scaledobjects.py", &[&namespace.name]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("OK watch saw MODIFIED with status.currentReplicas=3"),
        "{report}"
    );
    // The real apiserver answers an expired watch in band: HTTP 200 and one ERROR event whose
    // Status is 410 Expired; the client turns it into ApiException(410).
    assert!(
        report.contains("OK expired watch: HTTP 200, one ERROR event: 410 Expired (too old resource version: 1 ("),
        "{report}"
    );
    assert!(
        report.contains(": 410 Expired: too old resource version: 1 ("),
        "{report}"
    );
}
