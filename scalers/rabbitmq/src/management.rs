//! The management HTTP API: one queue's counts and rates, or every queue matching a regex
//! across all result pages. One reused HTTP client per TLS configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ebb_scaler_sdk::ScalerError;
use serde::Deserialize;

use crate::address::{BrokerAddress, encode_component, scrub};
use crate::config::TlsOptions;
use crate::tls::TlsError;

/// Columns requested from the API: less JSON to build, send and parse.
const COLUMNS: &str = "name,messages,messages_ready,messages_unacknowledged,\
message_stats.publish_details.rate,message_stats.deliver_get_details.rate,\
message_stats.ack_details.rate";

/// A guard against a broker answering with an ever-growing page count.
const MAX_PAGES: u32 = 10_000;

/// A failed management API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagementError {
    /// The queue or vhost does not exist (404).
    #[error("{what} not found on {broker}")]
    NotFound {
        /// Masked broker address.
        broker: String,
        /// What was looked up.
        what: String,
    },
    /// The API rejected the credentials (401).
    #[error("{broker} rejected the credentials")]
    Unauthenticated {
        /// Masked broker address.
        broker: String,
    },
    /// The user may not read the queue or vhost (403).
    #[error("{broker} denied access to {what}")]
    Forbidden {
        /// Masked broker address.
        broker: String,
        /// What was looked up.
        what: String,
    },
    /// The API refused the query, which for a regex means RabbitMQ cannot compile it.
    #[error("{broker} refused the query for {what}: {reason}")]
    BadRequest {
        /// Masked broker address.
        broker: String,
        /// What was looked up.
        what: String,
        /// The API's reason.
        reason: String,
    },
    /// The API cannot be reached, or answered 5xx.
    #[error("{broker} unreachable: {detail}")]
    Unreachable {
        /// Masked broker address.
        broker: String,
        /// What happened, scrubbed.
        detail: String,
    },
    /// The API throttled the scaler (429).
    #[error("{broker} throttled the request")]
    Throttled {
        /// Masked broker address.
        broker: String,
    },
    /// No answer within the trigger's timeout.
    #[error("{broker} did not answer within {millis} ms")]
    TimedOut {
        /// Masked broker address.
        broker: String,
        /// The timeout.
        millis: u128,
    },
    /// The answer was not what the API documents.
    #[error("{broker} sent an unexpected answer: {detail}")]
    BadAnswer {
        /// Masked broker address.
        broker: String,
        /// What was wrong.
        detail: String,
    },
    /// The TLS settings cannot be used.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

impl From<ManagementError> for ScalerError {
    fn from(error: ManagementError) -> Self {
        let message = error.to_string();
        match error {
            ManagementError::NotFound { .. } => ScalerError::NotFound(message),
            ManagementError::Unauthenticated { .. } => ScalerError::Unauthenticated(message),
            ManagementError::Forbidden { .. } => ScalerError::PermissionDenied(message),
            ManagementError::BadRequest { .. } => ScalerError::invalid("queueName", message),
            ManagementError::Unreachable { .. } => ScalerError::Unavailable(message),
            ManagementError::Throttled { .. } => ScalerError::Throttled(message),
            // As for AMQP: an API that does not answer in time counts as unavailable.
            ManagementError::TimedOut { .. } => ScalerError::Unavailable(message),
            ManagementError::BadAnswer { .. } => ScalerError::Internal(message),
            ManagementError::Tls(tls) => ScalerError::invalid(tls.key(), tls.to_string()),
        }
    }
}

/// One queue as the management API reports it. Counts may be absent while statistics are
/// still being collected for a new queue; absent counts read as 0.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct QueueStats {
    /// Queue name.
    #[serde(default)]
    pub name: String,
    /// Ready plus unacknowledged messages.
    #[serde(default)]
    pub messages: u64,
    /// Messages ready for delivery.
    #[serde(default)]
    pub messages_ready: u64,
    /// Messages delivered and not yet acknowledged.
    #[serde(default)]
    pub messages_unacknowledged: u64,
    /// Rates, when the broker has seen any traffic.
    #[serde(default)]
    pub message_stats: Option<MessageStats>,
}

/// Message rates of a queue, per second.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessageStats {
    /// Publishes into the queue.
    #[serde(default)]
    pub publish_details: Option<Rate>,
    /// Deliveries and gets from the queue.
    #[serde(default)]
    pub deliver_get_details: Option<Rate>,
    /// Acknowledgements.
    #[serde(default)]
    pub ack_details: Option<Rate>,
}

/// One rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
pub struct Rate {
    /// Per second.
    #[serde(default)]
    pub rate: f64,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<QueueStats>,
    #[serde(default)]
    page_count: u32,
}

/// Management API clients, one per TLS configuration, reused for every request.
#[derive(Debug, Default)]
pub struct ManagementClient {
    clients: Mutex<HashMap<TlsOptions, reqwest::Client>>,
}

impl ManagementClient {
    /// A client with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self, tls: &TlsOptions) -> Result<reqwest::Client, ManagementError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(tls) {
            return Ok(client.clone());
        }
        let config = crate::tls::client_config(tls)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("ebb-rabbitmq-scaler/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ManagementError::BadAnswer {
                broker: String::new(),
                detail: format!("cannot build the HTTP client: {error}"),
            })?;
        clients.insert(tls.clone(), client.clone());
        Ok(client)
    }

    /// The stats of one queue.
    pub async fn queue(
        &self,
        broker: &BrokerAddress,
        tls: &TlsOptions,
        queue: &str,
        timeout: Duration,
    ) -> Result<QueueStats, ManagementError> {
        let url = format!(
            "{}/api/queues/{}/{}?columns={COLUMNS}",
            broker.http_base(),
            encode_component(&broker.vhost),
            encode_component(queue)
        );
        let what = format!("queue `{queue}` in vhost `{}`", broker.vhost);
        self.get_json(broker, tls, &url, &what, timeout).await
    }

    /// The stats of every queue whose name matches `pattern` (RabbitMQ's regex dialect),
    /// reading all pages of `page_size` queues within one overall `timeout`.
    pub async fn matching_queues(
        &self,
        broker: &BrokerAddress,
        tls: &TlsOptions,
        pattern: &str,
        page_size: u32,
        timeout: Duration,
    ) -> Result<Vec<QueueStats>, ManagementError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let what = format!("queues matching `{pattern}` in vhost `{}`", broker.vhost);
        let mut queues = Vec::new();
        let mut page_number = 1;
        loop {
            let url = format!(
                "{}/api/queues/{}?page={page_number}&page_size={page_size}&name={}\
                 &use_regex=true&pagination=true&columns={COLUMNS}",
                broker.http_base(),
                encode_component(&broker.vhost),
                encode_component(pattern)
            );
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ManagementError::TimedOut {
                    broker: broker.masked(),
                    millis: timeout.as_millis(),
                });
            }
            let page: Page = self.get_json(broker, tls, &url, &what, left).await?;
            queues.extend(page.items);
            if page_number >= page.page_count.min(MAX_PAGES) {
                return Ok(queues);
            }
            page_number += 1;
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        broker: &BrokerAddress,
        tls: &TlsOptions,
        url: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<T, ManagementError> {
        let client = self.client(tls)?;
        let masked = broker.masked();
        let secrets: Vec<&str> = broker.password.as_deref().into_iter().collect();
        let request = client
            .get(url)
            .basic_auth(
                broker.username.as_deref().unwrap_or(""),
                broker.password.as_deref(),
            )
            .timeout(timeout);
        let unreachable = |error: reqwest::Error| {
            if error.is_timeout() {
                ManagementError::TimedOut {
                    broker: masked.clone(),
                    millis: timeout.as_millis(),
                }
            } else {
                ManagementError::Unreachable {
                    broker: masked.clone(),
                    detail: scrub(&error_chain(&error), &secrets),
                }
            }
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        match status.as_u16() {
            200..=299 => {
                serde_json::from_slice(&body).map_err(|error| ManagementError::BadAnswer {
                    broker: masked.clone(),
                    detail: error.to_string(),
                })
            }
            401 => Err(ManagementError::Unauthenticated { broker: masked }),
            403 => Err(ManagementError::Forbidden {
                broker: masked,
                what: what.to_owned(),
            }),
            404 => Err(ManagementError::NotFound {
                broker: masked,
                what: what.to_owned(),
            }),
            400 => Err(ManagementError::BadRequest {
                broker: masked,
                what: what.to_owned(),
                reason: scrub(&reason(&body), &secrets),
            }),
            429 => Err(ManagementError::Throttled { broker: masked }),
            code => Err(ManagementError::Unreachable {
                broker: masked,
                detail: format!("HTTP {code}: {}", scrub(&reason(&body), &secrets)),
            }),
        }
    }
}

/// The `reason` of a management API error body, or a short prefix of the body.
fn reason(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        reason: Option<String>,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|error| error.reason)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// reqwest's top-level message hides the cause ("error sending request"); the chain has it.
/// reqwest never puts the URL's password in errors because the password travels in a header.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_parse_with_and_without_counts() {
        let full: QueueStats = serde_json::from_str(
            r#"{"name":"q","messages":5,"messages_ready":3,"messages_unacknowledged":2,
                "message_stats":{"publish_details":{"rate":1.5},"deliver_get_details":{"rate":0.5}}}"#,
        )
        .unwrap();
        assert_eq!(full.messages, 5);
        assert_eq!(
            full.message_stats.unwrap().publish_details.unwrap().rate,
            1.5
        );
        let fresh: QueueStats = serde_json::from_str(r#"{"name":"q"}"#).unwrap();
        assert_eq!(fresh.messages, 0);
        assert!(fresh.message_stats.is_none());
    }

    #[test]
    fn error_reason_is_extracted() {
        assert_eq!(
            reason(br#"{"error":"bad_request","reason":"nope"}"#),
            "nope"
        );
        assert_eq!(reason(b"plain"), "plain");
    }
}
