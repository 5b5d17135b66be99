//! Shared helpers for tests against a real Azurite: queues, messages, SAS tokens, triggers,
//! and a private Azurite process that a test may stop and start.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use azure_core::credentials::Secret;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions, Url};
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use ebb_azure_queue_scaler::connection::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use ebb_azure_queue_scaler::shared_key::SharedKeyPolicy;
use ebb_azure_queue_scaler::{AzureQueueConfig, AzureQueueScaler, ScalerOptions};
use ebb_scaler_sdk::{MetadataSchema, Scaler, ScalerError, Trigger, TriggerMetadata};

/// The shared Azurite's queue endpoint.
pub const SHARED_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";

/// Fails the test unless the shared Azurite runs.
pub fn require_azurite() {
    ebb_scaler_sdk::testing::require_service("Azurite", "127.0.0.1:10001");
}

/// A queue name no other test (or earlier run) uses.
pub fn unique_queue(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A shared-key connection string for the development account at `endpoint`.
pub fn shared_key_connection(endpoint: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};QueueEndpoint={endpoint};"
    )
}

/// A queue client for test setup, signed with the development key.
pub fn admin_client(endpoint: &str, queue: &str) -> QueueClient {
    let policy: Arc<dyn Policy> = Arc::new(SharedKeyPolicy::new(
        DEV_ACCOUNT_NAME,
        Secret::new(DEV_ACCOUNT_KEY),
    ));
    let options = QueueClientOptions {
        client_options: ClientOptions {
            per_try_policies: vec![policy],
            retry: RetryOptions::none(),
            ..ClientOptions::default()
        },
        ..QueueClientOptions::default()
    };
    let url = Url::parse(&format!("{endpoint}/{queue}")).unwrap();
    QueueClient::new(url, None, Some(options)).unwrap()
}

/// Creates `queue` at `endpoint` and returns its admin client.
pub async fn create_queue(endpoint: &str, queue: &str) -> QueueClient {
    ensure_tls_provider();
    let client = admin_client(endpoint, queue);
    client.create(None).await.unwrap();
    client
}

/// The reqwest that azure_core's default transport builds has no crypto provider of its own.
pub fn ensure_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Sends `count` visible messages.
pub async fn send(client: &QueueClient, count: usize) {
    for index in 0..count {
        let message = QueueMessage {
            message_text: Some(format!("message {index}")),
        };
        client
            .send_message(message.try_into().unwrap(), None)
            .await
            .unwrap();
    }
}

/// Sends `count` messages that stay invisible for `seconds`.
pub async fn send_hidden(client: &QueueClient, count: usize, seconds: i32) {
    for index in 0..count {
        let message = QueueMessage {
            message_text: Some(format!("hidden {index}")),
        };
        let options = QueueClientSendMessageOptions {
            visibility_timeout: Some(seconds),
            ..QueueClientSendMessageOptions::default()
        };
        client
            .send_message(message.try_into().unwrap(), Some(options))
            .await
            .unwrap();
    }
}

/// Receives `count` messages with a visibility timeout, making them invisible (in flight).
pub async fn receive(client: &QueueClient, count: i32, visibility_seconds: i32) -> usize {
    let options = QueueClientReceiveMessagesOptions {
        number_of_messages: Some(count),
        visibility_timeout: Some(visibility_seconds),
        ..QueueClientReceiveMessagesOptions::default()
    };
    let received = client
        .receive_messages(Some(options))
        .await
        .unwrap()
        .into_model()
        .unwrap();
    received.items.map_or(0, |items| items.len())
}

/// An account SAS for the development account's queue service (version 2019-12-12 format).
pub fn account_sas(permissions: &str) -> String {
    let version = "2019-12-12";
    let expiry = "2099-01-01T00:00:00Z";
    let to_sign =
        format!("{DEV_ACCOUNT_NAME}\n{permissions}\nq\nsco\n\n{expiry}\n\nhttp,https\n{version}\n");
    let signature = azure_core::hmac::hmac_sha256(&to_sign, &Secret::new(DEV_ACCOUNT_KEY)).unwrap();
    let signature: String = url_encode(&signature);
    format!("sv={version}&ss=q&srt=sco&sp={permissions}&se={expiry}&spr=http,https&sig={signature}")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Parses trigger metadata (and secrets) the way the SDK does for a v1 request.
pub fn parse_trigger(
    metadata: &[(&str, &str)],
    secrets: &[(&str, &str)],
) -> Result<Trigger<AzureQueueConfig>, ScalerError> {
    let to_map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let config: AzureQueueConfig = TriggerMetadata::from_v1(&to_map(metadata), &to_map(secrets))
        .parse(&MetadataSchema::of::<AzureQueueConfig>())?;
    Ok(Trigger {
        namespace: "default".to_owned(),
        name: "worker".to_owned(),
        trigger_name: "queue".to_owned(),
        config,
    })
}

/// A scaler with default options.
pub fn scaler() -> AzureQueueScaler {
    AzureQueueScaler::new(ScalerOptions::default()).unwrap()
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Measures once through the scaler.
pub async fn measure(
    scaler: &AzureQueueScaler,
    trigger: &Trigger<AzureQueueConfig>,
) -> Result<ebb_scaler_sdk::Measurement, ScalerError> {
    scaler.validate(&trigger.config)?;
    scaler.measure(trigger).await
}

/// An Azurite queue service owned by one test, on its own port, which the test may stop and
/// start again. Killed on drop.
pub struct OwnAzurite {
    /// The port it listens on.
    pub port: u16,
    child: Option<Child>,
}

impl OwnAzurite {
    fn binary() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/services/node_modules/.bin/azurite-queue")
    }

    /// Starts Azurite on a free port; fails the test when it is not installed.
    pub async fn start() -> Self {
        ebb_scaler_sdk::testing::require_program("Azurite (npm azurite)", &Self::binary());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut azurite = Self { port, child: None };
        azurite.resume().await;
        azurite
    }

    /// The queue endpoint of the development account on this instance.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/devstoreaccount1", self.port)
    }

    /// Starts (again) on the same port and waits until it answers.
    pub async fn resume(&mut self) {
        let child = Command::new(Self::binary())
            .args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &self.port.to_string(),
                "--inMemoryPersistence",
                "--silent",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let address = format!("127.0.0.1:{}", self.port);
        let up = eventually(Duration::from_secs(30), || {
            let address = address.clone();
            async move { tokio::net::TcpStream::connect(address).await.is_ok() }
        })
        .await;
        assert!(up, "own azurite did not start on {address}");
    }

    /// Kills the process and waits until the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnAzurite {
    fn drop(&mut self) {
        self.stop();
    }
}
