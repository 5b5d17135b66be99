//! Calling scalers, whatever protocol they speak.
//!
//! A [`ScalerClient`] wraps one tonic [`Channel`](tonic::transport::Channel) to one scaler.
//! On first use it asks `ebb.scaler.v1` `GetInfo`: an answer means the scaler speaks ebb's
//! protocol, `UNIMPLEMENTED` means it speaks only KEDA's `externalscaler`. The answer is cached
//! for the client's lifetime (clones share it). Every call then takes the same
//! protocol-neutral inputs ([`TriggerInput`]: object, trigger, metadata, secrets) and returns
//! protocol-neutral values ([`ScalerInfo`], [`MetricSpec`], [`MetricsReading`], an
//! [`ActivityStream`]):
//!
//! - over v1, a reading is ONE `GetMetrics` call carrying values, targets, activity and
//!   in-flight work; secrets travel in their own map;
//! - over KEDA's protocol, a reading is `GetMetrics` per metric name plus `IsActive`, values
//!   read by KEDA's float-wins rule ([`crate::protocol::keda_metric_value`]), and secrets are
//!   merged into `scalerMetadata` because KEDA has no other place for them.
//!
//! Every call takes a `timeout`, sent to the scaler as `grpc-timeout` and enforced locally.
//! Failures are [`ClientError`]s whose [`ClientError::code`] is the gRPC code, so callers can
//! tell bad metadata (`InvalidArgument`) from an unreachable scaler (`Unavailable`) or a
//! missing source (`NotFound`).
//!
//! [`channel`] builds channels from an address and TLS settings; the runtime's connection pool
//! and the CLI both use it. The `ebb scaler check` and `ebb scaler conformance` commands
//! ([`ScalerCommand`]) are built on the same client.

pub mod channel;
mod check;
mod command;
mod conformance;
mod encoded;
mod error;
mod metadata;
mod scaler_client;
mod scaler_text;
mod types;

pub use channel::{ChannelSettings, TlsSettings};
pub use command::{ScalerCommand, TargetArgs, run_scaler_command};
pub use encoded::EncodedRequest;
pub use error::ClientError;
pub use metadata::StringMap;
pub use scaler_client::{ActivityStream, ScalerClient};
pub use scaler_text::{MAX_SCALER_TEXT, clean_scaler_text};
pub use types::{
    Capabilities, MetadataField, MetricReading, MetricSpec, MetricsReading, Protocol, ScalerInfo,
    TargetType, TriggerInput, ValueKind,
};
