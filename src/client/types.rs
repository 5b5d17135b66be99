//! Protocol-neutral values: what a host needs to know about a scaler and a trigger, whether
//! the scaler speaks ebb's `ebb.scaler.v1` or KEDA's `externalscaler`.

use super::StringMap;
use crate::proto::v1;

/// The protocol a scaler speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// ebb's `ebb.scaler.v1` (GetInfo answered).
    V1,
    /// KEDA's `externalscaler.ExternalScaler` only (GetInfo answered UNIMPLEMENTED).
    Keda,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V1 => "ebb.scaler.v1",
            Self::Keda => "externalscaler (KEDA)",
        })
    }
}

/// Optional features a scaler offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// StreamIsActive pushes activity changes.
    pub push: bool,
    /// Readings may carry in-flight work.
    pub in_flight: bool,
    /// KEDA's protocol is served on the same port too.
    pub keda_compatible: bool,
}

/// How a metadata value is parsed by the scaler.
pub type ValueKind = v1::ValueKind;

/// The schema of one trigger metadata key, as reported by `GetInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataField {
    /// The key as written in trigger metadata.
    pub key: String,
    /// The scaler answers INVALID_ARGUMENT when it is absent.
    pub required: bool,
    /// The value used when absent; empty when none.
    pub default_value: String,
    /// What the key means.
    pub description: String,
    /// The value is a credential: send it in secrets, never show it.
    pub secret: bool,
    /// How the value is parsed.
    pub kind: ValueKind,
    /// Accepted values for [`ValueKind::Enum`].
    pub allowed_values: Vec<String>,
}

/// What a scaler is. For a KEDA-only scaler only [`ScalerInfo::protocol`] is known: the names
/// are empty, `protocol_version` is 0, the schema is empty and the capabilities are all off
/// except `keda_compatible` (whether it pushes depends on the trigger type, `external-push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalerInfo {
    /// The protocol detected.
    pub protocol: Protocol,
    /// `GetInfoResponse.protocol_version` (1 for v1), 0 for KEDA.
    pub protocol_version: u32,
    /// Short machine name, e.g. `rabbitmq`.
    pub name: String,
    /// The scaler's version.
    pub version: String,
    /// One line for people.
    pub description: String,
    /// Optional features.
    pub capabilities: Capabilities,
    /// Every metadata key the scaler understands.
    pub metadata: Vec<MetadataField>,
}

impl ScalerInfo {
    pub(crate) fn keda() -> Self {
        Self {
            protocol: Protocol::Keda,
            protocol_version: 0,
            name: String::new(),
            version: String::new(),
            description: String::new(),
            capabilities: Capabilities {
                keda_compatible: true,
                ..Capabilities::default()
            },
            metadata: Vec::new(),
        }
    }

    pub(crate) fn from_v1(info: v1::GetInfoResponse) -> Self {
        let capabilities = info.capabilities.unwrap_or_default();
        Self {
            protocol: Protocol::V1,
            protocol_version: info.protocol_version,
            name: info.name,
            version: info.version,
            description: info.description,
            capabilities: Capabilities {
                push: capabilities.push,
                in_flight: capabilities.in_flight,
                keda_compatible: capabilities.keda_compatible,
            },
            metadata: info
                .metadata
                .into_iter()
                .map(|field| MetadataField {
                    kind: ValueKind::try_from(field.kind).unwrap_or(ValueKind::Unspecified),
                    key: field.key,
                    required: field.required,
                    default_value: field.default_value,
                    description: field.description,
                    secret: field.secret,
                    allowed_values: field.allowed_values,
                })
                .collect(),
        }
    }

    /// The schema of `key`, if the scaler lists it.
    pub fn field(&self, key: &str) -> Option<&MetadataField> {
        self.metadata.iter().find(|field| field.key == key)
    }
}

/// The trigger a call is about: who it belongs to, its metadata and its resolved secrets.
/// `Debug` shows secret keys only, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TriggerInput {
    /// Namespace of the scaled object ("" outside Kubernetes).
    pub namespace: String,
    /// Name of the scaled object.
    pub name: String,
    /// Name of the trigger within the object.
    pub trigger_name: String,
    /// Position of the trigger in the object's list, from 0.
    pub trigger_index: u32,
    /// Plain trigger metadata.
    pub metadata: StringMap,
    /// Resolved credentials. Sent apart over v1; merged into the metadata over KEDA's
    /// protocol (which has no other place for them), a secret winning over a plain key.
    pub secrets: StringMap,
}

impl std::fmt::Debug for TriggerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerInput")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("trigger_name", &self.trigger_name)
            .field("trigger_index", &self.trigger_index)
            .field("metadata", &self.metadata)
            .field("secret_keys", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How a host turns a metric value and its target into replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    /// desired = ceil(value / target).
    AverageValue,
    /// desired = ceil(current * value / target).
    Value,
}

/// One metric a trigger exposes.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    /// Metric name, as the scaler reports it.
    pub metric_name: String,
    /// Value per replica; a conforming scaler sends > 0.
    pub target: f64,
    /// The trigger is active above this (0 over KEDA, which has no such field).
    pub activation_target: f64,
    /// The scaler's preferred target type; `None` when unstated (or over KEDA).
    pub target_type: Option<TargetType>,
}

/// One measured value with the targets it is judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricReading {
    /// Metric name.
    pub metric_name: String,
    /// Value as sent; a negative one reads as 0 (NaN or an infinity fails the poll instead).
    pub value: f64,
    /// Target per replica.
    pub target: f64,
    /// Activation threshold.
    pub activation_target: f64,
}

/// The result of one measurement of a trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsReading {
    /// One reading per metric.
    pub values: Vec<MetricReading>,
    /// Whether the source has work waiting (v1: as reported; KEDA: IsActive).
    pub active: bool,
    /// Work taken but not finished; `None` means unknown (always over KEDA).
    pub in_flight: Option<u64>,
}
