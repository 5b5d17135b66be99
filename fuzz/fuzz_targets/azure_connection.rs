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
    if let Err(error) = parse_connection(text, Some("core.windows.net"), &dev) {
        let message = error.to_string();
        for part in text.split(';') {
            if let Some((name, value)) = part.split_once('=')
                && name.trim().eq_ignore_ascii_case("AccountKey")
                && value.trim().len() >= 8
            {
                assert!(
                    !message.contains(value.trim()),
                    "an error quoted the account key"
                );
            }
        }
    }
    let metadata: HashMap<String, String> = [("queueName".to_owned(), "orders".to_owned())].into();
    let secrets: HashMap<String, String> = [("connection".to_owned(), text.to_owned())].into();
    let merged = TriggerMetadata::from_v1(&metadata, &secrets);
    let _ = merged.parse::<AzureQueueConfig>(&MetadataSchema::of::<AzureQueueConfig>());
});
