//! The ebb scaler SDK: write a scaler in Rust and serve it over both ebb's `ebb.scaler.v1`
//! protocol and KEDA's `externalscaler.ExternalScaler` protocol on one port.
//!
//! A scaler implements [`Scaler`]: a typed configuration parsed from trigger metadata (whose
//! schema, reported by `GetInfo`, comes from the same type), the metric specs of a trigger, and
//! one measurement of the source. The SDK does the rest: protocol translation, push sampling
//! shared between subscribers, health, deadlines, metrics, TLS and graceful shutdown.
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let args = ebb_scaler_sdk::ServeArgs::parse_from_env_and_args();
//!     ebb_scaler_sdk::run(MyScaler::default(), args).await
//! }
//! ```

mod config;
mod error;
mod scaler;

pub use config::{MetadataSchema, TriggerMetadata, parse_duration, serde_helpers};
pub use error::ScalerError;
pub use scaler::{Measurement, MetricSpec, MetricValue, Scaler, ScalerIdentity, Trigger};

/// Re-exports the generated protocol types a scaler author may need.
pub use ebb::proto;
/// Re-exported so scaler configs can derive `JsonSchema` with the SDK's version.
pub use schemars;
