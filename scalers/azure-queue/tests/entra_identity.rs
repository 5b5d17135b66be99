//! Entra ID token plumbing. Entra cannot run here, so the HTTP transport is a fake that speaks
//! the token endpoint's and the queue service's wire format; everything above it (credential
//! choice, authority per cloud, federated token file, bearer policy, token cache) is real.

use std::sync::{Arc, Mutex};

use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Body, Context, Request, StatusCode, Transport};
use ebb_azure_queue_scaler::{AzureQueueConfig, AzureQueueScaler, ScalerOptions};
use ebb_scaler_sdk::{MetadataSchema, Scaler, ScalerError, Trigger, TriggerMetadata};

const TOKEN: &str = "fake-access-token";

#[derive(Debug, Clone)]
struct Seen {
    url: String,
    authorization: Option<String>,
    body: String,
}

/// Answers token requests with [`TOKEN`] and queue metadata requests bearing it with 9 messages.
#[derive(Debug, Default)]
struct FakeAzure {
    seen: Mutex<Vec<Seen>>,
}

#[async_trait::async_trait]
impl Policy for FakeAzure {
    async fn send(
        &self,
        _: &Context,
        request: &mut Request,
        _: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let authorization = request
            .headers()
            .get_optional_str(&HeaderName::from_static("authorization"))
            .map(str::to_owned);
        let body = match request.body() {
            Body::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => String::new(),
        };
        let url = request.url().clone();
        self.seen.lock().unwrap().push(Seen {
            url: url.to_string(),
            authorization: authorization.clone(),
            body,
        });
        if url.path().ends_with("/oauth2/v2.0/token") {
            let json = format!(
                r#"{{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"{TOKEN}"}}"#
            );
            return Ok(AsyncRawResponse::from_bytes(
                StatusCode::Ok,
                Headers::new(),
                json,
            ));
        }
        if authorization.as_deref() == Some(&format!("Bearer {TOKEN}")) {
            let mut headers = Headers::new();
            headers.insert("x-ms-approximate-messages-count", "9");
            return Ok(AsyncRawResponse::from_bytes(StatusCode::Ok, headers, ""));
        }
        let mut headers = Headers::new();
        headers.insert("x-ms-error-code", "AuthenticationFailed");
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Forbidden,
            headers,
            "",
        ))
    }
}

fn trigger(pairs: &[(&str, &str)]) -> Trigger<AzureQueueConfig> {
    let metadata = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = TriggerMetadata::from_v1(&metadata, &Default::default())
        .parse(&MetadataSchema::of::<AzureQueueConfig>())
        .unwrap();
    Trigger {
        namespace: "default".into(),
        name: "worker".into(),
        trigger_name: "queue".into(),
        config,
    }
}

#[tokio::test]
async fn workload_identity_exchanges_the_federated_token_and_sends_a_bearer() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "federated-service-account-token").unwrap();
    let fake = Arc::new(FakeAzure::default());
    let scaler = AzureQueueScaler::with_transport(
        ScalerOptions {
            federated_token_file: Some(token_file.path().to_path_buf()),
            ..ScalerOptions::default()
        },
        Transport::with_policy(fake.clone()),
    );
    let trigger = trigger(&[
        ("queueName", "jobs"),
        ("accountName", "acct"),
        ("cloud", "AzureUSGovernmentCloud"),
        ("identityClientId", "client-1"),
        ("identityTenantId", "tenant-1"),
    ]);
    scaler.validate(&trigger.config).unwrap();
    for _ in 0..2 {
        let measurement = scaler.measure(&trigger).await.unwrap();
        assert_eq!(measurement.values[0].value, 9.0);
    }

    let seen = fake.seen.lock().unwrap().clone();
    let token_requests: Vec<&Seen> = seen.iter().filter(|s| s.url.contains("oauth2")).collect();
    assert_eq!(token_requests.len(), 1, "the token is cached: {seen:?}");
    let token_request = token_requests[0];
    assert_eq!(
        token_request.url, "https://login.microsoftonline.us/tenant-1/oauth2/v2.0/token",
        "US Government cloud uses its own authority"
    );
    assert!(
        token_request
            .body
            .contains("client_assertion=federated-service-account-token")
    );
    assert!(token_request.body.contains("client_id=client-1"));
    assert!(
        token_request
            .body
            .contains("scope=https%3A%2F%2Fstorage.azure.com%2F.default")
    );

    let queue_requests: Vec<&Seen> = seen.iter().filter(|s| !s.url.contains("oauth2")).collect();
    assert_eq!(queue_requests.len(), 2);
    for request in queue_requests {
        assert!(
            request
                .url
                .starts_with("https://acct.queue.core.usgovcloudapi.net/jobs?comp=metadata"),
            "{}",
            request.url
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer fake-access-token")
        );
    }
}

#[tokio::test]
async fn workload_identity_without_a_tenant_is_a_clear_credential_error() {
    assert!(
        std::env::var_os("AZURE_TENANT_ID").is_none(),
        "AZURE_TENANT_ID is set in this environment, so the missing-tenant case cannot be \
         shown: unset it to run this test"
    );
    let token_file = tempfile::NamedTempFile::new().unwrap();
    let fake = Arc::new(FakeAzure::default());
    let scaler = AzureQueueScaler::with_transport(
        ScalerOptions {
            federated_token_file: Some(token_file.path().to_path_buf()),
            ..ScalerOptions::default()
        },
        Transport::with_policy(fake.clone()),
    );
    let trigger = trigger(&[
        ("queueName", "jobs"),
        ("accountName", "acct"),
        ("identity", "workload"),
        ("identityClientId", "client-1"),
    ]);
    let error = scaler.measure(&trigger).await.unwrap_err();
    let ScalerError::Unauthenticated(message) = &error else {
        panic!("expected Unauthenticated, got {error:?}");
    };
    assert!(message.contains("tenant"), "{message}");
    assert!(
        fake.seen.lock().unwrap().is_empty(),
        "nothing is sent without a tenant"
    );
}
