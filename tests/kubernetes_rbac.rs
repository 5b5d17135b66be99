//! The controller runs as its ServiceAccount, so every request it makes passes the real
//! apiserver's RBAC authorizer: what checks the RBAC of `deploy/` and of the Helm chart.
//!
//! Each test installs ebb (`kubectl apply --server-side -k deploy/`, or the chart with Helm's
//! own library), asks the TokenRequest API for a token of the ServiceAccount the install
//! made, and runs the real `ebb controller` binary with a kubeconfig carrying that token and
//! the environment the install's Deployment gives the controller container (the Deployment
//! itself never runs ebb: the kubelet stand-in runs no image). The controller then does its
//! whole job in a test namespace: leader election in its own namespace, credentials from a
//! Secret and a ConfigMap through a ScalerAuthentication, a Deployment scaled through
//! `/scale`, Jobs created for a ScaledJob, status writes, Events, and the restore finalizer
//! on deletion. The audit log must show each of those requests answered, and no request of
//! the ServiceAccount refused (403): a refused one fails the test, naming its verb and URI.

mod real_clients;
mod scaler_processes;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use real_clients::cluster::{AuditMark, AuditedRequest, Cluster, Namespace};
use serde_json::{Value, json};

/// How long the controller and the real controllers get for each step.
const STEP: Duration = Duration::from_secs(90);

/// The trigger type the test's scaler is registered under.
const SPOOL_TYPE: &str = "spool";

#[test]
fn the_controller_does_its_work_with_the_rbac_of_deploy() {
    let cluster = Cluster::running();
    // ebb-system, the ClusterRole and the CRDs are cluster-wide.
    let _cluster_wide = cluster.exclusive();
    let scaler = scaler_processes::python_scaler(&[]);
    let _install = KustomizeInstall::apply(&cluster);
    let installed = Installed {
        namespace: "ebb-system".into(),
        service_account: "ebb-controller".into(),
        deployment: "ebb-controller".into(),
    };
    let mut env = installed.controller_env(&cluster);
    // deploy/ registers its two sidecars; the test's scaler joins them.
    let registry = env
        .iter_mut()
        .find(|(name, _)| name == "EBB_SCALERS")
        .expect("deploy/ gives the controller EBB_SCALERS");
    registry.1 = format!("{},{SPOOL_TYPE}={}", registry.1, scaler.address);
    let run = ControllerRun::start(&cluster, &installed, env);
    run.scales_and_runs_jobs();
    run.finish();
}

#[test]
fn the_controller_does_its_work_with_the_rbac_of_the_helm_chart() {
    let cluster = Cluster::running();
    // The release's ClusterRole is cluster-wide, and Helm creates the CRDs when missing.
    let _cluster_wide = cluster.exclusive();
    let scaler = scaler_processes::python_scaler(&[]);
    let namespace = cluster.namespace("rbac-chart");
    // Without its sidecar, `rabbitmq` leaves the registry; the test's scaler is added to it.
    let values = json!({
        "scalers": { "rabbitmq": { "enabled": false } },
        "scalerRegistry": { SPOOL_TYPE: scaler.address },
    });
    let release = cluster.helm_install(&namespace.name, &namespace.name, &values);
    cluster.install_crds();
    let installed = Installed {
        namespace: release.namespace.clone(),
        service_account: release.fullname(),
        deployment: release.fullname(),
    };
    let env = installed.controller_env(&cluster);
    let registry = env.iter().find(|(name, _)| name == "EBB_SCALERS");
    assert_eq!(
        registry.map(|(_, value)| value.as_str()),
        Some(format!("azure-queue=127.0.0.1:9002,{SPOOL_TYPE}={}", scaler.address).as_str()),
        "the chart's registry"
    );
    let run = ControllerRun::start(&cluster, &installed, env);
    run.scales_and_runs_jobs();
    run.refuses_the_disabled_sidecars_type();
    run.finish();
}

/// What an installation made for the controller.
struct Installed {
    namespace: String,
    service_account: String,
    deployment: String,
}

impl Installed {
    /// The ServiceAccount's user name, as the audit log records it.
    fn user(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// The plain `value` environment variables the Deployment gives the controller container
    /// (the `valueFrom` ones, POD_NAME and POD_NAMESPACE, are the kubelet's to fill in).
    fn controller_env(&self, cluster: &Cluster) -> Vec<(String, String)> {
        let json = cluster.kubectl_ok(&[
            "get",
            "deployment",
            &self.deployment,
            "-n",
            &self.namespace,
            "-o",
            "jsonpath={.spec.template.spec.containers[?(@.name==\"controller\")].env}",
        ]);
        let env: Vec<Value> = serde_json::from_str(&json).expect("the container's env as JSON");
        env.iter()
            .filter_map(|var| Some((var["name"].as_str()?.into(), var["value"].as_str()?.into())))
            .collect()
    }
}

/// `deploy/` applied by kustomize, server-side: client-side apply cannot install it, as the
/// ScaledJob CRD (500 kB) does not fit in the 256 kB `last-applied-configuration`
/// annotation. On drop everything but the CRDs is deleted: deleting those would delete
/// every ScaledObject of every test with them.
struct KustomizeInstall<'a>(&'a Cluster);

impl<'a> KustomizeInstall<'a> {
    fn apply(cluster: &'a Cluster) -> Self {
        // A namespace left terminating by an earlier run refuses new objects until it is gone.
        let phase = cluster.kubectl(&[
            "get",
            "namespace",
            "ebb-system",
            "-o",
            "jsonpath={.status.phase}",
        ]);
        if String::from_utf8_lossy(&phase.stdout) == "Terminating" {
            cluster.kubectl_ok(&[
                "wait",
                "--for=delete",
                "namespace/ebb-system",
                "--timeout=120s",
            ]);
        }
        // --force-conflicts: other tests may have applied the same CRDs as another manager.
        cluster.kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            "deploy/",
        ]);
        cluster.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/scaledobjects.ebb.dev",
            "crd/scaledjobs.ebb.dev",
        ]);
        Self(cluster)
    }
}

impl Drop for KustomizeInstall<'_> {
    fn drop(&mut self) {
        // The controller's objects carry its name label, the Namespace the part-of label;
        // the CRDs neither.
        for selector in [
            "app.kubernetes.io/name=ebb-controller",
            "app.kubernetes.io/part-of=ebb",
        ] {
            let _ = self.0.kubectl(&[
                "delete",
                "-k",
                "deploy/",
                "-l",
                selector,
                "--ignore-not-found",
                "--timeout=120s",
            ]);
        }
    }
}

/// `ebb controller` running as an installation's ServiceAccount, with the objects it works on
/// in a namespace of its own.
struct ControllerRun<'a> {
    cluster: &'a Cluster,
    installed: &'a Installed,
    mark: AuditMark,
    work: Namespace,
    controller: support::KillOnDrop,
    log: PathBuf,
}

impl<'a> ControllerRun<'a> {
    /// Starts the controller with a TokenRequest token of the ServiceAccount, leader
    /// election on in the install's namespace, and `env` (the Deployment's, adjusted).
    fn start(cluster: &'a Cluster, installed: &'a Installed, env: Vec<(String, String)>) -> Self {
        let mark = cluster.audit_mark();
        let token = cluster.service_account_token(&installed.namespace, &installed.service_account);
        let kubeconfig = cluster.kubeconfig_with_token(&token);
        let work = cluster.namespace("rbac-work");
        let log = cluster.dir().join("controller.log");
        let controller = Command::new(support::binary("ebb", "ebb"))
            .arg("controller")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .envs(env)
            .env("POD_NAMESPACE", &installed.namespace)
            .env("POD_NAME", "rbac-test")
            .env("EBB_LEADER_ELECT", "true")
            // Renewals (Lease updates) within the test's few seconds.
            .env("EBB_LEASE_RENEW_INTERVAL", "1s")
            .env("EBB_METRICS_LISTEN", "127.0.0.1:0")
            .env("EBB_LOG", "info")
            .env("EBB_LOG_JSON", "false")
            // Only the test's namespace: other tests' objects are not this controller's.
            .env("EBB_WATCH_NAMESPACE", &work.name)
            .env_remove("KUBECONFIG")
            .env_remove("EBB_KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("controller log"))
            .spawn()
            .expect("spawn ebb controller");
        Self {
            cluster,
            installed,
            mark,
            work,
            controller: support::KillOnDrop(controller),
            log,
        }
    }

    /// A ScaledObject whose credentials come from a Secret and a ConfigMap scales a Deployment
    /// 0 -> 3, which the real controllers roll out; a ScaledJob with a backlog of 2 gets 2 Jobs.
    fn scales_and_runs_jobs(&self) {
        let messages = self.spool("messages", &["a.msg"; 12]);
        // Not counted: the Secret's pattern is `*.msg`.
        for index in 0..3 {
            std::fs::write(messages.join(format!("{index}.tmp")), "").expect("spool file");
        }
        let jobs = self.spool("jobs", &["a.job"; 2]);
        self.apply(&format!(
            "{AUTHENTICATION}---\n{}---\n{}---\n{}",
            deployment("worker"),
            scaled_object("worker", SPOOL_TYPE, &messages, true),
            scaled_job(&jobs)
        ));
        self.wait(
            "scaledobject/worker",
            "{.status.conditions[?(@.type==\"Ready\")].status}",
            "True",
        );
        // 12 files matching the Secret's pattern, at the ConfigMap's target of 4 per replica.
        self.wait("deployment/worker", "{.spec.replicas}", "3");
        self.wait("deployment/worker", "{.status.readyReplicas}", "3");
        self.wait(
            "scaledjob/batch",
            "{.status.conditions[?(@.type==\"Ready\")].status}",
            "True",
        );
        self.cluster.wait_for_output(
            &[
                "get",
                "jobs",
                "-n",
                &self.work.name,
                "-l",
                "ebb.dev/scaled-job=batch",
                "-o",
                "jsonpath={.items[*].kind}",
            ],
            "Job Job",
            STEP,
        );
    }

    /// A trigger of the type whose sidecar the chart left out gets the controller's clear
    /// error, not a call to a port where nothing listens.
    fn refuses_the_disabled_sidecars_type(&self) {
        let unused = self.spool("unused", &[]);
        self.apply(&format!(
            "{}---\n{}",
            deployment("queue"),
            scaled_object("queue", "rabbitmq", &unused, false)
        ));
        let ready = |field: &str| format!("{{.status.conditions[?(@.type==\"Ready\")].{field}}}");
        self.wait(
            "scaledobject/queue",
            &ready("reason"),
            "UnregisteredScalerType",
        );
        let message = self.get("scaledobject/queue", &ready("message"));
        assert!(
            message.contains("no scaler is registered for type \"rabbitmq\""),
            "{message}"
        );
    }

    /// Deletes the ScaledObject (its restore finalizer returns the Deployment to its original
    /// 0 replicas, then the controller removes it), stops the controller and reads the audit
    /// log: nothing refused, and each kind of request the work needs answered.
    fn finish(mut self) {
        let timeout = format!("--timeout={}s", STEP.as_secs());
        self.kubectl(&["delete", "scaledobject/worker", &timeout]);
        self.wait("deployment/worker", "{.spec.replicas}", "0");
        let user = self.installed.user();
        let lease = format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases/",
            self.installed.namespace
        );
        support::wait_for("a renewal of the leader Lease", STEP, || {
            let requests = self.cluster.audited_requests_since(&self.mark, &user);
            requests.iter().any(|r| answered(r, "update", &lease))
        });
        let _ = self.controller.0.kill();
        let _ = self.controller.0.wait();
        self.cluster.assert_nothing_forbidden(&self.mark, &user);
        let requests = self.cluster.audited_requests_since(&self.mark, &user);
        let work = format!("namespaces/{}/", self.work.name);
        let home = format!("namespaces/{}/", self.installed.namespace);
        for (verb, path) in [
            (
                "create",
                format!("/apis/coordination.k8s.io/v1/{home}leases"),
            ),
            (
                "update",
                format!("/apis/coordination.k8s.io/v1/{home}leases/"),
            ),
            ("get", format!("/api/v1/{work}secrets/spool-pattern")),
            ("get", format!("/api/v1/{work}configmaps/spool-target")),
            (
                "list",
                format!("/apis/ebb.dev/v1alpha1/{work}scaledobjects"),
            ),
            ("watch", format!("/apis/apps/v1/{work}deployments")),
            (
                "patch",
                format!("/apis/apps/v1/{work}deployments/worker/scale"),
            ),
            (
                "patch",
                format!("/apis/ebb.dev/v1alpha1/{work}scaledobjects/worker/status"),
            ),
            (
                "patch",
                format!("/apis/ebb.dev/v1alpha1/{work}scaledobjects/worker"),
            ),
            ("create", format!("/apis/batch/v1/{work}jobs")),
            (
                "patch",
                format!("/apis/ebb.dev/v1alpha1/{work}scaledjobs/batch/status"),
            ),
            ("create", format!("/apis/events.k8s.io/v1/{work}events")),
        ] {
            assert!(
                requests.iter().any(|r| answered(r, verb, &path)),
                "no answered {verb} {path} by {user}; its requests:\n{}\ncontroller log:\n{}",
                list(&requests),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// A spool directory holding `files` (each name once; repeats get a number).
    fn spool(&self, name: &str, files: &[&str]) -> PathBuf {
        let directory = self.cluster.dir().join(name);
        std::fs::create_dir_all(&directory).expect("spool directory");
        for (index, file) in files.iter().enumerate() {
            std::fs::write(directory.join(format!("{index}-{file}")), "").expect("spool file");
        }
        directory
    }

    fn apply(&self, manifest: &str) {
        let path = self.cluster.dir().join("manifest.yaml");
        std::fs::write(&path, manifest).expect("write the manifest");
        self.kubectl(&["apply", "-f", &path.to_string_lossy()]);
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-n", &self.work.name]);
        self.cluster.kubectl_ok(&all)
    }

    fn get(&self, object: &str, jsonpath: &str) -> String {
        self.kubectl(&["get", object, "-o", &format!("jsonpath={jsonpath}")])
    }

    /// Waits until `jsonpath` of `object` reads `want`, failing with the controller's log,
    /// or at once, naming it, when the apiserver has refused the controller a request.
    fn wait(&self, object: &str, jsonpath: &str, want: &str) {
        let deadline = std::time::Instant::now() + STEP;
        let user = self.installed.user();
        loop {
            self.cluster.assert_nothing_forbidden(&self.mark, &user);
            let output = self.cluster.kubectl(&[
                "get",
                object,
                "-n",
                &self.work.name,
                "-o",
                &format!("jsonpath={jsonpath}"),
            ]);
            let got = real_clients::text(&output);
            if output.status.success() && got.trim() == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{object} {jsonpath} never read {want:?} (last: {got:?})\ncontroller log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for ControllerRun<'_> {
    /// A test that failed half-way leaves the restore finalizer on `worker`, which would keep
    /// the namespace from ever being deleted once the controller is gone: take it off.
    fn drop(&mut self) {
        let _ = self.controller.0.kill();
        let _ = self.controller.0.wait();
        let _ = self.cluster.kubectl(&[
            "patch",
            "scaledobject/worker",
            "-n",
            &self.work.name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
}

/// Whether `request` was `verb` on a path starting with `path`, and succeeded.
fn answered(request: &AuditedRequest, verb: &str, path: &str) -> bool {
    request.verb == verb
        && request
            .uri
            .split('?')
            .next()
            .is_some_and(|p| p.starts_with(path))
        && (200..300).contains(&request.code)
}

fn list(requests: &[AuditedRequest]) -> String {
    let lines: Vec<String> = requests.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// The scaler's pattern from a Secret, its target from a ConfigMap.
const AUTHENTICATION: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: spool-pattern
stringData:
  pattern: "*.msg"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: spool-target
data:
  target: "4"
---
apiVersion: ebb.dev/v1alpha1
kind: ScalerAuthentication
metadata:
  name: spool
spec:
  secretTargetRef:
    - parameter: pattern
      name: spool-pattern
      key: pattern
  configMapTargetRef:
    - parameter: target
      name: spool-target
      key: target
"#;

/// A Deployment `name` at 0 replicas.
fn deployment(name: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 0
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: worker
          image: busybox
"#
    )
}

/// A ScaledObject `name` on Deployment `name` with one trigger of `trigger_type` on
/// `directory`, restoring the original replica count on deletion when `restore`.
fn scaled_object(name: &str, trigger_type: &str, directory: &Path, restore: bool) -> String {
    format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {name}
  pollingInterval: 1
  cooldownPeriod: 1
  minReplicaCount: 0
  maxReplicaCount: 10
  advanced:
    restoreToOriginalReplicaCount: {restore}
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 0
  triggers:
    - type: {trigger_type}
      name: spool
      metadata:
        directory: {directory}
      authenticationRef:
        name: spool
"#,
        directory = directory.display()
    )
}

/// A ScaledJob with one Job per file of `directory`; its Pods run until deleted.
fn scaled_job(directory: &Path) -> String {
    format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: ScaledJob
metadata:
  name: batch
spec:
  pollingInterval: 1
  maxReplicaCount: 5
  jobTargetRef:
    template:
      spec:
        restartPolicy: Never
        containers:
          - name: job
            image: busybox
  triggers:
    - type: {SPOOL_TYPE}
      name: batch
      metadata:
        directory: {directory}
        target: "1"
"#,
        directory = directory.display()
    )
}
