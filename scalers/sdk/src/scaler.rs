//! The [`Scaler`] trait and the values it deals in.

use std::future::Future;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::ScalerError;
use crate::proto::v1::MetricTargetType;

/// Who a scaler is, as reported by `GetInfo`.
#[derive(Debug, Clone)]
pub struct ScalerIdentity {
    /// Short machine name, e.g. `"rabbitmq"`.
    pub name: String,
    /// The scaler's version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// One line a person can read.
    pub description: String,
}

/// The trigger a request is for, with its parsed configuration.
#[derive(Debug, Clone)]
pub struct Trigger<C> {
    /// Namespace of the scaled object ("" outside Kubernetes).
    pub namespace: String,
    /// Name of the scaled object.
    pub name: String,
    /// Name of the trigger within the object.
    pub trigger_name: String,
    /// The configuration parsed from metadata and secrets.
    pub config: C,
}

/// One metric of a trigger, as answered by `GetMetricSpec`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Metric name, stable for the same metadata.
    pub name: String,
    /// Value one replica should handle; > 0.
    pub target: f64,
    /// The trigger is active when the value is strictly greater than this.
    pub activation_target: f64,
    /// How the host turns value and target into replicas.
    pub target_type: MetricTargetType,
}

/// One measured value of a metric named in the trigger's specs.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// Metric name, as in its [`MetricSpec`].
    pub name: String,
    /// The measured value; the SDK turns NaN, infinities and negatives into 0.
    pub value: f64,
}

/// The result of measuring a trigger's source once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    /// One value per metric of the trigger's specs.
    pub values: Vec<MetricValue>,
    /// Activity when the scaler knows better than "any value > its activation target";
    /// `None` lets the SDK compute it from the specs.
    pub active: Option<bool>,
    /// Work taken but not finished (unacked or invisible messages), when it can be seen.
    pub in_flight: Option<u64>,
}

impl Measurement {
    /// A measurement of a single metric.
    pub fn single(name: impl Into<String>, value: f64) -> Self {
        Self {
            values: vec![MetricValue {
                name: name.into(),
                value,
            }],
            active: None,
            in_flight: None,
        }
    }

    /// Sets the in-flight count.
    #[must_use]
    pub fn with_in_flight(mut self, in_flight: u64) -> Self {
        self.in_flight = Some(in_flight);
        self
    }
}

/// A scaler: measures one kind of event source for any number of triggers.
///
/// Implementations are shared by every request, so keep connection pools and caches inside.
pub trait Scaler: Send + Sync + 'static {
    /// The trigger configuration, parsed from metadata merged with secrets. Its
    /// `schemars::JsonSchema` derive is the metadata schema `GetInfo` reports: doc comments
    /// become descriptions, `#[serde(default)]` values become defaults, `Option` and defaulted
    /// fields are optional, and `#[schemars(extend("x-secret" = true))]` marks a secret.
    /// Field types must implement `serde::Serialize` for their defaults to be reported (derive
    /// it on enums); durations are strings marked `#[schemars(extend("x-kind" = "duration"))]`
    /// and read with [`crate::serde_helpers::duration`].
    type Config: DeserializeOwned + schemars::JsonSchema + Clone + Send + Sync + 'static;

    /// Who the scaler is.
    fn identity(&self) -> ScalerIdentity;

    /// Checks a parsed configuration beyond what its type enforces (ranges, combinations).
    /// Errors should be [`ScalerError::InvalidMetadata`] naming the key.
    fn validate(&self, config: &Self::Config) -> Result<(), ScalerError> {
        let _ = config;
        Ok(())
    }

    /// The metrics a trigger exposes. Must not touch the source.
    fn metric_specs(&self, trigger: &Trigger<Self::Config>) -> Vec<MetricSpec>;

    /// Measures the source once for a trigger.
    fn measure(
        &self,
        trigger: &Trigger<Self::Config>,
    ) -> impl Future<Output = Result<Measurement, ScalerError>> + Send;

    /// Identity of the measured source, used to share one push sampler between every
    /// subscriber of the same source (for example broker + vhost + queue). Triggers with the
    /// same key must measure the same thing.
    fn source_key(&self, trigger: &Trigger<Self::Config>) -> String;

    /// The broker (server, account) a trigger's source lives on, without credentials, e.g.
    /// `amqp://rabbit:5672`. Health is kept per broker: each has a gRPC health service
    /// `broker:<key>`, and the scaler as a whole is NOT_SERVING only while every broker that
    /// answered before is unreachable, so one trigger aimed at a dead or mistyped broker never
    /// takes a shared scaler out of service. The default, `""`, treats all triggers as one
    /// source.
    fn broker_key(&self, trigger: &Trigger<Self::Config>) -> String {
        let _ = trigger;
        String::new()
    }

    /// How often push subscribers' sources are sampled by default; `None` disables
    /// StreamIsActive.
    fn push_interval(&self) -> Option<Duration> {
        None
    }

    /// How often one trigger's source is sampled for push subscribers. Override when some
    /// sources change more slowly than others (a statistics API that refreshes every few
    /// seconds need not be read every 250 ms). Defaults to [`Scaler::push_interval`].
    fn sample_interval(&self, trigger: &Trigger<Self::Config>) -> Duration {
        let _ = trigger;
        self.push_interval().unwrap_or(Duration::from_secs(1))
    }

    /// Whether this scaler can report in-flight work (advertised in `GetInfo`).
    fn reports_in_flight(&self) -> bool {
        false
    }

    /// The loopback port the binary listens on when `--listen` is not given.
    fn default_port(&self) -> u16 {
        9000
    }
}
