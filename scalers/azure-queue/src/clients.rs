//! One HTTP client for every trigger, and a queue client per queue and credential built on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, FixedRetryOptions, RetryOptions, Transport};
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};

use crate::errors::{AccessError, classify};
use crate::identity::build_credential;
use crate::measure::QueueSource;
use crate::shared_key::SharedKeyPolicy;
use crate::target::{EntraSettings, QueueAuth, QueueTarget};

/// Cached queue clients beyond this are dropped (all at once: rebuilding is cheap), so rotated
/// credentials cannot grow the cache without bound.
const MAX_CACHED_CLIENTS: usize = 4096;

/// Builds the HTTP client shared by every queue client: rustls on ring, a per-request timeout,
/// no redirects, pooled connections.
pub fn http_transport(request_timeout: Duration) -> Result<Transport, reqwest::Error> {
    // reqwest is built without a crypto provider (the default one compiles aws-lc); install
    // ring unless the process already chose one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(request_timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?;
    Ok(Transport::new(Arc::new(client)))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    queue_url: String,
    auth: u64,
}

/// Queue clients by queue and credential, sharing one transport and one Entra credential per
/// identity (so tokens are cached across queues).
pub struct QueueClients {
    transport: Transport,
    retry: RetryOptions,
    token_file: Option<PathBuf>,
    clients: Mutex<HashMap<ClientKey, Arc<QueueClient>>>,
    credentials: Mutex<HashMap<EntraSettings, Arc<dyn TokenCredential>>>,
}

impl QueueClients {
    /// Clients that send through `transport`. A request that fails in transport (for example
    /// on a pooled connection the server just closed) is tried once more, within
    /// `request_timeout`; the host polls again soon, so nothing retries longer than that.
    /// `token_file` is the federated token file for workload identity.
    pub fn new(
        transport: Transport,
        request_timeout: Duration,
        token_file: Option<PathBuf>,
    ) -> Self {
        let budget = azure_core::time::Duration::try_from(request_timeout)
            .unwrap_or(azure_core::time::Duration::seconds(5));
        let retry = RetryOptions::fixed(FixedRetryOptions {
            delay: azure_core::time::Duration::milliseconds(20),
            max_retries: 1,
            max_total_elapsed: budget,
        });
        Self {
            transport,
            retry,
            token_file,
            clients: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
        }
    }

    /// The readable queue for `target`, reusing a cached client.
    pub fn queue(&self, target: &QueueTarget) -> Result<AzureQueue, AccessError> {
        let key = ClientKey {
            queue_url: target.queue_url.to_string(),
            auth: target.auth_fingerprint(),
        };
        let cached = lock(&self.clients).get(&key).cloned();
        let client = match cached {
            Some(client) => client,
            None => {
                let client = Arc::new(self.build(target)?);
                let mut clients = lock(&self.clients);
                if clients.len() >= MAX_CACHED_CLIENTS {
                    clients.clear();
                }
                clients.entry(key).or_insert(client).clone()
            }
        };
        Ok(AzureQueue {
            client,
            queue: target.queue.clone(),
            endpoint: target.queue_url.to_string(),
            secrets: target.secrets(),
        })
    }

    fn build(&self, target: &QueueTarget) -> Result<QueueClient, AccessError> {
        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        let mut credential = None;
        match &target.auth {
            QueueAuth::SharedKey { account, key } => {
                per_try.push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
            }
            QueueAuth::Sas(_) => {}
            QueueAuth::Entra(settings) => credential = Some(self.credential(settings)?),
        }
        let options = QueueClientOptions {
            client_options: ClientOptions {
                per_try_policies: per_try,
                retry: self.retry.clone(),
                transport: Some(self.transport.clone()),
                ..ClientOptions::default()
            },
            ..QueueClientOptions::default()
        };
        QueueClient::new(target.request_url(), credential, Some(options)).map_err(|error| {
            classify(
                &error,
                &target.queue,
                target.queue_url.as_str(),
                &secret_refs(&target.secrets()),
            )
        })
    }

    fn credential(
        &self,
        settings: &EntraSettings,
    ) -> Result<Arc<dyn TokenCredential>, AccessError> {
        if let Some(credential) = lock(&self.credentials).get(settings) {
            return Ok(credential.clone());
        }
        let credential = build_credential(settings, self.token_file.as_deref(), &self.transport)?;
        Ok(lock(&self.credentials)
            .entry(settings.clone())
            .or_insert(credential)
            .clone())
    }
}

impl std::fmt::Debug for QueueClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueClients")
            .field("clients", &lock(&self.clients).len())
            .field("credentials", &lock(&self.credentials).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a cache that is still consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn secret_refs(secrets: &[String]) -> Vec<&str> {
    secrets.iter().map(String::as_str).collect()
}

/// A queue read through the official SDK.
#[derive(Clone)]
pub struct AzureQueue {
    client: Arc<QueueClient>,
    queue: String,
    endpoint: String,
    secrets: Vec<String>,
}

impl std::fmt::Debug for AzureQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureQueue")
            .field("queue", &self.queue)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AzureQueue {
    /// The underlying SDK client (benchmarks and tests compare against it).
    pub fn client(&self) -> &QueueClient {
        &self.client
    }

    fn classify(&self, error: &azure_core::Error) -> AccessError {
        classify(
            error,
            &self.queue,
            &self.endpoint,
            &secret_refs(&self.secrets),
        )
    }
}

impl QueueSource for AzureQueue {
    async fn approximate_count(&self) -> Result<u64, AccessError> {
        let response = self
            .client
            .get_properties(None)
            .await
            .map_err(|error| self.classify(&error))?;
        let count = response
            .approximate_messages_count()
            .map_err(|error| self.classify(&error))?
            .ok_or_else(|| {
                AccessError::Unexpected("no x-ms-approximate-messages-count header".to_owned())
            })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn peek_visible(&self, limit: u32) -> Result<u32, AccessError> {
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            ..QueueClientPeekMessagesOptions::default()
        };
        let peeked = self
            .client
            .peek_messages(Some(options))
            .await
            .map_err(|error| self.classify(&error))?
            .into_model()
            .map_err(|error| self.classify(&error))?;
        let visible = peeked.items.map_or(0, |items| items.len());
        Ok(u32::try_from(visible).unwrap_or(u32::MAX))
    }
}
