//! Azure Storage connection strings and SAS URLs, then the whole trigger metadata path.
//! Checks: nothing panics; no error of the connection parser quotes the account key.
#![no_main]

use std::collections::HashMap;

use azure_core::http::Url;
use ebb_azure_queue_scaler::AzureQueueConfig;
use ebb_azure_queue_scaler::connection::{DEV_QUEUE_ENDPOINT, parse_connection};
use ebb_scaler_sdk::{MetadataSchema, TriggerMetadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dev) = Url::parse(DEV_QUEUE_ENDPOINT) else {
        return;
    };
    let message_for = |text: &str| {
        parse_connection(text, Some("core.windows.net"), &dev)
            .err()
            .map(|error| error.to_string())
    };
    if let Some(message) = message_for(text) {
        // A key can spell the error's own words (`AccountKey=connection` is not base64, and
        // the message says "connection string"). So the same input runs again with the key
        // swapped for a twin of the same shape: a quoted key shows up in both messages, a
        // coincidence only in the first.
        let mut offset = 0;
        for part in text.split(';') {
            if let Some((name, value)) = part.split_once('=')
                && name.trim().eq_ignore_ascii_case("AccountKey")
                && value.trim().len() >= 8
                && message.contains(value.trim())
            {
                let key = value.trim();
                let start = offset + name.len() + 1 + (value.len() - value.trim_start().len());
                let twin_key = twin(key);
                let twin_text =
                    format!("{}{twin_key}{}", &text[..start], &text[start + key.len()..]);
                let twin_message = message_for(&twin_text).unwrap_or_default();
                // A key with no letter or digit has no twin, and no error's words hold eight
                // such characters in a row.
                assert!(
                    twin_key != key && !twin_message.contains(&twin_key),
                    "an error quoted the account key"
                );
            }
            offset += part.len() + 1;
        }
    }
    let metadata: HashMap<String, String> = [("queueName".to_owned(), "orders".to_owned())].into();
    let secrets: HashMap<String, String> = [("connection".to_owned(), text.to_owned())].into();
    let merged = TriggerMetadata::from_v1(&metadata, &secrets);
    let _ = merged.parse::<AzureQueueConfig>(&MetadataSchema::of::<AzureQueueConfig>());
});

/// `key` with every letter and digit moved one place along its own range (`z` to `a`), so
/// it is as valid or invalid base64 as `key` was and differs wherever it can.
fn twin(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            other => other,
        })
        .collect()
}
