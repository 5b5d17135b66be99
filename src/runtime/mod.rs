//! What the Kubernetes controller and `ebb run` share: the scaler client pool, the per-object
//! scale loop behind a scale-target trait, and telemetry.

pub mod telemetry;
