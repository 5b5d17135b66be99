//! The ebb scaler SDK: write a scaler in Rust and serve it over both ebb's `ebb.scaler.v1`
//! protocol and KEDA's `externalscaler.ExternalScaler` protocol on one port.
//!
//! A scaler implements [`Scaler`]: a typed configuration parsed from trigger metadata (whose
//! schema, reported by `GetInfo`, comes from the same type), the metric specs of a trigger, and
//! one measurement of the source. The SDK does the rest: protocol translation, push sampling
//! shared between subscribers, gRPC health per broker (see [`Scaler::broker_key`]) and
//! reflection, the caller's deadline, Prometheus metrics, TLS and graceful shutdown.
//!
//! A scaler binary is a few lines:
//!
//! ```ignore
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     serve: ebb_scaler_sdk::ServeArgs,
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let args = <Args as clap::Parser>::parse();
//!     Ok(ebb_scaler_sdk::run(MyScaler::default(), args.serve).await?)
//! }
//! ```

mod args;
mod config;
mod core;
mod deadline;
mod error;
mod health;
mod metrics;
mod push;
mod scaler;
mod server;
mod service_keda;
mod service_v1;
pub mod testing;

pub use args::{ServeArgs, init_logging, run, shutdown_signal};
pub use config::{MetadataSchema, TriggerMetadata, parse_duration, serde_helpers};
pub use deadline::{Deadline, DeadlineLayer};
pub use ebb::process::parse_positive_duration;
pub use error::{MAX_TARGET, MIN_TARGET, ScalerError, check_target, check_threshold};
pub use health::BROKER_SERVICE_PREFIX;
pub use metrics::{ServerMetrics, serve_metrics};
pub use scaler::{Measurement, MetricSpec, MetricValue, Scaler, ScalerIdentity, Trigger};
pub use server::{ServeError, ServeOptions, TlsPem, serve};

/// Re-exports the generated protocol types a scaler author may need.
pub use ebb::proto;
/// The rule that keeps secrets out of messages: see [`ebb::protocol::Redactor`]. The SDK
/// applies it to every error of a request (with the request's secret values) before the error
/// is logged or answered; scalers use it on text from client libraries.
pub use ebb::protocol::{Redactor, mask_credentials};
/// Re-exported so scaler configs can derive `JsonSchema` with the SDK's version.
pub use schemars;
/// Re-exported so binaries need not depend on tonic-health directly.
pub use tonic_health;
