//! What a scaler server does with request bytes before measuring: protobuf decoding of the v1
//! and KEDA requests, metadata merging (secrets, `xFromEnv`), and parsing into both reference
//! scalers' configurations. Checks: nothing panics on any bytes.
#![no_main]

use ebb_azure_queue_scaler::AzureQueueConfig;
use ebb_rabbitmq_scaler::{RabbitMqConfig, Settings};
use ebb_scaler_sdk::proto::{keda, v1};
use ebb_scaler_sdk::{MetadataSchema, TriggerMetadata};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn parse_both(metadata: &TriggerMetadata) {
    if let Ok(config) = metadata.parse::<RabbitMqConfig>(&MetadataSchema::of::<RabbitMqConfig>()) {
        let _ = Settings::resolve(&config);
    }
    let _ = metadata.parse::<AzureQueueConfig>(&MetadataSchema::of::<AzureQueueConfig>());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = v1::TriggerRequest::decode(data) {
        parse_both(&TriggerMetadata::from_v1(
            &request.metadata,
            &request.secrets,
        ));
    }
    if let Ok(reference) = keda::ScaledObjectRef::decode(data) {
        parse_both(&TriggerMetadata::from_keda(&reference.scaler_metadata));
    }
    if let Ok(request) = keda::GetMetricsRequest::decode(data)
        && let Some(reference) = request.scaled_object_ref
    {
        parse_both(&TriggerMetadata::from_keda(&reference.scaler_metadata));
    }
});
