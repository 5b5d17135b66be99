//! The RabbitMQ [`Scaler`]: metric specs from metadata, and one measurement over AMQP or the
//! management API.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, Trigger};

use crate::amqp::{AmqpPool, BrokerKey, PoolOptions};
use crate::config::{Mode, Protocol, RabbitMqConfig, Settings};
use crate::management::{ManagementClient, QueueStats};

/// The loopback port the binary listens on when `--listen` is not given.
pub const DEFAULT_PORT: u16 = 9001;

/// Longest metric name part taken from the queue name.
const MAX_METRIC_QUEUE_CHARS: usize = 100;

/// Tunables of the scaler process (not per trigger).
#[derive(Debug, Clone)]
pub struct ScalerOptions {
    /// How often each distinct queue with push subscribers is sampled.
    pub push_interval: Duration,
    /// The AMQP connection pool's tunables.
    pub pool: PoolOptions,
}

impl Default for ScalerOptions {
    fn default() -> Self {
        Self {
            push_interval: Duration::from_millis(250),
            pool: PoolOptions::default(),
        }
    }
}

/// Measures RabbitMQ queues for any number of triggers.
#[derive(Debug)]
pub struct RabbitMqScaler {
    options: ScalerOptions,
    amqp: Arc<AmqpPool>,
    management: ManagementClient,
    /// Keys credential fingerprints in source keys; random per process, so a key that
    /// reaches a log cannot be matched against guessed passwords elsewhere.
    fingerprint_seed: std::collections::hash_map::RandomState,
}

impl Default for RabbitMqScaler {
    fn default() -> Self {
        Self::new(ScalerOptions::default())
    }
}

impl RabbitMqScaler {
    /// A scaler with no connections yet.
    pub fn new(options: ScalerOptions) -> Self {
        Self {
            amqp: Arc::new(AmqpPool::new(options.pool.clone())),
            management: ManagementClient::new(),
            fingerprint_seed: std::collections::hash_map::RandomState::new(),
            options,
        }
    }

    /// The AMQP pool, for inspection (connection counts) and shutdown.
    pub fn amqp_pool(&self) -> Arc<AmqpPool> {
        self.amqp.clone()
    }

    async fn measure_amqp(&self, settings: &Settings) -> Result<Measurement, ScalerError> {
        let key = BrokerKey {
            address: settings.broker.clone(),
            tls: settings.tls.clone(),
        };
        let counts = self
            .amqp
            .broker(&key)
            .queue_counts(&settings.queue, settings.timeout)
            .await?;
        // AMQP sees ready messages only: in-flight (unacknowledged) work is unknown here.
        #[allow(clippy::cast_precision_loss)]
        let value = counts.ready as f64;
        Ok(Measurement::single(metric_name(settings), value))
    }

    async fn measure_http(&self, settings: &Settings) -> Result<Measurement, ScalerError> {
        let (value, unacknowledged) = match settings.regex {
            None => {
                let stats = self
                    .management
                    .queue(
                        &settings.broker,
                        &settings.tls,
                        &settings.queue,
                        settings.timeout,
                    )
                    .await?;
                (value_of(&stats, settings), stats.messages_unacknowledged)
            }
            Some((operation, page_size)) => {
                let queues = self
                    .management
                    .matching_queues(
                        &settings.broker,
                        &settings.tls,
                        &settings.queue,
                        page_size,
                        settings.timeout,
                    )
                    .await?;
                let values: Vec<f64> = queues.iter().map(|q| value_of(q, settings)).collect();
                let unacknowledged = queues.iter().map(|q| q.messages_unacknowledged).sum();
                (operation.combine(&values), unacknowledged)
            }
        };
        Ok(Measurement::single(metric_name(settings), value).with_in_flight(unacknowledged))
    }

    fn fingerprint(&self, settings: &Settings) -> u64 {
        let mut hasher = self.fingerprint_seed.build_hasher();
        settings.broker.username.hash(&mut hasher);
        settings.broker.password.hash(&mut hasher);
        settings.tls.hash(&mut hasher);
        hasher.finish()
    }
}

/// The value a queue contributes in the trigger's mode.
fn value_of(stats: &QueueStats, settings: &Settings) -> f64 {
    let rate = |pick: fn(&crate::management::MessageStats) -> Option<crate::management::Rate>| {
        stats
            .message_stats
            .as_ref()
            .and_then(pick)
            .map_or(0.0, |rate| rate.rate)
    };
    #[allow(clippy::cast_precision_loss)]
    match settings.mode {
        Mode::QueueLength if settings.exclude_unacknowledged => stats.messages_ready as f64,
        Mode::QueueLength => stats.messages as f64,
        Mode::MessageRate => rate(|s| s.publish_details),
        Mode::DeliverRate => rate(|s| s.deliver_get_details),
        Mode::AckRate => rate(|s| s.ack_details),
    }
}

/// `rabbitmq-<queue>` with the queue name reduced to lowercase letters, digits and `-`, as
/// KEDA names its rabbitmq metrics.
pub fn metric_name(settings: &Settings) -> String {
    let mut name = String::from("rabbitmq-");
    let mut dash = true;
    for c in settings.queue.chars().take(MAX_METRIC_QUEUE_CHARS) {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
            dash = false;
        } else if !dash {
            name.push('-');
            dash = true;
        }
    }
    while name.ends_with('-') && name.len() > "rabbitmq".len() {
        name.pop();
    }
    name
}

impl Scaler for RabbitMqScaler {
    type Config = RabbitMqConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "rabbitmq".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Scales on RabbitMQ queue length or message rates, over AMQP or the \
                          management API"
                .into(),
        }
    }

    fn validate(&self, config: &RabbitMqConfig) -> Result<(), ScalerError> {
        Settings::resolve(config).map(|_| ())
    }

    fn metric_specs(&self, trigger: &Trigger<RabbitMqConfig>) -> Vec<MetricSpec> {
        // `validate` ran before this, so resolving cannot fail here; the fallback keeps the
        // name stable if it ever did.
        let name = Settings::resolve(&trigger.config)
            .map(|settings| metric_name(&settings))
            .unwrap_or_else(|_| "rabbitmq".into());
        vec![MetricSpec {
            name,
            target: trigger.config.value,
            activation_target: trigger.config.activation_value,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(&self, trigger: &Trigger<RabbitMqConfig>) -> Result<Measurement, ScalerError> {
        let settings = Settings::resolve(&trigger.config)?;
        match settings.protocol {
            Protocol::Amqp => self.measure_amqp(&settings).await,
            Protocol::Http => self.measure_http(&settings).await,
        }
    }

    fn source_key(&self, trigger: &Trigger<RabbitMqConfig>) -> String {
        match Settings::resolve(&trigger.config) {
            Ok(settings) => format!(
                "{:?}|{}|{:016x}|{}|{}|{:?}|{}",
                settings.protocol,
                settings.broker.masked(),
                self.fingerprint(&settings),
                settings.queue,
                settings.mode.as_str(),
                settings.regex,
                settings.exclude_unacknowledged,
            ),
            // Invalid triggers never reach a sampler; keep them apart anyway.
            Err(_) => format!("invalid|{}|{}", trigger.name, trigger.trigger_name),
        }
    }

    fn broker_key(&self, trigger: &Trigger<RabbitMqConfig>) -> String {
        // Scheme, host, port (and a management API's path prefix): no user, vhost or queue,
        // so every trigger on one broker shares its health.
        Settings::resolve(&trigger.config)
            .map(|settings| settings.broker.http_base())
            .unwrap_or_default()
    }

    fn push_interval(&self) -> Option<Duration> {
        Some(self.options.push_interval)
    }

    fn sample_interval(&self, trigger: &Trigger<RabbitMqConfig>) -> Duration {
        // The management API refreshes its statistics about every 5 s; sampling it at the
        // AMQP rate would only add load to the broker.
        match Settings::resolve(&trigger.config).map(|settings| settings.protocol) {
            Ok(Protocol::Http) => self.options.push_interval.max(HTTP_SAMPLE_INTERVAL),
            _ => self.options.push_interval,
        }
    }

    fn reports_in_flight(&self) -> bool {
        true
    }

    fn default_port(&self) -> u16 {
        DEFAULT_PORT
    }
}

/// The slowest useful sampling of management statistics for push subscribers.
const HTTP_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Operation, TlsOptions};

    fn settings(queue: &str) -> Settings {
        Settings {
            protocol: Protocol::Amqp,
            broker: crate::address::BrokerAddress::parse("amqp://h").unwrap(),
            tls: TlsOptions::default(),
            queue: queue.into(),
            regex: None,
            mode: Mode::QueueLength,
            exclude_unacknowledged: false,
            target: 20.0,
            activation: 0.0,
            timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn metric_names_are_lowercase_dashes_and_stable() {
        assert_eq!(metric_name(&settings("orders")), "rabbitmq-orders");
        assert_eq!(
            metric_name(&settings("Team A/Orders.v2")),
            "rabbitmq-team-a-orders-v2"
        );
        assert_eq!(metric_name(&settings(r"^jobs\.\d+$")), "rabbitmq-jobs-d");
        assert_eq!(metric_name(&settings("///")), "rabbitmq");
        assert!(metric_name(&settings(&"q".repeat(300))).len() <= 109);
    }

    #[test]
    fn operations_combine_without_negative_zero() {
        assert_eq!(Operation::Sum.combine(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(Operation::Max.combine(&[1.0, 5.0, 3.0]), 5.0);
        assert_eq!(Operation::Avg.combine(&[1.0, 2.0]), 1.5);
        for operation in [Operation::Sum, Operation::Max, Operation::Avg] {
            assert!(operation.combine(&[]).is_sign_positive());
        }
    }
}
