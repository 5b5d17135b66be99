//! The local process-group supervisor with real processes (`sh`, `sleep`): scaling up and
//! down, graceful stop with the configured signal, SIGKILL after the grace period, children of
//! workers stopped with them, and dead workers replaced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ebb::local::group::{GroupStatus, ProcessGroupHandle};
use ebb::local::manifest::{ProcessGroupConfig, ResolvedCommand, StopSignal};
use ebb::local::process::OutputMode;
use ebb::runtime::ScaleTarget;

fn shell_group(name: &str, script: &str, dir: &Path, grace: Duration) -> ProcessGroupConfig {
    ProcessGroupConfig {
        name: name.to_owned(),
        command: ResolvedCommand {
            program: PathBuf::from("sh"),
            args: vec!["-c".to_owned(), script.to_owned()],
            env: BTreeMap::from([("OUT".to_owned(), dir.display().to_string())]),
            working_dir: dir.to_owned(),
        },
        stop_signal: StopSignal::Term,
        grace_period: grace,
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive(pid: u32) -> bool {
    // A zombie counts as gone: /proc/<pid>/stat shows state Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn scales_up_and_down_and_reports_through_the_scale_target_trait() {
    let dir = tempfile::tempdir().unwrap();
    let group = ProcessGroupHandle::start(
        shell_group(
            "sleepers",
            "exec sleep 1000",
            dir.path(),
            Duration::from_secs(5),
        ),
        OutputMode::Discard,
    );
    let target: &dyn ScaleTarget = &group;
    assert_eq!(target.current_replicas().await, Ok(0));
    target.set_replicas(3).await.unwrap();
    assert_eq!(target.current_replicas().await, Ok(3));
    wait_for("3 running", || group.status().running == 3).await;
    let pids = group.status().pids;
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|pid| alive(*pid)));

    target.set_replicas(1).await.unwrap();
    wait_for("2 stopped", || {
        let status = group.status();
        status.running == 1 && status.stopping == 0
    })
    .await;
    // The oldest replica stays; the two newest were stopped.
    assert_eq!(group.status().pids, vec![pids[0]]);
    wait_for("stopped pids gone", || !alive(pids[1]) && !alive(pids[2])).await;
    assert!(alive(pids[0]));
    assert_eq!(group.status().restarts, 0, "a scale-in is not a restart");

    group.shutdown().await;
    wait_for("last pid gone", || !alive(pids[0])).await;
}

#[tokio::test]
async fn stop_signal_lets_a_worker_finish_before_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    // On TERM: note it, take 300 ms to "finish", note that, exit 0.
    let script = r#"trap 'echo term >> "$OUT/log"; sleep 0.3; echo finished >> "$OUT/log"; exit 0' TERM
echo started >> "$OUT/log"
while true; do sleep 0.05; done"#;
    let group = ProcessGroupHandle::start(
        shell_group("graceful", script, dir.path(), Duration::from_secs(10)),
        OutputMode::Discard,
    );
    group.scale(1).await.unwrap();
    let log = dir.path().join("log");
    wait_for("started", || read(&log).contains("started")).await;
    group.scale(0).await.unwrap();
    wait_for("stopped", || group.status() == stopped_status(0, 0)).await;
    assert_eq!(read(&log), "started\nterm\nfinished\n");
    assert_eq!(group.status().killed, 0);
}

fn stopped_status(restarts: u64, killed: u64) -> GroupStatus {
    GroupStatus {
        restarts,
        killed,
        ..GroupStatus::default()
    }
}

#[tokio::test]
async fn a_worker_ignoring_the_stop_signal_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"trap '' TERM
echo $$ > "$OUT/pid"
while true; do sleep 0.05; done"#;
    let group = ProcessGroupHandle::start(
        shell_group("stubborn", script, dir.path(), Duration::from_millis(300)),
        OutputMode::Discard,
    );
    group.scale(1).await.unwrap();
    let pid_file = dir.path().join("pid");
    wait_for("pid written", || !read(&pid_file).is_empty()).await;
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    group.scale(0).await.unwrap();
    wait_for("killed", || group.status() == stopped_status(0, 1)).await;
    assert!(!alive(pid));
}

#[tokio::test]
async fn children_of_a_worker_stop_with_it() {
    let dir = tempfile::tempdir().unwrap();
    // The worker starts a grandchild and records its pid, then waits.
    let script = r#"sleep 1000 &
echo $! > "$OUT/child"
wait"#;
    let group = ProcessGroupHandle::start(
        shell_group("parents", script, dir.path(), Duration::from_secs(5)),
        OutputMode::Discard,
    );
    group.scale(1).await.unwrap();
    let child_file = dir.path().join("child");
    wait_for("child pid written", || read(&child_file).ends_with('\n')).await;
    let child: u32 = read(&child_file).trim().parse().unwrap();
    assert!(alive(child));
    group.shutdown().await;
    wait_for("grandchild gone", || !alive(child)).await;
}

#[tokio::test]
async fn a_worker_that_dies_is_replaced_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let group = ProcessGroupHandle::start(
        shell_group(
            "mortal",
            "exec sleep 1000",
            dir.path(),
            Duration::from_secs(5),
        ),
        OutputMode::Discard,
    );
    group.scale(2).await.unwrap();
    wait_for("2 running", || group.status().running == 2).await;
    let victim = group.status().pids[0];
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for("replaced", || {
        let status = group.status();
        status.restarts == 1 && status.running == 2 && !status.pids.contains(&victim)
    })
    .await;
    assert!(
        group.status().last_exit.unwrap().contains("signal: 9"),
        "{:?}",
        group.status()
    );
    group.shutdown().await;
    assert_eq!(group.status().running, 0);
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_scale_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = shell_group("missing", "", dir.path(), Duration::from_secs(1));
    config.command.program = PathBuf::from("/nonexistent/ebb-no-such-worker");
    let group = ProcessGroupHandle::start(config, OutputMode::Discard);
    let error = group.scale(1).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/nonexistent/ebb-no-such-worker"),
        "{error}"
    );
    assert_eq!(group.status().running, 0);
}
