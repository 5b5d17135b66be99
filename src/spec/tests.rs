//! Tests of the resource types: defaults, endpoints, validation, loading and the CRD.

use std::path::Path;
use std::time::Duration;

use kube::CustomResourceExt;

use super::load::{LoadError, load_path, load_scaled_objects, parse_documents};
use super::*;

const KEDA_STYLE: &str = r#"
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    name: worker
  triggers:
    - type: external-push
      name: queue
      metadata:
        scalerAddress: scaler.ebb:9090
        enableTLS: "true"
        unsafeSsl: "false"
        caCert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
        queueName: orders
"#;

fn object(yaml: &str) -> ScaledObject {
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn keda_defaults_apply() {
    let object = object(KEDA_STYLE);
    let spec = &object.spec;
    assert_eq!(spec.polling_interval(), Duration::from_secs(30));
    assert_eq!(spec.cooldown_period(), Duration::from_secs(300));
    assert_eq!(spec.initial_cooldown_period(), Duration::ZERO);
    assert_eq!((spec.min_replicas(), spec.max_replicas()), (0, 100));
    assert_eq!(spec.idle_replicas(), None);
    assert_eq!(spec.scale_target_ref.api_version(), "apps/v1");
    assert_eq!(spec.scale_target_ref.kind(), "Deployment");
    assert_eq!(spec.triggers[0].metric_type(), MetricType::AverageValue);
    assert!(object.validate().is_empty(), "{:?}", object.validate());
    // Round trip keeps what was written and adds nothing.
    let text = serde_json::to_string(&object.spec).unwrap();
    assert!(!text.contains("pollingInterval"), "{text}");
}

#[test]
fn keda_external_push_endpoint() {
    let object = object(KEDA_STYLE);
    let endpoint = object.spec.triggers[0].endpoint("queue").unwrap();
    assert_eq!(endpoint.address, "scaler.ebb:9090");
    assert_eq!(endpoint.protocol, ScalerProtocol::Auto);
    assert_eq!(endpoint.push, Some(true));
    assert_eq!(endpoint.timeout, Duration::from_secs(2));
    assert_eq!(endpoint.uri(), "https://scaler.ebb:9090");
    let tls = endpoint.tls.unwrap();
    // The material itself (`caCert`) is gathered by the preparation step, in every form.
    assert_eq!(tls.ca, None);
    assert!(!tls.insecure_skip_verify);
    // Inline PEM never shows in debug output.
    let inline = PemSource::Inline("MIIB".into());
    assert!(!format!("{inline:?}").contains("MIIB"));
}

#[test]
fn native_endpoint() {
    let trigger: Trigger = serde_norway::from_str(
        r#"
name: q
type: rabbitmq
metadata: {queueName: orders}
scaler:
  address: 127.0.0.1:9000
  protocol: v1
  push: false
  timeout: 500ms
  tls:
    caSecretRef: {name: scaler-ca}
    clientCertSecretRef: {name: client}
    serverName: scaler.local
"#,
    )
    .unwrap();
    let endpoint = trigger.endpoint("q").unwrap();
    assert_eq!(endpoint.protocol, ScalerProtocol::V1);
    assert_eq!(endpoint.push, Some(false));
    assert_eq!(endpoint.timeout, Duration::from_millis(500));
    let tls = endpoint.tls.unwrap();
    assert_eq!(
        tls.ca,
        Some(PemSource::Secret(SecretKeyRef {
            name: "scaler-ca".into(),
            key: Some("ca.crt".into())
        }))
    );
    assert_eq!(
        tls.client_key,
        Some(PemSource::Secret(SecretKeyRef {
            name: "client".into(),
            key: Some("tls.key".into())
        }))
    );
    assert_eq!(tls.server_name.as_deref(), Some("scaler.local"));
    let plain = Trigger {
        scaler: Some(ScalerRef {
            address: "127.0.0.1:9000".into(),
            ..ScalerRef::default()
        }),
        ..Trigger::default()
    };
    let endpoint = plain.endpoint("p").unwrap();
    assert_eq!(endpoint.uri(), "http://127.0.0.1:9000");
    assert_eq!(endpoint.push, None);
}

#[test]
fn endpoint_errors_name_the_trigger_and_field() {
    let no_address = Trigger {
        trigger_type: Some("rabbitmq".into()),
        ..Trigger::default()
    };
    let error = no_address.endpoint("orders").unwrap_err();
    assert!(matches!(error, EndpointError::MissingAddress { .. }));
    assert!(error.to_string().contains("orders"));
    let bad_timeout = Trigger {
        scaler: Some(ScalerRef {
            address: "a:1".into(),
            timeout: Some("soon".into()),
            ..ScalerRef::default()
        }),
        ..Trigger::default()
    };
    let error = bad_timeout.endpoint("orders").unwrap_err().to_string();
    assert!(error.contains("scaler.timeout"), "{error}");
    let bad_tls = Trigger {
        trigger_type: Some("external".into()),
        metadata: [
            ("scalerAddress".to_owned(), "a:1".to_owned()),
            ("enableTLS".to_owned(), "yes please".to_owned()),
        ]
        .into(),
        ..Trigger::default()
    };
    let error = bad_tls.endpoint("orders").unwrap_err().to_string();
    assert!(error.contains("metadata.enableTLS"), "{error}");
}

#[test]
fn validation_reports_every_problem_with_its_field() {
    let object = object(
        r#"
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: broken
  annotations:
    autoscaling.keda.sh/paused: "sometimes"
spec:
  scaleTargetRef: {name: ""}
  pollingInterval: 0
  minReplicaCount: 5
  maxReplicaCount: 3
  idleReplicaCount: 5
  fallback: {failureThreshold: 0, replicas: 2}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          policies: [{type: Pods, value: 0, periodSeconds: 4000}]
  triggers:
    - name: a
      metadata: {queueName: q}
    - name: a
      type: external
      metadata: {scalerAddress: "x:1"}
"#,
    );
    let problems = object.validate();
    let found: Vec<(&str, &str)> = problems
        .iter()
        .map(|problem| (problem.reason, problem.field.as_str()))
        .collect();
    for expected in [
        ("MissingTargetName", "spec.scaleTargetRef.name"),
        ("PollingIntervalTooSmall", "spec.pollingInterval"),
        ("MinAboveMax", "spec.minReplicaCount"),
        ("IdleNotBelowMin", "spec.idleReplicaCount"),
        ("InvalidFallback", "spec.fallback.failureThreshold"),
        (
            "InvalidBehavior",
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].value",
        ),
        (
            "InvalidBehavior",
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies[0].periodSeconds",
        ),
        ("MissingScalerAddress", "spec.triggers[0].scaler.address"),
        ("DuplicateTriggerName", "spec.triggers[1].name"),
        (
            "InvalidPauseAnnotation",
            "metadata.annotations[autoscaling.keda.sh/paused]",
        ),
    ] {
        assert!(
            found.contains(&expected),
            "missing {expected:?} in {found:#?}"
        );
    }
    assert!(problems.iter().all(|problem| !problem.message.is_empty()));
}

#[test]
fn loader_reads_multi_document_files_and_directories() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("a.yaml"),
        format!("{KEDA_STYLE}\n---\napiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata:\n  name: workers\nspec: {{command: [sleep, '1']}}\n---\n"),
    )
    .unwrap();
    std::fs::write(
        directory.path().join("b.yml"),
        KEDA_STYLE.replace("orders", "second"),
    )
    .unwrap();
    std::fs::write(directory.path().join("notes.txt"), "not yaml: [").unwrap();
    let documents = load_path(directory.path()).unwrap();
    let kinds: Vec<(&str, &str)> = documents
        .iter()
        .map(|document| (document.kind.as_str(), document.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("ScaledObject", "orders"),
            ("ProcessGroup", "workers"),
            ("ScaledObject", "second")
        ]
    );
    assert_eq!(documents[1].first_line, KEDA_STYLE.lines().count() + 3);
    let objects = load_scaled_objects(directory.path()).unwrap();
    assert_eq!(objects.len(), 2);
}

#[test]
fn loader_errors_name_file_object_field_and_line() {
    let text = "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: one}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: []\n---\napiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: two}\nspec:\n  scaleTargetRef: {name: w}\n  minReplicaCount: lots\n";
    let documents = parse_documents(Path::new("objects.yaml"), text).unwrap();
    let error = documents[1].scaled_object().unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, LoadError::Schema { line: 13, .. }),
        "{message}"
    );
    assert!(
        message.contains("objects.yaml")
            && message.contains("\"two\"")
            && message.contains("spec.minReplicaCount"),
        "{message}"
    );
    let error = documents[0].scaled_object().unwrap_err().to_string();
    assert!(
        error.contains("spec.triggers") && error.contains("\"one\""),
        "{error}"
    );
    let error = parse_documents(Path::new("x.yaml"), "metadata: {name: x}\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("kind"), "{error}");
    let error = parse_documents(Path::new("x.yaml"), "kind: A\n---\nkind: [\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("x.yaml (document 2, line"), "{error}");
}

#[test]
fn crd_has_names_columns_and_status() {
    let crd = ScaledObject::crd();
    assert_eq!(crd.spec.group, "ebb.dev");
    assert_eq!(crd.spec.names.kind, "ScaledObject");
    assert_eq!(crd.spec.names.short_names, Some(vec!["eso".to_owned()]));
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<&str> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|column| column.name.as_str())
        .collect();
    assert_eq!(
        columns,
        vec![
            "Target",
            "Min",
            "Max",
            "Replicas",
            "Triggers",
            "Authentications",
            "Ready",
            "Active",
            "Fallback",
            "Paused",
            "Age"
        ]
    );
    // The schema must serialize (structural enums, no untagged surprises).
    serde_norway::to_string(&crd).unwrap();
}

#[test]
fn status_keeps_transition_times_of_unchanged_conditions() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let first = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let later = first + Duration::from_secs(60);
    let mut status = ScaledObjectStatus::default();
    status.set_condition(Condition::new(
        ConditionType::Active,
        ConditionStatus::True,
        "TriggerActive",
        "",
        first,
    ));
    status.set_condition(Condition::new(
        ConditionType::Active,
        ConditionStatus::True,
        "TriggerActive",
        "again",
        later,
    ));
    let kept = status.condition(ConditionType::Active).unwrap();
    assert_eq!(kept.message, "again");
    assert_eq!(kept.last_transition_time, to_time(first));
    status.set_condition(Condition::new(
        ConditionType::Active,
        ConditionStatus::False,
        "Cooldown",
        "",
        later,
    ));
    let changed = status.condition(ConditionType::Active).unwrap();
    assert_eq!(changed.last_transition_time, to_time(later));
    let back: SystemTime = from_time(changed.last_transition_time.as_ref().unwrap());
    assert_eq!(back, later);
}

#[test]
fn a_byte_order_mark_is_allowed_before_the_first_document() {
    // Right before the first key, where the parser took it for the start of another document.
    let text = format!(
        "\u{feff}{}---\nkind: ProcessGroup\nmetadata: {{name: w}}\n",
        KEDA_STYLE.trim_start()
    );
    let documents = parse_documents(Path::new("bom.yaml"), &text).unwrap();
    let kinds: Vec<&str> = documents.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["ScaledObject", "ProcessGroup"]);
    documents[0].scaled_object().unwrap();
}

#[test]
fn documents_and_lines_are_numbered_from_1_counting_only_documents_with_content() {
    let good = "# only a comment\n---\nkind: A\n--- # a comment after the separator\nkind: B\n";
    let documents = parse_documents(Path::new("n.yaml"), good).unwrap();
    let numbers: Vec<(usize, usize)> = documents
        .iter()
        .map(|document| (document.index, document.first_line))
        .collect();
    assert_eq!(numbers, [(1, 3), (2, 4)]);
    let text = format!("{good}---\nkind: [\n");
    let error = parse_documents(Path::new("n.yaml"), &text).unwrap_err();
    assert!(
        matches!(error, LoadError::Syntax { index: 3, .. }),
        "{error}"
    );
}

/// A file far larger than memory (sparse, so it takes no disk): refused by its size, before
/// anything is read. Reading it first would fail to allocate or fill memory.
#[test]
fn a_file_over_the_limit_is_refused_by_its_size_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    let error = load_path(&path).unwrap_err().to_string();
    assert!(
        error.contains("huge.yaml") && error.contains("larger than 1048576 bytes"),
        "{error}"
    );
}

/// A pipe has no size to check: reading stops one byte past the limit, so a writer that
/// never closes it cannot keep ebb reading (or waiting) forever.
#[test]
fn a_pipe_is_read_no_further_than_one_byte_past_the_limit() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("endless.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut pipe = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_path)
            .unwrap();
        let chunk = vec![b'#'; 64 * 1024];
        // Eight times the limit, then held open without an end of file.
        for _ in 0..128 {
            if pipe.write_all(&chunk).is_err() {
                return; // The reader stopped reading: what is expected.
            }
        }
        let _ = stopped.recv();
    });
    let (done, outcome) = std::sync::mpsc::channel();
    let reader_path = fifo.clone();
    std::thread::spawn(move || {
        let _ = done.send(load_path(&reader_path).map(|documents| documents.len()));
    });
    // Not a speed check: a reader that waits for the end of the pipe never answers at all.
    let result = outcome.recv_timeout(Duration::from_secs(60));
    let _ = stop.send(());
    let error = result
        .expect("the reader stopped after the limit instead of waiting for the pipe's end")
        .unwrap_err()
        .to_string();
    assert!(error.contains("larger than 1048576 bytes"), "{error}");
    writer.join().unwrap();
}
