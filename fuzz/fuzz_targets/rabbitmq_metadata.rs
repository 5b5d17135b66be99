//! RabbitMQ trigger metadata through the SDK's path (merge, schema-guided parse, resolve),
//! and the `host` URL parser on its own. Checks: nothing panics; a parsed address's masked
//! form never holds its password; every field of an error survives redaction without its
//! secrets.
#![no_main]

use std::collections::HashMap;

use ebb_rabbitmq_scaler::address::BrokerAddress;
use ebb_rabbitmq_scaler::{RabbitMqConfig, Settings};
use ebb_scaler_sdk::{MetadataSchema, ScalerError, TriggerMetadata};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 12] = [
    "host",
    "queueName",
    "mode",
    "value",
    "activationValue",
    "protocol",
    "useRegex",
    "pageSize",
    "timeout",
    "password",
    "vhostName",
    "ca",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(address) = BrokerAddress::parse(text)
        && let Some(password) = address.password.as_deref()
        && password.len() >= 4
        && !address.masked().replacen(":***@", "", 1).is_empty()
    {
        let rest = format!(
            "{}{}{}{}",
            address.host, address.path_prefix, address.vhost, address.query
        );
        if !rest.contains(password) && !address.username.as_deref().unwrap_or("").contains(password)
        {
            assert!(
                !address.masked().contains(password),
                "masked address shows its password"
            );
        }
    }
    // Lines are `key=value`; keys by index so the fuzzer need not guess names.
    let mut metadata = HashMap::new();
    let mut secrets = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = key
            .parse::<usize>()
            .ok()
            .and_then(|number| KEYS.get(number % KEYS.len()))
            .map_or(key.to_owned(), |known| (*known).to_owned());
        if index % 2 == 0 {
            metadata.insert(key, value.to_owned());
        } else {
            secrets.insert(key, value.to_owned());
        }
    }
    let merged = TriggerMetadata::from_v1(&metadata, &secrets);
    let schema = MetadataSchema::of::<RabbitMqConfig>();
    let result = merged
        .parse::<RabbitMqConfig>(&schema)
        .and_then(|config| Settings::resolve(&config).map(drop));
    if let Err(error) = result {
        // Only the error's fields carry input; the fixed words around them (`invalid metadata
        // `host`: `) are the same for every input, so a secret that happens to spell part of
        // them is not a leak. Each field is checked on its own, and a key that names a schema
        // field is such fixed text too (a secret may well be the word `queueName`).
        let fields = match error.redacted(&merged.redactor(&schema)) {
            ScalerError::InvalidMetadata { key, message } if schema.field(&key).is_some() => {
                vec![message]
            }
            ScalerError::InvalidMetadata { key, message } => vec![key, message],
            ScalerError::NotFound(text)
            | ScalerError::Unavailable(text)
            | ScalerError::Unauthenticated(text)
            | ScalerError::PermissionDenied(text)
            | ScalerError::Throttled(text)
            | ScalerError::DeadlineExceeded(text)
            | ScalerError::Unimplemented(text)
            | ScalerError::Internal(text) => vec![text],
        };
        for secret in secrets.values().filter(|secret| secret.trim().len() >= 8) {
            for field in &fields {
                assert!(
                    !field.contains(secret.trim()),
                    "a secret survived redaction"
                );
            }
        }
    }
});
