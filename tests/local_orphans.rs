//! `ebb run` killed outright (SIGKILL, as the OOM killer would) leaves no process behind: the
//! real `ebb` binary, the real example scaler as a sidecar, and real worker processes.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{KillOnDrop, alive, wait_for};

/// PIDs of the live (not zombie) processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command (in parentheses): state, then the parent's PID.
            let mut fields = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest)
                .unwrap_or("")
                .split_whitespace();
            let state = fields.next().unwrap_or("Z");
            state != "Z" && fields.next().and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

fn write_manifest(dir: &Path, scaler: &Path) -> std::path::PathBuf {
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: example}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: sleep
  args: ["600"]
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: steady}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  minReplicaCount: 3
  maxReplicaCount: 3
  triggers:
    - type: example
      name: constant
      metadata: {{value: "1", target: "1"}}
"#,
        scaler = scaler.display()
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

#[test]
fn a_killed_ebb_run_leaves_no_worker_or_scaler_running() {
    let ebb = support::binary("ebb", "ebb");
    let scaler = support::binary("ebb-example-scaler", "ebb-example-scaler");
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = write_manifest(dir.path(), &scaler);
    let mut run = KillOnDrop(
        Command::new(&ebb)
            .args(["run", "-f"])
            .arg(&manifest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ebb run"),
    );
    let ebb_pid = run.0.id();
    // The scaler and three workers.
    wait_for("the scaler and 3 workers", Duration::from_secs(60), || {
        children_of(ebb_pid).len() >= 4
    });
    let started = children_of(ebb_pid);
    // A child seen in the instant between fork and exec still runs the launcher; each must
    // become its program soon (a launcher that stays would be a process `ebb run` cannot
    // account for).
    let launching = || {
        started
            .iter()
            .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .filter(|command| command.contains("exec-child"))
            .collect::<Vec<_>>()
    };
    wait_for(
        "every launcher to become its program",
        Duration::from_secs(10),
        || launching().is_empty(),
    );

    run.0.kill().expect("SIGKILL ebb");
    run.0.wait().expect("reap ebb");

    wait_for(
        "every process ebb started to stop",
        Duration::from_secs(30),
        || started.iter().all(|pid| !alive(*pid)),
    );
}

#[test]
fn exec_child_refuses_to_start_for_an_ebb_that_is_gone() {
    let ebb = support::binary("ebb", "ebb");
    // The caller of `ebb exec-child` is this test process; naming another PID as the parent
    // is what it sees when the ebb that asked died before the death signal was set.
    let output = Command::new(&ebb)
        .args([
            "exec-child",
            "--parent",
            "1",
            "--signal",
            "15",
            "--",
            "true",
        ])
        .output()
        .expect("run ebb exec-child");
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is gone"), "{stderr}");

    let output = Command::new(&ebb)
        .args(["exec-child", "--parent"])
        .arg(std::process::id().to_string())
        .args([
            "--signal",
            "15",
            "--",
            "sh",
            "-c",
            "echo started-by-exec-child",
        ])
        .output()
        .expect("run ebb exec-child");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "started-by-exec-child"
    );
}
