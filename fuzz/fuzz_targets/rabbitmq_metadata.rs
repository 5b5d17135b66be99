//! RabbitMQ trigger metadata through the SDK's path (merge, schema-guided parse, resolve),
//! and the `host` URL parser on its own. Checks: nothing panics; a parsed address's masked
//! form never holds its password; every error survives redaction without its secrets.
#![no_main]

use std::collections::HashMap;

use ebb_rabbitmq_scaler::address::BrokerAddress;
use ebb_rabbitmq_scaler::{RabbitMqConfig, Settings};
use ebb_scaler_sdk::{MetadataSchema, TriggerMetadata};
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
        let redacted = error.redacted(&merged.redactor(&schema)).to_string();
        for secret in secrets.values().filter(|secret| secret.trim().len() >= 8) {
            assert!(
                !redacted.contains(secret.trim()),
                "a secret survived redaction"
            );
        }
    }
});
