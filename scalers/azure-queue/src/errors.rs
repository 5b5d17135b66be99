//! Failures of the queue service, classified once and mapped to the protocol's codes, with
//! every message scrubbed of credentials.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use ebb_scaler_sdk::ScalerError;

/// Why reading a queue failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The queue (or the account path) does not exist.
    #[error("queue `{queue}` not found at {endpoint}")]
    QueueNotFound {
        /// The queue name.
        queue: String,
        /// The service endpoint, without query.
        endpoint: String,
    },
    /// The service rejected the credentials (bad key, bad or expired SAS signature, bad token).
    #[error("the storage service rejected the credentials for {endpoint}: {reason}")]
    Unauthenticated {
        /// The service endpoint, without query.
        endpoint: String,
        /// The service's error code or a short description.
        reason: String,
    },
    /// The credentials were accepted but lack permission for the operation.
    #[error("permission denied on {endpoint}: {reason}")]
    PermissionDenied {
        /// The service endpoint, without query.
        endpoint: String,
        /// The service's error code.
        reason: String,
    },
    /// The service throttled the request.
    #[error("the storage service throttled the request: {0}")]
    Throttled(String),
    /// The endpoint cannot be reached, timed out, or answered with a server error.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable {
        /// The service endpoint, without query.
        endpoint: String,
        /// What went wrong, scrubbed.
        reason: String,
    },
    /// No Entra ID token could be had.
    #[error("cannot get an Entra ID token: {0}")]
    Credential(String),
    /// The service answered something unexpected.
    #[error("unexpected answer from the storage service: {0}")]
    Unexpected(String),
}

impl From<AccessError> for ScalerError {
    fn from(error: AccessError) -> Self {
        let message = error.to_string();
        match error {
            AccessError::QueueNotFound { .. } => ScalerError::NotFound(message),
            AccessError::Unauthenticated { .. } | AccessError::Credential(_) => {
                ScalerError::Unauthenticated(message)
            }
            AccessError::PermissionDenied { .. } => ScalerError::PermissionDenied(message),
            AccessError::Throttled(_) => ScalerError::Throttled(message),
            AccessError::Unreachable { .. } => ScalerError::Unavailable(message),
            AccessError::Unexpected(_) => ScalerError::Internal(message),
        }
    }
}

/// Classifies an SDK error for `queue` at `endpoint` (which must carry no query). `secrets`
/// are scrubbed from any text taken from the error.
pub fn classify(
    error: &azure_core::Error,
    queue: &str,
    endpoint: &str,
    secrets: &[&str],
) -> AccessError {
    let endpoint = endpoint.to_owned();
    match error.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = error_code.clone().unwrap_or_default();
            let reason = if code.is_empty() {
                format!("HTTP {}", u16::from(*status))
            } else {
                format!("{code} (HTTP {})", u16::from(*status))
            };
            classify_status(*status, &code, reason, queue, endpoint)
        }
        ErrorKind::Credential => AccessError::Credential(scrub(&innermost(error), secrets)),
        ErrorKind::Connection | ErrorKind::Io => AccessError::Unreachable {
            endpoint,
            reason: scrub(&innermost(error), secrets),
        },
        ErrorKind::DataConversion | ErrorKind::Other => {
            AccessError::Unexpected(scrub(&innermost(error), secrets))
        }
        // ErrorKind is non-exhaustive; anything new is a surprise, not an outage.
        #[allow(unreachable_patterns)]
        _ => AccessError::Unexpected(scrub(&innermost(error), secrets)),
    }
}

fn classify_status(
    status: StatusCode,
    code: &str,
    reason: String,
    queue: &str,
    endpoint: String,
) -> AccessError {
    match u16::from(status) {
        401 => AccessError::Unauthenticated { endpoint, reason },
        403 if code.starts_with("Authentication") || code.is_empty() => {
            AccessError::Unauthenticated { endpoint, reason }
        }
        403 => AccessError::PermissionDenied { endpoint, reason },
        404 => AccessError::QueueNotFound {
            queue: queue.to_owned(),
            endpoint,
        },
        408 | 500 | 502 | 504 => AccessError::Unreachable { endpoint, reason },
        429 | 503 => AccessError::Throttled(reason),
        _ => AccessError::Unexpected(reason),
    }
}

/// The most specific message in an error's source chain: the low-level cause (for example
/// "Connection refused") rather than wrappers that may quote the request URL.
fn innermost(error: &azure_core::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    message
}

/// Removes credentials from text: the given secret values (and their fragments), URL user
/// information and the values of `sig=`, `AccountKey=` and other credential settings.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    ebb_scaler_sdk::Redactor::new(secrets).redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_queries_signatures_and_known_secrets() {
        let text = "error sending request for url (http://h:1/acct/q?sv=1&sig=abc%3D): refused";
        assert_eq!(
            scrub(text, &[]),
            "error sending request for url (http://h:1/acct/q?sv=1&sig=***): refused"
        );
        assert_eq!(
            scrub("bad AccountKey=Zm9v; x", &[]),
            "bad AccountKey=***; x"
        );
        assert_eq!(scrub("sig=abc", &[]), "sig=***");
        assert_eq!(
            scrub("token s3cr3t-token leaked", &["s3cr3t-token"]),
            "token *** leaked"
        );
        assert_eq!(scrub("is it? yes a=b", &[]), "is it? yes a=b");
    }

    #[test]
    fn statuses_map_to_protocol_codes() {
        let map = |status: u16, code: &str| {
            ScalerError::from(classify_status(
                StatusCode::from(status),
                code,
                format!("{code} (HTTP {status})"),
                "q",
                "http://h".to_owned(),
            ))
            .code()
        };
        use tonic::Code;
        assert_eq!(map(403, "AuthenticationFailed"), Code::Unauthenticated);
        assert_eq!(
            map(403, "AuthorizationPermissionMismatch"),
            Code::PermissionDenied
        );
        assert_eq!(map(401, ""), Code::Unauthenticated);
        assert_eq!(map(404, "QueueNotFound"), Code::NotFound);
        assert_eq!(map(503, "ServerBusy"), Code::ResourceExhausted);
        assert_eq!(map(500, "InternalError"), Code::Unavailable);
        assert_eq!(map(400, "InvalidQueryParameterValue"), Code::Internal);
    }

    #[test]
    fn connection_errors_are_unavailable() {
        let error = azure_core::Error::with_message(ErrorKind::Connection, "refused");
        let access = classify(&error, "q", "http://127.0.0.1:1/acct", &[]);
        assert!(matches!(access, AccessError::Unreachable { .. }));
        assert_eq!(ScalerError::from(access).code(), tonic::Code::Unavailable);
    }
}
