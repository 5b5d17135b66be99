//! `ebb run` end to end: the real `ebb` binary, the real RabbitMQ scaler as a sidecar, real
//! worker processes and a real RabbitMQ. Each test uses its own queue (random suffix) so
//! tests run in parallel with others.

mod ebb_run;
mod support;

use ebb_run::{EbbRun, signal};
use support::wait_for;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

struct Binaries {
    ebb: PathBuf,
    scaler: PathBuf,
    worker: PathBuf,
    publisher: PathBuf,
}

/// The binaries: from `$EBB_TEST_BIN_DIR` when set (prebuilt, so busy shared trees are not
/// rebuilt per test), else built by cargo.
fn binaries() -> Binaries {
    let find = |package: &str, bin: &str| match std::env::var_os("EBB_TEST_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(bin),
        None => support::binary(package, bin),
    };
    Binaries {
        ebb: find("ebb", "ebb"),
        scaler: find("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler"),
        worker: find("ebb-quickstart-worker", "ebb-quickstart-worker"),
        publisher: find("ebb-quickstart-publisher", "ebb-quickstart-publisher"),
    }
}

fn unique_queue(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("ebb-local-{test}-{}-{nanos}", std::process::id())
}

/// Settings of one test's manifest.
struct Manifest<'a> {
    queue: &'a str,
    work_time: &'a str,
    processed_file: &'a Path,
    cooldown_seconds: u32,
    max_replicas: u32,
    grace: &'a str,
    /// Shell run before the scaler starts (e.g. a delay on restarts).
    scaler_prelude: &'a str,
    fallback: Option<(u32, u32)>,
}

fn write_manifest(dir: &Path, bins: &Binaries, m: &Manifest<'_>) -> PathBuf {
    let fallback = m
        .fallback
        .map(|(threshold, replicas)| {
            format!("  fallback: {{failureThreshold: {threshold}, replicas: {replicas}}}\n")
        })
        .unwrap_or_default();
    let scaler_script = format!(
        "{} exec {} --listen \"$EBB_SCALER_LISTEN\"",
        m.scaler_prelude,
        bins.scaler.display()
    );
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: rabbitmq}}
spec:
  command: sh
  args: ["-c", {scaler_script:?}]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: {worker}
  env:
    QUEUE: {queue}
    WORK_TIME: {work_time}
    PROCESSED_FILE: {processed}
    AMQP_URL: {AMQP_URL}
  gracePeriod: {grace}
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  cooldownPeriod: {cooldown}
  maxReplicaCount: {max}
{fallback}  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp: {{stabilizationWindowSeconds: 0, policies: [{{type: Pods, value: 20, periodSeconds: 1}}]}}
        scaleDown: {{stabilizationWindowSeconds: 0, policies: [{{type: Percent, value: 100, periodSeconds: 1}}]}}
  triggers:
    - type: rabbitmq
      name: queue
      metadata:
        queueName: {queue}
        value: "5"
        hostFromEnv: AMQP_URL
"#,
        worker = bins.worker.display(),
        queue = m.queue,
        work_time = m.work_time,
        processed = m.processed_file.display(),
        grace = m.grace,
        cooldown = m.cooldown_seconds,
        max = m.max_replicas,
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn group(status: &Value) -> &Value {
    &status["processGroups"][0]
}

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn condition(status: &Value, kind: &str) -> Option<String> {
    status["objects"][0]["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition["status"].as_str())
        .map(str::to_owned)
}

fn publish(bins: &Binaries, queue: &str, count: u64, prefix: &str) {
    let status = Command::new(&bins.publisher)
        .args([
            "--amqp-url",
            AMQP_URL,
            "--queue",
            queue,
            "--id-prefix",
            prefix,
        ])
        .args(["--count", &count.to_string()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "publisher failed");
}

fn queue_depth(bins: &Binaries, queue: &str) -> u64 {
    let output = Command::new(&bins.publisher)
        .args(["--amqp-url", AMQP_URL, "--queue", queue, "--print-depth"])
        .output()
        .unwrap();
    assert!(output.status.success(), "publisher --print-depth failed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

struct QueueGuard<'a> {
    bins: &'a Binaries,
    queue: String,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&self.bins.publisher)
            .args([
                "--amqp-url",
                AMQP_URL,
                "--queue",
                &self.queue,
                "--delete-queue",
            ])
            .stdout(Stdio::null())
            .status();
    }
}

fn processed_ids(path: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *ids.entry(line.to_owned()).or_insert(0) += 1;
    }
    ids
}

fn setup(test: &str) -> (Binaries, String, tempfile::TempDir) {
    support::require_service("RabbitMQ", "127.0.0.1:5672");
    let bins = binaries();
    let queue = unique_queue(test);
    publish(&bins, &queue, 0, "declare");
    (bins, queue, tempfile::tempdir().unwrap())
}

#[test]
fn two_hundred_messages_scale_out_and_back_to_zero_exactly_once() {
    let (bins, queue, dir) = setup("e2e");
    let _cleanup = QueueGuard {
        bins: &bins,
        queue: queue.clone(),
    };
    let processed = dir.path().join("processed");
    let manifest = write_manifest(
        dir.path(),
        &bins,
        &Manifest {
            queue: &queue,
            work_time: "100ms",
            processed_file: &processed,
            cooldown_seconds: 3,
            max_replicas: 10,
            grace: "10s",
            scaler_prelude: "",
            fallback: None,
        },
    );
    let mut run = EbbRun::start(&bins.ebb, &manifest, &dir.path().join("ebb.log"));
    assert_eq!(count(&group(&run.status().unwrap())["running"]), 0);

    publish(&bins, &queue, 200, "m");
    let mut peak = 0;
    let mut back_to_zero = false;
    wait_for(
        "all 200 processed and workers back to 0",
        Duration::from_secs(120),
        || {
            let Some(status) = run.status() else {
                return false;
            };
            let running = count(&group(&status)["running"]);
            peak = peak.max(running);
            let done = processed_ids(&processed).values().sum::<usize>() >= 200;
            back_to_zero = done
                && running == 0
                && count(&group(&status)["desired"]) == 0
                && count(&group(&status)["stopping"]) == 0;
            back_to_zero
        },
    );
    assert!(peak >= 5, "workers peaked at {peak}, expected at least 5");
    assert!(back_to_zero);

    let ids = processed_ids(&processed);
    let duplicates: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "processed more than once: {duplicates:?}"
    );
    let missing: Vec<String> = (0..200)
        .map(|n| format!("m-{n}"))
        .filter(|id| !ids.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "never processed: {missing:?}");
    assert_eq!(ids.len(), 200);
    assert_eq!(queue_depth(&bins, &queue), 0);
    let status = run.status().unwrap();
    assert_eq!(count(&group(&status)["restarts"]), 0, "{status}");
    assert_eq!(
        count(&group(&status)["killed"]),
        0,
        "a worker needed SIGKILL: {status}"
    );

    run.interrupt();
    assert!(run.wait_exit(Duration::from_secs(30)).success());
}

#[test]
fn a_worker_killed_mid_run_is_replaced_and_counted() {
    let (bins, queue, dir) = setup("kill-worker");
    let _cleanup = QueueGuard {
        bins: &bins,
        queue: queue.clone(),
    };
    let processed = dir.path().join("processed");
    let manifest = write_manifest(
        dir.path(),
        &bins,
        &Manifest {
            queue: &queue,
            work_time: "1s",
            processed_file: &processed,
            cooldown_seconds: 60,
            max_replicas: 3,
            grace: "10s",
            scaler_prelude: "",
            fallback: None,
        },
    );
    let run = EbbRun::start(&bins.ebb, &manifest, &dir.path().join("ebb.log"));
    publish(&bins, &queue, 60, "k");
    wait_for("3 workers", Duration::from_secs(60), || {
        run.status()
            .is_some_and(|status| count(&group(&status)["running"]) == 3)
    });
    let status = run.status().unwrap();
    let victim = count(&group(&status)["pids"][0]);
    signal(u32::try_from(victim).unwrap(), "KILL");
    wait_for(
        "the killed worker replaced",
        Duration::from_secs(30),
        || {
            run.status().is_some_and(|status| {
                let group = group(&status);
                let pids: Vec<u64> = group["pids"]
                    .as_array()
                    .map(|pids| pids.iter().map(count).collect())
                    .unwrap_or_default();
                count(&group["restarts"]) == 1 && pids.len() == 3 && !pids.contains(&victim)
            })
        },
    );
    let status = run.status().unwrap();
    assert!(
        group(&status)["lastExit"]
            .as_str()
            .unwrap_or_default()
            .contains("signal: 9"),
        "{status}"
    );
}

#[test]
fn a_scaler_killed_mid_run_is_restarted_and_the_object_goes_to_fallback_and_back() {
    let (bins, queue, dir) = setup("kill-scaler");
    let _cleanup = QueueGuard {
        bins: &bins,
        queue: queue.clone(),
    };
    let processed = dir.path().join("processed");
    let marker = dir.path().join("scaler-started-once");
    // The restarted scaler takes 3 s to come up, so polls fail in between.
    let prelude = format!(
        "if [ -e {m} ]; then sleep 3; fi; touch {m};",
        m = marker.display()
    );
    let manifest = write_manifest(
        dir.path(),
        &bins,
        &Manifest {
            queue: &queue,
            work_time: "100ms",
            processed_file: &processed,
            cooldown_seconds: 60,
            max_replicas: 5,
            grace: "10s",
            scaler_prelude: &prelude,
            fallback: Some((1, 2)),
        },
    );
    let run = EbbRun::start(&bins.ebb, &manifest, &dir.path().join("ebb.log"));
    wait_for("first poll", Duration::from_secs(30), || {
        run.status()
            .is_some_and(|status| condition(&status, "Ready").as_deref() == Some("True"))
    });
    let status = run.status().unwrap();
    assert_eq!(condition(&status, "Fallback").as_deref(), Some("False"));
    let scaler_pid = count(&status["scalers"][0]["pid"]);
    assert!(scaler_pid > 0, "{status}");
    // The sidecar is `sh` exec-ing the scaler: the pid is the scaler itself.
    signal(u32::try_from(scaler_pid).unwrap(), "KILL");

    let mut fallback_replicas = 0;
    wait_for("fallback", Duration::from_secs(30), || {
        run.status().is_some_and(|status| {
            fallback_replicas = count(&group(&status)["desired"]);
            condition(&status, "Fallback").as_deref() == Some("True")
        })
    });
    wait_for("fallback replicas applied", Duration::from_secs(30), || {
        run.status().is_some_and(|status| {
            fallback_replicas = count(&group(&status)["desired"]);
            fallback_replicas == 2 || condition(&status, "Fallback").as_deref() == Some("False")
        })
    });
    assert_eq!(fallback_replicas, 2, "fallback.replicas is 2");
    wait_for(
        "scaler restarted and object out of fallback",
        Duration::from_secs(60),
        || {
            run.status().is_some_and(|status| {
                let scaler = &status["scalers"][0];
                scaler["state"] == "Serving"
                    && count(&scaler["restarts"]) == 1
                    && condition(&status, "Fallback").as_deref() == Some("False")
            })
        },
    );
    let status = run.status().unwrap();
    assert_ne!(count(&status["scalers"][0]["pid"]), scaler_pid);
}

#[test]
fn ctrl_c_stops_everything_gracefully_and_loses_no_message() {
    let (bins, queue, dir) = setup("ctrl-c");
    let _cleanup = QueueGuard {
        bins: &bins,
        queue: queue.clone(),
    };
    let processed = dir.path().join("processed");
    let manifest = write_manifest(
        dir.path(),
        &bins,
        &Manifest {
            queue: &queue,
            work_time: "1500ms",
            processed_file: &processed,
            cooldown_seconds: 60,
            max_replicas: 4,
            grace: "20s",
            scaler_prelude: "",
            fallback: None,
        },
    );
    let mut run = EbbRun::start(&bins.ebb, &manifest, &dir.path().join("ebb.log"));
    publish(&bins, &queue, 40, "c");
    wait_for("4 workers busy", Duration::from_secs(60), || {
        run.status()
            .is_some_and(|status| count(&group(&status)["running"]) == 4)
    });
    let status = run.status().unwrap();
    let mut pids: Vec<u64> = group(&status)["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(count)
        .collect();
    pids.push(count(&status["scalers"][0]["pid"]));
    assert_eq!(pids.len(), 5, "{status}");

    run.interrupt();
    let exit = run.wait_exit(Duration::from_secs(60));
    assert!(exit.success(), "ebb run exited with {exit}");
    let stray: Vec<u64> = pids
        .iter()
        .copied()
        .filter(|pid| u32::try_from(*pid).is_ok_and(support::alive))
        .collect();
    assert!(stray.is_empty(), "processes left running: {stray:?}");

    // Every message is either processed exactly once or back in the queue.
    let ids = processed_ids(&processed);
    assert!(ids.values().all(|n| *n == 1), "duplicates: {ids:?}");
    let remaining = queue_depth(&bins, &queue);
    assert_eq!(
        ids.len() as u64 + remaining,
        40,
        "{} processed + {remaining} still queued",
        ids.len()
    );
    let log = std::fs::read_to_string(dir.path().join("ebb.log")).unwrap();
    assert!(
        !log.contains("sending SIGKILL"),
        "a worker was killed:\n{log}"
    );
}

#[test]
fn bad_files_name_file_object_and_field_and_start_nothing() {
    let bins = binaries();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: sh
  args: ["-c", "touch {marker}"]
  gracePeriod: soon
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workerz}}
  minReplicaCount: 5
  maxReplicaCount: 2
  triggers:
    - type: rabbitmq
      metadata: {{queueName: q}}
"#,
        marker = marker.display()
    );
    let file = dir.path().join("bad.yaml");
    std::fs::write(&file, yaml).unwrap();
    let output = Command::new(&bins.ebb)
        .args(["run", "--output", "lines", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file_name = file.display().to_string();
    for expected in [
        "ProcessGroup \"workers\": spec.gracePeriod",
        "ScaledObject \"orders\"",
        "spec.scaleTargetRef.name: no ProcessGroup named \"workerz\"",
        "spec.triggers[0].type: no scaler is registered for type \"rabbitmq\"",
        "kind: Scaler",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .filter(|line| line.contains(&file_name))
            .count()
            >= 3,
        "every problem names the file:\n{stderr}"
    );
    assert!(!marker.exists(), "a process was started");
}

/// The example `examples/rabbitmq-job/` as written (own queue, binaries by path, 100 ms of
/// work): 50 messages are drained by exactly 50 jobs, each message processed exactly once.
#[test]
fn rabbitmq_job_example_drains_50_messages_with_50_jobs_each_exactly_once() {
    let (bins, queue, dir) = setup("job");
    let _cleanup = QueueGuard {
        bins: &bins,
        queue: queue.clone(),
    };
    let processed = dir.path().join("processed");
    let started = dir.path().join("started");
    let example = support::workspace_root().join("examples/rabbitmq-job/orders-job.yaml");
    let yaml = std::fs::read_to_string(&example).unwrap();
    let env_extra = format!(
        "              - {{name: PROCESSED_FILE, value: {:?}}}\n              - {{name: STARTED_FILE, value: {:?}}}\n              - {{name: AMQP_URL,",
        processed.display().to_string(),
        started.display().to_string()
    );
    let yaml = yaml
        .replace("value: orders}", &format!("value: {queue}}}"))
        .replace("queueName: orders", &format!("queueName: {queue}"))
        .replace(
            "{name: WORK_TIME, value: 1s}",
            "{name: WORK_TIME, value: 100ms}",
        )
        .replace("              - {name: AMQP_URL,", &env_extra)
        .replace(
            "command: ebb-rabbitmq-scaler",
            &format!("command: {}", bins.scaler.display()),
        )
        .replace(
            "[\"ebb-quickstart-worker\",",
            &format!("[{:?},", bins.worker.display().to_string()),
        );
    assert!(
        yaml.contains(&queue) && yaml.contains("PROCESSED_FILE"),
        "{yaml}"
    );
    let manifest = dir.path().join("orders-job.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let mut run = EbbRun::start(&bins.ebb, &manifest, &dir.path().join("ebb.log"));

    publish(&bins, &queue, 50, "j");
    let jobs = |status: &Value| status["scaledJobs"][0].clone();
    wait_for("50 jobs succeeded", Duration::from_secs(120), || {
        run.status()
            .is_some_and(|status| count(&jobs(&status)["succeeded"]) >= 50)
    });
    let log = || std::fs::read_to_string(dir.path().join("ebb.log")).unwrap_or_default();
    // A few more polls of an empty queue start nothing.
    wait_for("three more polls", Duration::from_secs(20), || {
        log().matches("created jobs").count() > 0
            && run.status().is_some_and(|status| {
                count(&jobs(&status)["running"]) == 0
                    && status["scaledJobs"][0]["status"]["conditions"]
                        .as_array()
                        .is_some_and(|conditions| {
                            conditions
                                .iter()
                                .any(|c| c["type"] == "Active" && c["status"] == "False")
                        })
            })
    });
    let status = run.status().unwrap();
    assert_eq!(count(&jobs(&status)["succeeded"]), 50, "{status}");
    assert_eq!(count(&jobs(&status)["failed"]), 0, "{status}");
    let starts = std::fs::read_to_string(&started).unwrap_or_default();
    assert_eq!(starts.lines().count(), 50, "exactly 50 job processes ran");
    let ids = processed_ids(&processed);
    let duplicates: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "processed more than once: {duplicates:?}"
    );
    let missing: Vec<String> = (0..50)
        .map(|n| format!("j-{n}"))
        .filter(|id| !ids.contains_key(id))
        .collect();
    assert!(missing.is_empty(), "never processed: {missing:?}");
    assert_eq!(queue_depth(&bins, &queue), 0);
    for line in log()
        .lines()
        .filter(|line| line.contains("jobs orders-job:"))
    {
        eprintln!("{line}");
    }
    run.interrupt();
    assert!(run.wait_exit(Duration::from_secs(30)).success());
}
