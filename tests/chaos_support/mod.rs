//! What the chaos suite (tests/chaos.rs) shares: a RabbitMQ vhost per case (so connections and
//! queues are counted and cleaned per case), a broker outage that always ends, the manifest,
//! and a monitor that watches `ebb run`'s status JSON for scale-to-zero on errors and collects
//! every pid it ever started.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::support;

/// RabbitMQ's AMQP port and management API, as `scripts/services.sh` starts them.
pub const AMQP_ADDRESS: &str = "127.0.0.1:5672";
/// The management API (HTTP, guest/guest).
pub const MANAGEMENT_ADDRESS: &str = "127.0.0.1:15672";

/// The binaries every case runs.
pub struct Binaries {
    /// `ebb`.
    pub ebb: PathBuf,
    /// `ebb-rabbitmq-scaler`.
    pub scaler: PathBuf,
    /// `ebb-quickstart-worker`: appends each message id to `PROCESSED_FILE` before the ack.
    pub worker: PathBuf,
    /// `ebb-quickstart-publisher`: persistent messages with ids `<prefix>-<n>`.
    pub publisher: PathBuf,
}

/// The binary `bin` of workspace package `package`: from `EBB_TEST_BIN_DIR` when set, else
/// built.
pub fn find(package: &str, bin: &str) -> PathBuf {
    match std::env::var_os("EBB_TEST_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(bin),
        None => support::binary(package, bin),
    }
}

/// Fails unless RabbitMQ runs, then builds (or finds) the binaries.
pub fn setup() -> Binaries {
    support::require_service("RabbitMQ", AMQP_ADDRESS);
    support::require_service("RabbitMQ management API", MANAGEMENT_ADDRESS);
    Binaries {
        ebb: find("ebb", "ebb"),
        scaler: find("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler"),
        worker: find("ebb-quickstart-worker", "ebb-quickstart-worker"),
        publisher: find("ebb-quickstart-publisher", "ebb-quickstart-publisher"),
    }
}

/// A blocking management API call: method, path, JSON body; returns status code and body.
pub fn management(method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(MANAGEMENT_ADDRESS).expect("management API");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    // Basic guest:guest; HTTP/1.0 so the body is neither chunked nor kept alive.
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A vhost for one case, guest allowed everything; deleted (with its queues) on drop. Every
/// AMQP connection of the case goes to it, so its connection list is the case's own.
pub struct Vhost {
    /// Its name (letters, digits and dashes: no URL escaping needed).
    pub name: String,
}

impl Vhost {
    /// Creates `ebb-chaos-<case>-<pid>-<nanos>`.
    pub fn create(case: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!("ebb-chaos-{case}-{}-{nanos}", std::process::id());
        let (status, body) = management("PUT", &format!("/api/vhosts/{name}"), "{}");
        assert!(matches!(status, 201 | 204), "create vhost: {status} {body}");
        let (status, body) = management(
            "PUT",
            &format!("/api/permissions/{name}/guest"),
            r#"{"configure":".*","write":".*","read":".*"}"#,
        );
        assert!(matches!(status, 201 | 204), "permissions: {status} {body}");
        Self { name }
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{AMQP_ADDRESS}/{}", self.name)
    }

    /// AMQP connections the broker holds in this vhost (None while the API cannot answer,
    /// e.g. during an outage).
    pub fn connections(&self) -> Option<usize> {
        let (status, body) =
            management("GET", &format!("/api/vhosts/{}/connections", self.name), "");
        if status != 200 {
            return None;
        }
        serde_json::from_str::<Value>(&body)
            .ok()?
            .as_array()
            .map(Vec::len)
    }

    /// Waits until the broker holds no connection in this vhost: nothing leaked.
    pub fn assert_no_connections(&self) {
        support::wait_for(
            "no AMQP connection left in the case's vhost",
            Duration::from_secs(30),
            || self.connections() == Some(0),
        );
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            management("DELETE", &format!("/api/vhosts/{}", self.name), "")
        });
    }
}

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `rabbitmqctl stop_app` until [`Outage::end`] or drop, which always run `start_app` and wait
/// for the broker, also when the case panics: the broker is the machine's, shared by every
/// other test.
pub struct Outage {
    over: bool,
}

impl Outage {
    /// Stops the RabbitMQ application.
    pub fn begin() -> Self {
        let outage = Self { over: false };
        assert!(
            rabbitmqctl(&["stop_app"]),
            "rabbitmqctl stop_app failed (the chaos suite runs it as root against the system \
             RabbitMQ that scripts/services.sh starts)"
        );
        outage
    }

    /// Starts the application again and waits until it serves.
    pub fn end(&mut self) {
        if !self.over {
            self.over = true;
            assert!(rabbitmqctl(&["start_app"]), "rabbitmqctl start_app failed");
            assert!(
                rabbitmqctl(&["await_startup", "--timeout", "60"]),
                "RabbitMQ did not come back"
            );
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.over {
            self.over = true;
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup", "--timeout", "60"]);
        }
    }
}

/// Publishes `count` persistent messages `<prefix>-0..count` (confirmed) to `queue`.
pub fn publish(bins: &Binaries, vhost: &Vhost, queue: &str, count: u64, prefix: &str) {
    let status = Command::new(&bins.publisher)
        .args([
            "--amqp-url",
            &vhost.url(),
            "--queue",
            queue,
            "--id-prefix",
            prefix,
        ])
        .args(["--count", &count.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("run the publisher");
    assert!(status.success(), "publisher failed");
}

/// Settings of one case's manifest: the RabbitMQ scaler as a sidecar, a worker group, and a
/// ScaledObject with one rabbitmq trigger (target 5 per replica, fast scaling both ways).
pub struct Manifest<'a> {
    /// The case's vhost.
    pub vhost: &'a Vhost,
    /// Queue name.
    pub queue: &'a str,
    /// The worker's `WORK_TIME`.
    pub work_time: &'a str,
    /// Where workers append processed ids.
    pub processed: &'a Path,
    /// `maxReplicaCount`.
    pub max_replicas: u32,
    /// `minReplicaCount`.
    pub min_replicas: u32,
    /// `cooldownPeriod` seconds.
    pub cooldown: u32,
    /// `fallback: {failureThreshold, replicas}`.
    pub fallback: (u32, u32),
    /// Replaces the worker command (`command`, then `args` as YAML flow list).
    pub worker: Option<(&'a str, &'a str)>,
}

/// Writes the manifest to `dir/ebb.yaml`.
pub fn write_manifest(dir: &Path, bins: &Binaries, m: &Manifest<'_>) -> PathBuf {
    let (worker_command, worker_args) = match m.worker {
        Some((command, args)) => (command.to_owned(), args.to_owned()),
        None => (bins.worker.display().to_string(), "[]".to_owned()),
    };
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: rabbitmq}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}", "--reconnect-max", "1s"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: {worker_command}
  args: {worker_args}
  env:
    QUEUE: {queue}
    WORK_TIME: {work_time}
    PROCESSED_FILE: {processed}
    AMQP_URL: {url}
  gracePeriod: 20s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  cooldownPeriod: {cooldown}
  minReplicaCount: {min}
  maxReplicaCount: {max}
  fallback: {{failureThreshold: {threshold}, replicas: {fallback_replicas}}}
  advanced:
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
        scaler = bins.scaler.display(),
        queue = m.queue,
        work_time = m.work_time,
        processed = m.processed.display(),
        url = m.vhost.url(),
        cooldown = m.cooldown,
        min = m.min_replicas,
        max = m.max_replicas,
        threshold = m.fallback.0,
        fallback_replicas = m.fallback.1,
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// Writes `dir/ebb.yaml` for the hostile-scaler cases: a group of `sleep` workers (min 1,
/// max 3) scaled by one KEDA `external` trigger on the scaler at `scaler`, its secrets from
/// the environment variables of `secrets` (parameter, variable), with a fallback of 2
/// replicas after 3 failed polls.
pub fn write_hostile_manifest(dir: &Path, scaler: &str, secrets: &[(&str, &str)]) -> PathBuf {
    let secret_lines: String = secrets
        .iter()
        .map(|(parameter, variable)| format!("        {parameter}FromEnv: {variable}\n"))
        .collect();
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: sleep
  args: ["600"]
  gracePeriod: 1s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  minReplicaCount: 1
  maxReplicaCount: 3
  fallback: {{failureThreshold: 3, replicas: 2}}
  triggers:
    - type: external
      name: queue
      metadata:
        scalerAddress: "{scaler}"
        key: q
{secret_lines}"#
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// A number in the status JSON (0 when absent).
pub fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// The first process group's status.
pub fn group(status: &Value) -> &Value {
    &status["processGroups"][0]
}

/// The first scaler sidecar's status.
pub fn scaler(status: &Value) -> &Value {
    &status["scalers"][0]
}

/// Status (`"True"`/`"False"`) of condition `kind` of the first object.
pub fn condition(status: &Value, kind: &str) -> Option<String> {
    status["objects"][0]["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition["status"].as_str())
        .map(str::to_owned)
}

/// Whether the status says the trigger is failing or the object is in fallback: an error the
/// scaler (or the broker behind it) caused.
pub fn erroring(status: &Value) -> bool {
    condition(status, "Fallback").as_deref() == Some("True")
        || status["objects"][0]["status"]["triggers"]
            .as_array()
            .is_some_and(|triggers| triggers.iter().any(|t| t["health"] == "Failing"))
}

/// Every processed id with how often it was processed.
pub fn processed_ids(path: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *ids.entry(line.to_owned()).or_insert(0) += 1;
    }
    ids
}

/// Ids `<prefix>-0..total` never processed, and ids processed more than once.
pub fn accounting(path: &Path, prefix: &str, total: u64) -> (Vec<String>, Vec<(String, usize)>) {
    let ids = processed_ids(path);
    let missing = (0..total)
        .map(|n| format!("{prefix}-{n}"))
        .filter(|id| !ids.contains_key(id))
        .collect();
    let duplicates = ids.into_iter().filter(|(_, times)| *times > 1).collect();
    (missing, duplicates)
}

/// Watches one `ebb run`'s status: every pid it reports (workers and scalers), and each
/// moment the desired replica count dropped to 0 while an error showed.
#[derive(Default)]
pub struct Monitor {
    /// Every worker and scaler pid seen.
    pub pids: BTreeSet<u32>,
    /// Status snapshots where an error showed with 0 replicas desired.
    pub zero_on_error: Vec<String>,
    /// Largest number of running workers seen.
    pub peak_running: u64,
    /// Desired replicas in the previous snapshot.
    last_desired: u64,
}

impl Monitor {
    /// Takes in one status snapshot; returns it for the caller's own checks.
    pub fn observe(&mut self, status: Value) -> Value {
        let group = group(&status);
        for pid in group["pids"].as_array().into_iter().flatten() {
            self.pids.extend(u32::try_from(count(pid)).ok());
        }
        for sidecar in status["scalers"].as_array().into_iter().flatten() {
            self.pids.extend(
                u32::try_from(count(&sidecar["pid"]))
                    .ok()
                    .filter(|pid| *pid > 0),
            );
        }
        self.peak_running = self.peak_running.max(count(&group["running"]));
        // Going to 0 while an error shows is the failure; staying at 0 (nothing to do when
        // the error began) is not.
        let desired = count(&group["desired"]);
        if erroring(&status) && desired == 0 && self.last_desired > 0 {
            self.zero_on_error.push(status.to_string());
        }
        self.last_desired = desired;
        status
    }

    /// Fails if an error ever showed with 0 replicas desired.
    pub fn assert_never_zero_on_error(&self) {
        assert!(
            self.zero_on_error.is_empty(),
            "scaled to zero on an error: {:?}",
            self.zero_on_error.first()
        );
    }

    /// Waits until none of the pids seen is alive.
    pub fn assert_all_gone(&self) {
        support::wait_for(
            "every process ebb started to be gone",
            Duration::from_secs(30),
            || self.pids.iter().all(|pid| !support::alive(*pid)),
        );
    }
}
