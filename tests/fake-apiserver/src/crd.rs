//! `apiextensions.k8s.io/v1` CustomResourceDefinitions: the types a CRD defines, and the
//! status the real server gives an accepted one (`NamesAccepted`, `Established`).

use serde_json::{Value, json};

use crate::resources::{PrinterColumn, ResourceType, ScalePaths};

/// ebb's own CRDs as shipped in `deploy/crds`, so the fake serves them with their real
/// schemas and printer columns.
const EBB_CRDS: [&str; 4] = [
    include_str!("../../../deploy/crds/scaledobjects.ebb.dev.yaml"),
    include_str!("../../../deploy/crds/scaledjobs.ebb.dev.yaml"),
    include_str!("../../../deploy/crds/scalerauthentications.ebb.dev.yaml"),
    include_str!("../../../deploy/crds/clusterscalerauthentications.ebb.dev.yaml"),
];

/// ebb's CRDs as JSON objects.
pub fn ebb_crds() -> Vec<Value> {
    EBB_CRDS
        .iter()
        .map(|text| serde_norway::from_str(text).expect("deploy/crds holds valid YAML"))
        .collect()
}

/// Whether a type is the CRD type itself.
pub fn is_crd_type(ty: &ResourceType) -> bool {
    ty.group == "apiextensions.k8s.io" && ty.plural == "customresourcedefinitions"
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A `.spec.replicas`-style path as a JSON pointer.
fn pointer_of(path: &str) -> String {
    format!("/{}", path.trim_start_matches('.').replace('.', "/"))
}

/// The resource types a CRD serves, one per served version.
pub fn types_of(crd: &Value) -> Vec<ResourceType> {
    let group = text(crd, "/spec/group");
    let plural = text(crd, "/spec/names/plural");
    let kind = text(crd, "/spec/names/kind");
    let namespaced = text(crd, "/spec/scope") != "Cluster";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .map(|v| {
            let scale = v.pointer("/subresources/scale").map(|scale| ScalePaths {
                spec_replicas: pointer_of(text(scale, "/specReplicasPath")),
                status_replicas: pointer_of(text(scale, "/statusReplicasPath")),
                selector: scale
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(pointer_of),
            });
            let printer_columns = v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|columns| columns.iter().map(printer_column).collect())
                .unwrap_or_default();
            ResourceType {
                namespaced,
                status_subresource: v.pointer("/subresources/status").is_some(),
                scale,
                schema: v
                    .pointer("/schema/openAPIV3Schema")
                    .cloned()
                    .map(std::sync::Arc::new),
                printer_columns,
                short_names: strings(crd, "/spec/names/shortNames"),
                categories: strings(crd, "/spec/names/categories"),
                crd: Some(text(crd, "/metadata/name").to_string()),
                ..ResourceType::new(group, text(v, "/name"), plural, kind)
            }
        })
        .collect()
}

fn printer_column(column: &Value) -> PrinterColumn {
    PrinterColumn {
        name: text(column, "/name").into(),
        kind: text(column, "/type").into(),
        format: text(column, "/format").into(),
        json_path: text(column, "/jsonPath").into(),
        description: text(column, "/description").into(),
        priority: column.get("priority").and_then(Value::as_i64).unwrap_or(0),
    }
}

/// Checks what the real server checks before accepting a CRD; the errors are field errors.
pub fn validate(crd: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let name = text(crd, "/metadata/name");
    let group = text(crd, "/spec/group");
    let plural = text(crd, "/spec/names/plural");
    if name != format!("{plural}.{group}") {
        errors.push(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    for (field, value) in [
        ("spec.group", group),
        ("spec.names.plural", plural),
        ("spec.names.kind", text(crd, "/spec/names/kind")),
    ] {
        if value.is_empty() {
            errors.push(format!("{field}: Required value"));
        }
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        errors.push(
            "spec.versions: Invalid value: must have exactly one version marked as storage version"
                .into(),
        );
    }
    for (index, version) in versions.iter().enumerate() {
        if version.pointer("/schema/openAPIV3Schema").is_none() {
            errors.push(format!(
                "spec.versions[{index}].schema.openAPIV3Schema: Required value: schemas are required"
            ));
        }
    }
    errors
}

/// The status the real server's naming and establishing controllers give a CRD; a plural
/// or kind already taken in the group by another CRD is refused as it is there.
pub fn status(crd: &Value, conflict: Option<String>, now: &Value) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    let kind = text(crd, "/spec/names/kind");
    let mut accepted = names.clone();
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(kind.to_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let condition = |kind: &str, status: bool, reason: &str, message: &str| {
        json!({"type": kind, "status": if status { "True" } else { "False" },
               "lastTransitionTime": now, "reason": reason, "message": message})
    };
    match conflict {
        None => json!({
            "acceptedNames": accepted,
            "storedVersions": stored,
            "conditions": [
                condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
                condition("Established", true, "InitialNamesAccepted", "the initial names have been accepted"),
            ]
        }),
        Some(message) => json!({
            "acceptedNames": {"kind": "", "plural": ""},
            "storedVersions": stored,
            "conditions": [
                condition("NamesAccepted", false, "PluralConflict", &message),
                condition("Established", false, "NotAccepted", "not all names are accepted"),
            ]
        }),
    }
}
