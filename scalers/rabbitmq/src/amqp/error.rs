//! What an AMQP failure means for the trigger: the single mapping from lapin errors to
//! [`ScalerError`] kinds, with credentials scrubbed from every message.

use ebb_scaler_sdk::ScalerError;
use lapin::ErrorKind;

/// AMQP reply codes the broker uses for the failures that matter here.
mod reply {
    pub const CONNECTION_FORCED: u16 = 320;
    pub const ACCESS_REFUSED: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const RESOURCE_LOCKED: u16 = 405;
    pub const NOT_ALLOWED: u16 = 530;
}

/// A failed AMQP operation, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmqpError {
    /// The queue does not exist (the broker closed the channel with 404).
    #[error("queue `{queue}` not found in vhost `{vhost}` on {broker}")]
    QueueNotFound {
        /// Masked broker address.
        broker: String,
        /// The vhost.
        vhost: String,
        /// The queue.
        queue: String,
    },
    /// The broker rejected the credentials.
    #[error("{broker} refused the login: {detail}")]
    LoginRefused {
        /// Masked broker address.
        broker: String,
        /// The broker's reason, scrubbed.
        detail: String,
    },
    /// The user may not use the vhost or queue, or the queue is exclusive to another
    /// connection.
    #[error("{broker} denied access: {detail}")]
    AccessDenied {
        /// Masked broker address.
        broker: String,
        /// The broker's reason, scrubbed.
        detail: String,
    },
    /// The vhost does not exist.
    #[error("{broker}: {detail}")]
    VhostNotFound {
        /// Masked broker address.
        broker: String,
        /// The broker's reason, scrubbed.
        detail: String,
    },
    /// The broker cannot be reached or the connection broke.
    #[error("{broker} unreachable: {detail}")]
    Unreachable {
        /// Masked broker address.
        broker: String,
        /// What happened, scrubbed.
        detail: String,
    },
    /// The operation did not finish within the trigger's timeout.
    #[error("{broker} did not answer within {millis} ms")]
    TimedOut {
        /// Masked broker address.
        broker: String,
        /// The timeout.
        millis: u128,
    },
    /// The TLS settings cannot be used.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Anything else the broker or client library reported.
    #[error("{broker}: {detail}")]
    Other {
        /// Masked broker address.
        broker: String,
        /// What happened, scrubbed.
        detail: String,
    },
}

impl AmqpError {
    /// Whether the failure ended the connection (so it must be replaced), as opposed to only
    /// the channel or nothing at all.
    pub fn connection_lost(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::LoginRefused { .. })
    }
}

/// Where the error happened, for messages.
pub struct Context<'a> {
    /// Masked broker address.
    pub broker: &'a str,
    /// Vhost.
    pub vhost: &'a str,
    /// Queue, for declare errors.
    pub queue: &'a str,
    /// The password, scrubbed from library messages.
    pub secret: Option<&'a str>,
}

/// Classifies a lapin error.
pub fn classify(error: &lapin::Error, context: &Context<'_>) -> AmqpError {
    let broker = context.broker.to_owned();
    let secrets: Vec<&str> = context.secret.into_iter().collect();
    let detail = crate::address::scrub(&error.to_string(), &secrets);
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => {
            let message = crate::address::scrub(amqp.get_message().as_str(), &secrets);
            match amqp.get_id() {
                reply::NOT_FOUND => AmqpError::QueueNotFound {
                    broker,
                    vhost: context.vhost.to_owned(),
                    queue: context.queue.to_owned(),
                },
                reply::ACCESS_REFUSED if message.contains("Login was refused") => {
                    AmqpError::LoginRefused {
                        broker,
                        detail: message,
                    }
                }
                reply::ACCESS_REFUSED | reply::RESOURCE_LOCKED => AmqpError::AccessDenied {
                    broker,
                    detail: message,
                },
                reply::NOT_ALLOWED if message.contains("not found") => AmqpError::VhostNotFound {
                    broker,
                    detail: message,
                },
                reply::NOT_ALLOWED => AmqpError::AccessDenied {
                    broker,
                    detail: message,
                },
                reply::CONNECTION_FORCED => AmqpError::Unreachable {
                    broker,
                    detail: message,
                },
                _ if amqp_hard(error) => AmqpError::Unreachable {
                    broker,
                    detail: message,
                },
                _ => AmqpError::Other {
                    broker,
                    detail: message,
                },
            }
        }
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::ParsingError(_)
        | ErrorKind::SerialisationError(_) => AmqpError::Unreachable { broker, detail },
        _ => AmqpError::Other { broker, detail },
    }
}

fn amqp_hard(error: &lapin::Error) -> bool {
    error.is_amqp_hard_error()
}

impl From<AmqpError> for ScalerError {
    fn from(error: AmqpError) -> Self {
        let message = error.to_string();
        match error {
            AmqpError::QueueNotFound { .. } | AmqpError::VhostNotFound { .. } => {
                ScalerError::NotFound(message)
            }
            AmqpError::LoginRefused { .. } => ScalerError::Unauthenticated(message),
            AmqpError::AccessDenied { .. } => ScalerError::PermissionDenied(message),
            AmqpError::Unreachable { .. } => ScalerError::Unavailable(message),
            // A broker that does not answer within the trigger's timeout is as good as down
            // (health should say so); the caller's own deadline still yields DEADLINE_EXCEEDED.
            AmqpError::TimedOut { .. } => ScalerError::Unavailable(message),
            AmqpError::Tls(tls) => ScalerError::invalid(tls.key(), tls.to_string()),
            AmqpError::Other { .. } => ScalerError::Internal(message),
        }
    }
}
