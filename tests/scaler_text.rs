//! A scaler's words enter ebb once, cleaned (src/client/scaler_text.rs): a hostile scaler
//! (written on the raw gRPC services, so no SDK cleans for it) fails with messages that quote
//! the trigger's secrets in their URL forms, or that carry newlines, escape sequences, a bell,
//! carriage returns and NULs. Nothing of it may reach the status, the events, the controller's
//! conditions and Events, or a log line (text or JSON), and what is stored is cut to 1 KiB.
//! The chaos suite does the same with the real `ebb run` binary.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
mod hostile_text;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
mod runtime_support;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use ebb::spec::TriggerHealth;
use fake_apiserver::FakeApiServer;
use hostile_text::{
    SECRETS, assert_log_lines_intact, assert_no_control, assert_no_secret, control_characters,
    echoed_secrets,
};
use in_process_controller::{InProcessController, test_args};
use runtime_support::hostile::HostileScaler;
use runtime_support::{Harness, object, spec, trigger, wait_until};
use serde_json::{Value, json};

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// What the runtime made of a trigger whose scaler fails with one message.
struct Seen {
    /// The object's status as JSON.
    status: Value,
    /// The trigger's message in it.
    trigger_message: String,
    /// The messages of its events.
    events: Vec<String>,
    /// Everything logged, down to debug, in the format asked for.
    log: String,
}

/// Runs one object whose only trigger (holding [`SECRETS`]) fails with `message`, until the
/// failure shows in the status and in an event, logging as text or as JSON lines. The test's
/// runtime has one thread, so the subscriber set here sees every task's log lines.
async fn failing_trigger(message: String, json: bool) -> Seen {
    let captured = Captured::default();
    let writer = captured.clone();
    let builder = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG);
    let dispatch = if json {
        tracing::Dispatch::new(builder.json().finish())
    } else {
        tracing::Dispatch::new(builder.finish())
    };
    let _logging = tracing::dispatcher::set_default(&dispatch);

    let scaler = HostileScaler::start().await;
    scaler.set_error("q", Some(message));
    let harness = Harness::new();
    let key = ObjectKey::new("ns", "hostile");
    let target = InMemoryTarget::new(2);
    let mut hostile = trigger(&key, "q", 0, scaler.address, "q", PushMode::Never);
    for (name, value) in SECRETS {
        hostile.input.secrets.insert(name.into(), value.into());
    }
    harness
        .supervisor
        .apply(object(&key, spec(&["q"], 1, 10, 1), vec![hostile], &target));
    wait_until(
        "the failure in the status and in an event",
        Duration::from_secs(30),
        || {
            let failing = harness.sink.status(&key).is_some_and(|status| {
                status.triggers[0].health == TriggerHealth::Failing
                    && status.triggers[0].message.is_some()
            });
            let event = harness
                .sink
                .events(&key)
                .iter()
                .any(|event| event.reason == "TriggerFailing");
            failing && event
        },
    )
    .await;
    let status = harness.sink.status(&key).expect("a status");
    harness.supervisor.shutdown().await;
    Seen {
        trigger_message: status.triggers[0].message.clone().unwrap_or_default(),
        status: serde_json::to_value(&status).expect("status as JSON"),
        events: harness
            .sink
            .events(&key)
            .into_iter()
            .map(|event| event.message)
            .collect(),
        log: captured.text(),
    }
}

/// Every string in `value`, with where it is.
fn strings(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(text) => out.push((path.to_owned(), text.clone())),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                strings(item, &format!("{path}[{index}]"), out);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                strings(field, &format!("{path}.{name}"), out);
            }
        }
        _ => {}
    }
}

/// Fails when any string of `value` holds a secret or a control character.
fn assert_json_clean(what: &str, value: &Value) {
    let mut found = Vec::new();
    strings(value, what, &mut found);
    for (path, text) in found {
        assert_no_secret(&path, &text);
        assert_no_control(&path, &text);
    }
}

#[tokio::test]
async fn an_echoed_secret_reaches_no_status_event_or_log_line() {
    for json in [false, true] {
        let seen = failing_trigger(echoed_secrets(), json).await;
        // The checks below read the scaler's real text, cleaned, not an empty message.
        assert!(
            seen.trigger_message
                .contains("cannot connect to amqp://orders:***@rabbit"),
            "{}",
            seen.trigger_message
        );
        assert!(seen.log.contains("trigger poll failed"), "{}", seen.log);
        assert_json_clean("status", &seen.status);
        for event in &seen.events {
            assert_no_secret("event", event);
        }
        assert_no_secret(if json { "JSON log" } else { "log" }, &seen.log);
    }
}

#[tokio::test]
async fn a_control_character_error_forges_no_log_line() {
    for json in [false, true] {
        let seen = failing_trigger(control_characters(), json).await;
        assert!(
            seen.trigger_message.contains("broken\\n2030-01-01"),
            "the message is kept, escaped: {:?}",
            seen.trigger_message
        );
        assert!(seen.log.contains("trigger poll failed"), "{}", seen.log);
        assert_json_clean("status", &seen.status);
        for event in &seen.events {
            assert_no_control("event", event);
        }
        assert_log_lines_intact(if json { "JSON log" } else { "log" }, &seen.log);
    }
}

#[tokio::test]
async fn a_long_error_is_stored_cut_to_a_kilobyte_after_redaction() {
    // The password sits where a cut made before redaction would keep its first half.
    let message = format!(
        "{}{}{}",
        "x".repeat(930),
        hostile_text::PASSWORD,
        "y".repeat(8000)
    );
    let seen = failing_trigger(message, false).await;
    let stored = &seen.trigger_message;
    assert!(stored.len() <= 1024, "{} bytes stored", stored.len());
    assert!(
        stored.ends_with(" bytes]") && stored.contains("… [cut, "),
        "{stored}"
    );
    assert!(stored.contains("xxx"), "{stored}");
    assert_no_secret("stored message", stored);
    for event in &seen.events {
        assert!(
            event.len() <= 1024 + 64,
            "{} bytes in an event",
            event.len()
        );
    }
}

/// The controller: a ScaledObject whose trigger takes its secrets from a Secret through a
/// ScalerAuthentication, on a scaler spoken to over KEDA's protocol (which carries the
/// secrets in `scalerMetadata`). Its conditions, trigger status and Events stay clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_shows_no_secret_or_control_character_in_status_or_events() {
    const NS: &str = "apps";
    let scaler = HostileScaler::start().await;
    scaler.set_error(
        "q",
        Some(format!("{} | {}", echoed_secrets(), control_characters())),
    );
    let server = FakeApiServer::start().await;
    let secret_data: serde_json::Map<String, Value> = SECRETS
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let references: Vec<Value> = SECRETS
        .iter()
        .map(|(name, _)| json!({"parameter": name, "name": "broker", "key": name}))
        .collect();
    for object in [
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "broker", "namespace": NS}, "stringData": secret_data}),
        json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScalerAuthentication",
            "metadata": {"name": "broker", "namespace": NS},
            "spec": {"secretTargetRef": references}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "workers", "namespace": NS},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "workers"}},
                "template": {"metadata": {"labels": {"app": "workers"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}),
        json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "orders", "namespace": NS},
            "spec": {"scaleTargetRef": {"name": "workers"}, "pollingInterval": 1,
                "minReplicaCount": 1, "maxReplicaCount": 5,
                "triggers": [{"type": "external", "name": "queue",
                    "metadata": {"scalerAddress": scaler.address.to_string(), "key": "q"},
                    "authenticationRef": {"name": "broker"}}]}}),
    ] {
        server.create(object).expect("create");
    }
    let controller = InProcessController::start(server.client(), test_args("text-test")).await;
    let failing_event = || {
        server
            .list("events.k8s.io/v1", "Event")
            .into_iter()
            .find(|event| event["reason"] == "TriggerFailing")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let event = loop {
        let status_failing = server
            .get("ebb.dev/v1alpha1", "ScaledObject", NS, "orders")
            .is_some_and(|object| object["status"]["triggers"][0]["health"] == "Failing");
        if let Some(event) = failing_event().filter(|_| status_failing) {
            break event;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failing trigger with its Event; ScaledObject: {:?}",
            server.get("ebb.dev/v1alpha1", "ScaledObject", NS, "orders")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let note = event["note"].as_str().unwrap_or_default();
    assert!(note.contains("cannot connect to"), "{note}");
    let object = server
        .get("ebb.dev/v1alpha1", "ScaledObject", NS, "orders")
        .expect("the ScaledObject");
    assert_json_clean("ScaledObject.status", &object["status"]);
    for event in server.list("events.k8s.io/v1", "Event") {
        assert_json_clean("Event", &event);
    }
    controller.stop().await;
}
