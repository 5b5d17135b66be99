//! The real Kubernetes control plane that `scripts/cluster.sh up` starts (etcd,
//! kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet stand-in), as the
//! tests see it: the admin kubeconfig, kubectl and the venv's Python against it, a kube-rs
//! client, a namespace per test, ServiceAccount tokens from the TokenRequest API and the
//! audit log's requests per user.
//!
//! One control plane serves every test binary: `scripts/services.sh` starts it and
//! `scripts/test.sh` runs the tests against it. Tests keep out of each other's way with a
//! namespace each; what is cluster-wide (CRDs, ClusterRoles, the `ebb-system` install) is
//! serialized by [`Cluster::exclusive`] within a binary, and binaries run one at a time.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::support;

/// What to do when no control plane runs: the one message every cluster test fails with.
const NOT_UP: &str = "no Kubernetes control plane is running: run scripts/services.sh (it \
                      builds and starts one with scripts/cluster.sh up)";

/// Held while a test changes what is cluster-wide.
static CLUSTER_WIDE: Mutex<()> = Mutex::new(());

/// The running control plane.
pub struct Cluster {
    dir: PathBuf,
    scratch: tempfile::TempDir,
}

impl Cluster {
    /// The control plane `scripts/cluster.sh` started (the one `EBB_CLUSTER_DIR` names, if
    /// set), checked ready with `/readyz`; its absence fails the test, naming the script.
    pub fn running() -> Self {
        let script = support::workspace_root().join("scripts/cluster.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg("env")
            .output()
            .expect("run scripts/cluster.sh env");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let kubeconfig = stdout
            .lines()
            .find_map(|line| line.strip_prefix("export KUBECONFIG="))
            .filter(|_| output.status.success())
            .unwrap_or_else(|| {
                panic!(
                    "{NOT_UP} ({})",
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            });
        let dir = Path::new(kubeconfig.trim())
            .parent()
            .expect("the kubeconfig lies in the cluster's directory")
            .to_path_buf();
        let cluster = Self {
            dir,
            scratch: tempfile::tempdir().expect("temporary directory"),
        };
        let ready = cluster.kubectl(&["get", "--raw", "/readyz"]);
        assert!(
            ready.status.success() && String::from_utf8_lossy(&ready.stdout).trim() == "ok",
            "{NOT_UP}: /readyz answered {}",
            super::text(&ready)
        );
        cluster
    }

    /// The admin kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The apiserver's audit log: one JSON line per request, at Metadata level.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// A scratch directory that lives as long as this value.
    pub fn dir(&self) -> &Path {
        self.scratch.path()
    }

    /// Serializes tests that change cluster-wide objects within this test binary.
    pub fn exclusive(&self) -> MutexGuard<'static, ()> {
        CLUSTER_WIDE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs kubectl with `args` as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        super::kubectl_with(&self.kubeconfig(), args)
    }

    /// Runs kubectl and returns its stdout, failing the test when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        super::kubectl_ok_with(&self.kubeconfig(), args)
    }

    /// Runs a script from `tests/python` with the venv's Python and the admin kubeconfig.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        Command::new(super::require_python_module("kubernetes"))
            .arg(support::workspace_root().join("tests/python").join(script))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .current_dir(support::workspace_root())
            .output()
            .expect("run the venv's Python")
    }

    /// A new namespace `PREFIX-<random>`, deleted (in the background) on drop.
    pub fn namespace(&self, prefix: &str) -> Namespace {
        let name = format!("{prefix}-{:08x}", rand_suffix());
        self.kubectl_ok(&["create", "namespace", &name]);
        Namespace {
            name,
            kubeconfig: self.kubeconfig(),
        }
    }

    /// Applies ebb's CRDs (`deploy/crds`, server-side) and waits until they are served.
    pub fn install_crds(&self) {
        self.kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ebb-tests",
            "-k",
            "deploy/crds",
        ]);
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/scaledobjects.ebb.dev",
            "crd/scaledjobs.ebb.dev",
        ]);
    }

    /// A token for ServiceAccount `namespace/name` from the TokenRequest API.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        self.kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=2h"])
            .trim()
            .to_owned()
    }

    /// A kubeconfig that authenticates with `token` instead of the admin certificate.
    pub fn kubeconfig_with_token(&self, token: &str) -> PathBuf {
        let admin = std::fs::read_to_string(self.kubeconfig()).expect("read the kubeconfig");
        let mut config: serde_json::Value =
            serde_norway::from_str(&admin).expect("the admin kubeconfig is YAML");
        config["users"] = serde_json::json!([{ "name": "token", "user": { "token": token } }]);
        if let Some(contexts) = config["contexts"].as_array_mut() {
            for context in contexts {
                context["context"]["user"] = "token".into();
            }
        }
        let path = self.dir().join(format!("kubeconfig-{:08x}", rand_suffix()));
        std::fs::write(&path, serde_json::to_string(&config).expect("serialize"))
            .expect("write the token kubeconfig");
        path
    }

    /// A kube-rs client for `kubeconfig` (the admin's when `None`).
    pub async fn client(&self, kubeconfig: Option<&Path>) -> kube::Client {
        let path = kubeconfig.map_or_else(|| self.kubeconfig(), Path::to_path_buf);
        let config = kube::config::Kubeconfig::read_from(&path).expect("read the kubeconfig");
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(config, &options)
            .await
            .expect("a client configuration from the kubeconfig");
        kube::Client::try_from(config).expect("a kube client")
    }

    /// Requests the audit log holds so far from `user`, each with its response code.
    pub fn audited_requests(&self, user: &str) -> Vec<AuditedRequest> {
        self.audited_requests_since(&AuditMark(0), user)
    }

    /// Where the audit log ends now: [`Cluster::audited_requests_since`] reads on from here,
    /// so a test sees only the requests made after it began.
    pub fn audit_mark(&self) -> AuditMark {
        AuditMark(std::fs::metadata(self.audit_log()).map_or(0, |meta| meta.len()))
    }

    /// Requests from `user` the audit log gained after `mark`, each with its response code,
    /// in order. Each request counts once: at `ResponseComplete`, or at `ResponseStarted` for
    /// a watch that is still open.
    pub fn audited_requests_since(&self, mark: &AuditMark, user: &str) -> Vec<AuditedRequest> {
        let log = std::fs::read(self.audit_log()).unwrap_or_default();
        let start = usize::try_from(mark.0).map_or(log.len(), |start| start.min(log.len()));
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&log[start..])
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|event| event["user"]["username"] == user)
            .collect();
        let completed: std::collections::HashSet<&str> = events
            .iter()
            .filter(|event| event["stage"] == "ResponseComplete")
            .filter_map(|event| event["auditID"].as_str())
            .collect();
        events
            .iter()
            .filter(|event| {
                event["stage"] == "ResponseComplete"
                    || (event["stage"] == "ResponseStarted"
                        && !completed.contains(event["auditID"].as_str().unwrap_or_default()))
            })
            .map(|event| AuditedRequest {
                verb: event["verb"].as_str().unwrap_or_default().to_owned(),
                uri: event["requestURI"].as_str().unwrap_or_default().to_owned(),
                code: event["responseStatus"]["code"]
                    .as_u64()
                    .and_then(|code| u16::try_from(code).ok())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Fails the test if the authorizer refused (403) any request `user` made after `mark`,
    /// naming each refused verb and URI: how a test shows that RBAC lets `user` do its work.
    pub fn assert_nothing_forbidden(&self, mark: &AuditMark, user: &str) {
        let forbidden: Vec<String> = self
            .audited_requests_since(mark, user)
            .iter()
            .filter(|request| request.code == 403)
            .map(ToString::to_string)
            .collect();
        assert!(
            forbidden.is_empty(),
            "the apiserver refused {} request(s) of {user} (403 Forbidden):\n{}",
            forbidden.len(),
            forbidden.join("\n")
        );
    }

    /// Waits until `kubectl ARGS` prints `expected` (trimmed), failing after `within`.
    pub fn wait_for_output(&self, args: &[&str], expected: &str, within: Duration) {
        support::wait_for(
            &format!("kubectl {} to print {expected:?}", args.join(" ")),
            within,
            || {
                let output = self.kubectl(args);
                output.status.success()
                    && String::from_utf8_lossy(&output.stdout).trim() == expected
            },
        );
    }
}

/// One request of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedRequest {
    /// The Kubernetes verb (`get`, `list`, `watch`, `patch`, ...).
    pub verb: String,
    /// The request URI, query included.
    pub uri: String,
    /// The response's HTTP status code (403: the authorizer refused it).
    pub code: u16,
}

impl std::fmt::Display for AuditedRequest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} {} -> {}", self.verb, self.uri, self.code)
    }
}

/// A position in the audit log (its length in bytes when taken).
pub struct AuditMark(u64);

/// A namespace of one test.
pub struct Namespace {
    /// Its name.
    pub name: String,
    kubeconfig: PathBuf,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new(super::kubectl())
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output();
    }
}

/// Random bits for unique names (the clock's nanoseconds and the process id, hashed).
fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

/// A ServiceAccount the controller runs as in one namespace, with a kubeconfig for its token.
pub struct ControllerAccount {
    /// The user the apiserver (and its audit log) knows it as.
    pub user: String,
    /// A kubeconfig that authenticates with a TokenRequest token of the ServiceAccount.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// ServiceAccount `ebb-controller` in `namespace`, granted there what `deploy/` grants
    /// the controller: the rules of `deploy/controller/rbac.yaml` (its ClusterRole and its
    /// leader-election Role) as one Role of `namespace`, bound to the ServiceAccount. A
    /// controller that watches only `namespace`, with its Lease there, then passes the real
    /// RBAC authorizer on every request, its requests are its own in the audit log, and
    /// nothing cluster-wide changes.
    pub fn controller_account(&self, namespace: &str) -> ControllerAccount {
        let path = support::workspace_root().join("deploy/controller/rbac.yaml");
        let text = std::fs::read_to_string(&path).expect("read deploy/controller/rbac.yaml");
        let mut rules = Vec::new();
        for document in serde_norway::Deserializer::from_str(&text) {
            let object: serde_json::Value =
                serde::Deserialize::deserialize(document).expect("rbac.yaml is YAML");
            if matches!(object["kind"].as_str(), Some("ClusterRole" | "Role")) {
                rules.extend(object["rules"].as_array().cloned().unwrap_or_default());
            }
        }
        assert!(
            !rules.is_empty(),
            "deploy/controller/rbac.yaml grants nothing"
        );
        let name = "ebb-controller";
        let objects = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": name, "namespace": namespace}, "rules": rules},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
            ],
        });
        let manifest = self
            .dir()
            .join(format!("controller-account-{namespace}.json"));
        std::fs::write(&manifest, objects.to_string()).expect("write the RBAC manifest");
        self.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
        let token = self.service_account_token(namespace, name);
        ControllerAccount {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            kubeconfig: self.kubeconfig_with_token(&token),
        }
    }

    /// A namespace name `PREFIX-<random>` that does not exist yet, deleted on drop if a test
    /// created it by then: for tests of what happens before a namespace exists.
    pub fn namespace_to_create(&self, prefix: &str) -> Namespace {
        Namespace {
            name: format!("{prefix}-{:08x}", rand_suffix()),
            kubeconfig: self.kubeconfig(),
        }
    }
}

impl Cluster {
    /// Runs kubectl with `args` as the admin, `input` on its stdin (`-f -`).
    pub fn kubectl_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(super::kubectl())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .current_dir(support::workspace_root())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("kubectl's stdin")
            .write_all(input.as_bytes())
            .expect("write kubectl's stdin");
        child.wait_with_output().expect("wait for kubectl")
    }
}
