//! Why a benchmark phase failed.

/// Why a benchmark phase failed. A missed goal is NOT an error: it is a figure in the report.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading `/proc`, a pipe or a socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A child process (scaler, controller side, floor) misbehaved or ended early.
    #[error("child process `{child}`: {message}")]
    Child {
        /// The child's subcommand.
        child: String,
        /// What went wrong.
        message: String,
    },
    /// Something did not happen within its deadline.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        seconds: u64,
    },
    /// A JSON message or result could not be read or written.
    #[error("JSON ({what}): {source}")]
    Json {
        /// Which message.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// `/proc` held something unexpected.
    #[error("cannot parse {file}: {message}")]
    Proc {
        /// The file.
        file: String,
        /// What was wrong.
        message: String,
    },
    /// The scaler could not be served.
    #[error("scaler: {0}")]
    Serve(#[from] ebb_scaler_sdk::ServeError),
    /// The bare tonic client could not connect.
    #[error("floor client: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The fake API server rejected a setup object.
    #[error("fake API server: {0}")]
    Api(String),
    /// The controller under test stopped with an error.
    #[error("controller: {0}")]
    Controller(String),
}

impl BenchError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// A JSON error on message `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }

    /// A deadline passed while waiting for `what`.
    pub fn timeout(what: impl Into<String>, limit: std::time::Duration) -> Self {
        Self::Timeout {
            what: what.into(),
            seconds: limit.as_secs(),
        }
    }
}
