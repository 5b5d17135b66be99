//! `ebb run`: the autoscaler on one machine, scaling local process groups.

/// Why `ebb run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Placeholder until the runner lands.
    #[error("not built yet")]
    NotBuilt,
}

/// `ebb run` flags.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs until Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let _ = args;
    Err(RunError::NotBuilt)
}
