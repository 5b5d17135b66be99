//! Tests of trigger resolution against an in-memory cluster.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Container;
use serde_json::json;

use super::resolve::{ClusterLookup, LookupError, check_address, resolve_triggers};
use crate::runtime::ObjectKey;
use crate::spec::{AuthenticationKind, ScaledObjectSpec};
use crate::spec::{AuthenticationSource, EnvRef, KeyRef};

#[derive(Default)]
struct Memory {
    secrets: BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>,
    config_maps: BTreeMap<(String, String), BTreeMap<String, String>>,
    auths: BTreeMap<(String, String), AuthenticationSource>,
    containers: Option<Vec<Container>>,
    broken: bool,
}

impl ClusterLookup for Memory {
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, Vec<u8>>>, LookupError>> {
        let result = if self.broken {
            Err(LookupError::Unavailable("connection refused".into()))
        } else {
            Ok(self.secrets.get(&(namespace.into(), name.into())).cloned())
        };
        Box::pin(std::future::ready(result))
    }

    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>> {
        Box::pin(std::future::ready(Ok(self
            .config_maps
            .get(&(namespace.into(), name.into()))
            .cloned())))
    }

    fn authentication<'a>(
        &'a self,
        namespace: &'a str,
        kind: AuthenticationKind,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<AuthenticationSource>, LookupError>> {
        let namespace = if kind == AuthenticationKind::ClusterScalerAuthentication {
            ""
        } else {
            namespace
        };
        Box::pin(std::future::ready(Ok(self
            .auths
            .get(&(namespace.into(), name.into()))
            .cloned())))
    }

    fn target_containers<'a>(
        &'a self,
        _namespace: &'a str,
        _api_version: &'a str,
        _kind: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<Container>>, LookupError>> {
        Box::pin(std::future::ready(Ok(self.containers.clone())))
    }
}

fn spec(triggers: serde_json::Value) -> ScaledObjectSpec {
    serde_json::from_value(json!({"scaleTargetRef": {"name": "web"}, "triggers": triggers}))
        .unwrap()
}

fn key() -> ObjectKey {
    ObjectKey::new("shop", "orders")
}

fn containers() -> Vec<Container> {
    serde_json::from_value(json!([
        {"name": "sidecar", "env": [{"name": "CONN", "value": "from-sidecar"}]},
        {"name": "main", "env": [
            {"name": "CONN", "value": "amqp://u:p@broker"},
            {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "EMPTY", "value": ""}
        ], "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}]}
    ]))
    .unwrap()
}

fn cluster() -> Memory {
    let mut memory = Memory {
        containers: Some(containers()),
        ..Memory::default()
    };
    memory.secrets.insert(
        ("shop".into(), "creds".into()),
        BTreeMap::from([("password".into(), b"s3cret".to_vec())]),
    );
    memory.secrets.insert(
        ("ebb-system".into(), "shared".into()),
        BTreeMap::from([("token".into(), b"cluster-token".to_vec())]),
    );
    memory.config_maps.insert(
        ("shop".into(), "settings".into()),
        BTreeMap::from([("QUEUE".into(), "orders".into())]),
    );
    memory.auths.insert(
        ("shop".into(), "auth".into()),
        AuthenticationSource {
            secrets: vec![KeyRef {
                parameter: "password".into(),
                name: "creds".into(),
                key: "password".into(),
            }],
            config_maps: vec![KeyRef {
                parameter: "queue".into(),
                name: "settings".into(),
                key: "QUEUE".into(),
            }],
            env: vec![EnvRef {
                parameter: "connection".into(),
                name: "CONN".into(),
                container_name: Some("main".into()),
            }],
        },
    );
    memory.auths.insert(
        ("".into(), "global".into()),
        AuthenticationSource {
            secrets: vec![KeyRef {
                parameter: "token".into(),
                name: "shared".into(),
                key: "token".into(),
            }],
            ..AuthenticationSource::default()
        },
    );
    memory
}

#[tokio::test]
async fn authentication_secrets_config_maps_and_env_become_secrets() {
    let spec = spec(
        json!([{"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "metadata": {"queueName": "q"},
        "authenticationRef": {"name": "auth"}}]),
    );
    let triggers = resolve_triggers(&cluster(), &key(), &spec, "ebb-system")
        .await
        .unwrap();
    let input = &triggers[0].input;
    assert_eq!(
        input.secrets.get("password").map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(
        input.secrets.get("queue").map(String::as_str),
        Some("orders")
    );
    assert_eq!(
        input.secrets.get("connection").map(String::as_str),
        Some("amqp://u:p@broker")
    );
    assert_eq!(
        input.metadata.get("queueName").map(String::as_str),
        Some("q")
    );
    assert!(!input.metadata.values().any(|v| v.contains("s3cret")));
    assert_eq!(triggers[0].channel.address, "127.0.0.1:9001");
}

#[tokio::test]
async fn cluster_authentication_reads_the_controller_namespace() {
    let spec = spec(
        json!([{"name": "t", "scaler": {"address": "127.0.0.1:9001"},
        "authenticationRef": {"name": "global", "kind": "ClusterScalerAuthentication"}}]),
    );
    let triggers = resolve_triggers(&cluster(), &key(), &spec, "ebb-system")
        .await
        .unwrap();
    assert_eq!(
        triggers[0].input.secrets.get("token").map(String::as_str),
        Some("cluster-token")
    );
}

#[tokio::test]
async fn from_env_becomes_a_secret_in_both_forms_and_tls_material_stays_in_ebb() {
    let spec = spec(json!([
        {"name": "keda", "type": "external", "metadata": {"scalerAddress": "127.0.0.1:9001", "hostFromEnv": "FROM_SECRET",
            "queueFromEnv": "CFG_QUEUE", "tlsClientCert": "CERT", "tlsClientKey": "PRIVATE"}},
        {"name": "native", "scaler": {"address": "127.0.0.1:9001"}, "metadata": {"hostFromEnv": "CONN"}}
    ]));
    let mut memory = cluster();
    memory.containers = Some(containers().into_iter().rev().collect());
    let triggers = resolve_triggers(&memory, &key(), &spec, "ebb-system")
        .await
        .unwrap();
    let keda = &triggers[0].input;
    assert_eq!(keda.secrets.get("host").map(String::as_str), Some("s3cret"));
    assert_eq!(
        keda.secrets.get("queue").map(String::as_str),
        Some("orders")
    );
    assert!(!keda.metadata.contains_key("hostFromEnv"));
    for key in ["tlsClientCert", "tlsClientKey"] {
        assert!(!keda.metadata.contains_key(key), "{key} is never sent");
        assert!(!keda.secrets.contains_key(key), "{key} is never sent");
    }
    let tls = triggers[0]
        .channel
        .tls
        .as_ref()
        .expect("TLS from the material");
    assert_eq!(tls.client_cert_pem.as_deref(), Some("CERT"));
    assert_eq!(tls.client_key_pem.as_deref(), Some("PRIVATE"));
    assert_eq!(
        keda.metadata.get("scalerAddress").map(String::as_str),
        Some("127.0.0.1:9001")
    );
    let native = &triggers[1].input;
    assert_eq!(
        native.secrets.get("host").map(String::as_str),
        Some("amqp://u:p@broker")
    );
    assert!(!native.metadata.contains_key("hostFromEnv"));
}

#[tokio::test]
async fn unset_and_empty_variables_are_problems_not_dropped_keys() {
    let spec = spec(json!([
        {"name": "unset", "type": "external", "metadata": {"scalerAddress": "127.0.0.1:9001", "hostFromEnv": "MISSING"}},
        {"name": "empty", "scaler": {"address": "127.0.0.1:9001"}, "metadata": {"hostFromEnv": "EMPTY"}}
    ]));
    let mut memory = cluster();
    memory.containers = Some(containers().into_iter().rev().collect());
    let problems = resolve_triggers(&memory, &key(), &spec, "ebb-system")
        .await
        .unwrap_err();
    let fields: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.reason))
        .collect();
    assert_eq!(
        fields,
        [
            ("spec.triggers[0].metadata.hostFromEnv", "EnvNotSet"),
            ("spec.triggers[1].metadata.hostFromEnv", "EnvNotSet")
        ]
    );
}

#[tokio::test]
async fn env_source_container_name_picks_the_container() {
    let mut spec = spec(
        json!([{"name": "n", "scaler": {"address": "127.0.0.1:9001"}, "metadata": {"hostFromEnv": "CONN"}}]),
    );
    spec.scale_target_ref.env_source_container_name = Some("sidecar".into());
    let triggers = resolve_triggers(&cluster(), &key(), &spec, "ebb-system")
        .await
        .unwrap();
    assert_eq!(
        triggers[0].input.secrets.get("host").map(String::as_str),
        Some("from-sidecar")
    );
}

#[tokio::test]
async fn problems_name_the_field_and_never_the_secret() {
    let spec = spec(json!([
        {"name": "a", "scaler": {"address": "127.0.0.1:9001"}, "authenticationRef": {"name": "missing"}},
        {"name": "b", "scaler": {"address": "not an address"}},
        {"name": "c", "scaler": {"address": "127.0.0.1:9001", "tls": {"caFile": "/etc/ca.pem"}}}
    ]));
    let problems = resolve_triggers(&cluster(), &key(), &spec, "ebb-system")
        .await
        .unwrap_err();
    let fields: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.reason))
        .collect();
    assert_eq!(
        fields,
        [
            (
                "spec.triggers[0].authenticationRef",
                "AuthenticationNotFound"
            ),
            ("spec.triggers[1].scaler.address", "InvalidScalerAddress"),
            ("spec.triggers[2].scaler.tls.caFile", "FileNotAllowed"),
        ]
    );
    assert!(problems.iter().all(|p| !p.transient));
}

#[tokio::test]
async fn a_missing_secret_key_is_a_problem_and_a_read_failure_is_transient() {
    let mut memory = cluster();
    memory
        .secrets
        .insert(("shop".into(), "creds".into()), BTreeMap::new());
    let spec = spec(
        json!([{"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "authenticationRef": {"name": "auth"}}]),
    );
    let problems = resolve_triggers(&memory, &key(), &spec, "ebb-system")
        .await
        .unwrap_err();
    assert_eq!(problems[0].reason, "SecretKeyNotFound");
    memory.broken = true;
    let problems = resolve_triggers(&memory, &key(), &spec, "ebb-system")
        .await
        .unwrap_err();
    assert!(problems[0].transient, "{problems:?}");
}

#[tokio::test]
async fn tls_material_comes_from_secrets() {
    let mut memory = cluster();
    memory.secrets.insert(
        ("shop".into(), "ca".into()),
        BTreeMap::from([("ca.crt".into(), b"-----BEGIN CERTIFICATE-----".to_vec())]),
    );
    let spec = spec(
        json!([{"name": "t", "scaler": {"address": "scaler.shop.svc:9001", "tls": {"caSecretRef": {"name": "ca"}, "serverName": "scaler"}}}]),
    );
    let triggers = resolve_triggers(&memory, &key(), &spec, "ebb-system")
        .await
        .unwrap();
    let tls = triggers[0].channel.tls.as_ref().unwrap();
    assert_eq!(tls.ca_pem.as_deref(), Some("-----BEGIN CERTIFICATE-----"));
    assert_eq!(tls.server_name.as_deref(), Some("scaler"));
}

#[test]
fn addresses_need_host_and_port() {
    assert!(check_address("http://127.0.0.1:9001").is_ok());
    assert!(check_address("http://scaler.ns.svc:9001").is_ok());
    assert!(check_address("http://scaler").is_err());
    assert!(check_address("http://no port here").is_err());
}

#[tokio::test]
async fn a_scaled_job_trigger_without_an_address_calls_the_registered_scaler() {
    let spec: crate::spec::ScaledJobSpec = serde_json::from_value(json!({
        "jobTargetRef": {"template": {"spec": {"containers": [{"name": "main", "image": "i"}]}}},
        "triggers": [{"type": "rabbitmq", "metadata": {"queueName": "q"}}]
    }))
    .unwrap();
    let registry = super::registry::build(&["rabbitmq=127.0.0.1:9001".to_owned()], None).unwrap();
    let triggers = super::resolve::resolve_job_triggers(
        &Memory::default(),
        &registry,
        &key(),
        &spec,
        "ebb-system",
    )
    .await
    .unwrap();
    assert_eq!(triggers[0].channel.address, "127.0.0.1:9001");
    // Without a registration it is a problem naming the type.
    let empty = crate::runtime::prepare::ScalerRegistry::new();
    let problems = super::resolve::resolve_job_triggers(
        &Memory::default(),
        &empty,
        &key(),
        &spec,
        "ebb-system",
    )
    .await
    .unwrap_err();
    assert!(
        problems[0].to_string().contains("rabbitmq"),
        "{}",
        problems[0]
    );
}
