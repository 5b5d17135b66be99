//! The chaos suite: the real `ebb` binary running the real RabbitMQ scaler as a sidecar and the
//! real quickstart workers against the machine's RabbitMQ, while the test kills, stops and
//! breaks things. Each case ends with the same four checks:
//!
//! - messages: every published id was processed (the workers append each id to a file before
//!   the ack), exactly once where no worker loses its connection mid-message; where that is
//!   inherent (the broker stops under a busy worker) at most one duplicate per busy worker;
//! - connections: the broker holds no AMQP connection in the case's own vhost at the end;
//! - no scale to zero on errors: the desired count never drops to 0 while the status shows a
//!   failing trigger or fallback;
//! - processes: every worker and scaler pid `ebb run` reported is gone at the end.
//!
//! The cases run one at a time (one lock): one stops the shared broker, and two cores cannot
//! run several `ebb run`s with workers at once. Other test binaries run after this one, so the
//! outage reaches no other test.
//!
//! The hostile-scaler cases put a scaler that answers whatever the test sets (the raw gRPC
//! services, so no SDK cleans for it) in place of the RabbitMQ scaler, with `sleep` workers:
//! no broker is involved, so of the four checks they keep the processes and no scale to zero
//! on errors, and add their own on the status, the dashboard and the log.

mod chaos_support;
mod ebb_run;
mod hostile_text;
mod runtime_support;
mod support;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chaos_support::{
    Binaries, Manifest, Monitor, Outage, Vhost, accounting, condition, count, group, publish,
    scaler, setup, write_hostile_manifest, write_manifest,
};
use ebb_run::{EbbRun, http_get_json, signal};
use runtime_support::hostile::HostileScaler;
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const QUEUE: &str = "jobs";

/// Waits until `check` holds for a status snapshot, feeding every snapshot to `monitor`.
fn poll(
    run: &EbbRun,
    monitor: &mut Monitor,
    what: &str,
    within: Duration,
    mut check: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = run.status() {
            let status = monitor.observe(status);
            if check(&status) {
                return status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}; last status: {:?}\n\
             last lines of the ebb run log:\n{}",
            run.status(),
            run.log_tail(60)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until all `total` ids are processed and the group is back at zero replicas.
fn drained(run: &EbbRun, monitor: &mut Monitor, processed: &Path, prefix: &str, total: u64) {
    // Generous: after a broker outage a crash-looping worker may be in a restart back-off of
    // up to 30 s before it consumes again.
    poll(
        run,
        monitor,
        "every message processed and the workers back to zero",
        Duration::from_secs(120),
        |status| {
            accounting(processed, prefix, total).0.is_empty()
                && count(&group(status)["desired"]) == 0
                && count(&group(status)["running"]) == 0
                && count(&group(status)["stopping"]) == 0
        },
    );
}

/// Stops `ebb run` with Ctrl-C and checks that it exits cleanly and leaves nothing behind.
fn finish(mut run: EbbRun, monitor: &Monitor, vhost: &Vhost) {
    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(40));
    assert!(exit.success(), "ebb run exited with {exit}");
    monitor.assert_all_gone();
    vhost.assert_no_connections();
    monitor.assert_never_zero_on_error();
}

fn assert_exactly_once(processed: &Path, prefix: &str, total: u64) {
    let (missing, duplicates) = accounting(processed, prefix, total);
    assert!(missing.is_empty(), "never processed: {missing:?}");
    assert!(duplicates.is_empty(), "processed twice: {duplicates:?}");
}

struct Case {
    bins: Binaries,
    vhost: Vhost,
    dir: tempfile::TempDir,
}

impl Case {
    fn new(name: &str) -> Self {
        let bins = setup();
        let vhost = Vhost::create(name);
        publish(&bins, &vhost, QUEUE, 0, "declare");
        Self {
            bins,
            vhost,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn processed(&self) -> std::path::PathBuf {
        self.dir.path().join("processed")
    }

    fn manifest(&self, work_time: &str, max: u32, fallback: (u32, u32)) -> std::path::PathBuf {
        let processed = self.processed();
        write_manifest(
            self.dir.path(),
            &self.bins,
            &Manifest {
                vhost: &self.vhost,
                queue: QUEUE,
                work_time,
                processed: &processed,
                max_replicas: max,
                min_replicas: 0,
                cooldown: 2,
                fallback,
                worker: None,
            },
        )
    }

    fn start(&self, manifest: &Path, log: &str) -> EbbRun {
        EbbRun::start(&self.bins.ebb, manifest, &self.dir.path().join(log))
    }
}

#[test]
fn scaler_killed_again_and_again_while_scaling_loses_nothing() {
    let _serial = serial();
    let case = Case::new("kill-scaler");
    let manifest = case.manifest("300ms", 3, (1, 2));
    let run = case.start(&manifest, "ebb.log");
    let mut monitor = Monitor::default();
    publish(&case.bins, &case.vhost, QUEUE, 60, "k");
    poll(
        &run,
        &mut monitor,
        "workers started",
        Duration::from_secs(30),
        |s| count(&group(s)["running"]) >= 1,
    );
    for round in 1..=3 {
        let status = poll(
            &run,
            &mut monitor,
            "scaler serving",
            Duration::from_secs(30),
            |s| scaler(s)["state"] == "Serving" && count(&scaler(s)["pid"]) > 0,
        );
        let victim = count(&scaler(&status)["pid"]);
        signal(u32::try_from(victim).expect("pid"), "KILL");
        poll(
            &run,
            &mut monitor,
            "the killed scaler replaced and serving",
            Duration::from_secs(30),
            |s| {
                scaler(s)["state"] == "Serving"
                    && count(&scaler(s)["restarts"]) == round
                    && count(&scaler(s)["pid"]) != victim
            },
        );
    }
    drained(&run, &mut monitor, &case.processed(), "k", 60);
    assert_exactly_once(&case.processed(), "k", 60);
    finish(run, &monitor, &case.vhost);
}

#[test]
fn stopped_scaler_shows_unresponsive_applies_fallback_and_recovers_on_sigcont() {
    let _serial = serial();
    let case = Case::new("sigstop");
    let manifest = case.manifest("500ms", 4, (2, 2));
    let run = case.start(&manifest, "ebb.log");
    let mut monitor = Monitor::default();
    publish(&case.bins, &case.vhost, QUEUE, 100, "s");
    let status = poll(
        &run,
        &mut monitor,
        "4 workers",
        Duration::from_secs(30),
        |s| count(&group(s)["running"]) == 4 && scaler(s)["state"] == "Serving",
    );
    let pid = u32::try_from(count(&scaler(&status)["pid"])).expect("pid");
    signal(pid, "STOP");
    // The sidecar's status follows its health check, and the failing polls lead to fallback
    // (2 replicas), never to 0.
    poll(
        &run,
        &mut monitor,
        "sidecar Unresponsive, object in fallback at 2 replicas",
        Duration::from_secs(30),
        |s| {
            scaler(s)["state"] == "Unresponsive"
                && condition(s, "Fallback").as_deref() == Some("True")
                && count(&group(s)["desired"]) == 2
        },
    );
    signal(pid, "CONT");
    let status = poll(
        &run,
        &mut monitor,
        "sidecar Serving again and fallback over",
        Duration::from_secs(30),
        |s| scaler(s)["state"] == "Serving" && condition(s, "Fallback").as_deref() == Some("False"),
    );
    assert_eq!(
        count(&scaler(&status)["restarts"]),
        0,
        "SIGCONT resumes, no restart"
    );
    assert_eq!(count(&scaler(&status)["pid"]), u64::from(pid));
    drained(&run, &mut monitor, &case.processed(), "s", 100);
    assert_exactly_once(&case.processed(), "s", 100);
    finish(run, &monitor, &case.vhost);
}

#[test]
fn broker_stopped_during_scaling_keeps_replicas_and_loses_nothing() {
    let _serial = serial();
    const MAX_WORKERS: u32 = 4;
    let case = Case::new("stop-app");
    let manifest = case.manifest("300ms", MAX_WORKERS, (1, 2));
    let run = case.start(&manifest, "ebb.log");
    let mut monitor = Monitor::default();
    publish(&case.bins, &case.vhost, QUEUE, 80, "o");
    poll(
        &run,
        &mut monitor,
        "workers busy",
        Duration::from_secs(30),
        |s| {
            count(&group(s)["running"]) >= 2
                && chaos_support::processed_ids(&case.processed()).len() >= 5
        },
    );
    let mut outage = Outage::begin();
    // The scaler's health is per broker: NOT_SERVING while its broker is down, and the
    // status says so; polls fail, so fallback asks for 2 replicas.
    poll(
        &run,
        &mut monitor,
        "sidecar NotServing and the object in fallback",
        Duration::from_secs(30),
        |s| {
            scaler(s)["state"] == "NotServing"
                && condition(s, "Fallback").as_deref() == Some("True")
                && count(&group(s)["desired"]) == 2
        },
    );
    outage.end();
    poll(
        &run,
        &mut monitor,
        "sidecar Serving and fallback over",
        Duration::from_secs(30),
        |s| scaler(s)["state"] == "Serving" && condition(s, "Fallback").as_deref() == Some("False"),
    );
    drained(&run, &mut monitor, &case.processed(), "o", 80);
    // A worker that recorded its message while the broker went away cannot ack it: the broker
    // delivers it again (at-least-once). At most one such message per busy worker (prefetch 1,
    // at most MAX_WORKERS of them).
    let (missing, duplicates) = accounting(&case.processed(), "o", 80);
    assert!(missing.is_empty(), "never processed: {missing:?}");
    assert!(
        duplicates.len() <= MAX_WORKERS as usize && duplicates.iter().all(|(_, n)| *n == 2),
        "more duplicates than busy workers ({MAX_WORKERS}): {duplicates:?}"
    );
    eprintln!(
        "broker outage: {} duplicate(s); {} workers were busy at most",
        duplicates.len(),
        monitor.peak_running
    );
    finish(run, &monitor, &case.vhost);
}

#[test]
fn crash_looping_workers_back_off_show_in_status_and_ebb_keeps_running() {
    let _serial = serial();
    let case = Case::new("crash-loop");
    let starts = case.dir.path().join("starts");
    let script = format!("date +%s%N >> {}; exit 3", starts.display());
    let processed = case.processed();
    let manifest = write_manifest(
        case.dir.path(),
        &case.bins,
        &Manifest {
            vhost: &case.vhost,
            queue: QUEUE,
            work_time: "1s",
            processed: &processed,
            max_replicas: 2,
            min_replicas: 1,
            cooldown: 2,
            fallback: (1, 1),
            worker: Some(("sh", &format!("[\"-c\", {script:?}]"))),
        },
    );
    let mut run = case.start(&manifest, "ebb.log");
    let mut monitor = Monitor::default();
    let status = poll(
        &run,
        &mut monitor,
        "5 restarts",
        Duration::from_secs(40),
        |s| count(&group(s)["restarts"]) >= 5,
    );
    let group_status = group(&status);
    assert_eq!(group_status["lastExit"], "exit status: 3", "{status}");
    assert!(
        group_status["restartDelay"].as_str().is_some(),
        "the status shows the pending restart's delay: {status}"
    );
    // Restarts back off (0, 1, 2, 4 s ...): no busy loop.
    let times: Vec<u128> = std::fs::read_to_string(&starts)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    assert!(times.len() <= 7, "{} starts for 5 restarts", times.len());
    let gaps_ms: Vec<u128> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    assert!(
        gaps_ms.len() >= 4 && gaps_ms[2] >= 1_500 && gaps_ms[3] >= 3_000,
        "restart gaps (ms) do not grow: {gaps_ms:?}"
    );
    // ebb itself is unharmed: still running, scaler serving, object ready.
    assert!(
        run.child.try_wait().expect("try_wait").is_none(),
        "ebb run exited"
    );
    assert_eq!(scaler(&status)["state"], "Serving");
    assert_eq!(
        condition(&status, "Ready").as_deref(),
        Some("True"),
        "{status}"
    );
    // Ctrl-C during a pending restart stops at once, starting nothing more.
    let before = times.len();
    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(30));
    assert!(exit.success(), "ebb run exited with {exit}");
    let after = std::fs::read_to_string(&starts)
        .unwrap_or_default()
        .lines()
        .count();
    assert!(
        after <= before + 1,
        "{before} starts before Ctrl-C, {after} after"
    );
    monitor.assert_all_gone();
    case.vhost.assert_no_connections();
    monitor.assert_never_zero_on_error();
}

#[test]
fn killed_ebb_run_leaks_nothing_and_a_restart_finishes_the_work() {
    let _serial = serial();
    let case = Case::new("kill-ebb");
    let manifest = case.manifest("500ms", 4, (1, 2));
    let mut first = case.start(&manifest, "ebb-1.log");
    let mut monitor = Monitor::default();
    publish(&case.bins, &case.vhost, QUEUE, 60, "e");
    poll(
        &first,
        &mut monitor,
        "4 workers busy",
        Duration::from_secs(30),
        |s| {
            count(&group(s)["running"]) == 4
                && chaos_support::processed_ids(&case.processed()).len() >= 4
        },
    );
    // SIGKILL, as the OOM killer would: ebb stops nothing itself. Its processes get their
    // parent-death signal (workers: their stop signal, so each finishes the message in hand).
    first.child.kill().expect("SIGKILL ebb run");
    first.child.wait().expect("reap ebb run");
    monitor.assert_all_gone();
    case.vhost.assert_no_connections();
    drop(first);

    let second = case.start(&manifest, "ebb-2.log");
    drained(&second, &mut monitor, &case.processed(), "e", 60);
    assert_exactly_once(&case.processed(), "e", 60);
    finish(second, &monitor, &case.vhost);
}

/// What a hostile-scaler case saw of `ebb run` while its scaler failed with one message.
struct HostileRun {
    status: Value,
    dashboard: Value,
    log: String,
}

/// Runs `ebb run` on `sleep` workers scaled by a trigger whose scaler fails every poll with
/// `message`, the trigger's secrets coming from the environment, until the failure shows and
/// fallback holds 2 workers; then stops it and checks that it leaves no process behind and
/// never scaled to zero on the error.
fn run_with_hostile_scaler(message: String) -> HostileRun {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the scaler");
    let scaler = runtime.block_on(HostileScaler::start());
    scaler.set_error("q", Some(message));
    let dir = tempfile::tempdir().expect("temp dir");
    let variables: Vec<(String, &str)> = hostile_text::SECRETS
        .iter()
        .map(|(parameter, value)| (format!("EBB_CHAOS_{}", parameter.to_uppercase()), *value))
        .collect();
    let references: Vec<(&str, &str)> = hostile_text::SECRETS
        .iter()
        .zip(&variables)
        .map(|((parameter, _), (variable, _))| (*parameter, variable.as_str()))
        .collect();
    let manifest = write_hostile_manifest(dir.path(), &scaler.address.to_string(), &references);
    // No colours: the log is checked for escape characters, and these would be ebb's own.
    let mut env: Vec<(&str, &str)> = vec![("NO_COLOR", "1")];
    env.extend(
        variables
            .iter()
            .map(|(variable, value)| (variable.as_str(), *value)),
    );
    let ebb = chaos_support::find("ebb", "ebb");
    let mut run = EbbRun::start_with_env(&ebb, &manifest, &dir.path().join("ebb.log"), &env);
    let mut monitor = Monitor::default();
    let status = poll(
        &run,
        &mut monitor,
        "the trigger failing and fallback holding 2 workers",
        Duration::from_secs(60),
        |s| {
            erroring_trigger_message(s).is_some()
                && condition(s, "Fallback").as_deref() == Some("True")
                && count(&group(s)["running"]) == 2
        },
    );
    let dashboard =
        http_get_json(run.status_port, "/dashboard/objects").expect("the dashboard's objects");
    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(40));
    assert!(exit.success(), "ebb run exited with {exit}");
    monitor.assert_all_gone();
    monitor.assert_never_zero_on_error();
    HostileRun {
        status,
        dashboard,
        log: std::fs::read_to_string(dir.path().join("ebb.log")).expect("the log"),
    }
}

/// The failing trigger's message in the status, when it shows one.
fn erroring_trigger_message(status: &Value) -> Option<String> {
    let trigger = &status["objects"][0]["status"]["triggers"][0];
    (trigger["health"] == "Failing")
        .then(|| trigger["message"].as_str().map(str::to_owned))
        .flatten()
}

/// Every string in a JSON document, for checks on each one.
fn json_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(json_strings).collect(),
        Value::Object(fields) => fields.values().flat_map(json_strings).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn hostile_scaler_echoing_a_secret_shows_it_nowhere() {
    let _serial = serial();
    let seen = run_with_hostile_scaler(hostile_text::echoed_secrets());
    let message = erroring_trigger_message(&seen.status).unwrap_or_default();
    // The checks read the scaler's own words, cleaned.
    assert!(
        message.contains("cannot connect to amqp://orders:***@rabbit.internal"),
        "{message}"
    );
    assert!(seen.log.contains("trigger poll failed"), "{}", seen.log);
    for text in json_strings(&seen.status) {
        hostile_text::assert_no_secret("/status", &text);
    }
    for text in json_strings(&seen.dashboard) {
        hostile_text::assert_no_secret("/dashboard/objects", &text);
    }
    hostile_text::assert_no_secret("the ebb run log", &seen.log);
}

#[test]
fn hostile_scaler_error_with_control_characters_forges_no_log_line() {
    let _serial = serial();
    let seen = run_with_hostile_scaler(hostile_text::control_characters());
    let message = erroring_trigger_message(&seen.status).unwrap_or_default();
    assert!(message.contains("broken\\n2030-01-01"), "{message:?}");
    assert!(seen.log.contains("broken\\n2030-01-01"), "{}", seen.log);
    for text in json_strings(&seen.status)
        .into_iter()
        .chain(json_strings(&seen.dashboard))
    {
        hostile_text::assert_no_control("/status or /dashboard/objects", &text);
    }
    hostile_text::assert_log_lines_intact("the ebb run log", &seen.log);
}
