//! The Helm chart at deploy/helm/ebb, checked by Helm's own engine: runs the pytest suite in
//! tests/helm with the Python venv that `scripts/services.sh` manages (helm-python-sdk for
//! Chart.load / render / validate_schema, kubernetes-validate for the Kubernetes OpenAPI
//! schemas), so `cargo test --workspace` covers the chart.

mod support;

use std::process::Command;

#[test]
fn the_helm_chart_passes_its_pytest_suite() {
    let root = support::workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/services.sh (it creates the venv with helm-python-sdk)",
        python.display()
    );
    let imports = Command::new(&python)
        .args([
            "-c",
            "import helm_python, kubernetes_validate, jsonschema, yaml, pytest",
        ])
        .output()
        .unwrap();
    assert!(
        imports.status.success(),
        "the venv lacks helm-python-sdk, kubernetes-validate or pytest: run scripts/services.sh\n{}",
        String::from_utf8_lossy(&imports.stderr)
    );
    let ebb = support::binary("ebb", "ebb");
    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/helm"])
        .current_dir(&root)
        .env("EBB_BIN", &ebb)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pytest tests/helm failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("skipped") && !summary.contains("failed"),
        "unexpected pytest summary: {summary}\n{stdout}"
    );
}
