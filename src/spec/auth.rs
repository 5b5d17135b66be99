//! ScalerAuthentication and ClusterScalerAuthentication: where a trigger's credentials come
//! from. The controller resolves them and sends the values to the scaler in
//! `TriggerRequest.secrets` (ebb's v1 protocol) or, for KEDA-only scalers, merged into the
//! metadata: the credentials forwarding KEDA never had (kedacore/keda#2571).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Maps scaler parameters to Secret keys, ConfigMap keys and container environment variables.
/// A trigger names it in `authenticationRef`.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "ScalerAuthentication",
    namespaced,
    shortname = "esa",
    derive = "PartialEq",
    derive = "Default",
    doc = "Credentials for scalers, resolved by ebb from Secrets, ConfigMaps and the target's environment.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ScalerAuthenticationSpec {
    /// Parameters read from keys of Secrets in the ScaledObject's namespace (for a
    /// ClusterScalerAuthentication: in the controller's namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<KeyRef>,
    /// Parameters read from keys of ConfigMaps, namespaced like `secretTargetRef`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_target_ref: Vec<KeyRef>,
    /// Parameters read from environment variables of the scale target's container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvRef>,
}

/// The cluster-wide form of [`ScalerAuthentication`], usable from any namespace. Its Secrets
/// and ConfigMaps live in the controller's namespace.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "ebb.dev",
    version = "v1alpha1",
    kind = "ClusterScalerAuthentication",
    shortname = "ecsa",
    derive = "PartialEq",
    derive = "Default",
    doc = "Cluster-wide credentials for scalers; Secrets and ConfigMaps come from the controller's namespace.",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterScalerAuthenticationSpec {
    /// Parameters read from keys of Secrets in the controller's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<KeyRef>,
    /// Parameters read from keys of ConfigMaps in the controller's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_target_ref: Vec<KeyRef>,
    /// Parameters read from environment variables of the scale target's container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvRef>,
}

/// One parameter taken from a key of a Secret or ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// The scaler parameter it becomes, e.g. `password` or `connection`.
    pub parameter: String,
    /// Name of the Secret or ConfigMap.
    pub name: String,
    /// The key within it.
    pub key: String,
}

/// One parameter taken from an environment variable of the scale target's container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvRef {
    /// The scaler parameter it becomes.
    pub parameter: String,
    /// Name of the environment variable.
    pub name: String,
    /// Container to read (default: `scaleTargetRef.envSourceContainerName`, else the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// What both kinds of authentication object say, whichever kind was referenced. The
/// namespace of its Secrets and ConfigMaps follows from the kind (see the kinds' docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthenticationSource {
    /// Secret keys.
    pub secrets: Vec<KeyRef>,
    /// ConfigMap keys.
    pub config_maps: Vec<KeyRef>,
    /// Container environment variables.
    pub env: Vec<EnvRef>,
}

impl From<ScalerAuthenticationSpec> for AuthenticationSource {
    fn from(spec: ScalerAuthenticationSpec) -> Self {
        Self {
            secrets: spec.secret_target_ref,
            config_maps: spec.config_map_target_ref,
            env: spec.env,
        }
    }
}

impl From<ClusterScalerAuthenticationSpec> for AuthenticationSource {
    fn from(spec: ClusterScalerAuthenticationSpec) -> Self {
        Self {
            secrets: spec.secret_target_ref,
            config_maps: spec.config_map_target_ref,
            env: spec.env,
        }
    }
}
