//! Triggers and the scaler endpoint each one calls.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default deadline of one scaler call.
pub const DEFAULT_SCALER_TIMEOUT: Duration = Duration::from_secs(2);

/// One event source of a ScaledObject.
///
/// Two forms are accepted. The native form names its scaler in `scaler:`. The KEDA form uses
/// `type: external` or `external-push` with `metadata.scalerAddress` (and `enableTLS`,
/// `unsafeSsl`, `caCert`, `tlsClientCert`, `tlsClientKey`). [`Trigger::endpoint`] resolves both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Name, unique within the object. Unset: `<type>-<index>` (see [`Trigger::effective_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `external` / `external-push` for KEDA's form; free text (e.g. `rabbitmq`) otherwise.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<String>,
    /// Settings passed to the scaler as they are; never credentials.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Where the scaler's credentials come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// How the metric is compared to its target (default `AverageValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<MetricType>,
    /// The scaler to call (native form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<ScalerRef>,
}

/// How a metric value is compared to its target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MetricType {
    /// The value is a total to spread over replicas: desired = ceil(value / target).
    #[default]
    AverageValue,
    /// The value is a per-replica level: desired = ceil(current * value / target).
    Value,
}

/// A reference to a ScalerAuthentication (namespaced) or ClusterScalerAuthentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    /// Name of the authentication object.
    pub name: String,
    /// Its kind (default `ScalerAuthentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_authentication_kind")]
    pub kind: Option<AuthenticationKind>,
}

/// Kinds of authentication object. KEDA's names (`TriggerAuthentication`,
/// `ClusterTriggerAuthentication`) are accepted and mean ebb's kinds, so KEDA manifests need
/// no edit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthenticationKind {
    /// In the ScaledObject's namespace.
    #[default]
    #[serde(alias = "TriggerAuthentication")]
    ScalerAuthentication,
    /// Cluster-wide.
    #[serde(alias = "ClusterTriggerAuthentication")]
    ClusterScalerAuthentication,
}

/// The kinds as the CRD lists them: KEDA's spellings too, or the API server would refuse them.
const AUTHENTICATION_KINDS: [&str; 4] = [
    "ScalerAuthentication",
    "ClusterScalerAuthentication",
    "TriggerAuthentication",
    "ClusterTriggerAuthentication",
];

/// `authenticationRef.kind`'s schema: optional, one of [`AUTHENTICATION_KINDS`] (a structural
/// schema lists no `null` among enum values; `nullable` says it may be absent).
fn optional_authentication_kind(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "ScalerAuthentication (default) or ClusterScalerAuthentication; KEDA's TriggerAuthentication and ClusterTriggerAuthentication mean the same.",
        "type": "string",
        "nullable": true,
        "enum": AUTHENTICATION_KINDS
    })
}

impl JsonSchema for AuthenticationKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AuthenticationKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": AUTHENTICATION_KINDS
        })
    }
}

/// The native scaler reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerRef {
    /// `host:port` or `http(s)://host:port` of the scaler.
    pub address: String,
    /// Protocol to speak (default `auto`: ebb's v1 if the scaler answers GetInfo, else KEDA's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ScalerProtocol>,
    /// Use the scaler's activity stream. Unset: whenever the scaler offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<bool>,
    /// Deadline of one call, e.g. `2s` or `500ms` (default 2 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// TLS towards the scaler; plaintext when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ScalerTls>,
}

/// The protocol spoken with a scaler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalerProtocol {
    /// Ask GetInfo; fall back to KEDA's protocol when it is unimplemented.
    #[default]
    Auto,
    /// ebb's `ebb.scaler.v1`.
    V1,
    /// KEDA's `externalscaler.ExternalScaler`.
    Keda,
}

/// TLS settings of the native form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalerTls {
    /// Secret holding the CA bundle (key default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Secret of type kubernetes.io/tls holding a client certificate (`tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<SecretKeyRef>,
    /// CA bundle file (for `ebb run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Client certificate file (for `ebb run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key file (for `ebb run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Name to verify the scaler's certificate against (default: the address's host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Accept any certificate and name from the scaler (KEDA's `unsafeSsl`). Traffic stays
    /// encrypted and handshake signatures are still checked, and a client certificate is
    /// still sent; a CA given with it is ignored. For testing only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
}

/// A key of a Kubernetes Secret in the object's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key within the secret (a per-use default applies when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The resolved scaler a trigger calls, whichever form it was written in.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerEndpoint {
    /// As written: `host:port` or a URI.
    pub address: String,
    /// The protocol to speak.
    pub protocol: ScalerProtocol,
    /// `Some(true)`: stream activity; `Some(false)`: never; `None`: when the scaler offers it.
    pub push: Option<bool>,
    /// Deadline of one call.
    pub timeout: Duration,
    /// TLS settings; `None` means plaintext.
    pub tls: Option<TlsSettings>,
}

impl ScalerEndpoint {
    /// The address as a URI, adding `http://` or `https://` when no scheme is given.
    pub fn uri(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else if self.tls.is_some() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        }
    }
}

/// Resolved TLS settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSettings {
    /// CA bundle to trust (system roots when `None`).
    pub ca: Option<PemSource>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<PemSource>,
    /// Client key for mutual TLS.
    pub client_key: Option<PemSource>,
    /// Name to verify the certificate against.
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure_skip_verify: bool,
}

/// Where PEM material comes from.
#[derive(Clone, PartialEq)]
pub enum PemSource {
    /// PEM text given inline (KEDA's `caCert`, `tlsClientCert`, `tlsClientKey` metadata).
    Inline(String),
    /// A key of a Kubernetes Secret.
    Secret(SecretKeyRef),
    /// A file on disk.
    File(String),
}

impl std::fmt::Debug for PemSource {
    // Inline PEM may be a private key: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::Inline(_) => f.write_str("Inline(***)"),
            PemSource::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Why a trigger has no usable scaler endpoint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EndpointError {
    /// Neither `scaler.address` nor (for `external`) `metadata.scalerAddress` is set.
    #[error(
        "trigger {trigger}: no scaler address; set `scaler.address`, or `type: external` with `metadata.scalerAddress`"
    )]
    MissingAddress {
        /// Trigger name.
        trigger: String,
    },
    /// A field has a value that cannot be used.
    #[error("trigger {trigger}: {field}: {message}")]
    InvalidField {
        /// Trigger name.
        trigger: String,
        /// The field, e.g. `scaler.timeout`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn parse_bool_metadata(
    trigger: &str,
    metadata: &BTreeMap<String, String>,
    key: &str,
) -> Result<bool, EndpointError> {
    match metadata.get(key).map(|value| value.trim()) {
        None | Some("") => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some(value) => Err(EndpointError::InvalidField {
            trigger: trigger.to_owned(),
            field: format!("metadata.{key}"),
            message: format!("expected true or false, got {value:?}"),
        }),
    }
}

impl Trigger {
    /// The trigger's name: `name`, else `<type>-<index>` (`trigger-<index>` without a type).
    pub fn effective_name(&self, index: usize) -> String {
        match (&self.name, &self.trigger_type) {
            (Some(name), _) if !name.is_empty() => name.clone(),
            (_, Some(kind)) if !kind.is_empty() => format!("{kind}-{index}"),
            _ => format!("trigger-{index}"),
        }
    }

    /// The effective metric type (default `AverageValue`).
    pub fn metric_type(&self) -> MetricType {
        self.metric_type.unwrap_or_default()
    }

    /// Whether this trigger is written in KEDA's external form.
    pub fn is_keda_external(&self) -> bool {
        matches!(
            self.trigger_type.as_deref(),
            Some("external") | Some("external-push")
        )
    }

    /// KEDA's `unsafeSsl` (skip verifying the scaler's certificate), for the KEDA form only.
    pub fn keda_unsafe_ssl(&self) -> bool {
        self.is_keda_external()
            && self
                .metadata
                .get("unsafeSsl")
                .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }

    /// The scaler this trigger calls. `name` is used only in errors.
    pub fn endpoint(&self, name: &str) -> Result<ScalerEndpoint, EndpointError> {
        if let Some(scaler) = &self.scaler {
            return native_endpoint(name, scaler);
        }
        if self.is_keda_external() {
            return self.keda_endpoint(name);
        }
        Err(EndpointError::MissingAddress {
            trigger: name.to_owned(),
        })
    }

    fn keda_endpoint(&self, name: &str) -> Result<ScalerEndpoint, EndpointError> {
        let address = self
            .metadata
            .get("scalerAddress")
            .map(|address| address.trim())
            .filter(|address| !address.is_empty())
            .ok_or_else(|| EndpointError::MissingAddress {
                trigger: name.to_owned(),
            })?;
        let enable_tls = parse_bool_metadata(name, &self.metadata, "enableTLS")?;
        let unsafe_ssl = parse_bool_metadata(name, &self.metadata, "unsafeSsl")?;
        // TLS material (`caCert`, `tlsClientCert`, `tlsClientKey` in any form) is gathered by
        // the preparation step, which turns TLS on when it finds any.
        let tls = enable_tls.then_some(TlsSettings {
            insecure_skip_verify: unsafe_ssl,
            ..TlsSettings::default()
        });
        Ok(ScalerEndpoint {
            address: address.to_owned(),
            protocol: ScalerProtocol::Auto,
            push: Some(self.trigger_type.as_deref() == Some("external-push")),
            timeout: DEFAULT_SCALER_TIMEOUT,
            tls,
        })
    }
}

fn native_endpoint(name: &str, scaler: &ScalerRef) -> Result<ScalerEndpoint, EndpointError> {
    let invalid = |field: &str, message: String| EndpointError::InvalidField {
        trigger: name.to_owned(),
        field: field.to_owned(),
        message,
    };
    let address = scaler.address.trim();
    if address.is_empty() {
        return Err(EndpointError::MissingAddress {
            trigger: name.to_owned(),
        });
    }
    let timeout = match scaler.timeout.as_deref() {
        None => DEFAULT_SCALER_TIMEOUT,
        Some(text) => parse_duration(text).map_err(|message| invalid("scaler.timeout", message))?,
    };
    if timeout.is_zero() {
        return Err(invalid(
            "scaler.timeout",
            super::messages::GREATER_THAN_ZERO.text(),
        ));
    }
    let tls = match &scaler.tls {
        None => None,
        Some(tls) => {
            if tls.ca_secret_ref.is_some() && tls.ca_file.is_some() {
                return Err(invalid(
                    "scaler.tls.caFile",
                    super::messages::CA_TWICE.text(),
                ));
            }
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(invalid(
                    "scaler.tls.certFile",
                    super::messages::CERT_WITHOUT_KEY.text(),
                ));
            }
            let ca = tls
                .ca_secret_ref
                .as_ref()
                .map(|secret| {
                    PemSource::Secret(SecretKeyRef {
                        name: secret.name.clone(),
                        key: Some(secret.key.clone().unwrap_or_else(|| "ca.crt".to_owned())),
                    })
                })
                .or_else(|| tls.ca_file.clone().map(PemSource::File));
            let (client_cert, client_key) = match (&tls.client_cert_secret_ref, &tls.cert_file) {
                (Some(secret), _) => (
                    Some(PemSource::Secret(SecretKeyRef {
                        name: secret.name.clone(),
                        key: Some("tls.crt".to_owned()),
                    })),
                    Some(PemSource::Secret(SecretKeyRef {
                        name: secret.name.clone(),
                        key: Some("tls.key".to_owned()),
                    })),
                ),
                (None, Some(cert)) => (
                    Some(PemSource::File(cert.clone())),
                    tls.key_file.clone().map(PemSource::File),
                ),
                (None, None) => (None, None),
            };
            Some(TlsSettings {
                ca,
                client_cert,
                client_key,
                server_name: tls.server_name.clone(),
                insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
            })
        }
    };
    if address.starts_with("https://") && tls.is_none() {
        return Err(invalid(
            "scaler.address",
            super::messages::HTTPS_WITHOUT_TLS.text(),
        ));
    }
    Ok(ScalerEndpoint {
        address: address.to_owned(),
        protocol: scaler.protocol.unwrap_or_default(),
        push: scaler.push,
        timeout,
        tls,
    })
}

pub use crate::process::parse_duration;
