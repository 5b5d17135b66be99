//! The trigger configuration: every metadata key the scaler understands, with its schema.

use std::fmt;

use ebb_scaler_sdk::ScalerError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The configuration of one `azure-queue` trigger, parsed from metadata merged with secrets.
///
/// Key names, defaults and meanings match KEDA's `azure-queue` trigger, plus a few keys for
/// Entra ID that KEDA keeps in its TriggerAuthentication.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureQueueConfig {
    /// Name of the queue to measure.
    pub queue_name: String,
    /// Target number of messages per replica.
    #[serde(default = "default_queue_length")]
    pub queue_length: i64,
    /// The trigger is active when the queue length is strictly greater than this.
    #[serde(default)]
    pub activation_queue_length: i64,
    /// `all` counts every message (the queue's approximate count, which includes messages
    /// being processed); `visibleonly` counts messages visible right now (exact below 32).
    #[serde(default)]
    pub queue_length_strategy: QueueLengthStrategy,
    /// Storage connection string (AccountName/AccountKey, SharedAccessSignature,
    /// QueueEndpoint, EndpointSuffix, or UseDevelopmentStorage=true), or a SAS URL of the queue
    /// service or of the queue. Send it as a secret; KEDA's `connectionFromEnv` also fills it.
    #[schemars(extend("x-secret" = true))]
    pub connection: Option<ConnectionSecret>,
    /// Storage account name, for Entra ID (workload or managed identity) when no `connection`
    /// is given.
    pub account_name: Option<String>,
    /// The Azure cloud of the storage account; `Private` needs `endpointSuffix`.
    #[serde(default)]
    pub cloud: Cloud,
    /// Storage endpoint suffix for `cloud: Private`, e.g. `core.example.net` or
    /// `queue.core.example.net`.
    pub endpoint_suffix: Option<String>,
    /// Entra ID credential used with `accountName`: `auto` picks workload identity when the
    /// pod has a federated token file (AZURE_FEDERATED_TOKEN_FILE), else managed identity.
    #[serde(default)]
    pub identity: IdentityKind,
    /// Client ID of the Entra identity (workload identity: overrides AZURE_CLIENT_ID; managed
    /// identity: selects a user-assigned identity).
    pub identity_client_id: Option<String>,
    /// Tenant ID for workload identity; overrides AZURE_TENANT_ID.
    pub identity_tenant_id: Option<String>,
}

fn default_queue_length() -> i64 {
    5
}

impl fmt::Debug for AzureQueueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureQueueConfig")
            .field("queue_name", &self.queue_name)
            .field("queue_length", &self.queue_length)
            .field("activation_queue_length", &self.activation_queue_length)
            .field("queue_length_strategy", &self.queue_length_strategy)
            .field("connection", &self.connection)
            .field("account_name", &self.account_name)
            .field("cloud", &self.cloud)
            .field("endpoint_suffix", &self.endpoint_suffix)
            .field("identity", &self.identity)
            .field("identity_client_id", &self.identity_client_id)
            .field("identity_tenant_id", &self.identity_tenant_id)
            .finish()
    }
}

/// A connection string or SAS URL. Its text is a credential, so it never prints.
#[derive(Clone, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct ConnectionSecret(String);

impl ConnectionSecret {
    /// Wraps a connection string or SAS URL.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConnectionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionSecret(***)")
    }
}

/// How the queue length is measured.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum QueueLengthStrategy {
    /// The approximate message count, including invisible (in-flight) messages.
    #[default]
    #[serde(rename = "all")]
    All,
    /// Visible messages only: peek up to 32, above that the approximate count.
    #[serde(rename = "visibleonly")]
    VisibleOnly,
}

impl QueueLengthStrategy {
    /// The metadata spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::VisibleOnly => "visibleonly",
        }
    }
}

/// The Azure cloud hosting the storage account.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// Azure public cloud (`core.windows.net`).
    #[default]
    AzurePublicCloud,
    /// Azure US Government (`core.usgovcloudapi.net`).
    AzureUSGovernmentCloud,
    /// Azure China (`core.chinacloudapi.cn`).
    AzureChinaCloud,
    /// Another cloud; its suffix comes from `endpointSuffix`.
    Private,
}

impl Cloud {
    /// The storage endpoint suffix of a known cloud, without the service label.
    pub fn storage_suffix(self) -> Option<&'static str> {
        match self {
            Self::AzurePublicCloud => Some("core.windows.net"),
            Self::AzureUSGovernmentCloud => Some("core.usgovcloudapi.net"),
            Self::AzureChinaCloud => Some("core.chinacloudapi.cn"),
            Self::Private => None,
        }
    }
}

/// Which Entra ID credential authenticates an `accountName` trigger.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// Workload identity when AZURE_FEDERATED_TOKEN_FILE is set, else managed identity.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Entra workload identity (federated service account token).
    #[serde(rename = "workload")]
    Workload,
    /// Azure managed identity (IMDS or App Service).
    #[serde(rename = "managed")]
    Managed,
}

impl AzureQueueConfig {
    /// Checks ranges and combinations the types cannot express; errors name the key.
    pub fn validate(&self) -> Result<(), ScalerError> {
        if !valid_queue_name(&self.queue_name) {
            return Err(ScalerError::invalid(
                "queueName",
                format!(
                    "`{}` is not a queue name (3-63 lowercase letters, digits and single \
                     hyphens, starting and ending with a letter or digit)",
                    self.queue_name
                ),
            ));
        }
        if self.queue_length <= 0 {
            return Err(ScalerError::invalid(
                "queueLength",
                "must be greater than 0",
            ));
        }
        if self.activation_queue_length < 0 {
            return Err(ScalerError::invalid(
                "activationQueueLength",
                "must not be negative",
            ));
        }
        let connection_given = self
            .connection
            .as_ref()
            .is_some_and(|connection| !connection.expose().trim().is_empty());
        let account_given = self
            .account_name
            .as_ref()
            .is_some_and(|name| !name.trim().is_empty());
        if !connection_given && !account_given {
            return Err(ScalerError::invalid(
                "connection",
                "is required unless `accountName` is given (for Entra ID)",
            ));
        }
        if let Some(name) = self.account_name.as_deref().filter(|name| !name.is_empty())
            && !valid_account_name(name)
        {
            return Err(ScalerError::invalid(
                "accountName",
                format!(
                    "`{name}` is not a storage account name (3-24 lowercase letters and digits)"
                ),
            ));
        }
        if self.cloud == Cloud::Private && !connection_given {
            match self.endpoint_suffix.as_deref().map(str::trim) {
                Some(suffix) if !suffix.is_empty() => {}
                _ => {
                    return Err(ScalerError::invalid(
                        "endpointSuffix",
                        "is required when `cloud` is Private",
                    ));
                }
            }
        }
        if let Some(suffix) = &self.endpoint_suffix
            && suffix.contains(['/', ':', '?', '#', '@', ' '])
        {
            return Err(ScalerError::invalid(
                "endpointSuffix",
                format!("`{suffix}` is not a host name suffix"),
            ));
        }
        Ok(())
    }

    /// The storage suffix (e.g. `core.windows.net`) implied by `cloud` and `endpointSuffix`.
    pub fn storage_suffix(&self) -> Option<String> {
        if let Some(suffix) = self.endpoint_suffix.as_deref().map(str::trim)
            && !suffix.is_empty()
        {
            let suffix = suffix.trim_start_matches('.');
            return Some(suffix.strip_prefix("queue.").unwrap_or(suffix).to_owned());
        }
        self.cloud.storage_suffix().map(str::to_owned)
    }
}

/// Azure's queue naming rule.
fn valid_queue_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !name.contains("--")
}

/// Azure's storage account naming rule, loosened to allow the emulator's account names.
fn valid_account_name(name: &str) -> bool {
    (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ebb_scaler_sdk::proto::v1::ValueKind;
    use ebb_scaler_sdk::{MetadataSchema, TriggerMetadata};

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<AzureQueueConfig, ScalerError> {
        let metadata: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config: AzureQueueConfig = TriggerMetadata::from_v1(&metadata, &HashMap::new())
            .parse(&MetadataSchema::of::<AzureQueueConfig>())?;
        config.validate()?;
        Ok(config)
    }

    fn key_of(error: ScalerError) -> String {
        match error {
            ScalerError::InvalidMetadata { key, .. } => key,
            other => panic!("expected InvalidMetadata, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_keda() {
        let config = parse(&[
            ("queueName", "orders"),
            ("connection", "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert_eq!(config.queue_length, 5);
        assert_eq!(config.activation_queue_length, 0);
        assert_eq!(config.queue_length_strategy, QueueLengthStrategy::All);
        assert_eq!(config.cloud, Cloud::AzurePublicCloud);
        assert_eq!(config.storage_suffix().as_deref(), Some("core.windows.net"));
    }

    #[test]
    fn schema_lists_every_key_with_kinds_defaults_and_secrets() {
        let schema = MetadataSchema::of::<AzureQueueConfig>();
        let field = |key: &str| {
            schema
                .fields()
                .iter()
                .find(|field| field.key == key)
                .unwrap_or_else(|| panic!("schema lacks {key}"))
                .clone()
        };
        for key in [
            "queueName",
            "queueLength",
            "activationQueueLength",
            "queueLengthStrategy",
            "connection",
            "accountName",
            "cloud",
            "endpointSuffix",
            "identity",
            "identityClientId",
            "identityTenantId",
        ] {
            assert!(
                !field(key).description.is_empty(),
                "{key} has no description"
            );
        }
        assert!(field("queueName").required);
        assert!(!field("connection").required);
        assert!(field("connection").secret);
        assert!(!field("accountName").secret);
        assert_eq!(field("queueLength").default_value, "5");
        assert_eq!(field("queueLength").kind, ValueKind::Integer as i32);
        assert_eq!(field("queueLengthStrategy").kind, ValueKind::Enum as i32);
        assert_eq!(
            field("queueLengthStrategy").allowed_values,
            ["all", "visibleonly"]
        );
        assert_eq!(field("queueLengthStrategy").default_value, "all");
        assert_eq!(
            field("cloud").allowed_values,
            [
                "AzurePublicCloud",
                "AzureUSGovernmentCloud",
                "AzureChinaCloud",
                "Private"
            ]
        );
    }

    #[test]
    fn enum_values_are_case_insensitive() {
        let config = parse(&[
            ("queueName", "orders"),
            ("connection", "UseDevelopmentStorage=true"),
            ("queueLengthStrategy", "VisibleOnly"),
            ("cloud", "azurechinacloud"),
        ])
        .unwrap();
        assert_eq!(
            config.queue_length_strategy,
            QueueLengthStrategy::VisibleOnly
        );
        assert_eq!(
            config.storage_suffix().as_deref(),
            Some("core.chinacloudapi.cn")
        );
    }

    #[test]
    fn bad_metadata_names_the_key() {
        let base = [
            ("queueName", "orders"),
            ("connection", "UseDevelopmentStorage=true"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != extra.0);
            pairs.push(extra);
            key_of(parse(&pairs).unwrap_err())
        };
        assert_eq!(with(("queueLength", "five")), "queueLength");
        assert_eq!(with(("queueLength", "0")), "queueLength");
        assert_eq!(
            with(("activationQueueLength", "-1")),
            "activationQueueLength"
        );
        assert_eq!(with(("queueLengthStrategy", "some")), "queueLengthStrategy");
        assert_eq!(with(("cloud", "Mars")), "cloud");
        assert_eq!(with(("queueName", "Bad_Name")), "queueName");
        assert_eq!(with(("accountName", "Not-An-Account")), "accountName");
        assert_eq!(with(("identity", "magic")), "identity");
        assert_eq!(
            key_of(parse(&[("connection", "x")]).unwrap_err()),
            "queueName"
        );
        assert_eq!(
            key_of(parse(&[("queueName", "orders")]).unwrap_err()),
            "connection"
        );
    }

    #[test]
    fn private_cloud_needs_an_endpoint_suffix() {
        let error = parse(&[
            ("queueName", "orders"),
            ("accountName", "acct"),
            ("cloud", "Private"),
        ])
        .unwrap_err();
        assert_eq!(key_of(error), "endpointSuffix");
        let config = parse(&[
            ("queueName", "orders"),
            ("accountName", "acct"),
            ("cloud", "Private"),
            ("endpointSuffix", "queue.core.example.net"),
        ])
        .unwrap();
        assert_eq!(config.storage_suffix().as_deref(), Some("core.example.net"));
    }

    #[test]
    fn connection_from_env_fills_connection() {
        let config = parse(&[
            ("queueName", "orders"),
            ("connectionFromEnv", "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert_eq!(
            config.connection.map(|c| c.expose().to_owned()).as_deref(),
            Some("UseDevelopmentStorage=true")
        );
    }

    #[test]
    fn debug_never_shows_the_connection() {
        let config = parse(&[
            ("queueName", "orders"),
            ("connection", "AccountName=a;AccountKey=c2VjcmV0a2V5"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("c2VjcmV0a2V5"), "{shown}");
        assert!(shown.contains("***"));
    }
}
