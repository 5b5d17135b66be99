//! Which queue a trigger measures and how it authenticates, resolved from its configuration.
//! Pure: no I/O.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use azure_core::credentials::Secret;
use azure_core::http::Url;
use ebb_scaler_sdk::ScalerError;

use crate::config::{AzureQueueConfig, Cloud, IdentityKind};
use crate::connection::{StorageCredential, join_path, parse_connection};

/// How the scaler authenticates to a queue.
#[derive(Clone, PartialEq, Eq)]
pub enum QueueAuth {
    /// Shared key, signed per request.
    SharedKey {
        /// The storage account name.
        account: String,
        /// The base64 account key.
        key: Secret,
    },
    /// A shared access signature (query string without `?`) appended to the queue URL.
    Sas(Secret),
    /// An Entra ID token.
    Entra(EntraSettings),
}

impl fmt::Debug for QueueAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SharedKey { account, .. } => write!(f, "SharedKey({account}, ***)"),
            Self::Sas(_) => f.write_str("Sas(***)"),
            Self::Entra(settings) => f.debug_tuple("Entra").field(settings).finish(),
        }
    }
}

/// Which Entra ID identity to use. None of these values is a secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntraSettings {
    /// The credential kind asked for.
    pub kind: IdentityKind,
    /// Client ID of the identity, if given.
    pub client_id: Option<String>,
    /// Tenant ID (workload identity), if given.
    pub tenant_id: Option<String>,
    /// The cloud, which decides the authority host.
    pub cloud: Cloud,
}

/// One queue and the means to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTarget {
    /// The queue name.
    pub queue: String,
    /// The queue URL without query.
    pub queue_url: Url,
    /// The authentication.
    pub auth: QueueAuth,
}

impl QueueTarget {
    /// Resolves a validated configuration. `dev_endpoint` is where `UseDevelopmentStorage=true`
    /// points. Errors are INVALID_ARGUMENT naming the key.
    pub fn resolve(config: &AzureQueueConfig, dev_endpoint: &Url) -> Result<Self, ScalerError> {
        let suffix = config.storage_suffix();
        if let Some(connection) = config
            .connection
            .as_ref()
            .filter(|connection| !connection.expose().trim().is_empty())
        {
            let access = parse_connection(connection.expose(), suffix.as_deref(), dev_endpoint)
                .map_err(|error| ScalerError::invalid("connection", error.to_string()))?;
            let auth = match access.credential.clone() {
                StorageCredential::SharedKey { account, key } => {
                    QueueAuth::SharedKey { account, key }
                }
                StorageCredential::Sas(sas) => QueueAuth::Sas(sas),
            };
            return Ok(Self {
                queue: config.queue_name.clone(),
                queue_url: access.queue_url(&config.queue_name),
                auth,
            });
        }
        let account = config
            .account_name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ScalerError::invalid("connection", "is required unless `accountName` is given")
            })?;
        let suffix = suffix.ok_or_else(|| {
            ScalerError::invalid("endpointSuffix", "is required when `cloud` is Private")
        })?;
        if !crate::connection::is_dns_name(account) {
            return Err(ScalerError::invalid(
                "accountName",
                "is not a storage account name (letters and digits)",
            ));
        }
        if !crate::connection::is_dns_name(&suffix) {
            return Err(ScalerError::invalid(
                "endpointSuffix",
                "is not a DNS suffix (letters, digits, dots and dashes)",
            ));
        }
        let service = Url::parse(&format!("https://{account}.queue.{suffix}")).map_err(|_| {
            ScalerError::invalid(
                "endpointSuffix",
                format!("`{suffix}` does not make a valid host name"),
            )
        })?;
        Ok(Self {
            queue: config.queue_name.clone(),
            queue_url: join_path(&service, &config.queue_name),
            auth: QueueAuth::Entra(EntraSettings {
                kind: config.identity,
                client_id: non_empty(&config.identity_client_id),
                tenant_id: non_empty(&config.identity_tenant_id),
                cloud: config.cloud,
            }),
        })
    }

    /// A fingerprint of the credential: equal for equal credentials, and not reversible, so it
    /// may appear in keys (never in logs).
    pub fn auth_fingerprint(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        match &self.auth {
            QueueAuth::SharedKey { account, key } => {
                ("shared-key", account, key.secret()).hash(&mut hasher);
            }
            QueueAuth::Sas(sas) => ("sas", sas.secret()).hash(&mut hasher),
            QueueAuth::Entra(settings) => ("entra", settings).hash(&mut hasher),
        }
        hasher.finish()
    }

    /// The secret strings of the credential, for scrubbing error text.
    pub fn secrets(&self) -> Vec<String> {
        match &self.auth {
            QueueAuth::SharedKey { key, .. } => vec![key.secret().to_owned()],
            QueueAuth::Sas(sas) => vec![sas.secret().to_owned()],
            QueueAuth::Entra(_) => Vec::new(),
        }
    }

    /// The queue URL to request: with the SAS appended when the credential is a SAS.
    pub fn request_url(&self) -> Url {
        let mut url = self.queue_url.clone();
        if let QueueAuth::Sas(sas) = &self.auth {
            url.set_query(Some(sas.secret()));
        }
        url
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ebb_scaler_sdk::{MetadataSchema, TriggerMetadata};

    use super::*;
    use crate::connection::DEV_QUEUE_ENDPOINT;

    fn resolve(pairs: &[(&str, &str)]) -> Result<QueueTarget, ScalerError> {
        let metadata: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config: AzureQueueConfig = TriggerMetadata::from_v1(&metadata, &HashMap::new())
            .parse(&MetadataSchema::of::<AzureQueueConfig>())?;
        config.validate()?;
        QueueTarget::resolve(&config, &Url::parse(DEV_QUEUE_ENDPOINT).unwrap())
    }

    #[test]
    fn account_name_means_entra_on_the_cloud_suffix() {
        let target = resolve(&[
            ("queueName", "jobs"),
            ("accountName", "acct"),
            ("cloud", "AzureUSGovernmentCloud"),
            ("identity", "workload"),
            ("identityClientId", "0000-client"),
        ])
        .unwrap();
        assert_eq!(
            target.queue_url.as_str(),
            "https://acct.queue.core.usgovcloudapi.net/jobs"
        );
        let QueueAuth::Entra(settings) = &target.auth else {
            panic!("expected Entra, got {:?}", target.auth);
        };
        assert_eq!(settings.kind, IdentityKind::Workload);
        assert_eq!(settings.client_id.as_deref(), Some("0000-client"));
        assert_eq!(settings.tenant_id, None);
        assert!(target.secrets().is_empty());
    }

    #[test]
    fn connection_wins_over_account_name() {
        let target = resolve(&[
            ("queueName", "jobs"),
            ("accountName", "other"),
            ("connection", "UseDevelopmentStorage=true"),
        ])
        .unwrap();
        assert_eq!(
            target.queue_url.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs"
        );
        assert!(matches!(target.auth, QueueAuth::SharedKey { .. }));
    }

    #[test]
    fn bad_connection_is_invalid_connection_without_the_secret() {
        let error =
            resolve(&[("queueName", "jobs"), ("connection", "AccountKey=c2VjcmV0")]).unwrap_err();
        let ScalerError::InvalidMetadata { key, message } = error else {
            panic!("expected InvalidMetadata");
        };
        assert_eq!(key, "connection");
        assert!(!message.contains("c2VjcmV0"), "{message}");
    }

    #[test]
    fn sas_is_appended_to_the_request_url_only() {
        let target = resolve(&[
            ("queueName", "jobs"),
            (
                "connection",
                "http://127.0.0.1:10001/devstoreaccount1?sv=1&sig=x%2By",
            ),
        ])
        .unwrap();
        assert_eq!(
            target.queue_url.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs"
        );
        assert_eq!(
            target.request_url().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/jobs?sv=1&sig=x%2By"
        );
        assert_eq!(target.secrets(), ["sv=1&sig=x%2By"]);
    }

    #[test]
    fn fingerprints_differ_by_credential_and_match_for_equal_ones() {
        let a = resolve(&[
            ("queueName", "jobs"),
            ("connection", "AccountName=a;AccountKey=a2V5"),
        ])
        .unwrap();
        let a2 = resolve(&[
            ("queueName", "jobs"),
            ("connection", "AccountName=a;AccountKey=a2V5"),
        ])
        .unwrap();
        let b = resolve(&[
            ("queueName", "jobs"),
            ("connection", "AccountName=a;AccountKey=a2V6"),
        ])
        .unwrap();
        assert_eq!(a.auth_fingerprint(), a2.auth_fingerprint());
        assert_ne!(a.auth_fingerprint(), b.auth_fingerprint());
    }
}
