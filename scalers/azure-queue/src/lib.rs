//! An ebb scaler for Azure Storage queues, serving ebb's `ebb.scaler.v1` and KEDA's external
//! scaler protocol on one port.
//!
//! It reads queues through the official `azure_storage_queue` SDK with one shared HTTP client
//! and authenticates with a shared key (signed by [`shared_key::SharedKeyPolicy`]), a SAS, or
//! Entra ID (workload or managed identity). See the README for the metadata keys.

pub mod clients;
pub mod config;
pub mod connection;
pub mod errors;
pub mod identity;
pub mod measure;
pub mod scaler;
pub mod shared_key;
pub mod target;

pub use config::{AzureQueueConfig, Cloud, IdentityKind, QueueLengthStrategy};
pub use scaler::{AzureQueueScaler, BuildError, DEFAULT_PORT, ScalerOptions, metric_name};

/// Why the scaler process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scaler could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The server failed.
    #[error(transparent)]
    Serve(#[from] ebb_scaler_sdk::ServeError),
}

/// Runs the scaler until SIGTERM or SIGINT.
pub async fn run(options: ScalerOptions, serve: ebb_scaler_sdk::ServeArgs) -> Result<(), RunError> {
    let scaler = AzureQueueScaler::new(options)?;
    ebb_scaler_sdk::run(scaler, serve).await?;
    Ok(())
}
