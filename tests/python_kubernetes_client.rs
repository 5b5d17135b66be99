//! The official Kubernetes Python client (PyPI `kubernetes`), as a separate process, against
//! `ebb-fake-apiserver`: watch, status changes, and 410 Gone after compaction
//! (`tests/python/watch_scaledobjects.py`).

mod real_clients;
mod support;

use real_clients::{FakeApiProcess, require_python_module, text};

#[test]
fn python_client_watches_status_changes_and_gets_gone_after_compaction() {
    require_python_module("kubernetes");
    let server = FakeApiProcess::start();
    server.kubectl_ok(&["apply", "-k", "deploy/crds"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/scaledobjects.ebb.dev",
    ]);
    let output = server.python("watch_scaledobjects.py", &[]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("OK watch saw MODIFIED with status.currentReplicas=3"),
        "{report}"
    );
    assert!(report.contains(": 410 "), "{report}");
}
