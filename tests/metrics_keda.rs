//! /metrics of a real `ebb run`: with `--metrics-names keda` (here through its env var) the
//! series appear again under KEDA's names and labels, and every metric the Grafana dashboard
//! in deploy/grafana queries is one ebb exports. Real RabbitMQ, real scaler process.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebb_run::EbbRun;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// GETs `path` from 127.0.0.1:`port` (HTTP/1.0); the body of a 200 answer.
fn http_get_text(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

/// Deletes `queue` through the management API, so the test leaves the broker as it was.
fn delete_queue(queue: &str) {
    if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", 15672)) {
        let _ = write!(
            stream,
            "DELETE /api/queues/%2f/{queue} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\r\n"
        );
        let mut ignored = String::new();
        let _ = stream.read_to_string(&mut ignored);
    }
}

/// A KEDA ScaledObject with two triggers: one on a queue holding `messages`, one on a queue
/// that does not exist (every poll fails).
fn write_manifest(dir: &Path, queue: &str) -> PathBuf {
    let scaler = support::binary("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler");
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: rabbitmq}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: sleeper}}
spec:
  command: sleep
  args: ["600"]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: metrics-keda}}
spec:
  scaleTargetRef: {{name: sleeper}}
  pollingInterval: 1
  maxReplicaCount: 1
  triggers:
    - type: rabbitmq
      name: waiting
      metadata: {{queueName: {queue}, mode: QueueLength, value: "5", hostFromEnv: AMQP_URL}}
    - type: rabbitmq
      name: missing
      metadata: {{queueName: {queue}-missing, value: "5", hostFromEnv: AMQP_URL}}
"#,
        scaler = scaler.display(),
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// Publishes `count` messages to `queue` with the quickstart publisher (which declares it).
fn publish(queue: &str, count: u32) {
    let publisher = support::binary("ebb-quickstart-publisher", "ebb-quickstart-publisher");
    let status = Command::new(publisher)
        .args([
            "--amqp-url",
            AMQP_URL,
            "--queue",
            queue,
            "--id-prefix",
            "metrics",
        ])
        .args(["--count", &count.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run the publisher");
    assert!(status.success(), "publisher failed");
}

/// `ebb run` on a fresh queue with 3 messages; `names` is `--metrics-names` (None: default).
fn start(dir: &Path, queue: &str, names: Option<&str>) -> EbbRun {
    support::require_service("RabbitMQ", "127.0.0.1:5672");
    publish(queue, 3);
    let manifest = write_manifest(dir, queue);
    let mut env = vec![("AMQP_URL", AMQP_URL)];
    if let Some(names) = names {
        env.push(("EBB_METRICS_NAMES", names));
    }
    EbbRun::start_with_env(
        &support::binary("ebb", "ebb"),
        &manifest,
        &dir.join("ebb.log"),
        &env,
    )
}

/// The sample line of `metrics` for series `name` whose labels include every one of `labels`.
fn sample<'a>(metrics: &'a str, name: &str, labels: &[&str]) -> Option<&'a str> {
    metrics.lines().find(|line| {
        line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label))
    })
}

fn value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn keda_names_and_labels_are_exported_for_the_same_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = format!("metrics-keda-{}", std::process::id());
    let run = start(dir.path(), &queue, Some("keda"));
    let object = "scaledObject=\"metrics-keda\"";
    let mut metrics = String::new();
    support::wait_for(
        "the waiting trigger's value under KEDA's name, an error of the missing one, a scheduled poll",
        Duration::from_secs(60),
        || {
            metrics = http_get_text(run.status_port, "/metrics").unwrap_or_default();
            let waiting = sample(
                &metrics,
                "keda_scaler_metrics_value",
                &[object, "triggerIndex=\"0\""],
            );
            let failed = sample(
                &metrics,
                "keda_scaler_detail_errors_total",
                &[object, "triggerIndex=\"1\""],
            );
            // Paused and loop latency are recorded at each scheduled poll, after the first.
            let scheduled = sample(&metrics, "keda_scaled_object_paused", &[object]).is_some();
            waiting.is_some_and(|line| value(line) == 3.0) && failed.is_some() && scheduled
        },
    );
    let waiting = sample(
        &metrics,
        "keda_scaler_metrics_value",
        &[object, "triggerIndex=\"0\""],
    )
    .expect("value series");
    for label in [
        "scaler=\"waiting\"",
        "type=\"scaledobject\"",
        "metric=\"s0-",
        "namespace=\"",
    ] {
        assert!(waiting.contains(label), "{label} in {waiting}");
    }
    let active = sample(
        &metrics,
        "keda_scaler_active",
        &[object, "triggerIndex=\"0\""],
    )
    .expect("active series");
    assert_eq!(value(active), 1.0, "{active}");
    let failed = sample(
        &metrics,
        "keda_scaler_detail_errors_total",
        &[object, "triggerIndex=\"1\""],
    )
    .expect("error series");
    assert!(failed.contains("scaler=\"missing\""), "{failed}");
    assert!(value(failed) >= 1.0, "{failed}");
    let paused = sample(&metrics, "keda_scaled_object_paused", &[object]).expect("paused series");
    assert_eq!(value(paused), 0.0, "{paused}");
    let latency = sample(
        &metrics,
        "keda_internal_scale_loop_latency_seconds",
        &["resource=\"metrics-keda\"", "type=\"scaledobject\""],
    )
    .expect("scale loop latency series");
    assert!(value(latency) >= 0.0, "{latency}");
    let build = sample(
        &metrics,
        "keda_build_info",
        &["version=\"", "git_commit=\"", "goos=\""],
    )
    .expect("build info");
    assert_eq!(value(build), 1.0, "{build}");
    // ebb's own names stay, for the same series.
    let own = sample(
        &metrics,
        "ebb_trigger_metric_value",
        &["object=\"metrics-keda\"", "trigger=\"waiting\""],
    )
    .expect("ebb's series");
    assert_eq!(value(own), 3.0, "{own}");
    drop(run);
    delete_queue(&queue);
}

/// The names a PromQL expression reads: every `ebb_...` identifier.
fn promql_names(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expression;
    while let Some(start) = rest.find("ebb_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every sample name `/metrics` can carry: each declared family with its type's suffixes.
fn exported_names(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let Some(declaration) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = declaration.split(' ');
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    names
}

fn dashboard_expressions() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/ebb-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    assert!(
        dashboard["schemaVersion"].as_u64().is_some(),
        "a Grafana dashboard model"
    );
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["type"], "prometheus", "{target}");
            expressions.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if let Some(query) = variable["definition"].as_str() {
            expressions.push(query.to_owned());
        }
    }
    expressions
}

#[test]
fn every_metric_the_grafana_dashboard_queries_is_exported_and_keda_names_are_off_by_default() {
    let expressions = dashboard_expressions();
    let wanted: BTreeSet<String> = expressions.iter().flat_map(|e| promql_names(e)).collect();
    assert!(wanted.len() >= 12, "{wanted:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = format!("metrics-dashboard-{}", std::process::id());
    let run = start(dir.path(), &queue, None);
    // A family appears on /metrics with its first series (a value read, an error counted, a
    // scheduled poll), so wait until the polls have produced every kind the dashboard reads.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (metrics, missing) = loop {
        let metrics = http_get_text(run.status_port, "/metrics").unwrap_or_default();
        let exported = exported_names(&metrics);
        let missing: Vec<String> = wanted.difference(&exported).cloned().collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break (metrics, missing);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(missing.is_empty(), "not exported: {missing:?}\n{metrics}");
    assert!(
        !metrics.contains("keda_"),
        "KEDA's names only with --metrics-names keda: {metrics}"
    );
    drop(run);
    delete_queue(&queue);
}
