//! Metadata parsing through the SDK's real path (schema-guided parse, then validation), and
//! the schema `GetInfo` reports. No broker needed.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use ebb_rabbitmq_scaler::{Mode, Operation, RabbitMqConfig, Settings, config::Protocol};
use ebb_scaler_sdk::proto::v1::ValueKind;
use ebb_scaler_sdk::{MetadataSchema, ScalerError, TriggerMetadata};

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn resolve_with(
    metadata: &[(&str, &str)],
    secrets: &[(&str, &str)],
) -> Result<Settings, ScalerError> {
    let merged = TriggerMetadata::from_v1(&map(metadata), &map(secrets));
    let config: RabbitMqConfig = merged.parse(&MetadataSchema::of::<RabbitMqConfig>())?;
    Settings::resolve(&config)
}

fn resolve(metadata: &[(&str, &str)]) -> Result<Settings, ScalerError> {
    resolve_with(metadata, &[])
}

fn invalid_key(result: Result<Settings, ScalerError>) -> String {
    match result {
        Err(ScalerError::InvalidMetadata { key, message }) => {
            assert!(!message.contains("hunter2"), "secret leaked: {message}");
            key
        }
        other => panic!("expected InvalidMetadata, got {other:?}"),
    }
}

#[test]
fn keda_defaults_queue_length_target_20() {
    let settings = resolve(&[
        ("host", "amqp://guest:guest@localhost"),
        ("queueName", "orders"),
    ])
    .unwrap();
    assert_eq!(settings.protocol, Protocol::Amqp);
    assert_eq!(settings.mode, Mode::QueueLength);
    assert_eq!(settings.target, 20.0);
    assert_eq!(settings.activation, 0.0);
    assert_eq!(settings.timeout, Duration::from_secs(3));
    assert_eq!(settings.broker.vhost, "/");
    assert!(settings.regex.is_none());
}

#[test]
fn http_regex_rate_mode_and_overrides() {
    let settings = resolve_with(
        &[
            ("host", "https://mgmt.example:15671/vh"),
            ("protocol", "HTTP"),
            ("mode", "messagerate"),
            ("value", "2.5"),
            ("activationValue", "1"),
            ("queueName", "^jobs-.*"),
            ("useRegex", "true"),
            ("operation", "max"),
            ("pageSize", "500"),
            ("vhostName", "team a/prod"),
            ("timeout", "1500"),
        ],
        &[("username", "scaler"), ("password", "hunter2")],
    )
    .unwrap();
    assert_eq!(settings.protocol, Protocol::Http);
    assert_eq!(settings.mode, Mode::MessageRate);
    assert_eq!(settings.target, 2.5);
    assert_eq!(settings.regex, Some((Operation::Max, 500)));
    assert_eq!(settings.broker.vhost, "team a/prod");
    assert_eq!(settings.broker.username.as_deref(), Some("scaler"));
    assert_eq!(settings.broker.password.as_deref(), Some("hunter2"));
    assert_eq!(settings.timeout, Duration::from_millis(1500));
    assert!(!settings.broker.masked().contains("hunter2"));
}

#[test]
fn keda_from_env_host_is_read_as_host() {
    let merged = TriggerMetadata::from_keda(&map(&[
        ("hostFromEnv", "amqp://u:hunter2@rabbit:5672/%2f"),
        ("queueName", "q"),
        ("scalerAddress", "scaler:9001"),
    ]));
    let config: RabbitMqConfig = merged
        .parse(&MetadataSchema::of::<RabbitMqConfig>())
        .unwrap();
    let settings = Settings::resolve(&config).unwrap();
    assert_eq!(settings.broker.host, "rabbit");
    assert_eq!(settings.broker.password.as_deref(), Some("hunter2"));
}

#[test]
fn bad_metadata_names_the_key() {
    let host = ("host", "amqp://u:hunter2@h");
    assert_eq!(invalid_key(resolve(&[("queueName", "q")])), "host");
    assert_eq!(invalid_key(resolve(&[host])), "queueName");
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", " ")])),
        "queueName"
    );
    assert_eq!(
        invalid_key(resolve(&[
            ("host", "ftp://u:hunter2@h"),
            ("queueName", "q")
        ])),
        "host"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("mode", "Bogus")])),
        "mode"
    );
    assert_eq!(
        invalid_key(resolve(&[
            host,
            ("queueName", "q"),
            ("mode", "MessageRate")
        ])),
        "mode"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("useRegex", "true")])),
        "useRegex"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("useRegex", "yes")])),
        "useRegex"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("protocol", "http")])),
        "protocol"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("value", "0")])),
        "value"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("value", "ten")])),
        "value"
    );
    assert_eq!(
        invalid_key(resolve(&[
            host,
            ("queueName", "q"),
            ("activationValue", "-1")
        ])),
        "activationValue"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("timeout", "soon")])),
        "timeout"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("timeout", "0")])),
        "timeout"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("pageSize", "0")])),
        "pageSize"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("pageSize", "501")])),
        "pageSize"
    );
    assert_eq!(
        invalid_key(resolve(&[
            host,
            ("queueName", "q"),
            ("operation", "median")
        ])),
        "operation"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("cert", "pem")])),
        "key"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", "q"), ("ca", "pem")])),
        "ca"
    );
    assert_eq!(
        invalid_key(resolve(&[host, ("queueName", &"x".repeat(256))])),
        "queueName"
    );
}

#[test]
fn schema_describes_every_key() {
    let schema = MetadataSchema::of::<RabbitMqConfig>();
    let field = |key: &str| {
        schema
            .fields()
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no schema field {key}"))
            .clone()
    };
    for key in [
        "host",
        "protocol",
        "mode",
        "value",
        "activationValue",
        "queueName",
        "vhostName",
        "useRegex",
        "operation",
        "pageSize",
        "excludeUnacknowledged",
        "timeout",
        "unsafeSsl",
        "username",
        "password",
        "ca",
        "cert",
        "key",
    ] {
        assert!(
            !field(key).description.is_empty(),
            "{key} has no description"
        );
    }
    assert_eq!(schema.fields().len(), 18);
    assert!(field("host").required && field("host").secret);
    assert!(field("queueName").required);
    assert!(field("password").secret && field("key").secret && !field("ca").secret);
    assert_eq!(field("mode").kind, ValueKind::Enum as i32);
    assert_eq!(
        field("mode").allowed_values,
        ["QueueLength", "MessageRate", "DeliverRate", "AckRate"]
    );
    assert_eq!(field("mode").default_value, "QueueLength");
    assert_eq!(field("protocol").allowed_values, ["auto", "amqp", "http"]);
    assert_eq!(field("operation").allowed_values, ["sum", "max", "avg"]);
    assert_eq!(field("value").kind, ValueKind::Number as i32);
    assert_eq!(field("value").default_value.parse::<f64>().unwrap(), 20.0);
    assert_eq!(field("pageSize").kind, ValueKind::Integer as i32);
    assert_eq!(field("pageSize").default_value, "100");
    assert_eq!(field("useRegex").kind, ValueKind::Boolean as i32);
    assert_eq!(field("timeout").kind, ValueKind::Duration as i32);
    assert_eq!(field("timeout").default_value, "3s");
}
