//! ebb: an event-driven autoscaler.
//!
//! With default features off, this crate is only the generated scaler protocol ([`proto`]) and
//! the protocol helpers every scaler and host share ([`protocol`]); scaler crates depend on it
//! that way so they never compile the Kubernetes client.

pub mod proto;
pub mod protocol;
