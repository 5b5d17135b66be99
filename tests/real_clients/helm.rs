//! The chart `deploy/helm/ebb` installed into the real control plane by Helm's own library
//! (PyPI `helm-python-sdk`, driven by `tests/python/helm_install.py` as a separate process):
//! a release a test owns, upgraded on request and uninstalled when it drops.

use serde_json::Value;

use super::cluster::Cluster;
use super::{require_python_module, text};

/// One object of a release's manifest, as Helm rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseObject {
    pub api_version: String,
    pub kind: String,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    pub name: String,
}

impl ReleaseObject {
    /// kubectl's arguments that name this object: `KIND NAME [-n NAMESPACE]`.
    pub fn kubectl_args(&self) -> Vec<&str> {
        let mut args = vec![self.kind.as_str(), self.name.as_str()];
        if let Some(namespace) = &self.namespace {
            args.extend(["-n", namespace.as_str()]);
        }
        args
    }
}

impl std::fmt::Display for ReleaseObject {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(formatter, "{} {namespace}/{}", self.kind, self.name),
            None => write!(formatter, "{} {}", self.kind, self.name),
        }
    }
}

/// A release of the ebb chart, uninstalled (if still installed) on drop.
pub struct HelmRelease<'a> {
    cluster: &'a Cluster,
    /// The release name; the chart names its objects `<name>-controller`.
    pub name: String,
    /// The release namespace.
    pub namespace: String,
    /// The objects of the current revision's manifest.
    pub objects: Vec<ReleaseObject>,
    installed: bool,
}

impl Cluster {
    /// Installs the chart as release `name` in the existing `namespace` with `values` (JSON),
    /// failing the test unless Helm reports revision 1 deployed.
    pub fn helm_install(&self, name: &str, namespace: &str, values: &Value) -> HelmRelease<'_> {
        let mut release = HelmRelease {
            cluster: self,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            objects: Vec::new(),
            installed: true,
        };
        let report = release.helm(&["install", name, namespace, &values.to_string()]);
        release.objects = objects_in(&report);
        release
    }
}

impl HelmRelease<'_> {
    /// The name the chart gives its objects: `<release>-controller`.
    pub fn fullname(&self) -> String {
        format!("{}-controller", self.name)
    }

    /// Upgrades the release to the chart with `values` (Helm upgrade semantics: the chart's
    /// defaults plus these); returns Helm's report, which names the new revision.
    pub fn upgrade(&mut self, values: &Value) -> String {
        let report = self.helm(&["upgrade", &self.name, &self.namespace, &values.to_string()]);
        self.objects = objects_in(&report);
        report
    }

    /// Uninstalls the release, waiting until Helm sees its objects gone.
    pub fn uninstall(&mut self) {
        self.helm(&["uninstall", &self.name, &self.namespace]);
        self.installed = false;
    }

    /// Runs `helm_install.py ARGS` and returns its report, failing the test when it fails.
    fn helm(&self, args: &[&str]) -> String {
        require_python_module("helm_python");
        let output = self.cluster.python("helm_install.py", args);
        let report = text(&output);
        assert!(
            output.status.success() && !report.contains("FAIL "),
            "helm {} failed:\n{report}",
            args[0]
        );
        report
    }
}

impl Drop for HelmRelease<'_> {
    fn drop(&mut self) {
        if self.installed {
            let _ = self.cluster.python(
                "helm_install.py",
                &["uninstall", &self.name, &self.namespace, "--ignore-missing"],
            );
        }
    }
}

/// The `OBJECT {json}` lines of a report.
fn objects_in(report: &str) -> Vec<ReleaseObject> {
    report
        .lines()
        .filter_map(|line| line.strip_prefix("OBJECT "))
        .map(|json| {
            let object: Value = serde_json::from_str(json).expect("helm_install.py prints JSON");
            let field = |key: &str| object[key].as_str().unwrap_or_default().to_owned();
            ReleaseObject {
                api_version: field("apiVersion"),
                kind: field("kind"),
                namespace: object["namespace"].as_str().map(str::to_owned),
                name: field("name"),
            }
        })
        .collect()
}
