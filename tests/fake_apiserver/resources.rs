//! The resource types the fake serves, their URL paths, and discovery documents.

use serde_json::{Value, json};

/// Where a resource with a `/scale` subresource keeps its replica counts.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    /// JSON pointer of the desired replicas, e.g. `/spec/replicas`.
    pub spec_replicas: String,
    /// JSON pointer of the observed replicas, e.g. `/status/replicas`.
    pub status_replicas: String,
    /// JSON pointer of the label selector (`matchLabels` form), if any.
    pub selector: Option<String>,
}

impl ScalePaths {
    /// The paths of apps/v1 workloads.
    pub fn workload() -> Self {
        Self {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            selector: Some("/spec/selector/matchLabels".into()),
        }
    }
}

/// One served resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; "" for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural lowercase name used in URLs.
    pub plural: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores status, `/status` only status.
    pub status_subresource: bool,
    /// Has a `/scale` subresource.
    pub scale: Option<ScalePaths>,
    /// Simulate the workload's own controller: when desired replicas change, a second write
    /// sets the observed replicas to match, as the Deployment controller would.
    pub simulate_workload: bool,
}

impl ResourceType {
    /// A namespaced type without subresources.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced: true,
            status_subresource: false,
            scale: None,
            simulate_workload: false,
        }
    }

    /// `apiVersion` of this type's objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as used in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The types a stock cluster with ebb's CRDs installed offers (the subset ebb touches).
    pub fn defaults() -> Vec<Self> {
        let workload = |plural: &str, kind: &str| Self {
            status_subresource: true,
            scale: Some(ScalePaths::workload()),
            simulate_workload: true,
            ..Self::new("apps", "v1", plural, kind)
        };
        let with_status = |ty: Self| Self {
            status_subresource: true,
            ..ty
        };
        vec![
            workload("deployments", "Deployment"),
            workload("statefulsets", "StatefulSet"),
            Self::new("", "v1", "secrets", "Secret"),
            Self::new("", "v1", "configmaps", "ConfigMap"),
            Self::new("", "v1", "events", "Event"),
            Self::new("events.k8s.io", "v1", "events", "Event"),
            Self::new("coordination.k8s.io", "v1", "leases", "Lease"),
            with_status(Self::new("batch", "v1", "jobs", "Job")),
            with_status(Self::new("ebb.dev", "v1alpha1", "scaledjobs", "ScaledJob")),
            with_status(Self::new(
                "ebb.dev",
                "v1alpha1",
                "scaledobjects",
                "ScaledObject",
            )),
            Self::new(
                "ebb.dev",
                "v1alpha1",
                "scalerauthentications",
                "ScalerAuthentication",
            ),
            Self {
                namespaced: false,
                ..Self::new(
                    "ebb.dev",
                    "v1alpha1",
                    "clusterscalerauthentications",
                    "ClusterScalerAuthentication",
                )
            },
        ]
    }
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` or `/version`.
    Discovery(Discovery),
    /// A collection or an object, possibly a subresource.
    Resource {
        /// Index into the type table.
        type_index: usize,
        /// The namespace in the path; `None` for all namespaces or cluster-scoped types.
        namespace: Option<String>,
        /// The object name; `None` for the collection.
        name: Option<String>,
        /// `status`, `scale`, or another subresource.
        subresource: Option<String>,
    },
}

/// Discovery endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// `/version`
    Version,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/api/v1` or `/apis/{group}/{version}`
    Resources { group: String, version: String },
}

/// Parses a request path against the type table; `None` is a 404.
pub fn route(types: &[ResourceType], path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Some(Route::Discovery(Discovery::Version)),
        ["api"] => return Some(Route::Discovery(Discovery::CoreVersions)),
        ["apis"] => return Some(Route::Discovery(Discovery::Groups)),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        let known = types
            .iter()
            .any(|t| t.group == group && t.version == version);
        return known.then(|| {
            Route::Discovery(Discovery::Resources {
                group: group.into(),
                version: version.into(),
            })
        });
    }
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some(*namespace), rest),
        _ => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return None,
    };
    let type_index = types
        .iter()
        .position(|t| t.group == group && t.version == version && t.plural == plural)?;
    let ty = &types[type_index];
    if namespace.is_some() && !ty.namespaced {
        return None;
    }
    if ty.namespaced && namespace.is_none() && name.is_some() {
        return None;
    }
    match subresource {
        None => {}
        Some("status") if ty.status_subresource => {}
        Some("scale") if ty.scale.is_some() => {}
        Some(_) => return None,
    }
    Some(Route::Resource {
        type_index,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
    })
}

/// The body of a discovery endpoint.
pub fn discovery_document(types: &[ResourceType], discovery: &Discovery) -> Value {
    match discovery {
        Discovery::Version => json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-ebb-fake",
            "platform": "linux/amd64"
        }),
        Discovery::CoreVersions => json!({"kind": "APIVersions", "versions": ["v1"]}),
        Discovery::Groups => {
            let mut groups: Vec<(String, String)> = types
                .iter()
                .filter(|t| !t.group.is_empty())
                .map(|t| (t.group.clone(), t.version.clone()))
                .collect();
            groups.sort();
            groups.dedup();
            let groups: Vec<Value> = groups
                .iter()
                .map(|(group, version)| {
                    let gv =
                        json!({"groupVersion": format!("{group}/{version}"), "version": version});
                    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        Discovery::Resources { group, version } => {
            let mut resources = Vec::new();
            for ty in types
                .iter()
                .filter(|t| &t.group == group && &t.version == version)
            {
                let verbs = [
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ];
                resources.push(json!({
                    "name": ty.plural, "singularName": ty.kind.to_lowercase(),
                    "namespaced": ty.namespaced, "kind": ty.kind, "verbs": verbs
                }));
                if ty.status_subresource {
                    resources.push(json!({
                        "name": format!("{}/status", ty.plural), "singularName": "",
                        "namespaced": ty.namespaced, "kind": ty.kind,
                        "verbs": ["get", "patch", "update"]
                    }));
                }
                if ty.scale.is_some() {
                    resources.push(json!({
                        "name": format!("{}/scale", ty.plural), "singularName": "",
                        "namespaced": ty.namespaced, "group": "autoscaling", "version": "v1",
                        "kind": "Scale", "verbs": ["get", "patch", "update"]
                    }));
                }
            }
            let group_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            json!({
                "kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": group_version, "resources": resources
            })
        }
    }
}
