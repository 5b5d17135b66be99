//! Helm's own library (PyPI `helm-python-sdk`), as a separate process, installs and upgrades
//! ebb in `ebb-fake-apiserver` (`tests/python/helm_install.py`). It installs the chart at
//! `deploy/helm/ebb` when the repository has one, else `deploy/` rendered by kustomize and
//! wrapped into a minimal chart. Helm 4 creates the objects by server-side apply and keeps
//! its release in Secrets written in protobuf: both go through the fake here.

mod real_clients;
mod support;

use real_clients::{FakeApiProcess, require_python_module, text};

#[test]
fn helm_installs_and_upgrades_ebb_into_the_fake() {
    require_python_module("helm_python");
    let server = FakeApiProcess::start();
    let chart = support::workspace_root().join("deploy/helm/ebb");
    let source = if chart.is_dir() {
        chart.to_string_lossy().into_owned()
    } else {
        let rendered = server.kubectl_ok(&["kustomize", "deploy/"]);
        let path = server.dir().join("rendered.yaml");
        std::fs::write(&path, rendered).expect("write the rendered manifest");
        path.to_string_lossy().into_owned()
    };
    let output = server.python("helm_install.py", &[&source]);
    let report = text(&output);
    assert!(output.status.success(), "{report}");
    for line in [
        "OK installed ebb revision 1: deployed",
        "OK status deployed",
        "OK upgraded to revision 2",
    ] {
        assert!(report.contains(line), "{line} in {report}");
    }
    // What Helm left in the cluster, seen by another client.
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/scaledobjects.ebb.dev",
    ]);
    let deployment = server.kubectl_ok(&[
        "get",
        "deployment",
        "ebb-controller",
        "-n",
        "ebb-system",
        "-o",
        "name",
    ]);
    assert_eq!(deployment.trim(), "deployment.apps/ebb-controller");
    let releases = server.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        "ebb-system",
        "-l",
        "owner=helm,name=ebb,status=deployed",
        "-o",
        "name",
    ]);
    assert_eq!(
        releases.trim(),
        "secret/sh.helm.release.v1.ebb.v2",
        "{releases}"
    );
    let release_type = server.kubectl_ok(&[
        "get",
        "secret",
        "sh.helm.release.v1.ebb.v2",
        "-n",
        "ebb-system",
        "-o",
        "jsonpath={.type}",
    ]);
    assert_eq!(release_type, "helm.sh/release.v1");
}
