//! The resource types ebb reads: ScaledObject (and its status), shared by the Kubernetes
//! controller, `ebb run` and `ebb simulate`.
