//! The RabbitMQ scaler for ebb: measures queues over AMQP (passive `queue.declare` on one
//! pooled connection per broker) or the management HTTP API (counts, unacknowledged messages as
//! in-flight work, rates, regex over all pages), and serves both ebb's v1 protocol and KEDA's
//! external scaler protocol through the SDK.

pub mod address;
pub mod amqp;
pub mod config;
pub mod management;
mod scaler;
pub mod tls;

pub use config::{Mode, Operation, ProtocolChoice, RabbitMqConfig, Settings};
pub use scaler::{DEFAULT_PORT, RabbitMqScaler, ScalerOptions, metric_name};

/// Serves the scaler until SIGTERM/SIGINT.
pub async fn run(
    options: ScalerOptions,
    serve: ebb_scaler_sdk::ServeArgs,
) -> Result<(), ebb_scaler_sdk::ServeError> {
    ebb_scaler_sdk::run(RabbitMqScaler::new(options), serve).await
}
