//! The `azure-queue` scaler: the SDK's [`Scaler`] over Azure Storage queues.

use std::path::PathBuf;
use std::time::Duration;

use azure_core::http::{Transport, Url};
use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{
    Measurement, MetricSpec, MetricValue, Scaler, ScalerError, ScalerIdentity, Trigger,
};

use crate::clients::{AzureQueue, QueueClients};
use crate::config::AzureQueueConfig;
use crate::connection::DEV_QUEUE_ENDPOINT;
use crate::measure::measure_queue;
use crate::target::QueueTarget;

/// The port the binary listens on (loopback) when `--listen` is not given.
pub const DEFAULT_PORT: u16 = 9002;

/// Settings of a scaler process (not of a trigger).
#[derive(Debug, Clone)]
pub struct ScalerOptions {
    /// How often StreamIsActive samples each distinct queue.
    pub push_interval: Duration,
    /// Timeout of one HTTP request to the storage service.
    pub request_timeout: Duration,
    /// Where `UseDevelopmentStorage=true` points.
    pub dev_queue_endpoint: Url,
    /// The federated service account token for workload identity (AKS sets
    /// AZURE_FEDERATED_TOKEN_FILE); `identity: auto` uses workload identity when it is set.
    pub federated_token_file: Option<PathBuf>,
}

impl Default for ScalerOptions {
    fn default() -> Self {
        Self {
            push_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            dev_queue_endpoint: Url::parse(DEV_QUEUE_ENDPOINT)
                .unwrap_or_else(|_| unreachable!("the development endpoint is a valid URL")),
            federated_token_file: None,
        }
    }
}

/// Measures Azure Storage queues for any number of triggers, sharing one HTTP client.
#[derive(Debug)]
pub struct AzureQueueScaler {
    clients: QueueClients,
    options: ScalerOptions,
}

/// Why the scaler could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl AzureQueueScaler {
    /// A scaler with its own HTTP client.
    pub fn new(options: ScalerOptions) -> Result<Self, BuildError> {
        let transport = crate::clients::http_transport(options.request_timeout)?;
        Ok(Self::with_transport(options, transport))
    }

    /// A scaler sending through `transport` (tests inject one).
    pub fn with_transport(options: ScalerOptions, transport: Transport) -> Self {
        Self {
            clients: QueueClients::new(
                transport,
                options.request_timeout,
                options.federated_token_file.clone(),
            ),
            options,
        }
    }

    /// The queue a trigger measures, with its cached client.
    pub fn queue(&self, config: &AzureQueueConfig) -> Result<AzureQueue, ScalerError> {
        let target = QueueTarget::resolve(config, &self.options.dev_queue_endpoint)?;
        Ok(self.clients.queue(&target)?)
    }
}

/// The metric name of a queue: stable, lowercase, as KEDA names it before its index prefix.
pub fn metric_name(queue: &str) -> String {
    format!("azure-queue-{queue}")
}

impl Scaler for AzureQueueScaler {
    type Config = AzureQueueConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "azure-queue".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Scales on the length of an Azure Storage queue".to_owned(),
        }
    }

    fn validate(&self, config: &AzureQueueConfig) -> Result<(), ScalerError> {
        config.validate()?;
        // Resolving parses the connection string, so a bad one fails GetMetricSpec as
        // INVALID_ARGUMENT instead of every poll.
        QueueTarget::resolve(config, &self.options.dev_queue_endpoint).map(|_| ())
    }

    fn metric_specs(&self, trigger: &Trigger<AzureQueueConfig>) -> Vec<MetricSpec> {
        let config = &trigger.config;
        vec![MetricSpec {
            name: metric_name(&config.queue_name),
            target: config.queue_length as f64,
            activation_target: config.activation_queue_length as f64,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(
        &self,
        trigger: &Trigger<AzureQueueConfig>,
    ) -> Result<Measurement, ScalerError> {
        let config = &trigger.config;
        let queue = self.queue(config)?;
        let reading = measure_queue(&queue, config.queue_length_strategy).await?;
        tracing::debug!(
            queue = %config.queue_name,
            strategy = config.queue_length_strategy.as_str(),
            length = reading.length,
            in_flight = ?reading.in_flight,
            "measured queue"
        );
        Ok(Measurement {
            values: vec![MetricValue {
                name: metric_name(&config.queue_name),
                value: reading.length as f64,
            }],
            active: None,
            in_flight: reading.in_flight,
        })
    }

    fn broker_key(&self, trigger: &Trigger<AzureQueueConfig>) -> String {
        // The queue service of the account: the queue URL without its queue, never a query.
        QueueTarget::resolve(&trigger.config, &self.options.dev_queue_endpoint)
            .map(|target| {
                let mut service = target.queue_url;
                if let Ok(mut segments) = service.path_segments_mut() {
                    segments.pop();
                }
                service.set_query(None);
                service.as_str().trim_end_matches('/').to_owned()
            })
            .unwrap_or_default()
    }

    fn source_key(&self, trigger: &Trigger<AzureQueueConfig>) -> String {
        let config = &trigger.config;
        match QueueTarget::resolve(config, &self.options.dev_queue_endpoint) {
            Ok(target) => format!(
                "{} {} {:016x}",
                target.queue_url,
                config.queue_length_strategy.as_str(),
                target.auth_fingerprint()
            ),
            // Unresolvable triggers fail in measure; they share nothing.
            Err(_) => format!(
                "unresolved {} {} {}",
                trigger.namespace, trigger.name, trigger.trigger_name
            ),
        }
    }

    fn push_interval(&self) -> Option<Duration> {
        Some(self.options.push_interval)
    }

    fn reports_in_flight(&self) -> bool {
        true
    }

    fn default_port(&self) -> u16 {
        DEFAULT_PORT
    }
}
