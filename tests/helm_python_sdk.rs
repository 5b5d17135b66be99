//! Helm's own library (PyPI `helm-python-sdk`, as a separate process: `tests/python/
//! helm_install.py`) installs the chart `deploy/helm/ebb` into the real control plane,
//! upgrades it and uninstalls it, with the default values and with each scaler sidecar
//! disabled. kubectl, another client, checks what each step left: the release's objects, made
//! by Helm; the controller Deployment rolled out by the real Deployment and ReplicaSet
//! controllers onto the kubelet stand-in's nodes (no image runs: the stand-in only moves Pods
//! to Running); the registry the controller gets; the release Secrets; and after the
//! uninstall, none of it (the Pods removed by the real garbage collector), the CRDs kept.

mod real_clients;
mod support;

use std::time::Duration;

use real_clients::cluster::Cluster;
use real_clients::helm::HelmRelease;
use serde_json::{Value, json};

/// How long the real controllers get to roll a Deployment out or to collect its Pods.
const ROLLOUT: Duration = Duration::from_secs(90);

/// What the chart should install for one set of values.
struct Expected<'a> {
    /// The controller pod's containers, in order.
    containers: &'a str,
    /// The controller's `EBB_SCALERS`.
    registry: &'a str,
}

#[test]
fn helm_installs_upgrades_and_uninstalls_the_chart_with_its_defaults() {
    install_upgrade_uninstall(
        "helm-defaults",
        json!({}),
        &Expected {
            containers: "controller rabbitmq-scaler azure-queue-scaler",
            registry: "azure-queue=127.0.0.1:9002,rabbitmq=127.0.0.1:9001",
        },
    );
}

#[test]
fn helm_installs_upgrades_and_uninstalls_the_chart_without_the_rabbitmq_sidecar() {
    install_upgrade_uninstall(
        "helm-no-rabbitmq",
        json!({ "scalers": { "rabbitmq": { "enabled": false } } }),
        &Expected {
            containers: "controller azure-queue-scaler",
            registry: "azure-queue=127.0.0.1:9002",
        },
    );
}

#[test]
fn helm_installs_upgrades_and_uninstalls_the_chart_without_the_azure_queue_sidecar() {
    install_upgrade_uninstall(
        "helm-no-azure-queue",
        json!({ "scalers": { "azureQueue": { "enabled": false } } }),
        &Expected {
            containers: "controller rabbitmq-scaler",
            registry: "rabbitmq=127.0.0.1:9001",
        },
    );
}

/// Install with `values`, check; upgrade to three replicas, check; uninstall, check.
fn install_upgrade_uninstall(prefix: &str, values: Value, expected: &Expected<'_>) {
    let cluster = Cluster::running();
    // Helm creates the CRDs when they are missing, and the ClusterRole and its binding:
    // cluster-wide, so one release at a time.
    let _cluster_wide = cluster.exclusive();
    let namespace = cluster.namespace(prefix);
    // The release is named after the namespace, so its ClusterRole never meets another's.
    let mut release = cluster.helm_install(&namespace.name, &namespace.name, &values);
    let objects = release.objects.clone();
    let mut kinds: Vec<&str> = objects.iter().map(|o| o.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    for object in &objects {
        assert_made_by_helm(&cluster, &release, &object.kubectl_args());
    }
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/scaledobjects.ebb.dev",
        "crd/scaledjobs.ebb.dev",
    ]);
    assert_controller_deployment(&cluster, &release, expected, 2);
    assert_deployed_revision(&cluster, &release, 1);

    let mut upgrade = values.clone();
    upgrade["replicaCount"] = json!(3);
    let report = release.upgrade(&upgrade);
    let upgraded = format!("OK upgraded {} to revision 2: deployed", release.name);
    assert!(report.contains(&upgraded), "{report}");
    assert_controller_deployment(&cluster, &release, expected, 3);
    assert_deployed_revision(&cluster, &release, 2);

    release.uninstall();
    for object in &objects {
        let mut args = vec!["get"];
        args.extend(object.kubectl_args());
        let left = cluster.kubectl(&args);
        assert!(
            !left.status.success() && real_clients::text(&left).contains("NotFound"),
            "{object} is still there after helm uninstall: {}",
            real_clients::text(&left)
        );
    }
    let release_secrets = format!("owner=helm,name={}", release.name);
    let secrets = cluster.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        &release.namespace,
        "-l",
        &release_secrets,
        "-o",
        "name",
    ]);
    assert_eq!(secrets.trim(), "", "release Secrets left after uninstall");
    // The ReplicaSets and Pods were never in the manifest: the garbage collector removes them.
    let selector = format!("app.kubernetes.io/name={}", release.fullname());
    cluster.wait_for_output(
        &[
            "get",
            "replicasets,pods",
            "-n",
            &release.namespace,
            "-l",
            &selector,
            "-o",
            "name",
        ],
        "",
        ROLLOUT,
    );
    // Helm never deletes CRDs (that would delete every ScaledObject with them).
    cluster.kubectl_ok(&["get", "crd", "scaledobjects.ebb.dev", "-o", "name"]);
}

/// Fails unless `kubectl get ARGS` finds the object, annotated as the release's by Helm.
fn assert_made_by_helm(cluster: &Cluster, release: &HelmRelease<'_>, args: &[&str]) {
    let mut get = vec!["get"];
    get.extend(args);
    get.extend([
        "-o",
        "jsonpath={.metadata.annotations.meta\\.helm\\.sh/release-name} \
         {.metadata.annotations.meta\\.helm\\.sh/release-namespace}",
    ]);
    let owner = cluster.kubectl_ok(&get);
    assert_eq!(
        owner,
        format!("{} {}", release.name, release.namespace),
        "{args:?}"
    );
}

/// Checks the controller Deployment as the apiserver holds it, then waits until the real
/// controllers have rolled it out with `replicas` ready Pods (Running on the stand-in nodes).
fn assert_controller_deployment(
    cluster: &Cluster,
    release: &HelmRelease<'_>,
    expected: &Expected<'_>,
    replicas: u32,
) {
    let deployment = format!("deployment/{}", release.fullname());
    let get = |jsonpath: &str| {
        cluster.kubectl_ok(&[
            "get",
            &deployment,
            "-n",
            &release.namespace,
            "-o",
            &format!("jsonpath={jsonpath}"),
        ])
    };
    assert_eq!(
        get("{.spec.template.spec.containers[*].name}"),
        expected.containers
    );
    assert_eq!(
        get("{.spec.template.spec.containers[0].env[?(@.name==\"EBB_SCALERS\")].value}"),
        expected.registry
    );
    assert_eq!(
        get("{.spec.template.spec.serviceAccountName}"),
        release.fullname()
    );
    assert_eq!(get("{.spec.replicas}"), replicas.to_string());
    let ready = format!("--for=jsonpath={{.status.readyReplicas}}={replicas}");
    let timeout = format!("--timeout={}s", ROLLOUT.as_secs());
    cluster.kubectl_ok(&[
        "wait",
        &ready,
        &timeout,
        &deployment,
        "-n",
        &release.namespace,
    ]);
    cluster.kubectl_ok(&[
        "rollout",
        "status",
        &deployment,
        "-n",
        &release.namespace,
        &timeout,
    ]);
}

/// Fails unless the release's only deployed record is the Secret of `revision`.
fn assert_deployed_revision(cluster: &Cluster, release: &HelmRelease<'_>, revision: u32) {
    let selector = format!("owner=helm,name={},status=deployed", release.name);
    let deployed = cluster.kubectl_ok(&[
        "get",
        "secrets",
        "-n",
        &release.namespace,
        "-l",
        &selector,
        "-o",
        "jsonpath={.items[*].metadata.name} {.items[*].type}",
    ]);
    assert_eq!(
        deployed,
        format!(
            "sh.helm.release.v1.{}.v{revision} helm.sh/release.v1",
            release.name
        )
    );
}
