//! `ebb run` on a terminal, as a person runs the quickstart: a pseudo-terminal as its stdout
//! and stderr, the real binary, the real example scaler as a sidecar (its push,
//! StreamIsActive, wakes the workers) and a real worker process. The terminal shows the
//! redrawn table, each scale change once, and says what activated the workers; `--verbose`
//! brings the info logs back.

mod ebb_run;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ebb_run::http_get_json;
use ebb_run::terminal::{OnTerminal, plain};
use support::{free_port, wait_for};

/// The table redraw: home, then clear the screen.
const FRAME: &str = "\x1b[H\x1b[2J";
const SCALE_CHANGE: &str = "activated 0→1";

/// One ScaledObject on the example scaler's value file, polled rarely (60 s) so that only a
/// push can activate it in the test's time.
fn write_manifest(dir: &Path, scaler: &Path, depth: &Path) -> PathBuf {
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: example}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}", "--push-interval", "50ms"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: sleep
  args: ["600"]
  gracePeriod: 2s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 60
  cooldownPeriod: 300
  minReplicaCount: 0
  maxReplicaCount: 3
  triggers:
    - type: example
      name: orders-queue
      metadata: {{valueFile: "{depth}", target: "5"}}
"#,
        scaler = scaler.display(),
        depth = depth.display(),
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// Runs `ebb run` on a terminal with `extra` flags: waits for the first poll (value 0, no
/// worker), puts 3 in the queue so the scaler's push activates the object, waits for the
/// worker and for the terminal to show the change, then stops it with Ctrl-C. Returns all the
/// terminal showed.
fn activate_by_push_on_a_terminal(extra: &[&str]) -> String {
    let ebb = support::binary("ebb", "ebb");
    let scaler = support::binary("ebb-example-scaler", "ebb-example-scaler");
    let dir = tempfile::tempdir().expect("temp dir");
    let depth = dir.path().join("depth");
    std::fs::write(&depth, "0").expect("write depth");
    let manifest = write_manifest(dir.path(), &scaler, &depth);
    let port = free_port();
    let manifest_arg = manifest.to_string_lossy().into_owned();
    let status_addr = format!("127.0.0.1:{port}");
    let mut args = vec!["run", "-f", &manifest_arg, "--status-addr", &status_addr];
    args.extend_from_slice(extra);
    let mut ebb = OnTerminal::start(&ebb, &args, 400);
    let status = || http_get_json(port, "/status");
    wait_for("the first poll", Duration::from_secs(60), || {
        status().is_some_and(|status| !status["objects"][0]["status"].is_null())
    });
    std::fs::write(&depth, "3").expect("write depth");
    wait_for("one worker running", Duration::from_secs(30), || {
        status().is_some_and(|status| status["processGroups"][0]["running"] == 1)
    });
    wait_for(
        "the terminal to show the scale change",
        Duration::from_secs(10),
        || ebb.raw().contains(SCALE_CHANGE),
    );
    let exit = ebb.interrupt_and_wait(Duration::from_secs(30));
    let shown = ebb.raw();
    assert!(
        exit.success(),
        "ebb run exited with {exit}:\n{}",
        plain(&shown)
    );
    shown
}

/// Lines of tracing's text format at `level` (`INFO`, `WARN`, ...).
fn log_lines<'a>(shown: &'a str, level: &str) -> Vec<&'a str> {
    let marker = format!(" {level} ");
    shown
        .lines()
        .filter(|line| line.contains(&marker))
        .collect()
}

#[test]
fn on_a_terminal_the_table_shows_each_scale_change_once_and_that_a_push_activated_it() {
    let shown = activate_by_push_on_a_terminal(&[]);
    let frames: Vec<String> = shown.split(FRAME).map(plain).collect();
    assert!(frames.len() > 2, "a redrawn table:\n{}", plain(&shown));
    let all = plain(&shown);
    // No info log among the table and the worker output: not the scale loop's, not the
    // status board's, not one per worker start or stop.
    let info = log_lines(&all, "INFO");
    assert!(info.is_empty(), "info logs on the terminal: {info:#?}");
    for frame in &frames {
        assert!(
            frame.matches(SCALE_CHANGE).count() <= 1,
            "one frame shows the scale change more than once:\n{frame}"
        );
    }
    let last_shown = frames
        .iter()
        .rev()
        .find(|frame| frame.contains(SCALE_CHANGE))
        .expect("a frame shows the scale change");
    // The value shown is the last poll's 0: the reason says a push activated the object.
    assert!(
        last_shown
            .contains("activated 0→1: orders-queue 0/5 per replica (last poll), active by push"),
        "{last_shown}"
    );
}

#[test]
fn verbose_on_a_terminal_logs_at_info_with_each_scale_change_logged_once() {
    let shown = plain(&activate_by_push_on_a_terminal(&[
        "--verbose",
        "--output",
        "lines",
    ]));
    let info = log_lines(&shown, "INFO");
    assert!(
        info.iter().any(|line| line.contains("replica started")),
        "--verbose keeps the info logs:\n{shown}"
    );
    let logged: Vec<&&str> = info
        .iter()
        .filter(|line| line.contains(SCALE_CHANGE))
        .collect();
    assert_eq!(logged.len(), 1, "the scale change logged once: {logged:#?}");
}
