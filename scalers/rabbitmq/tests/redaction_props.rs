//! The redaction rule as a property: for random passwords (with `/`, `?`, `#`, `@`, `:`, `%`
//! and spaces in them) inside random, often malformed, broker URLs, no error of the metadata
//! path quotes the password or its first fragment, before or after the SDK's redactor.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use ebb_rabbitmq_scaler::address::BrokerAddress;
use ebb_rabbitmq_scaler::{RabbitMqConfig, Settings};
use ebb_scaler_sdk::{MetadataSchema, ScalerError, TriggerMetadata};
use proptest::prelude::*;

/// A password that starts with a recognisable head, so finding it in a message is never a
/// coincidence with the message's own words.
fn password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9/?#@:%! $&=+]{0,14}".prop_map(|tail| format!("PWq7{tail}"))
}

/// The part of the password a misparse could quote: everything up to the first character
/// that splits a URL.
fn head(password: &str) -> &str {
    password
        .split(['/', '?', '#', '@', ':', ' ', '%'])
        .next()
        .unwrap_or(password)
}

fn url() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["amqp", "amqps", "http", "https", "AMQP", "ftp", ""]),
        prop::sample::select(vec!["://", ":/", "//", "://:"]),
        "[a-z]{0,5}",
        password(),
        prop::sample::select(vec!["@", "@@", "", "/@", "?@"]),
        prop::sample::select(vec!["127.0.0.1", "rabbit", "[::1]", "[::1", ""]),
        "(:[0-9a-z-]{0,6})?",
        "(/[a-z%@?/]{0,8})?",
        prop::sample::select(vec![
            "",
            "?heartbeat=5",
            "?heartbeat=abc",
            "?frame_max=-1",
            "?x=@",
        ]),
    )
        .prop_map(
            |(scheme, sep, user, password, at, host, port, path, query)| {
                let url = format!("{scheme}{sep}{user}:{password}{at}{host}{port}{path}{query}");
                (url, password)
            },
        )
}

fn resolve(
    metadata: &HashMap<String, String>,
    secrets: &HashMap<String, String>,
) -> Option<ScalerError> {
    let merged = TriggerMetadata::from_v1(metadata, secrets);
    let schema = MetadataSchema::of::<RabbitMqConfig>();
    let result = merged
        .parse::<RabbitMqConfig>(&schema)
        .and_then(|config| Settings::resolve(&config).map(drop));
    result.err()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn address_errors_quote_no_password((url, password) in url()) {
        if let Err(error) = BrokerAddress::parse(&url) {
            let text = error.to_string();
            prop_assert!(!text.contains(&password), "{text}");
            prop_assert!(!text.contains(head(&password)), "{text}");
        }
    }

    #[test]
    fn metadata_errors_quote_no_password(
        (url, password) in url(),
        as_secret in any::<bool>(),
        value in prop::sample::select(vec!["1", "0", "1e-320", "x", "-5"]),
    ) {
        let mut metadata: HashMap<String, String> =
            [("queueName", "q"), ("value", value)]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let mut secrets = HashMap::new();
        if as_secret {
            secrets.insert("host".to_owned(), url);
        } else {
            metadata.insert("host".to_owned(), url);
        }
        if let Some(error) = resolve(&metadata, &secrets) {
            prop_assert!(matches!(error, ScalerError::InvalidMetadata { .. }), "{error}");
            let text = error.to_string();
            prop_assert!(!text.contains(head(&password)), "{text}");
            let merged = TriggerMetadata::from_v1(&metadata, &secrets);
            let redactor = merged.redactor(&MetadataSchema::of::<RabbitMqConfig>());
            let redacted = error.redacted(&redactor).to_string();
            prop_assert!(!redacted.contains(head(&password)), "{redacted}");
        }
    }
}
