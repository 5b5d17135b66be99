//! kubectl, as a separate process, against `ebb-fake-apiserver`: what a user's first contact
//! with ebb does on a cluster. The CRDs and `deploy/` apply, CRDs become Established and are
//! served, `kubectl get` shows the printer columns, strict field validation refuses typos,
//! the schema refuses wrong types, and scale, wait, selectors, finalizers and garbage
//! collection behave as on a real API server.

mod real_clients;
mod support;

use real_clients::{FakeApiProcess, table_cells, text};

fn with_crds() -> FakeApiProcess {
    let server = FakeApiProcess::start();
    install_crds(&server);
    server
}

fn install_crds(server: &FakeApiProcess) {
    server.kubectl_ok(&["apply", "-k", "deploy/crds"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/scaledobjects.ebb.dev",
        "crd/scalerauthentications.ebb.dev",
        "crd/clusterscalerauthentications.ebb.dev",
    ]);
}

#[test]
fn crds_apply_become_established_and_are_served_with_discovery_and_openapi() {
    let server = FakeApiProcess::start();
    let before = server.kubectl(&["get", "scaledobjects"]);
    assert!(
        !before.status.success(),
        "no ScaledObject type before the CRD"
    );
    assert!(
        text(&before).contains("the server doesn't have a resource type \"scaledobjects\""),
        "{}",
        text(&before)
    );
    install_crds(&server);
    let conditions = server.kubectl_ok(&[
        "get",
        "crd",
        "scaledobjects.ebb.dev",
        "-o",
        "jsonpath={range .status.conditions[*]}{.type}={.status} {end}",
    ]);
    assert!(conditions.contains("NamesAccepted=True"), "{conditions}");
    assert!(conditions.contains("Established=True"), "{conditions}");
    let resources = server.kubectl_ok(&["api-resources", "--api-group=ebb.dev", "-o", "name"]);
    for name in [
        "scaledobjects.ebb.dev",
        "scalerauthentications.ebb.dev",
        "clusterscalerauthentications.ebb.dev",
    ] {
        assert!(
            resources.lines().any(|l| l == name),
            "{name} in {resources}"
        );
    }
    // The short name from the CRD works, and explain reads the schema from /openapi/v3.
    server.kubectl_ok(&["get", "eso", "-A"]);
    let explain = server.kubectl_ok(&["explain", "scaledobject.spec.maxReplicaCount"]);
    assert!(explain.contains("Most replicas (default 100)"), "{explain}");
}

#[test]
fn deploy_and_the_demo_apply_and_get_shows_printer_columns_and_defaults() {
    let server = with_crds();
    let applied = server.kubectl_ok(&["apply", "-k", "deploy/"]);
    assert!(
        applied.contains("deployment.apps/ebb-controller created"),
        "{applied}"
    );
    assert!(
        applied.contains("clusterrole.rbac.authorization.k8s.io/ebb-controller created"),
        "{applied}"
    );
    let demo = server.kubectl_ok(&["apply", "-k", "deploy/examples/rabbitmq-consumer"]);
    assert!(
        demo.contains("scaledobject.ebb.dev/rabbitmq-consumer created"),
        "{demo}"
    );
    // Applying again changes nothing: kubectl's three-way patch against the fake is a no-op.
    let again = server.kubectl_ok(&["apply", "-k", "deploy/examples/rabbitmq-consumer"]);
    assert!(
        again.contains("scaledobject.ebb.dev/rabbitmq-consumer unchanged"),
        "{again}"
    );
    let table = server.kubectl_ok(&["get", "scaledobjects", "-n", "ebb-demo"]);
    let header = table_cells(&table, 0);
    assert_eq!(
        header,
        [
            "NAME",
            "TARGET",
            "MIN",
            "MAX",
            "REPLICAS",
            "TRIGGERS",
            "AUTHENTICATIONS",
            "READY",
            "ACTIVE",
            "FALLBACK",
            "PAUSED",
            "AGE"
        ],
        "{table}"
    );
    // No status yet: the Replicas, Ready, Active, Fallback and Paused cells are empty.
    let row = table_cells(&table, 1);
    assert_eq!(
        row[..6],
        [
            "rabbitmq-consumer",
            "rabbitmq-consumer",
            "0",
            "30",
            "rabbitmq",
            "rabbitmq-broker"
        ],
        "{table}"
    );
    // The schema's defaults were applied to what the manifest left out.
    let defaulted = server.kubectl_ok(&[
        "get",
        "scaledobject",
        "rabbitmq-consumer",
        "-n",
        "ebb-demo",
        "-o",
        "jsonpath={.spec.initialCooldownPeriod}/{.spec.fallback}/{.spec.pollingInterval}",
    ]);
    assert!(
        defaulted.starts_with("0/"),
        "initialCooldownPeriod defaults to 0: {defaulted}"
    );
    assert!(
        defaulted.ends_with("/5"),
        "the manifest's pollingInterval stays: {defaulted}"
    );
    let deployments = server.kubectl_ok(&["get", "deployments", "-n", "ebb-system"]);
    assert!(deployments.starts_with("NAME"), "{deployments}");
    assert!(deployments.contains("ebb-controller"), "{deployments}");
}

#[test]
fn strict_validation_refuses_typos_and_the_schema_refuses_wrong_types() {
    let server = with_crds();
    server.kubectl_ok(&["create", "namespace", "apps"]);
    let manifest = |name: &str, extra: &str| {
        let path = server.dir().join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  scaleTargetRef:\n    name: worker\n{extra}  triggers: []\n"
            ),
        )
        .expect("write manifest");
        path.to_string_lossy().into_owned()
    };
    let typo = manifest("typo", "  minReplicas: 1\n");
    let refused = server.kubectl(&["apply", "-f", &typo]);
    assert!(
        !refused.status.success(),
        "a typo is refused under kubectl's strict default"
    );
    assert!(
        text(&refused).contains(
            "ScaledObject in version \"v1alpha1\" cannot be handled as a ScaledObject: strict decoding error: unknown field \"spec.minReplicas\""
        ),
        "{}",
        text(&refused)
    );
    let missing = server.kubectl(&["get", "scaledobject", "typo", "-n", "apps"]);
    assert!(
        text(&missing).contains("NotFound"),
        "nothing was stored: {}",
        text(&missing)
    );

    let thirty = manifest("thirty", "  maxReplicaCount: thirty\n");
    let invalid = server.kubectl(&["apply", "-f", &thirty]);
    assert!(!invalid.status.success());
    assert!(
        text(&invalid).contains(
            "The ScaledObject \"thirty\" is invalid: spec.maxReplicaCount: Invalid value: \"string\": spec.maxReplicaCount in body must be of type integer: \"string\""
        ),
        "{}",
        text(&invalid)
    );

    let negative = manifest("negative", "  minReplicaCount: -1\n");
    let below = server.kubectl(&["apply", "-f", &negative]);
    assert!(
        text(&below).contains("spec.minReplicaCount in body should be greater than or equal to 0"),
        "{}",
        text(&below)
    );

    // Warn stores the object with the unknown field pruned and says so; Ignore says nothing.
    let warned = server.kubectl(&["apply", "--validate=warn", "-f", &typo]);
    assert!(warned.status.success(), "{}", text(&warned));
    assert!(
        String::from_utf8_lossy(&warned.stderr)
            .contains("Warning: unknown field \"spec.minReplicas\""),
        "{}",
        text(&warned)
    );
    let stored = server.kubectl_ok(&["get", "scaledobject", "typo", "-n", "apps", "-o", "json"]);
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert!(
        stored["spec"].get("minReplicas").is_none(),
        "pruned: {stored}"
    );
    assert_eq!(
        stored["spec"]["maxReplicaCount"], 100,
        "defaulted: {stored}"
    );
    let quiet = manifest("quiet", "  minReplicas: 1\n");
    let ignored = server.kubectl(&["apply", "--validate=false", "-f", &quiet]);
    assert!(ignored.status.success(), "{}", text(&ignored));
    assert!(
        !String::from_utf8_lossy(&ignored.stderr).contains("Warning"),
        "{}",
        text(&ignored)
    );
}

#[test]
fn deployments_create_wait_scale_and_select_by_label() {
    let server = FakeApiProcess::start();
    server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
    ]);
    server.kubectl_ok(&["create", "deployment", "api", "--image=busybox"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "--timeout=20s",
        "deployment/web",
    ]);
    let scaled = server.kubectl_ok(&["scale", "deployment", "web", "--replicas=4"]);
    assert!(scaled.contains("deployment.apps/web scaled"), "{scaled}");
    let table = server.kubectl_ok(&["get", "deployment", "web"]);
    let row = table_cells(&table, 1);
    assert_eq!(row[..4], ["web", "4/4", "4", "4"], "{table}");
    let generation = server.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert_eq!(generation, "2", "the scale changed the spec once");
    let selected = server.kubectl_ok(&["get", "deployments", "-l", "app=api", "-o", "name"]);
    assert_eq!(selected.trim(), "deployment.apps/api");
    let by_field = server.kubectl_ok(&[
        "get",
        "deployments",
        "--field-selector",
        "metadata.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "deployment.apps/web");
    // A namespace that does not exist is refused, as on a cluster.
    let nowhere = server.kubectl(&[
        "create",
        "deployment",
        "x",
        "--image=busybox",
        "-n",
        "nowhere",
    ]);
    assert!(
        text(&nowhere).contains("namespaces \"nowhere\" not found"),
        "{}",
        text(&nowhere)
    );
}

#[test]
fn delete_waits_for_finalizers_and_collects_dependents() {
    let server = FakeApiProcess::start();
    server.kubectl_ok(&["create", "deployment", "owner", "--image=busybox"]);
    let uid = server.kubectl_ok(&[
        "get",
        "deployment",
        "owner",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let dependent = server.dir().join("dependent.yaml");
    std::fs::write(
        &dependent,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: owner\n    uid: {uid}\ndata:\n  a: b\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n"
        ),
    )
    .expect("write manifest");
    server.kubectl_ok(&["apply", "-f", &dependent.to_string_lossy()]);
    server.kubectl_ok(&["delete", "deployment", "owner"]);
    server.kubectl_ok(&[
        "wait",
        "--for=delete",
        "--timeout=20s",
        "configmap/dependent",
    ]);

    server.kubectl_ok(&["delete", "configmap", "held", "--wait=false"]);
    let pending = server.kubectl_ok(&[
        "get",
        "configmap",
        "held",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(
        !pending.is_empty(),
        "a finalizer holds the object, marked for deletion"
    );
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ]);
    server.kubectl_ok(&["wait", "--for=delete", "--timeout=20s", "configmap/held"]);
}

#[test]
fn the_binary_writes_a_kubeconfig_kubectl_accepts_and_stops_on_sigterm() {
    let server = FakeApiProcess::start();
    let version = server.kubectl_ok(&["version", "-o", "json"]);
    let version: serde_json::Value = serde_json::from_str(&version).expect("JSON");
    assert_eq!(version["serverVersion"]["minor"], "33", "{version}");
    let namespaces = server.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(
        namespaces.lines().any(|l| l == "namespace/default"),
        "{namespaces}"
    );
    let status = server.terminate();
    assert!(status.success(), "SIGTERM ends it cleanly: {status}");
}

const WORKER_POOL_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: workerpools.example.com
spec:
  group: example.com
  names: {kind: WorkerPool, plural: workerpools, singular: workerpool}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer, minimum: 0}
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
---
apiVersion: example.com/v1
kind: WorkerPool
metadata:
  name: pool
spec:
  replicas: 1
";

#[test]
fn custom_resources_follow_the_status_and_scale_subresource_rules() {
    let server = FakeApiProcess::start();
    let manifest = server.dir().join("workerpool.yaml");
    std::fs::write(&manifest, WORKER_POOL_CRD).expect("write manifest");
    // The CR in the same file may come before its type is served; apply again after.
    let _ = server.kubectl(&["apply", "-f", &manifest.to_string_lossy()]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/workerpools.example.com",
    ]);
    server.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    let read = |path: &str| {
        server.kubectl_ok(&[
            "get",
            "workerpool",
            "pool",
            "-o",
            &format!("jsonpath={path}"),
        ])
    };
    assert_eq!(read("{.metadata.generation}"), "1");
    server.kubectl_ok(&["scale", "workerpool", "pool", "--replicas=3"]);
    assert_eq!(read("{.spec.replicas}/{.metadata.generation}"), "3/2");
    // A status write changes status only: the spec in it is ignored, generation stays.
    server.kubectl_ok(&[
        "patch",
        "workerpool",
        "pool",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":3,"selector":"app=pool"},"spec":{"replicas":9}}"#,
    ]);
    assert_eq!(
        read("{.spec.replicas}/{.status.replicas}/{.metadata.generation}"),
        "3/3/2"
    );
    // A main-resource write ignores status.
    server.kubectl_ok(&[
        "patch",
        "workerpool",
        "pool",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":7},"spec":{"replicas":4}}"#,
    ]);
    assert_eq!(
        read("{.spec.replicas}/{.status.replicas}/{.metadata.generation}"),
        "4/3/3"
    );
    let scale = server.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/workerpools/pool/scale",
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).expect("JSON");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=pool");
}
