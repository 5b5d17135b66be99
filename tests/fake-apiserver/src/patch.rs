//! The patch formats the API server accepts, applied to JSON documents.
//!
//! - JSON merge patch (RFC 7386), `application/merge-patch+json`.
//! - Strategic merge patch, `application/strategic-merge-patch+json`: the subset ebb's
//!   objects need. Lists of objects merge by their `name` key (containers, env, ports) or, for
//!   status conditions, by `type`, as the real patch strategies for those fields do; other lists
//!   are replaced. `$patch` directives are not supported and are rejected.
//! - JSON patch (RFC 6902), `application/json-patch+json`: add, remove, replace and test.
//! - Server-side apply, `application/apply-patch+yaml`: merged like a merge patch (field
//!   ownership and apply conflicts are not modelled).

use serde_json::{Map, Value};

/// A patch body with its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/json-patch+json`
    Json,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchKind {
    /// The patch kind for a request's Content-Type, if the server supports it.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies `patch` of `kind` to `target`; the error is the message of a 422/400 answer.
pub fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, String> {
    match kind {
        PatchKind::Merge | PatchKind::Apply => Ok(merge_patch(target, patch)),
        PatchKind::Strategic => strategic_merge(target, patch),
        PatchKind::Json => json_patch(target, patch),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_fields) = patch else {
        return patch.clone();
    };
    let mut result = match target {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_fields {
        if value.is_null() {
            result.remove(key);
        } else {
            let merged = merge_patch(result.get(key).unwrap_or(&Value::Null), value);
            result.insert(key.clone(), merged);
        }
    }
    Value::Object(result)
}

fn strategic_merge(target: &Value, patch: &Value) -> Result<Value, String> {
    let Value::Object(patch_fields) = patch else {
        return Ok(patch.clone());
    };
    if patch_fields.contains_key("$patch")
        || patch_fields
            .keys()
            .any(|k| k.starts_with("$setElementOrder"))
    {
        return Err("strategic merge directives are not supported by the fake API server".into());
    }
    let mut result = match target {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_fields {
        let merged = match (result.get(key), value) {
            (_, Value::Null) => None,
            (Some(Value::Array(current)), Value::Array(items)) => {
                Some(merge_list(key, current, items)?)
            }
            (current, value) => Some(strategic_merge(current.unwrap_or(&Value::Null), value)?),
        };
        match merged {
            Some(merged) => result.insert(key.clone(), merged),
            None => result.remove(key),
        };
    }
    Ok(Value::Object(result))
}

/// The merge key of a list field, as the Kubernetes types declare it for the fields ebb uses.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" => Some("type"),
        "containers" | "initContainers" | "env" | "ports" | "volumes" | "volumeMounts" => {
            Some("name")
        }
        _ => None,
    }
}

fn merge_list(field: &str, current: &[Value], patch: &[Value]) -> Result<Value, String> {
    let Some(key) = merge_key(field) else {
        return Ok(Value::Array(patch.to_vec()));
    };
    let mut merged = current.to_vec();
    for item in patch {
        let Some(id) = item.get(key) else {
            return Err(format!("list item in {field} lacks its merge key {key}"));
        };
        match merged
            .iter_mut()
            .find(|existing| existing.get(key) == Some(id))
        {
            Some(existing) => *existing = strategic_merge(existing, item)?,
            None => merged.push(item.clone()),
        }
    }
    Ok(Value::Array(merged))
}

fn json_patch(target: &Value, patch: &Value) -> Result<Value, String> {
    let Value::Array(operations) = patch else {
        return Err("a JSON patch must be an array of operations".into());
    };
    let mut document = target.clone();
    for operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or("JSON patch operation lacks a path")?;
        let value = operation.get("value").cloned();
        match op {
            "add" => pointer_set(&mut document, path, value.ok_or("add lacks a value")?, true)?,
            "replace" => pointer_set(
                &mut document,
                path,
                value.ok_or("replace lacks a value")?,
                false,
            )?,
            "remove" => pointer_remove(&mut document, path)?,
            "test" => {
                if document.pointer(path) != value.as_ref() {
                    return Err(format!("test operation failed at {path}"));
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(document)
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok((
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn pointer_set(document: &mut Value, path: &str, value: Value, add: bool) -> Result<(), String> {
    if path.is_empty() {
        *document = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let container = document
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    match container {
        Value::Object(fields) => {
            if !add && !fields.contains_key(&last) {
                return Err(format!("path {path:?} does not exist"));
            }
            fields.insert(last, value);
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("bad array index in {path:?}"))?
            };
            if add && index <= items.len() {
                items.insert(index, value);
            } else if !add && index < items.len() {
                items[index] = value;
            } else {
                return Err(format!("array index out of range in {path:?}"));
            }
        }
        _ => return Err(format!("path {parent:?} is not a container")),
    }
    Ok(())
}

fn pointer_remove(document: &mut Value, path: &str) -> Result<(), String> {
    let (parent, last) = split_pointer(path)?;
    let container = document
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    let removed = match container {
        Value::Object(fields) => fields.remove(&last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(format!("path {path:?} does not exist"))
    }
}
