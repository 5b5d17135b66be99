//! ebb: an event-driven autoscaler.
//!
//! With default features off, this crate is only the generated scaler protocol ([`proto`]) and
//! the protocol helpers every scaler and host share ([`protocol`]); scaler crates depend on it
//! that way so they never compile the Kubernetes client. The `controller` feature (on by
//! default) adds everything else: the scaling engine, the scaler client, the Kubernetes
//! controller, the local runner and the CLI.

#[cfg(feature = "insecure-tls")]
pub mod insecure_tls;
#[cfg(feature = "process")]
pub mod process;
pub mod proto;
pub mod protocol;

#[cfg(feature = "controller")]
pub mod cli;
#[cfg(feature = "controller")]
pub mod client;
#[cfg(feature = "controller")]
pub mod convert;
#[cfg(feature = "controller")]
pub mod dashboard;
#[cfg(feature = "controller")]
pub mod kubernetes;
#[cfg(feature = "controller")]
pub mod local;
#[cfg(feature = "controller")]
pub mod runtime;
#[cfg(feature = "controller")]
pub mod scaling;
#[cfg(feature = "controller")]
pub mod simulate;
#[cfg(feature = "controller")]
pub mod spec;
#[cfg(feature = "controller")]
pub mod status_cli;
