//! Opening queues with the scaler's client code, and the few queue calls the demo makes.

use azure_storage_queue::models::{QueueClientReceiveMessagesOptions, QueueMessage};
use ebb_azure_queue_scaler::clients::AzureQueue;
use ebb_azure_queue_scaler::errors::scrub;
use ebb_azure_queue_scaler::measure::QueueSource;
use ebb_azure_queue_scaler::{AzureQueueConfig, AzureQueueScaler, ScalerOptions};

/// Why a queue call failed. Texts never hold the connection string or the account key.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The connection string or queue name was refused (the message names the problem, never
    /// the secret).
    #[error("cannot open queue {queue}: {reason}")]
    Open {
        /// The queue.
        queue: String,
        /// Why.
        reason: String,
    },
    /// The storage service answered with an error or could not be reached.
    #[error("{operation} on queue {queue} failed: {message}")]
    Request {
        /// What was being done.
        operation: &'static str,
        /// The queue.
        queue: String,
        /// The SDK's error text, with credentials (account key, SAS) removed.
        message: String,
    },
}

/// The name of the queue failed messages are moved to, as Azure Functions names it.
pub fn poison_queue_name(queue: &str) -> String {
    format!("{queue}-poison")
}

/// One message as received: what the worker needs to handle, release or delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The service's message id.
    pub message_id: String,
    /// The receipt that proves this receive (needed to delete or release).
    pub pop_receipt: String,
    /// The message text.
    pub body: String,
    /// How many times the message has been received, this time included.
    pub dequeue_count: u64,
}

/// Opens queues of one storage account, sharing one HTTP client.
pub struct Queues {
    scaler: AzureQueueScaler,
    connection: String,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues {
    /// Queues reachable with `connection` (a storage connection string or SAS URL).
    pub fn new(connection: impl Into<String>) -> Result<Self, QueueError> {
        let scaler = AzureQueueScaler::new(ScalerOptions::default())
            .map_err(|error| QueueError::Client(error.to_string()))?;
        Ok(Self {
            scaler,
            connection: connection.into(),
        })
    }

    /// A client for `queue`.
    pub fn open(&self, queue: &str) -> Result<Queue, QueueError> {
        let config: AzureQueueConfig = serde_json::from_value(serde_json::json!({
            "queueName": queue,
            "connection": self.connection,
        }))
        .map_err(|error| QueueError::Open {
            queue: queue.to_owned(),
            reason: error.to_string(),
        })?;
        let inner = self
            .scaler
            .queue(&config)
            .map_err(|error| QueueError::Open {
                queue: queue.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Queue {
            name: queue.to_owned(),
            inner,
            connection: self.connection.clone(),
        })
    }
}

/// One queue.
#[derive(Clone)]
pub struct Queue {
    name: String,
    inner: AzureQueue,
    /// Only to remove it from error texts.
    connection: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// The queue name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn failed(&self, operation: &'static str) -> impl FnOnce(azure_core::Error) -> QueueError {
        let queue = self.name.clone();
        let connection = self.connection.clone();
        move |error| QueueError::Request {
            operation,
            queue,
            message: scrub(&error.to_string(), &[&connection]),
        }
    }

    /// Creates the queue (succeeds when it exists already).
    pub async fn create(&self) -> Result<(), QueueError> {
        self.inner
            .client()
            .create(None)
            .await
            .map_err(self.failed("create"))?;
        Ok(())
    }

    /// Adds a message with text `body`, visible at once.
    pub async fn send(&self, body: &str) -> Result<(), QueueError> {
        let message = QueueMessage {
            message_text: Some(body.to_owned()),
        };
        let content = message.try_into().map_err(self.failed("encode message"))?;
        self.inner
            .client()
            .send_message(content, None)
            .await
            .map_err(self.failed("send"))?;
        Ok(())
    }

    /// Receives at most one message and hides it from other receivers for
    /// `visibility_seconds`.
    pub async fn receive_one(
        &self,
        visibility_seconds: i32,
    ) -> Result<Option<Received>, QueueError> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(1),
            visibility_timeout: Some(visibility_seconds),
            ..QueueClientReceiveMessagesOptions::default()
        };
        let received = self
            .inner
            .client()
            .receive_messages(Some(options))
            .await
            .map_err(self.failed("receive"))?
            .into_model()
            .map_err(self.failed("read received messages"))?;
        let Some(message) = received.items.and_then(|items| items.into_iter().next()) else {
            return Ok(None);
        };
        Ok(Some(Received {
            message_id: message.message_id.unwrap_or_default(),
            pop_receipt: message.pop_receipt.unwrap_or_default(),
            body: message.message_text.unwrap_or_default(),
            dequeue_count: message
                .dequeue_count
                .and_then(|count| u64::try_from(count).ok())
                .unwrap_or(1),
        }))
    }

    /// Deletes a received message: it is done.
    pub async fn delete(&self, message: &Received) -> Result<(), QueueError> {
        self.inner
            .client()
            .delete_message(&message.message_id, &message.pop_receipt, None)
            .await
            .map_err(self.failed("delete"))?;
        Ok(())
    }

    /// Makes a received message visible again at once, for another try.
    pub async fn release(&self, message: &Received) -> Result<(), QueueError> {
        self.inner
            .client()
            .update_message(&message.message_id, &message.pop_receipt, 0, None)
            .await
            .map_err(self.failed("release"))?;
        Ok(())
    }

    /// How many messages are visible right now (exact up to 32).
    pub async fn visible_count(&self) -> Result<u32, QueueError> {
        self.inner
            .peek_visible(ebb_azure_queue_scaler::measure::PEEK_LIMIT)
            .await
            .map_err(|error| QueueError::Open {
                queue: self.name.clone(),
                reason: error.to_string(),
            })
    }

    /// The approximate number of messages, invisible ones included.
    pub async fn approximate_count(&self) -> Result<u64, QueueError> {
        self.inner
            .approximate_count()
            .await
            .map_err(|error| QueueError::Open {
                queue: self.name.clone(),
                reason: error.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_errors_never_show_the_credential() {
        // Nothing listens on port 1 of loopback: the request fails at once.
        for connection in [
            "http://127.0.0.1:1/?sv=2019-12-12&sig=SECRETSIGNATURE1",
            "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=U0VDUkVUS0VZVkFMVUU=;QueueEndpoint=http://127.0.0.1:1/acct",
        ] {
            let queues = Queues::new(connection).unwrap();
            let queue = queues.open("orders").unwrap();
            let error = queue.send("hello").await.unwrap_err().to_string();
            assert!(error.contains("send on queue orders failed"), "{error}");
            for secret in ["SECRETSIGNATURE1", "U0VDUkVUS0VZVkFMVUU="] {
                assert!(!error.contains(secret), "{error}");
            }
            assert!(!format!("{queue:?}{queues:?}").contains("SECRET"));
        }
    }

    #[test]
    fn the_poison_queue_is_named_as_functions_names_it() {
        assert_eq!(poison_queue_name("orders"), "orders-poison");
    }
}
