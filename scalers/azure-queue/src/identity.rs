//! Entra ID credentials (workload identity, managed identity) for `accountName` triggers.

use std::path::Path;
use std::sync::Arc;

use azure_core::cloud::CloudConfiguration;
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientAssertionCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::{Cloud, IdentityKind};
use crate::errors::AccessError;
use crate::target::EntraSettings;

/// The concrete credential an `identity` setting stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenIdentity {
    /// Workload identity (federated token exchange).
    Workload,
    /// Managed identity.
    Managed,
}

/// Resolves `auto`: workload identity when the pod has a federated token file.
pub fn choose_identity(kind: IdentityKind, token_file: Option<&Path>) -> ChosenIdentity {
    match kind {
        IdentityKind::Workload => ChosenIdentity::Workload,
        IdentityKind::Managed => ChosenIdentity::Managed,
        IdentityKind::Auto => {
            if token_file.is_some_and(|path| !path.as_os_str().is_empty()) {
                ChosenIdentity::Workload
            } else {
                ChosenIdentity::Managed
            }
        }
    }
}

/// The azure_core cloud for a `cloud` value; `Private` defers to AZURE_AUTHORITY_HOST.
pub fn cloud_configuration(cloud: Cloud) -> Option<Arc<CloudConfiguration>> {
    match cloud {
        Cloud::AzurePublicCloud => Some(Arc::new(CloudConfiguration::AzurePublic)),
        Cloud::AzureUSGovernmentCloud => Some(Arc::new(CloudConfiguration::AzureGovernment)),
        Cloud::AzureChinaCloud => Some(Arc::new(CloudConfiguration::AzureChina)),
        Cloud::Private => None,
    }
}

/// Builds the credential for `settings`, sending token requests through `transport`.
/// `token_file` is the federated service account token (the binary reads
/// AZURE_FEDERATED_TOKEN_FILE); unset client and tenant IDs come from the environment
/// (AZURE_CLIENT_ID, AZURE_TENANT_ID), as the workload identity webhook sets them.
pub fn build_credential(
    settings: &EntraSettings,
    token_file: Option<&Path>,
    transport: &Transport,
) -> Result<Arc<dyn TokenCredential>, AccessError> {
    let client_options = ClientOptions {
        transport: Some(transport.clone()),
        cloud: cloud_configuration(settings.cloud),
        ..ClientOptions::default()
    };
    let chosen = choose_identity(settings.kind, token_file);
    let credential: Arc<dyn TokenCredential> = match chosen {
        ChosenIdentity::Workload => {
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options },
                client_id: settings.client_id.clone(),
                tenant_id: settings.tenant_id.clone(),
                token_file_path: token_file.map(Path::to_path_buf),
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(|error| {
                AccessError::Credential(format!("workload identity is not configured: {error}"))
            })?
        }
        ChosenIdentity::Managed => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: settings.client_id.clone().map(UserAssignedId::ClientId),
                client_options,
            };
            ManagedIdentityCredential::new(Some(options)).map_err(|error| {
                AccessError::Credential(format!("managed identity is not available: {error}"))
            })?
        }
    };
    Ok(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_workload_identity_when_the_token_file_is_set() {
        let file = Some(Path::new(
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ));
        assert_eq!(
            choose_identity(IdentityKind::Auto, file),
            ChosenIdentity::Workload
        );
        assert_eq!(
            choose_identity(IdentityKind::Auto, None),
            ChosenIdentity::Managed
        );
        assert_eq!(
            choose_identity(IdentityKind::Auto, Some(Path::new(""))),
            ChosenIdentity::Managed
        );
        assert_eq!(
            choose_identity(IdentityKind::Managed, file),
            ChosenIdentity::Managed
        );
        assert_eq!(
            choose_identity(IdentityKind::Workload, None),
            ChosenIdentity::Workload
        );
    }

    #[test]
    fn clouds_map_to_authorities() {
        assert_eq!(
            cloud_configuration(Cloud::AzureChinaCloud).as_deref(),
            Some(&CloudConfiguration::AzureChina)
        );
        assert_eq!(cloud_configuration(Cloud::Private), None);
    }
}
