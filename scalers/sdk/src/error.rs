//! The errors a scaler reports, and their single mapping to gRPC status codes.

use tonic::{Code, Status};

/// Why a request failed. Each variant maps to the status code the protocol documents.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ScalerError {
    /// The trigger's metadata or secrets are wrong; the message names the key and never holds
    /// a secret value. Not retried by hosts.
    #[error("invalid metadata `{key}`: {message}")]
    InvalidMetadata {
        /// The metadata key at fault.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The measured thing (a queue) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The source cannot be reached right now; health turns NOT_SERVING.
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// The source rejected the credentials as unknown or malformed.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The source accepted the credentials but refused the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The source throttled the scaler.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The measurement did not finish within the request's deadline.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// The RPC is not offered by this scaler.
    #[error("not implemented: {0}")]
    Unimplemented(String),
    /// A bug or an unexpected answer from the source.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ScalerError {
    /// An [`ScalerError::InvalidMetadata`] for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidMetadata {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The gRPC code the protocol documents for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidMetadata { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Throttled(_) => Code::ResourceExhausted,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// Whether the error means the source as a whole is unreachable (drives health).
    pub fn source_down(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<ScalerError> for Status {
    fn from(error: ScalerError) -> Self {
        Status::new(error.code(), error.to_string())
    }
}

/// Smallest target a trigger may ask for. Anything smaller is a typo or an attack: `1e-320`
/// would print as 320 digits in every status and log line, and scale to the maximum on one
/// message anyway.
pub const MIN_TARGET: f64 = 0.001;
/// Largest target or threshold a trigger may ask for; larger ones print as hundreds of
/// digits and mean "never" anyway.
pub const MAX_TARGET: f64 = 1e12;

/// Checks a per-replica target: a finite number from [`MIN_TARGET`] to [`MAX_TARGET`].
pub fn check_target(key: &str, value: f64) -> Result<(), ScalerError> {
    if value.is_finite() && (MIN_TARGET..=MAX_TARGET).contains(&value) {
        Ok(())
    } else {
        Err(ScalerError::invalid(
            key,
            format!("must be a number from {MIN_TARGET} to {MAX_TARGET:e}"),
        ))
    }
}

/// Checks an activation threshold: 0, or a finite number from [`MIN_TARGET`] to
/// [`MAX_TARGET`].
pub fn check_threshold(key: &str, value: f64) -> Result<(), ScalerError> {
    if value == 0.0 {
        return Ok(());
    }
    check_target(key, value).map_err(|_| {
        ScalerError::invalid(
            key,
            format!("must be 0 or a number from {MIN_TARGET} to {MAX_TARGET:e}"),
        )
    })
}

impl ScalerError {
    /// The same error with `redactor` applied to its text: the last guard before the message
    /// leaves the process (status, logs).
    pub fn redacted(self, redactor: &ebb::protocol::Redactor) -> Self {
        let clean = |text: String| redactor.redact(&text);
        match self {
            Self::InvalidMetadata { key, message } => Self::InvalidMetadata {
                key,
                message: clean(message),
            },
            Self::NotFound(text) => Self::NotFound(clean(text)),
            Self::Unavailable(text) => Self::Unavailable(clean(text)),
            Self::Unauthenticated(text) => Self::Unauthenticated(clean(text)),
            Self::PermissionDenied(text) => Self::PermissionDenied(clean(text)),
            Self::Throttled(text) => Self::Throttled(clean(text)),
            Self::DeadlineExceeded(text) => Self::DeadlineExceeded(clean(text)),
            Self::Unimplemented(text) => Self::Unimplemented(clean(text)),
            Self::Internal(text) => Self::Internal(clean(text)),
        }
    }
}
