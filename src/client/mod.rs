//! Calling scalers: protocol detection (ebb v1, else KEDA), one protocol-neutral client, and
//! the `ebb scaler check` / `ebb scaler conformance` commands built on it.

use clap::Subcommand;

/// Why a scaler command failed to run (a failed conformance check is not an error).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Placeholder until the client lands.
    #[error("not built yet")]
    NotBuilt,
}

/// `ebb scaler ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScalerCommand {
    /// Placeholder.
    Check,
}

/// Runs a scaler subcommand; `Ok(false)` means checks ran and some failed.
pub async fn run_scaler_command(command: ScalerCommand) -> Result<bool, ClientError> {
    let _ = command;
    Err(ClientError::NotBuilt)
}
