//! The Kubernetes controller: CRDs, watches, reconcile, `/scale` writes, leader election.

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Placeholder until the controller lands.
    #[error("not built yet")]
    NotBuilt,
}

/// `ebb controller` flags.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {}

/// `ebb crd` flags.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {}

/// Runs the controller until shutdown.
pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    let _ = args;
    Err(ControllerError::NotBuilt)
}

/// Writes the CRDs.
pub fn write_crds(args: CrdArgs) -> Result<(), ControllerError> {
    let _ = args;
    Err(ControllerError::NotBuilt)
}
