//! Generated protocol code: ebb's own `ebb.scaler.v1` and KEDA's `externalscaler`.

/// ebb's versioned scaler protocol, `ebb.scaler.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("ebb.scaler.v1");
}

/// KEDA's external scaler protocol, `externalscaler`, wire-compatible with KEDA.
pub mod keda {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("externalscaler");
}

/// Encoded `FileDescriptorSet` of both protocols, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ebb_descriptor");
