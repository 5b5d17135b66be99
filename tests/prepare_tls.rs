//! TLS material reaches the connection and never the scaler, in both hosts. A scaler that
//! speaks only KEDA's protocol serves mutual TLS on loopback (it refuses a client without a
//! certificate from its CA) and records every `scalerMetadata` it is sent. Under `ebb run`
//! (the real binary scaling a real process group) the CA, client certificate and key are given
//! as files, inline and from the environment; in the cluster (the real controller against the
//! fake API server) through an `authenticationRef` to a Secret. Each form must scale the target
//! (10 waiting at target 5 → 2 replicas), which needs the handshake, and the scaler must never
//! see any part of the material.

#[path = "ebb_run/mod.rs"]
mod ebb_run;
#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb::proto::keda;
use ebb::proto::keda::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use ebb_run::EbbRun;
use fake_apiserver::FakeApiServer;
use in_process_controller::{InProcessController, test_args};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::json;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// PEM material of one test: a CA, the scaler's certificate and a client identity.
struct Material {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn material() -> Material {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("client key");
    let client = CertificateParams::new(vec!["ebb-client".to_owned()])
        .expect("client params")
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    Material {
        ca: ca.pem(),
        server_cert: server.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// Every `scalerMetadata` the scaler received.
type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A KEDA-only scaler: backlog 10 at target 5, active, no push.
struct RecordingScaler {
    seen: Seen,
}

impl RecordingScaler {
    fn record(&self, reference: Option<&keda::ScaledObjectRef>) {
        if let Some(reference) = reference {
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(reference.scaler_metadata.clone());
        }
    }
}

#[tonic::async_trait]
impl ExternalScaler for RecordingScaler {
    type StreamIsActiveStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<keda::IsActiveResponse, Status>> + Send>,
    >;

    async fn is_active(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::IsActiveResponse>, Status> {
        self.record(Some(request.get_ref()));
        Ok(Response::new(keda::IsActiveResponse { result: true }))
    }

    async fn stream_is_active(
        &self,
        _request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        Err(Status::unimplemented("no push"))
    }

    async fn get_metric_spec(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::GetMetricSpecResponse>, Status> {
        self.record(Some(request.get_ref()));
        Ok(Response::new(keda::GetMetricSpecResponse {
            metric_specs: vec![keda::MetricSpec {
                metric_name: "backlog".into(),
                target_size: 5,
                target_size_float: 5.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<keda::GetMetricsRequest>,
    ) -> Result<Response<keda::GetMetricsResponse>, Status> {
        self.record(request.get_ref().scaled_object_ref.as_ref());
        Ok(Response::new(keda::GetMetricsResponse {
            metric_values: vec![keda::MetricValue {
                metric_name: "backlog".into(),
                metric_value: 10,
                metric_value_float: 10.0,
            }],
        }))
    }
}

/// Starts the mutual-TLS scaler on a thread of its own (the `ebb run` tests block their own).
fn start_scaler(material: &Material) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            &material.server_cert,
            &material.server_key,
        ))
        .client_ca_root(Certificate::from_pem(&material.ca));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    let scaler = RecordingScaler { seen: seen.clone() };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            Server::builder()
                .tls_config(tls)
                .expect("tls config")
                .add_service(ExternalScalerServer::new(scaler))
                .serve_with_incoming(incoming)
                .await
                .expect("serve");
        });
    });
    (address, seen)
}

/// Fails when any metadata the scaler received names or holds TLS material.
fn assert_no_material(seen: &Seen, material: &Material) {
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(!seen.is_empty(), "the scaler was called");
    let pems = [&material.ca, &material.client_cert, &material.client_key];
    for metadata in seen.iter() {
        for (key, value) in metadata {
            let lower = key.to_ascii_lowercase();
            assert!(
                !lower.contains("cacert")
                    && !lower.contains("tlsclient")
                    && !lower.contains("tlscert"),
                "TLS key {key:?} was sent to the scaler"
            );
            assert!(
                !value.contains("-----BEGIN"),
                "PEM text sent to the scaler under {key:?}"
            );
            for pem in pems {
                let body = pem.lines().nth(1).unwrap_or_default();
                assert!(!value.contains(body), "TLS material sent under {key:?}");
            }
        }
        assert_eq!(
            metadata.get("queueName").map(String::as_str),
            Some("orders"),
            "plain metadata still arrives"
        );
    }
}

/// Indents PEM text as a YAML block scalar.
fn block(pem: &str) -> String {
    let mut text = String::from("|\n");
    for line in pem.lines() {
        text.push_str("          ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Runs `ebb run` on a ScaledObject whose trigger carries `tls_metadata` (YAML lines at the
/// metadata's indentation), waits for 2 running workers, and checks what the scaler saw.
fn local_run_scales_over_mutual_tls(
    material: &Material,
    dir: &std::path::Path,
    tls_metadata: &str,
    env: &[(&str, &str)],
) {
    let (address, seen) = start_scaler(material);
    let manifest = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata:
  name: workers
spec:
  command: sleep
  args: ["600"]
  gracePeriod: 1s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    apiVersion: ebb.dev/v1alpha1
    kind: ProcessGroup
    name: workers
  pollingInterval: 1
  maxReplicaCount: 5
  triggers:
    - type: external
      name: backlog
      metadata:
        scalerAddress: "{address}"
        queueName: orders
{tls_metadata}"#
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, manifest).expect("write manifest");
    let ebb = support::binary("ebb", "ebb");
    let run = EbbRun::start_with_env(&ebb, &path, &dir.join("ebb.log"), env);
    support::wait_for(
        "2 workers running (10 waiting at target 5, over mutual TLS)",
        Duration::from_secs(60),
        || {
            run.status()
                .is_some_and(|status| status["processGroups"][0]["running"].as_u64() == Some(2))
        },
    );
    assert_no_material(&seen, material);
}

#[test]
fn ebb_run_with_tls_material_from_files() {
    let material = material();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), &material.ca).expect("write");
    std::fs::write(dir.path().join("client.pem"), &material.client_cert).expect("write");
    std::fs::write(dir.path().join("client-key.pem"), &material.client_key).expect("write");
    local_run_scales_over_mutual_tls(
        &material,
        dir.path(),
        "        caCertFromFile: ca.pem\n        tlsClientCertFromFile: client.pem\n        tlsClientKeyFromFile: client-key.pem\n",
        &[],
    );
}

#[test]
fn ebb_run_with_inline_tls_material() {
    let material = material();
    let dir = tempfile::tempdir().expect("tempdir");
    let metadata = format!(
        "        enableTLS: \"true\"\n        caCert: {}        tlsClientCert: {}        tlsClientKey: {}",
        block(&material.ca),
        block(&material.client_cert),
        block(&material.client_key)
    );
    local_run_scales_over_mutual_tls(&material, dir.path(), &metadata, &[]);
}

#[test]
fn ebb_run_with_tls_material_from_the_environment() {
    let material = material();
    let dir = tempfile::tempdir().expect("tempdir");
    local_run_scales_over_mutual_tls(
        &material,
        dir.path(),
        "        caCertFromEnv: TEST_CA_PEM\n        tlsClientCertFromEnv: TEST_CLIENT_PEM\n        tlsClientKeyFromEnv: TEST_CLIENT_KEY_PEM\n",
        &[
            ("TEST_CA_PEM", &material.ca),
            ("TEST_CLIENT_PEM", &material.client_cert),
            ("TEST_CLIENT_KEY_PEM", &material.client_key),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_takes_tls_material_from_an_authentication_ref() {
    const NS: &str = "apps";
    let material = material();
    let (address, seen) = start_scaler(&material);
    let server = FakeApiServer::start().await;
    server
        .create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "scaler-tls", "namespace": NS},
            "stringData": {"ca.crt": material.ca, "tls.crt": material.client_cert, "tls.key": material.client_key}
        }))
        .expect("secret");
    server
        .create(json!({
            "apiVersion": "ebb.dev/v1alpha1", "kind": "ScalerAuthentication",
            "metadata": {"name": "scaler-tls", "namespace": NS},
            "spec": {"secretTargetRef": [
                {"parameter": "caCert", "name": "scaler-tls", "key": "ca.crt"},
                {"parameter": "tlsClientCert", "name": "scaler-tls", "key": "tls.crt"},
                {"parameter": "tlsClientKey", "name": "scaler-tls", "key": "tls.key"}
            ]}
        }))
        .expect("authentication");
    server
        .create(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "workers", "namespace": NS},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "workers"}},
                "template": {"metadata": {"labels": {"app": "workers"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}
        }))
        .expect("deployment");
    server
        .create(json!({
            "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "orders", "namespace": NS},
            "spec": {"scaleTargetRef": {"name": "workers"}, "pollingInterval": 1, "maxReplicaCount": 5,
                "triggers": [{"type": "external", "name": "backlog",
                    "metadata": {"scalerAddress": address.to_string(), "queueName": "orders"},
                    "authenticationRef": {"name": "scaler-tls"}}]}
        }))
        .expect("scaled object");
    let controller = InProcessController::start(server.client(), test_args("tls-test")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.deployment_replicas(NS, "workers") != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the Deployment did not reach 2 replicas over mutual TLS; ScaledObject: {:?}",
            server.get("ebb.dev/v1alpha1", "ScaledObject", NS, "orders")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_no_material(&seen, &material);
    let status = server
        .get("ebb.dev/v1alpha1", "ScaledObject", NS, "orders")
        .map(|object| object["status"].to_string())
        .unwrap_or_default();
    assert!(!status.contains("BEGIN"), "no PEM in status: {status}");
    controller.stop().await;
}
