//! One table of trigger fixtures run through both hosts' preparation: `ebb run`'s plan (files
//! on disk: a ProcessGroup with `env`, `kind: Secret`, `ConfigMap` and `ScalerAuthentication`
//! documents) and the controller's (the same objects in the fake API server, a Deployment's
//! container env, read through the real kube client). Each case asserts that both hosts
//! prepare identical triggers, or report the same problem on the same field. The one
//! deliberate difference, files, is a case of its own.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;

use ebb::kubernetes::lookup::KubeLookup;
use ebb::kubernetes::resolve::resolve_triggers;
use ebb::kubernetes::target::TargetResolver;
use ebb::runtime::{ObjectKey, ResolvedTrigger};
use ebb::spec::ScaledObjectSpec;
use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

const NS: &str = "apps";
const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBcafixture\n-----END CERTIFICATE-----";
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBclientfixture\n-----END CERTIFICATE-----";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBkeyfixture\n-----END PRIVATE KEY-----";

/// What both hosts must agree on.
enum Expect {
    /// Equal prepared triggers; also checked: these secret keys and no TLS key in metadata.
    Same {
        secrets: &'static [&'static str],
        tls: bool,
    },
    /// The same problem on this field with this reason.
    Problem(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    trigger: Value,
    expect: Expect,
}

/// The environment of the target, the Secret `creds`, ConfigMap `settings` and the
/// authentication objects every case may use.
fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CONN", "amqp://user:pw@broker:5672/%2f"),
        ("CA_PEM", CA),
        ("EMPTY", ""),
    ]
}

fn secret() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
        "stringData": {"password": "hunter2", "ca.crt": CA, "tls.crt": CERT, "tls.key": KEY}})
}

fn config_map() -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NS},
        "data": {"queue": "orders"}})
}

fn authentications() -> Vec<Value> {
    let auth = |name: &str, spec: Value| {
        json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScalerAuthentication",
            "metadata": {"name": name, "namespace": NS}, "spec": spec})
    };
    vec![
        auth(
            "all-sources",
            json!({
                "secretTargetRef": [{"parameter": "password", "name": "creds", "key": "password"}],
                "configMapTargetRef": [{"parameter": "queue", "name": "settings", "key": "queue"}],
                "env": [{"parameter": "host", "name": "CONN"}]
            }),
        ),
        auth(
            "tls",
            json!({"secretTargetRef": [
                {"parameter": "caCert", "name": "creds", "key": "ca.crt"},
                {"parameter": "tlsClientCert", "name": "creds", "key": "tls.crt"},
                {"parameter": "tlsClientKey", "name": "creds", "key": "tls.key"}
            ]}),
        ),
        auth(
            "missing-key",
            json!({"secretTargetRef": [{"parameter": "password", "name": "creds", "key": "nope"}]}),
        ),
    ]
}

fn keda(metadata: Value) -> Value {
    let mut metadata = metadata;
    metadata["scalerAddress"] = json!("127.0.0.1:9001");
    json!({"type": "external", "name": "t", "metadata": metadata})
}

fn native(metadata: Value) -> Value {
    json!({"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "metadata": metadata})
}

fn cases() -> Vec<Case> {
    use Expect::{Problem, Same};
    let case = |name, trigger, expect| Case {
        name,
        trigger,
        expect,
    };
    vec![
        case(
            "plain metadata",
            native(json!({"queueName": "orders"})),
            Same {
                secrets: &[],
                tls: false,
            },
        ),
        case(
            "native FromEnv",
            native(json!({"hostFromEnv": "CONN"})),
            Same {
                secrets: &["host"],
                tls: false,
            },
        ),
        case(
            "KEDA FromEnv",
            keda(json!({"hostFromEnv": "CONN"})),
            Same {
                secrets: &["host"],
                tls: false,
            },
        ),
        case(
            "authenticationRef: Secret, ConfigMap and env",
            json!({"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "authenticationRef": {"name": "all-sources"}}),
            Same {
                secrets: &["host", "password", "queue"],
                tls: false,
            },
        ),
        case(
            "KEDA inline TLS",
            keda(json!({"caCert": CA, "tlsClientCert": CERT, "tlsClientKey": KEY})),
            Same {
                secrets: &[],
                tls: true,
            },
        ),
        case(
            "KEDA TLS from env",
            keda(json!({"enableTLS": "true", "caCertFromEnv": "CA_PEM"})),
            Same {
                secrets: &[],
                tls: true,
            },
        ),
        case(
            "TLS through authenticationRef",
            {
                let mut trigger = keda(json!({}));
                trigger["authenticationRef"] = json!({"name": "tls"});
                trigger
            },
            Same {
                secrets: &[],
                tls: true,
            },
        ),
        case(
            "native scaler.tls Secret references",
            json!({"name": "t", "scaler": {"address": "127.0.0.1:9001", "tls": {
                "caSecretRef": {"name": "creds"}, "clientCertSecretRef": {"name": "creds"}}}}),
            Same {
                secrets: &[],
                tls: true,
            },
        ),
        case(
            "unset variable",
            keda(json!({"hostFromEnv": "NOT_SET"})),
            Problem("spec.triggers[0].metadata.hostFromEnv", "EnvNotSet"),
        ),
        case(
            "empty variable",
            native(json!({"hostFromEnv": "EMPTY"})),
            Problem("spec.triggers[0].metadata.hostFromEnv", "EnvNotSet"),
        ),
        case(
            "bad address",
            json!({"name": "t", "scaler": {"address": "no port here"}}),
            Problem("spec.triggers[0].scaler.address", "InvalidScalerAddress"),
        ),
        case(
            "missing authentication",
            json!({"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "authenticationRef": {"name": "absent"}}),
            Problem(
                "spec.triggers[0].authenticationRef",
                "AuthenticationNotFound",
            ),
        ),
        case(
            "missing Secret key",
            json!({"name": "t", "scaler": {"address": "127.0.0.1:9001"}, "authenticationRef": {"name": "missing-key"}}),
            Problem("spec.triggers[0].authenticationRef", "SecretKeyNotFound"),
        ),
        case(
            "client certificate without its key",
            keda(json!({"tlsClientCert": CERT})),
            Problem(
                "spec.triggers[0].metadata.tlsClientCert",
                "InvalidTriggerField",
            ),
        ),
        case(
            "the same TLS material twice",
            keda(json!({"caCert": CA, "caCertFromEnv": "CA_PEM"})),
            Problem(
                "spec.triggers[0].metadata.caCertFromEnv",
                "InvalidTriggerField",
            ),
        ),
        case(
            "TLS with an http:// address",
            json!({"name": "t", "type": "external", "metadata": {"scalerAddress": "http://127.0.0.1:9001", "caCert": CA}}),
            Problem(
                "spec.triggers[0].metadata.scalerAddress",
                "InvalidScalerAddress",
            ),
        ),
    ]
}

fn spec(trigger: &Value, target: Value) -> Value {
    json!({"scaleTargetRef": target, "triggers": [trigger]})
}

fn to_yaml(value: &Value) -> String {
    serde_norway::to_string(value).expect("yaml")
}

/// Prepares `trigger` as `ebb run` would: every object written to files, then `plan`.
fn local(trigger: &Value, files: &[(&str, &str)]) -> Result<Vec<ResolvedTrigger>, Vec<String>> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    let env: serde_json::Map<String, Value> = env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let mut documents = vec![
        json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ProcessGroup", "metadata": {"name": "workers"},
            "spec": {"command": "sleep", "args": ["60"], "env": env}}),
        json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "orders"},
            "spec": spec(trigger, json!({"apiVersion": "ebb.dev/v1alpha1", "kind": "ProcessGroup", "name": "workers"}))}),
        secret(),
        config_map(),
    ];
    documents.extend(authentications());
    let text: Vec<String> = documents.iter().map(to_yaml).collect();
    let path = dir.path().join("objects.yaml");
    std::fs::write(&path, text.join("---\n")).expect("write manifest");
    ebb::local::plan::plan(&path, &|_| None)
        .map(|plan| plan.objects[0].triggers.clone())
        .map_err(|error| error.problems)
}

/// Prepares `trigger` as the controller would, against objects in the fake API server.
async fn cluster(
    server: &FakeApiServer,
    trigger: &Value,
) -> Result<Vec<ResolvedTrigger>, Vec<ebb::kubernetes::resolve::ResolveProblem>> {
    let spec: ScaledObjectSpec =
        serde_json::from_value(spec(trigger, json!({"name": "workers"}))).expect("spec");
    let client = server.client();
    let lookup = KubeLookup::new(client.clone(), TargetResolver::new(client));
    let mut triggers =
        resolve_triggers(&lookup, &ObjectKey::new(NS, "orders"), &spec, "ebb-system").await?;
    for trigger in &mut triggers {
        // The one thing that differs by host: Kubernetes objects have a namespace.
        trigger.input.namespace.clear();
    }
    Ok(triggers)
}

async fn fake_cluster() -> FakeApiServer {
    let server = FakeApiServer::start().await;
    let env: Vec<Value> = env()
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    server
        .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "workers", "namespace": NS},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "workers"}},
                "template": {"metadata": {"labels": {"app": "workers"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox", "env": env}]}}}}))
        .expect("deployment");
    server.create(secret()).expect("secret");
    server.create(config_map()).expect("config map");
    for auth in authentications() {
        server.create(auth).expect("authentication");
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_hosts_prepare_the_same_triggers_or_report_the_same_problem() {
    let server = fake_cluster().await;
    let mut failures = Vec::new();
    for case in cases() {
        let local = local(&case.trigger, &[]);
        let cluster = cluster(&server, &case.trigger).await;
        match (&case.expect, local, cluster) {
            (Expect::Same { secrets, tls }, Ok(local), Ok(cluster)) => {
                if local != cluster {
                    failures.push(format!(
                        "{}: hosts differ:\n  local   {local:?}\n  cluster {cluster:?}",
                        case.name
                    ));
                    continue;
                }
                let input = &local[0].input;
                let keys: Vec<&str> = input.secrets.keys().map(String::as_str).collect();
                if keys != *secrets {
                    failures.push(format!(
                        "{}: secrets {keys:?}, expected {secrets:?}",
                        case.name
                    ));
                }
                if local[0].channel.tls.is_some() != *tls {
                    failures.push(format!("{}: TLS on = {}", case.name, !tls));
                }
                let leaked =
                    input
                        .metadata
                        .iter()
                        .chain(input.secrets.iter())
                        .any(|(key, value)| {
                            key.starts_with("caCert")
                                || key.starts_with("tlsClient")
                                || value.contains("-----BEGIN")
                        });
                if leaked {
                    failures.push(format!(
                        "{}: TLS material would reach the scaler",
                        case.name
                    ));
                }
            }
            (Expect::Problem(field, reason), Err(local), Err(cluster)) => {
                let [problem] = cluster.as_slice() else {
                    failures.push(format!("{}: cluster problems {cluster:?}", case.name));
                    continue;
                };
                if problem.field != *field || problem.reason != *reason {
                    failures.push(format!("{}: cluster reported {problem:?}", case.name));
                }
                let same_words = format!("{}: {}", problem.field, problem.message);
                if !(local.len() == 1 && local[0].ends_with(&same_words)) {
                    failures.push(format!(
                        "{}: local reported {local:?}, cluster {same_words:?}",
                        case.name
                    ));
                }
            }
            (_, local, cluster) => failures.push(format!(
                "{}: unexpected outcome: local {local:?}, cluster {cluster:?}",
                case.name
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Files are the one difference, on purpose: `ebb run` reads them; the controller refuses
/// them, because a ScaledObject's author must not read the controller's own files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_read_locally_and_refused_in_the_cluster() {
    let server = fake_cluster().await;
    let trigger = native(json!({"passwordFromFile": "password.txt", "caCertFromFile": "ca.pem"}));
    let local = local(&trigger, &[("password.txt", "hunter2\n"), ("ca.pem", CA)]).expect("local");
    assert_eq!(
        local[0].input.secrets.get("password").map(String::as_str),
        Some("hunter2"),
        "the trailing newline is dropped"
    );
    let tls = local[0]
        .channel
        .tls
        .as_ref()
        .expect("TLS from caCertFromFile");
    assert_eq!(tls.ca_pem.as_deref(), Some(CA));
    assert!(!local[0].input.metadata.contains_key("caCertFromFile"));
    let problems = cluster(&server, &trigger).await.expect_err("refused");
    assert!(
        problems.iter().all(|p| p.reason == "FileNotAllowed"),
        "{problems:?}"
    );
}
