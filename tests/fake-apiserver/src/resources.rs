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
    /// The structural schema (`openAPIV3Schema`) objects are pruned, defaulted and validated
    /// against; `None` for types the fake does not check.
    pub schema: Option<std::sync::Arc<Value>>,
    /// Columns `kubectl get` shows after Name (a CRD's `additionalPrinterColumns`).
    pub printer_columns: Vec<PrinterColumn>,
    /// Short names offered by discovery, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Categories offered by discovery, e.g. `all`.
    pub categories: Vec<String>,
    /// The CustomResourceDefinition that defines this type, if one does.
    pub crd: Option<String>,
    /// Whether the type is served; a deleted CRD's types stay in the table, unserved, so
    /// type indices never shift.
    pub served: bool,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub kind: String,
    /// Optional format, e.g. `name`.
    pub format: String,
    /// JSONPath of the cell value.
    pub json_path: String,
    /// Description.
    pub description: String,
    /// 0 for the default view, higher for `-o wide`.
    pub priority: i64,
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
            schema: None,
            printer_columns: Vec::new(),
            short_names: Vec::new(),
            categories: Vec::new(),
            crd: None,
            served: true,
        }
    }

    /// A cluster-scoped type without subresources.
    pub fn cluster(group: &str, version: &str, plural: &str, kind: &str) -> Self {
        Self {
            namespaced: false,
            ..Self::new(group, version, plural, kind)
        }
    }

    /// The same type with short names.
    fn short(self, names: &[&str]) -> Self {
        Self {
            short_names: names.iter().map(|n| n.to_string()).collect(),
            ..self
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
    /// The ebb types come from the CRDs in `deploy/crds`, schema and printer columns included.
    pub fn defaults() -> Vec<Self> {
        let mut types: Vec<Self> = Self::builtins()
            .into_iter()
            .filter(|t| {
                matches!(
                    (t.group.as_str(), t.plural.as_str()),
                    ("apps", "deployments" | "statefulsets")
                        | ("", "secrets" | "configmaps" | "events")
                        | ("events.k8s.io", "events")
                        | ("coordination.k8s.io", "leases")
                        | ("batch", "jobs")
                        | ("autoscaling", "horizontalpodautoscalers")
                )
            })
            .collect();
        for crd in crate::crd::ebb_crds() {
            types.extend(crate::crd::types_of(&crd));
        }
        types
    }

    /// Every built-in type the fake serves: what ebb, `deploy/`, kubectl and Helm touch.
    pub fn builtins() -> Vec<Self> {
        let workload = |plural: &str, kind: &str| Self {
            status_subresource: true,
            scale: Some(ScalePaths::workload()),
            simulate_workload: true,
            categories: vec!["all".into()],
            ..Self::new("apps", "v1", plural, kind)
        };
        let with_status = |ty: Self| Self {
            status_subresource: true,
            ..ty
        };
        let rbac = "rbac.authorization.k8s.io";
        vec![
            workload("deployments", "Deployment").short(&["deploy"]),
            workload("statefulsets", "StatefulSet").short(&["sts"]),
            Self::new("", "v1", "secrets", "Secret"),
            Self::new("", "v1", "configmaps", "ConfigMap").short(&["cm"]),
            Self::new("", "v1", "events", "Event").short(&["ev"]),
            Self::new("events.k8s.io", "v1", "events", "Event").short(&["ev"]),
            Self::new("coordination.k8s.io", "v1", "leases", "Lease"),
            with_status(Self::cluster("", "v1", "namespaces", "Namespace")).short(&["ns"]),
            Self::new("", "v1", "serviceaccounts", "ServiceAccount").short(&["sa"]),
            with_status(Self::new("", "v1", "services", "Service")).short(&["svc"]),
            with_status(Self::new("", "v1", "pods", "Pod")).short(&["po"]),
            with_status(Self::new("batch", "v1", "jobs", "Job")),
            with_status(Self::new(
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
                "HorizontalPodAutoscaler",
            ))
            .short(&["hpa"]),
            Self::cluster(rbac, "v1", "clusterroles", "ClusterRole"),
            Self::cluster(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding"),
            Self::new(rbac, "v1", "roles", "Role"),
            Self::new(rbac, "v1", "rolebindings", "RoleBinding"),
            with_status(Self::cluster(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
            ))
            .short(&["crd", "crds"]),
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
    /// `/apis/{group}`
    Group(String),
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
        ["apis", group] => {
            let known = types.iter().any(|t| t.served && t.group == *group);
            return known.then(|| Route::Discovery(Discovery::Group((*group).into())));
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if rest.is_empty() {
        let known = types
            .iter()
            .any(|t| t.served && t.group == group && t.version == version);
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
        .position(|t| t.served && t.group == group && t.version == version && t.plural == plural)?;
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
            let groups: Vec<Value> = group_names(types)
                .iter()
                .map(|group| group_document(types, group))
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        }
        Discovery::Group(group) => {
            let mut document = group_document(types, group);
            document["kind"] = json!("APIGroup");
            document["apiVersion"] = json!("v1");
            document
        }
        Discovery::Resources { group, version } => {
            let mut resources = Vec::new();
            for ty in types
                .iter()
                .filter(|t| t.served && &t.group == group && &t.version == version)
            {
                let verbs = [
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ];
                let mut resource = json!({
                    "name": ty.plural, "singularName": ty.kind.to_lowercase(),
                    "namespaced": ty.namespaced, "kind": ty.kind, "verbs": verbs
                });
                if !ty.short_names.is_empty() {
                    resource["shortNames"] = json!(ty.short_names);
                }
                if !ty.categories.is_empty() {
                    resource["categories"] = json!(ty.categories);
                }
                resources.push(resource);
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

/// Served API groups other than the core group, in first-served order.
fn group_names(types: &[ResourceType]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for ty in types.iter().filter(|t| t.served && !t.group.is_empty()) {
        if !names.contains(&ty.group) {
            names.push(ty.group.clone());
        }
    }
    names
}

/// An `APIGroup` entry: its served versions, the first one preferred.
fn group_document(types: &[ResourceType], group: &str) -> Value {
    let mut versions: Vec<Value> = Vec::new();
    for ty in types.iter().filter(|t| t.served && t.group == group) {
        let gv = json!({"groupVersion": format!("{group}/{}", ty.version), "version": ty.version});
        if !versions.contains(&gv) {
            versions.push(gv);
        }
    }
    let preferred = versions.first().cloned().unwrap_or_default();
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}
