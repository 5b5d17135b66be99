//! `ebb simulate`: replay a metric series through the scaling engine.

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Placeholder until the simulator lands.
    #[error("not built yet")]
    NotBuilt,
}

/// `ebb simulate` flags.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// Runs a simulation and prints the timeline.
pub fn run(args: SimulateArgs) -> Result<(), SimulateError> {
    let _ = args;
    Err(SimulateError::NotBuilt)
}
