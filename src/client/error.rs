//! The one error type of the scaler client and the scaler commands.

use std::time::Duration;

use tonic::Code;

use super::scaler_text::clean_scaler_text;
use crate::protocol::Redactor;

/// Why a call to a scaler (or a scaler command) failed. [`ClientError::code`] gives the gRPC
/// code to classify by, so a caller can tell bad metadata (`InvalidArgument`, not worth
/// retrying) from an unreachable scaler (`Unavailable`) or a missing source (`NotFound`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The scaler address cannot be turned into an endpoint URI.
    #[error("invalid scaler address `{address}`: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings cannot be used (bad PEM, half a client identity).
    #[error("invalid TLS settings: {0}")]
    InvalidTls(String),
    /// No connection to the scaler could be made.
    #[error("cannot connect to scaler at {address}: {reason}")]
    Connect {
        /// The address dialled.
        address: String,
        /// The transport error, as text.
        reason: String,
    },
    /// The scaler answered an RPC with a non-OK gRPC status.
    #[error("{rpc} failed: {code:?}: {message}")]
    Status {
        /// The RPC, e.g. `GetMetrics`.
        rpc: &'static str,
        /// The status code the scaler (or the transport) reported.
        code: Code,
        /// The status message.
        message: String,
    },
    /// The scaler did not answer within the call's deadline.
    #[error("{rpc} did not answer within {timeout:?}")]
    Timeout {
        /// The RPC that timed out.
        rpc: &'static str,
        /// The deadline that passed.
        timeout: Duration,
    },
    /// The scaler answered, but the answer breaks the protocol (no metric, wrong name...).
    #[error("{rpc} answered against the protocol: {reason}")]
    BadAnswer {
        /// The RPC whose answer is wrong.
        rpc: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A command-line argument is malformed; the message names the flag.
    #[error("invalid argument {flag}: {reason}")]
    InvalidInput {
        /// The flag at fault, e.g. `--metadata`.
        flag: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file named on the command line (e.g. a PEM file) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The path that failed.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The gRPC code that classifies this error: the scaler's own status code for
    /// [`ClientError::Status`], `Unavailable` for connection failures, `DeadlineExceeded` for
    /// timeouts, `Internal` for protocol violations and `InvalidArgument` for bad local input.
    pub fn code(&self) -> Code {
        match self {
            Self::Status { code, .. } => *code,
            Self::Connect { .. } => Code::Unavailable,
            Self::Timeout { .. } => Code::DeadlineExceeded,
            Self::BadAnswer { .. } => Code::Internal,
            Self::InvalidAddress { .. }
            | Self::InvalidTls(_)
            | Self::InvalidInput { .. }
            | Self::ReadFile { .. } => Code::InvalidArgument,
        }
    }

    /// True when the scaler does not offer the RPC (`UNIMPLEMENTED`).
    pub fn is_unimplemented(&self) -> bool {
        self.code() == Code::Unimplemented
    }

    /// True when the failure says the trigger's metadata or secrets are wrong: the host should
    /// not retry until the trigger changes.
    pub fn is_invalid_metadata(&self) -> bool {
        matches!(
            self,
            Self::Status {
                code: Code::InvalidArgument,
                ..
            }
        )
    }

    /// The same error with every text that may come from the scaler (its status message, a
    /// protocol violation's detail, the transport's reason) made safe by
    /// [`clean_scaler_text`]: the one step scaler text takes on its way in.
    pub(crate) fn cleaned(self, redactor: &Redactor) -> Self {
        let clean = |text: String| clean_scaler_text(redactor, &text);
        match self {
            Self::Status { rpc, code, message } => Self::Status {
                rpc,
                code,
                message: clean(message),
            },
            Self::BadAnswer { rpc, reason } => Self::BadAnswer {
                rpc,
                reason: clean(reason),
            },
            Self::Connect { address, reason } => Self::Connect {
                address,
                reason: clean(reason),
            },
            other => other,
        }
    }

    pub(crate) fn from_status(rpc: &'static str, status: &tonic::Status) -> Self {
        Self::Status {
            rpc,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}
