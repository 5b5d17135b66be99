//! Server-side apply (`application/apply-patch+yaml`) with field managers, to the level kubectl
//! and Helm use: each applier's fields are recorded in `metadata.managedFields` (FieldsV1),
//! applying a different value to a field another applier owns is a 409 conflict unless
//! `force=true` (which moves ownership), and a field an applier stops applying is removed
//! when no one else owns it. Lists are owned whole (no associative-list keys), and only
//! appliers own fields: plain updates record no ownership.

use serde_json::{Map, Value, json};

use crate::patch;

/// A field path such as `["spec", "replicas"]`.
type Path = Vec<String>;

/// The FieldsV1 set of an applied configuration: every field it sets, lists as leaves.
fn field_set(value: &Value, top: bool) -> Value {
    let Value::Object(fields) = value else {
        return json!({});
    };
    let mut set = Map::new();
    for (key, child) in fields {
        if top && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        if top && key == "metadata" {
            let mut meta = Map::new();
            for owned in ["labels", "annotations", "finalizers", "ownerReferences"] {
                if let Some(value) = child.get(owned) {
                    meta.insert(format!("f:{owned}"), field_set(value, false));
                }
            }
            if !meta.is_empty() {
                set.insert("f:metadata".into(), Value::Object(meta));
            }
            continue;
        }
        set.insert(format!("f:{key}"), field_set(child, false));
    }
    Value::Object(set)
}

/// The leaf paths of a FieldsV1 set.
fn leaves(set: &Value, prefix: &mut Path, out: &mut Vec<Path>) {
    let Some(fields) = set.as_object().filter(|f| !f.is_empty()) else {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return;
    };
    for (key, child) in fields {
        let Some(name) = key.strip_prefix("f:") else {
            continue;
        };
        prefix.push(name.to_string());
        leaves(child, prefix, out);
        prefix.pop();
    }
}

fn leaf_paths(set: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    leaves(set, &mut Vec::new(), &mut out);
    out
}

fn value_at<'a>(object: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

fn remove_at(object: &mut Value, path: &Path) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents
        .iter()
        .try_fold(&mut *object, |value, key| value.get_mut(key));
    if let Some(Value::Object(fields)) = parent {
        fields.remove(last);
    }
}

/// Two paths overlap when one contains the other.
fn overlaps(a: &Path, b: &Path) -> bool {
    let common = a.len().min(b.len());
    a[..common] == b[..common]
}

fn entries(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A 409 apply conflict, in the real server's words.
pub struct Conflict(pub String);

/// Applies `config` as `manager` to `current` (`Value::Null` when the object is new) and
/// returns the object to store, with its managedFields updated.
pub fn apply(
    current: &Value,
    config: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &Value,
) -> Result<Value, Conflict> {
    let applied = field_set(config, true);
    let applied_leaves = leaf_paths(&applied);
    let mut others: Vec<Value> = Vec::new();
    let mut previous = json!({});
    for entry in entries(current) {
        let is_mine = entry.get("manager").and_then(Value::as_str) == Some(manager)
            && entry.get("operation").and_then(Value::as_str) == Some("Apply");
        if is_mine {
            previous = entry.get("fieldsV1").cloned().unwrap_or_default();
        } else {
            others.push(entry);
        }
    }
    let mut conflicts = Vec::new();
    for other in &mut others {
        let owner = other
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let owned = leaf_paths(other.get("fieldsV1").unwrap_or(&Value::Null));
        let clashing: Vec<&Path> = owned
            .iter()
            .filter(|path| {
                applied_leaves.iter().any(|mine| {
                    overlaps(mine, path) && value_at(current, mine) != value_at(config, mine)
                })
            })
            .collect();
        if clashing.is_empty() {
            continue;
        }
        if !force {
            for path in clashing {
                conflicts.push(format!("conflict with \"{owner}\": .{}", path.join(".")));
            }
            continue;
        }
        // Forcing takes the fields over: the other applier no longer owns them.
        let kept: Vec<Path> = owned
            .iter()
            .filter(|path| !applied_leaves.iter().any(|mine| overlaps(mine, path)))
            .cloned()
            .collect();
        other["fieldsV1"] = set_of(&kept);
    }
    if !conflicts.is_empty() {
        let count = conflicts.len();
        let plural = if count == 1 { "conflict" } else { "conflicts" };
        return Err(Conflict(format!(
            "Apply failed with {count} {plural}: {}",
            conflicts.join("\n")
        )));
    }
    let mut next = patch::merge_patch(current, config);
    // Fields this applier set before and no longer does go, unless someone else owns them.
    let still_owned: Vec<Path> = others
        .iter()
        .flat_map(|o| leaf_paths(o.get("fieldsV1").unwrap_or(&Value::Null)))
        .collect();
    for path in leaf_paths(&previous) {
        let reapplied = applied_leaves.iter().any(|mine| overlaps(mine, &path));
        let kept = still_owned.iter().any(|other| overlaps(other, &path));
        if !reapplied && !kept {
            remove_at(&mut next, &path);
        }
    }
    others.push(json!({
        "manager": manager, "operation": "Apply", "apiVersion": api_version,
        "time": now, "fieldsType": "FieldsV1", "fieldsV1": applied
    }));
    if let Some(metadata) = next.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("managedFields".into(), Value::Array(others));
    }
    Ok(next)
}

/// A FieldsV1 set holding `paths`.
fn set_of(paths: &[Path]) -> Value {
    let mut set = json!({});
    for path in paths {
        let mut cursor = &mut set;
        for key in path {
            cursor = cursor
                .as_object_mut()
                .map(|fields| {
                    fields
                        .entry(format!("f:{key}"))
                        .or_insert_with(|| json!({}))
                })
                .expect("FieldsV1 sets are objects");
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replicas: i64, extra: Option<&str>) -> Value {
        let mut spec = json!({"replicas": replicas});
        if let Some(extra) = extra {
            spec[extra] = json!(true);
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": spec})
    }

    #[test]
    fn appliers_own_fields_conflict_and_drop_what_they_stop_applying() {
        let now = json!("2026-01-01T00:00:00Z");
        let first = apply(
            &Value::Null,
            &config(1, Some("paused")),
            "helm",
            false,
            "apps/v1",
            &now,
        )
        .ok()
        .expect("first apply");
        assert_eq!(first["metadata"]["managedFields"][0]["manager"], "helm");
        let clash = apply(&first, &config(2, None), "kubectl", false, "apps/v1", &now);
        let Err(Conflict(message)) = clash else {
            panic!("a different value for an owned field conflicts");
        };
        assert_eq!(
            message,
            "Apply failed with 1 conflict: conflict with \"helm\": .spec.replicas"
        );
        let forced = apply(&first, &config(2, None), "kubectl", true, "apps/v1", &now)
            .ok()
            .expect("forced apply");
        assert_eq!(forced["spec"]["replicas"], 2);
        // helm stops applying `paused`: no one else owns it, so it goes.
        let dropped = apply(&forced, &config(2, None), "helm", false, "apps/v1", &now)
            .ok()
            .expect("same value does not conflict");
        assert!(dropped["spec"].get("paused").is_none(), "{dropped}");
    }
}
