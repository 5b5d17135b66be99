//! Conflicts under `ebb run`, with the real binary, the example scaler as a real process and
//! real worker processes: the second ScaledObject on a ProcessGroup is reported with
//! TargetConflict and never runs a loop; an HPA document on a group gives HPAConflict unless
//! the object takes it over. Both in `--check` and in the status JSON.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "scaler_processes/mod.rs"]
mod scaler_processes;
#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use ebb_run::EbbRun;
use serde_json::Value;
use support::wait_for;

fn manifest(dir: &Path, address: &str) -> std::path::PathBuf {
    let group = |name: &str| {
        format!(
            "apiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata: {{name: {name}}}\nspec:\n  command: sleep\n  args: [\"600\"]\n  gracePeriod: 1s\n"
        )
    };
    let object = |name: &str, target: &str, wanted: u32, annotations: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n{annotations}spec:\n  scaleTargetRef: {{name: {target}}}\n  pollingInterval: 1\n  triggers:\n    - name: t\n      scaler: {{address: \"{address}\"}}\n      metadata: {{value: \"{wanted}\", target: \"1\"}}\n"
        )
    };
    let hpa = |name: &str, target: &str| {
        format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}\n  maxReplicas: 5\n"
        )
    };
    let take_over = "  annotations: {ebb.dev/take-over-hpa: \"true\"}\n";
    // "zeta" comes first in the files, so it owns "workers" though "alpha" sorts first.
    let documents = [
        group("workers"),
        group("guarded"),
        group("taken"),
        object("zeta", "workers", 2, ""),
        object("alpha", "workers", 4, ""),
        hpa("guarded-cpu", "guarded"),
        object("blocked", "guarded", 1, ""),
        hpa("taken-cpu", "taken"),
        object("taker", "taken", 3, take_over),
    ];
    let path = dir.join("conflicts.yaml");
    std::fs::write(&path, documents.join("---\n")).unwrap();
    path
}

fn object<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["name"] == name))
        .unwrap_or(&Value::Null)
}

fn ready(status: &Value, name: &str) -> (String, String, String) {
    let conditions = object(status, name)["status"]["conditions"].clone();
    let ready = conditions
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or(Value::Null);
    let text = |field: &str| ready[field].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"), text("message"))
}

fn running(status: &Value, group: &str) -> u64 {
    status["processGroups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == group))
        .map_or(0, |g| g["running"].as_u64().unwrap_or(0))
}

#[test]
fn the_second_object_and_an_hpa_target_are_reported_and_never_scaled() {
    let scaler = scaler_processes::example_scaler(&[]);
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(dir.path(), &scaler.address);
    let ebb = support::binary("ebb", "ebb");

    let check = std::process::Command::new(&ebb)
        .args(["run", "--check", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        text.contains("does not scale: TargetConflict")
            && text.contains("already scaled by ScaledObject \"zeta\""),
        "{text}"
    );
    assert!(
        text.contains("does not scale: HPAConflict") && text.contains("\"guarded-cpu\""),
        "{text}"
    );
    assert_eq!(text.matches("does not scale: ").count(), 2, "{text}");

    let log = dir.path().join("run.log");
    let mut run = EbbRun::start(&ebb, &file, &log);
    // The owners scale: workers to 2 (zeta, not alpha's 4), taken to 3 despite its HPA.
    let mut last = Value::Null;
    wait_for(
        "zeta and taker scale their groups",
        Duration::from_secs(30),
        || {
            last = run.status().unwrap_or(Value::Null);
            running(&last, "workers") == 2 && running(&last, "taken") == 3
        },
    );
    let (status, reason, message) = ready(&last, "alpha");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TargetConflict"),
        "{last}"
    );
    assert!(message.contains("\"zeta\""), "{message}");
    let (status, reason, _) = ready(&last, "blocked");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "HPAConflict"),
        "{last}"
    );
    assert_eq!(ready(&last, "taker").0, "True", "{last}");
    // The blocked objects never ran a loop: no trigger was ever polled for them.
    for name in ["alpha", "blocked"] {
        assert!(
            object(&last, name)["status"]["triggers"].is_null(),
            "{last}"
        );
    }
    assert_eq!(running(&last, "guarded"), 0, "{last}");
    run.interrupt();
    assert!(run.wait_exit(Duration::from_secs(30)).success());
}
