//! The `meta.k8s.io/v1` Table format `kubectl get` asks for
//! (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): a CRD's
//! `additionalPrinterColumns`, a few built-in printers, and Name/Age otherwise.

use serde_json::{Value, json};

use crate::resources::{PrinterColumn, ResourceType};

/// Whether an `Accept` header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
    })
}

fn column(name: &str, kind: &str, path: &str, description: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        kind: kind.into(),
        format: String::new(),
        json_path: path.into(),
        description: description.into(),
        priority: 0,
    }
}

/// The columns after Name: the CRD's, or the built-in printer's, or Age.
fn columns(ty: &ResourceType) -> Vec<PrinterColumn> {
    if !ty.printer_columns.is_empty() {
        return ty.printer_columns.clone();
    }
    let age = column(
        "Age",
        "date",
        ".metadata.creationTimestamp",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match (ty.group.as_str(), ty.kind.as_str()) {
        ("apps", "Deployment") => vec![
            column(
                "Ready",
                "string",
                "READY",
                "Number of the pod with ready state",
            ),
            column(
                "Up-to-date",
                "integer",
                ".status.updatedReplicas",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            column(
                "Available",
                "integer",
                ".status.availableReplicas",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age,
        ],
        ("apps", "StatefulSet") => {
            vec![
                column(
                    "Ready",
                    "string",
                    "READY",
                    "Number of the pod with ready state",
                ),
                age,
            ]
        }
        ("", "Event") => vec![
            column(
                "Last Seen",
                "date",
                ".lastTimestamp",
                "Time of the last occurrence",
            ),
            column("Type", "string", ".type", "Normal or Warning"),
            column("Reason", "string", ".reason", "Why the event happened"),
            column(
                "Object",
                "string",
                "OBJECT",
                "The object the event is about",
            ),
            column("Message", "string", ".message", "What happened"),
        ],
        ("", "Namespace") => vec![
            column(
                "Status",
                "string",
                ".status.phase",
                "The status of the namespace",
            ),
            age,
        ],
        _ => vec![age],
    }
}

/// The Table for `objects` of `ty`; `include` is the `includeObject` query parameter.
pub fn table(
    ty: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    include: Option<&str>,
) -> Value {
    let columns = columns(ty);
    // The Event printer shows its name only with `-o wide`, as the real one does.
    let name_priority = i64::from(ty.group.is_empty() && ty.kind == "Event");
    let mut definitions = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": name_priority,
        "description": "Name must be unique within a namespace."
    })];
    definitions.extend(columns.iter().map(|c| {
        json!({"name": c.name, "type": c.kind, "format": c.format,
               "description": c.description, "priority": c.priority})
    }));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![
                object
                    .pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::Null),
            ];
            cells.extend(columns.iter().map(|c| cell(object, c)));
            let mut row = json!({"cells": cells});
            match include.unwrap_or("Metadata") {
                "None" => {}
                "Object" => row["object"] = object.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or_default()
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions, "rows": rows
    })
}

fn cell(object: &Value, column: &PrinterColumn) -> Value {
    if column.json_path == "OBJECT" {
        let read = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let kind = read("/involvedObject/kind").to_lowercase();
        return json!(format!("{kind}/{}", read("/involvedObject/name")));
    }
    if column.json_path == "READY" {
        let read = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        return json!(format!(
            "{}/{}",
            read("/status/readyReplicas"),
            read("/spec/replicas")
        ));
    }
    let mut found = evaluate(object, &column.json_path);
    if found.is_empty() && column.json_path == ".lastTimestamp" {
        found = evaluate(object, ".eventTime");
    }
    let Some(first) = found.first() else {
        return Value::Null;
    };
    if column.kind == "date" {
        // The server prints dates as ages, as `kubectl get` shows them.
        return json!(age(first.as_str().unwrap_or_default()));
    }
    if found.len() == 1 {
        return (*first).clone();
    }
    let texts: Vec<String> = found
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect();
    json!(texts.join(","))
}

/// A timestamp's age in kubectl's short form (`42s`, `3m12s`, `5h`, `2d3h`).
fn age(timestamp: &str) -> String {
    let Ok(then) = timestamp.parse::<k8s_openapi::jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let seconds = k8s_openapi::jiff::Timestamp::now().as_second() - then.as_second();
    if seconds < 0 {
        return "<invalid>".into();
    }
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86400);
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => pair(minutes, "m", s % 60, "s"),
        s if s < 3 * 3600 => format!("{minutes}m"),
        s if s < 8 * 3600 => pair(hours, "h", minutes % 60, "m"),
        s if s < 48 * 3600 => format!("{hours}h"),
        s if s < 8 * 86400 => pair(days, "d", hours % 24, "h"),
        _ => format!("{days}d"),
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[0]`, `[*]`, and
/// `[?(@.key=="value")]` filters.
pub fn evaluate<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current = vec![root];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            let selector = &after[..end];
            rest = &after[end + 1..];
            current = current
                .into_iter()
                .flat_map(|v| select(v, selector))
                .collect();
        } else {
            return Vec::new();
        }
    }
    current
}

fn select<'a>(value: &'a Value, selector: &str) -> Vec<&'a Value> {
    let Some(items) = value.as_array() else {
        return Vec::new();
    };
    if selector == "*" {
        return items.iter().collect();
    }
    if let Ok(index) = selector.parse::<usize>() {
        return items.get(index).into_iter().collect();
    }
    let filter = selector
        .strip_prefix("?(@.")
        .and_then(|f| f.strip_suffix(')'))
        .and_then(|f| f.split_once("=="));
    let Some((key, expected)) = filter else {
        return Vec::new();
    };
    let expected = expected.trim().trim_matches('"').trim_matches('\'');
    items
        .iter()
        .filter(|item| {
            evaluate(item, &format!(".{}", key.trim()))
                .first()
                .and_then(|v| v.as_str())
                == Some(expected)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_printer_column_paths() {
        let object = json!({"status": {"conditions": [
            {"type": "Active", "status": "False"}, {"type": "Ready", "status": "True"}
        ]}, "spec": {"max": 3}});
        let ready = evaluate(&object, ".status.conditions[?(@.type==\"Ready\")].status");
        assert_eq!(ready, vec![&json!("True")]);
        assert_eq!(evaluate(&object, ".spec.max"), vec![&json!(3)]);
        assert_eq!(evaluate(&object, ".status.conditions[*].type").len(), 2);
        assert!(evaluate(&object, ".spec.missing").is_empty());
    }

    #[test]
    fn ages_read_like_kubectl() {
        let ago = |seconds: i64| {
            let then = k8s_openapi::jiff::Timestamp::now().as_second() - seconds;
            age(&k8s_openapi::jiff::Timestamp::from_second(then)
                .unwrap()
                .to_string())
        };
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(192), "3m12s");
        assert_eq!(ago(5 * 3600), "5h");
        assert_eq!(age("not a time"), "<unknown>");
    }
}
