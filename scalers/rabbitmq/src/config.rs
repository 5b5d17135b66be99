//! Trigger metadata: the typed form the SDK parses (its schema is what `GetInfo` reports) and
//! the checked settings a measurement works from.

use std::time::Duration;

use ebb_scaler_sdk::{ScalerError, schemars, serde_helpers};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::address::{BrokerAddress, Scheme};

/// RabbitMQ's limit on page sizes of the management API's paginated lists.
pub const MAX_PAGE_SIZE: u32 = 500;
/// AMQP short strings (queue names) are at most 255 bytes.
const MAX_QUEUE_NAME_BYTES: usize = 255;

/// Metadata of a `rabbitmq` trigger. Keys and defaults follow KEDA's `rabbitmq` trigger.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RabbitMqConfig {
    /// Broker address: `amqp[s]://[user:password@]host[:port][/vhost]` for AMQP, or
    /// `http[s]://[user:password@]host[:port][/path-prefix][/vhost]` for the management API.
    /// Escape a vhost as a URL path segment (`/` is `%2F`). Usually a secret, or `hostFromEnv`
    /// over KEDA's protocol.
    #[schemars(extend("x-secret" = true))]
    pub host: String,
    /// How to measure: `auto` takes the protocol from the scheme of `host`.
    #[serde(default)]
    pub protocol: ProtocolChoice,
    /// What to measure. `QueueLength` is the message backlog; the rate modes (HTTP only) are
    /// messages per second over the management API's sampling window.
    #[serde(default)]
    pub mode: Mode,
    /// Target value per replica: messages for `QueueLength`, messages per second for rates.
    #[serde(default = "default_value")]
    pub value: f64,
    /// The trigger is active when the measured value is strictly greater than this.
    #[serde(default)]
    pub activation_value: f64,
    /// The queue to measure, or with `useRegex` a regular expression over queue names.
    pub queue_name: String,
    /// The vhost; overrides the vhost written in `host`.
    #[serde(default)]
    pub vhost_name: Option<String>,
    /// Treat `queueName` as a regular expression (evaluated by RabbitMQ) and combine every
    /// matching queue with `operation`. HTTP only; all result pages are read.
    #[serde(default)]
    pub use_regex: bool,
    /// How matching queues combine when `useRegex` is true.
    #[serde(default)]
    pub operation: Operation,
    /// Queues per management API page when `useRegex` is true (1 to 500).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Count only ready messages, not those delivered and awaiting acknowledgement. HTTP only;
    /// AMQP always counts ready messages only.
    #[serde(default)]
    pub exclude_unacknowledged: bool,
    /// Time limit of one measurement: milliseconds, or a duration such as `2s`.
    #[serde(
        default = "default_timeout",
        deserialize_with = "serde_helpers::duration"
    )]
    #[schemars(with = "String", extend("x-kind" = "duration", "default" = "3s"))]
    pub timeout: Duration,
    /// Skip verification of the broker's TLS certificate.
    #[serde(default)]
    pub unsafe_ssl: bool,
    /// User name; overrides the one in `host`.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub username: Option<String>,
    /// Password; overrides the one in `host`.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub password: Option<String>,
    /// PEM certificate(s) of the certificate authority that signed the broker's certificate,
    /// trusted in addition to the system's roots.
    #[serde(default)]
    pub ca: Option<String>,
    /// PEM client certificate chain for mutual TLS; needs `key`.
    #[serde(default)]
    pub cert: Option<String>,
    /// PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1) of the client certificate.
    #[serde(default)]
    #[schemars(extend("x-secret" = true))]
    pub key: Option<String>,
}

fn default_value() -> f64 {
    20.0
}

fn default_page_size() -> u32 {
    100
}

fn default_timeout() -> Duration {
    Duration::from_secs(3)
}

/// The `protocol` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolChoice {
    /// From the scheme of `host`.
    #[default]
    Auto,
    /// AMQP 0-9-1: passive queue.declare.
    Amqp,
    /// The management HTTP API.
    Http,
}

/// The `mode` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Mode {
    /// Messages in the queue.
    #[default]
    QueueLength,
    /// Messages published per second.
    MessageRate,
    /// Messages delivered to consumers (or fetched) per second.
    DeliverRate,
    /// Messages acknowledged per second.
    AckRate,
}

impl Mode {
    /// The mode as written in metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueLength => "QueueLength",
            Self::MessageRate => "MessageRate",
            Self::DeliverRate => "DeliverRate",
            Self::AckRate => "AckRate",
        }
    }

    /// Whether the mode is a rate (and so needs the management API).
    pub fn is_rate(self) -> bool {
        !matches!(self, Self::QueueLength)
    }
}

/// The `operation` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Sum over matching queues.
    #[default]
    Sum,
    /// Largest value of any matching queue.
    Max,
    /// Mean over matching queues (0 when none match).
    Avg,
}

impl Operation {
    /// Combines per-queue values.
    pub fn combine(self, values: &[f64]) -> f64 {
        match self {
            // A fold from +0.0: `Sum` of no floats is -0.0.
            Self::Sum => values.iter().fold(0.0, |total, value| total + value),
            Self::Max => values.iter().copied().fold(0.0, f64::max),
            Self::Avg if values.is_empty() => 0.0,
            #[allow(clippy::cast_precision_loss)]
            Self::Avg => Self::Sum.combine(values) / values.len() as f64,
        }
    }
}

/// How a trigger is measured, after the protocol is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Passive queue.declare over AMQP.
    Amqp,
    /// The management HTTP API.
    Http,
}

/// TLS options for the connection to the broker.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsOptions {
    /// Accept any certificate.
    pub unsafe_ssl: bool,
    /// Extra trusted CA certificates (PEM).
    pub ca: Option<String>,
    /// Client certificate chain and key (PEM).
    pub client: Option<(String, String)>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("unsafe_ssl", &self.unsafe_ssl)
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

/// A trigger's checked settings: the broker with final credentials and vhost, and what to
/// measure.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How to measure.
    pub protocol: Protocol,
    /// Broker address with the final credentials and vhost applied.
    pub broker: BrokerAddress,
    /// TLS options.
    pub tls: TlsOptions,
    /// Queue name, or regex when `regex` is set.
    pub queue: String,
    /// Regex matching and how to combine, HTTP only.
    pub regex: Option<(Operation, u32)>,
    /// What to measure.
    pub mode: Mode,
    /// Count ready messages only (HTTP).
    pub exclude_unacknowledged: bool,
    /// Target per replica.
    pub target: f64,
    /// Activation threshold.
    pub activation: f64,
    /// Time limit of one measurement.
    pub timeout: Duration,
}

impl Settings {
    /// Checks a parsed configuration and resolves protocol, credentials and vhost. Every
    /// error names its key and never contains a credential.
    pub fn resolve(config: &RabbitMqConfig) -> Result<Self, ScalerError> {
        let mut broker = BrokerAddress::parse(&config.host)
            .map_err(|error| ScalerError::invalid("host", error.to_string()))?;
        if broker.scheme.is_amqp()
            && broker
                .with_credentials()
                .parse::<lapin::uri::AMQPUri>()
                .is_err()
        {
            // lapin's message may quote the URL, so it is not passed on.
            return Err(ScalerError::invalid(
                "host",
                "has connection options lapin cannot read: `heartbeat`, `channel_max`, \
                 `frame_max` and `connection_timeout` take whole numbers",
            ));
        }
        let protocol = match (config.protocol, broker.scheme.is_amqp()) {
            (ProtocolChoice::Auto | ProtocolChoice::Amqp, true) => Protocol::Amqp,
            (ProtocolChoice::Auto | ProtocolChoice::Http, false) => Protocol::Http,
            (ProtocolChoice::Amqp, false) | (ProtocolChoice::Http, true) => {
                return Err(ScalerError::invalid(
                    "protocol",
                    format!(
                        "does not match the `{}` scheme of `host`",
                        broker.scheme.as_str()
                    ),
                ));
            }
        };
        if let Some(user) = config.username.as_ref().filter(|u| !u.is_empty()) {
            broker.username = Some(user.clone());
        }
        if let Some(password) = &config.password {
            broker.password = Some(password.clone());
        }
        if let Some(vhost) = config.vhost_name.as_ref().filter(|v| !v.is_empty()) {
            broker.vhost = vhost.clone();
        }
        if config.queue_name.trim().is_empty() {
            return Err(ScalerError::invalid("queueName", "must not be empty"));
        }
        if config.queue_name.len() > MAX_QUEUE_NAME_BYTES && !config.use_regex {
            return Err(ScalerError::invalid(
                "queueName",
                "is longer than 255 bytes",
            ));
        }
        if protocol == Protocol::Amqp && config.mode.is_rate() {
            return Err(ScalerError::invalid(
                "mode",
                format!(
                    "{} needs the management API (protocol http)",
                    config.mode.as_str()
                ),
            ));
        }
        if protocol == Protocol::Amqp && config.use_regex {
            return Err(ScalerError::invalid(
                "useRegex",
                "needs the management API (protocol http)",
            ));
        }
        ebb_scaler_sdk::check_target("value", config.value)?;
        ebb_scaler_sdk::check_threshold("activationValue", config.activation_value)?;
        if config.page_size == 0 || config.page_size > MAX_PAGE_SIZE {
            return Err(ScalerError::invalid(
                "pageSize",
                format!("must be from 1 to {MAX_PAGE_SIZE}"),
            ));
        }
        if config.timeout.is_zero() {
            return Err(ScalerError::invalid("timeout", "must be greater than 0"));
        }
        let client = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => return Err(ScalerError::invalid("key", "is required with `cert`")),
            (None, Some(_)) => return Err(ScalerError::invalid("cert", "is required with `key`")),
        };
        let tls = TlsOptions {
            unsafe_ssl: config.unsafe_ssl,
            ca: config.ca.clone(),
            client,
        };
        if !broker.scheme.is_tls() && (tls.ca.is_some() || tls.client.is_some()) {
            return Err(ScalerError::invalid(
                "ca",
                "TLS material needs an amqps:// or https:// `host`",
            ));
        }
        Ok(Self {
            protocol,
            broker,
            tls,
            queue: config.queue_name.clone(),
            regex: config
                .use_regex
                .then_some((config.operation, config.page_size)),
            mode: config.mode,
            exclude_unacknowledged: config.exclude_unacknowledged,
            target: config.value,
            activation: config.activation_value,
            timeout: config.timeout,
        })
    }

    /// Whether the broker speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.broker.scheme, Scheme::Amqps | Scheme::Https)
    }
}
