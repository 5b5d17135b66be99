//! The OpenAPI documents kubectl reads for `apply` and `explain`: `/openapi/v3` (an index of
//! group-versions) and `/openapi/v3/apis/{group}/{version}`, plus `/openapi/v2` in JSON.
//! They carry the schemas of CRD-defined types; built-in types are listed without schemas
//! (kubectl then falls back to its compiled-in knowledge of them).

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// The reverse-DNS definition name the real server uses, e.g. `dev.ebb.v1alpha1.ScaledObject`.
fn definition_name(ty: &ResourceType) -> String {
    let group: Vec<&str> = ty.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), ty.version, ty.kind)
}

fn with_gvk(ty: &ResourceType) -> Option<Value> {
    let mut schema = ty.schema.as_deref()?.clone();
    schema["x-kubernetes-group-version-kind"] =
        json!([{"group": ty.group, "version": ty.version, "kind": ty.kind}]);
    Some(schema)
}

fn group_version_path(ty: &ResourceType) -> String {
    if ty.group.is_empty() {
        format!("api/{}", ty.version)
    } else {
        format!("apis/{}/{}", ty.group, ty.version)
    }
}

/// `/openapi/v3`: where each served group-version's document is.
pub fn v3_index(types: &[ResourceType], resource_version: u64) -> Value {
    let mut paths = Map::new();
    for ty in types.iter().filter(|t| t.served) {
        let path = group_version_path(ty);
        // The hash changes whenever anything may have changed, so clients refetch.
        let url = format!("/openapi/v3/{path}?hash={resource_version:016X}");
        paths.insert(path, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{path}`: one group-version's document, or `None` if nothing is served there.
pub fn v3_document(types: &[ResourceType], path: &str) -> Option<Value> {
    let served: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.served && group_version_path(t) == path)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for ty in served {
        if let Some(schema) = with_gvk(ty) {
            schemas.insert(definition_name(ty), schema);
        }
        let prefix = if ty.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", ty.plural)
        } else {
            format!("/{path}/{}", ty.plural)
        };
        paths.insert(prefix.clone(), collection_operations(ty));
        paths.insert(format!("{prefix}/{{name}}"), object_operations(ty));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-ebb-fake"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

fn query_parameter(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
}

/// The operations on one object, each tagged with its GVK and the query parameters the real
/// server takes; kubectl checks `fieldValidation` among the PATCH parameters before it
/// relies on server-side field validation.
fn object_operations(ty: &ResourceType) -> Value {
    let gvk = json!({"group": ty.group, "version": ty.version, "kind": ty.kind});
    let operation = |action: &str, parameters: Vec<Value>| {
        json!({
            "operationId": format!("{action}{}", ty.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": parameters,
            "responses": {"200": {"description": "OK"}}
        })
    };
    let write = || {
        vec![
            query_parameter("dryRun", "string"),
            query_parameter("fieldManager", "string"),
            query_parameter("fieldValidation", "string"),
        ]
    };
    let mut patch = write();
    patch.push(query_parameter("force", "boolean"));
    json!({
        "get": operation("get", Vec::new()),
        "put": operation("put", write()),
        "patch": operation("patch", patch),
        "delete": operation("delete", vec![query_parameter("dryRun", "string"), query_parameter("propagationPolicy", "string")]),
    })
}

fn collection_operations(ty: &ResourceType) -> Value {
    let gvk = json!({"group": ty.group, "version": ty.version, "kind": ty.kind});
    json!({
        "post": {
            "operationId": format!("create{}", ty.kind),
            "x-kubernetes-action": "post",
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                query_parameter("dryRun", "string"),
                query_parameter("fieldManager", "string"),
                query_parameter("fieldValidation", "string"),
            ],
            "responses": {"201": {"description": "Created"}}
        }
    })
}

/// `/openapi/v2` in JSON (the protobuf form is not offered).
pub fn v2_document(types: &[ResourceType]) -> Value {
    let mut definitions = Map::new();
    for ty in types.iter().filter(|t| t.served) {
        if let Some(schema) = with_gvk(ty) {
            definitions.insert(definition_name(ty), schema);
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-ebb-fake"},
        "paths": {},
        "definitions": definitions
    })
}
