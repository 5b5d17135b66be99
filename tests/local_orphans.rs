//! `ebb run` killed outright (SIGKILL, as the OOM killer would) leaves no process behind: the
//! real `ebb` binary, the real example scaler as a sidecar, and real worker processes. And a
//! job that starts processes in a session of their own (`setsid sleep &`), out of reach of
//! its process group, leaves none once it ends or once `ebb run` exits.

mod ebb_run;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_run::EbbRun;
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

/// A job that starts three processes in sessions of their own, each recording its PID in
/// `$PIDS/<job>.<kind>` before it becomes `sleep`: `marked` keeps the job's environment,
/// `unmarked` drops `EBB_JOB_NAME` (so ebb cannot tell whose it is) and `short` drops it too
/// but exits after a second by itself. The job ends once all three have recorded.
const ESCAPING_JOB: &str = r#"#!/bin/sh
record='echo $$ > "$PIDS/$JOB.$KIND.tmp" && mv "$PIDS/$JOB.$KIND.tmp" "$PIDS/$JOB.$KIND" && exec sleep "$SLEEP_FOR"'
JOB=$EBB_JOB_NAME KIND=marked SLEEP_FOR=1000 setsid sh -c "$record" &
JOB=$EBB_JOB_NAME KIND=unmarked SLEEP_FOR=1000 env -u EBB_JOB_NAME setsid sh -c "$record" &
JOB=$EBB_JOB_NAME KIND=short SLEEP_FOR=1 env -u EBB_JOB_NAME setsid sh -c "$record" &
for kind in marked unmarked short; do
  while [ ! -e "$PIDS/$EBB_JOB_NAME.$kind" ]; do sleep 0.05; done
done
"#;

fn write_job_manifest(dir: &Path, scaler: &Path, pids: &Path) -> PathBuf {
    std::fs::write(dir.join("job.sh"), ESCAPING_JOB).expect("write job script");
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: example}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}"]
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledJob
metadata: {{name: escapes}}
spec:
  pollingInterval: 1
  maxReplicaCount: 1
  jobTargetRef:
    template:
      spec:
        terminationGracePeriodSeconds: 5
        containers:
          - name: job
            command: ["sh", "./job.sh"]
            env:
              - {{name: PIDS, value: "{pids}"}}
  triggers:
    - type: example
      metadata: {{value: "1", target: "1"}}
"#,
        scaler = scaler.display(),
        pids = pids.display(),
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// The start time (clock ticks after boot) of process `pid`, zombie or not: with the PID it
/// names one process, even if the PID is later reused.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command: state is field 3, start time field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One recorded process: its PID and start time.
#[derive(Debug, Clone, Copy)]
struct Recorded {
    pid: u32,
    start: Option<u64>,
}

impl Recorded {
    /// Reads `$PIDS/<name>` once it exists.
    fn wait(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        wait_for(&format!("{name} recorded"), Duration::from_secs(60), || {
            path.exists()
        });
        let pid = std::fs::read_to_string(&path)
            .expect("read pid")
            .trim()
            .parse()
            .expect("a pid");
        Self {
            pid,
            start: start_time(pid),
        }
    }

    /// No process with this PID and start time exists, not even as a zombie.
    fn gone(self) -> bool {
        self.start.is_none() || start_time(self.pid) != self.start
    }
}

/// SIGKILLs every process the jobs recorded, so a failing run leaves no sleeper behind.
struct KillRecorded(PathBuf);

impl Drop for KillRecorded {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            if let Some(pid) = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

#[test]
fn a_job_that_starts_setsid_sleep_leaves_no_process_after_it_ends_or_after_ebb_exits() {
    let ebb = support::binary("ebb", "ebb");
    let scaler = support::binary("ebb-example-scaler", "ebb-example-scaler");
    let dir = tempfile::tempdir().expect("temp dir");
    let pids = dir.path().join("pids");
    std::fs::create_dir_all(&pids).expect("pids dir");
    let _cleanup = KillRecorded(pids.clone());
    let manifest = write_job_manifest(dir.path(), &scaler, &pids);
    let mut run = EbbRun::start(&ebb, &manifest, &dir.path().join("ebb.log"));

    let marked = Recorded::wait(&pids, "escapes-1.marked");
    let unmarked = Recorded::wait(&pids, "escapes-1.unmarked");
    let short = Recorded::wait(&pids, "escapes-1.short");
    // The job ended once all three recorded: what it left in its own session goes with it.
    wait_for(
        "the job's setsid sleep to be stopped and reaped when the job ended",
        Duration::from_secs(30),
        || marked.gone(),
    );
    // One that exits by itself after ebb adopted it is reaped, not left a zombie.
    wait_for(
        "the short-lived escaped process to be reaped",
        Duration::from_secs(30),
        || short.gone(),
    );
    // Without the job's environment it cannot be told apart from others' (the documented
    // limit): it runs until ebb exits.
    assert!(
        alive(unmarked.pid),
        "only ebb's exit stops a process that dropped EBB_JOB_NAME: {}",
        run.log_tail(40)
    );

    // Every process any job recorded so far, with its start time, read while ebb runs.
    let recorded: Vec<(String, Recorded)> = std::fs::read_dir(&pids)
        .expect("pids")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".tmp"))
        .map(|name| {
            let process = Recorded::wait(&pids, &name);
            (name, process)
        })
        .collect();

    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(60));
    assert!(
        exit.success(),
        "ebb run exited with {exit}: {}",
        run.log_tail(40)
    );
    // ebb stopped and reaped every process it adopted before it exited.
    let left: Vec<String> = recorded
        .iter()
        .filter(|(_, process)| !process.gone())
        .map(|(name, process)| format!("{name} (pid {})", process.pid))
        .collect();
    assert!(
        left.is_empty(),
        "still running after ebb run exited: {left:?}\n{}",
        run.log_tail(40)
    );
}
