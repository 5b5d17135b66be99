//! Events are one resource with two API views: core `v1` Events and `events.k8s.io/v1`
//! Events. ebb writes the new form; `kubectl get events` reads the old one. A list of either
//! type also shows the other's objects, converted field by field as the real server does.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Whether a type is one of the two Event views.
pub fn is_event(ty: &ResourceType) -> bool {
    ty.kind == "Event" && (ty.group.is_empty() || ty.group == "events.k8s.io")
}

/// `(core v1 field, events.k8s.io/v1 field)` pairs that carry the same value.
const RENAMED: [(&str, &str); 9] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("reportingInstance", "reportingInstance"),
    ("eventTime", "eventTime"),
];

const SAME: [&str; 6] = ["metadata", "reason", "type", "action", "related", "series"];

/// Converts an Event from the `from` view into the `to` view.
pub fn convert(event: &Value, to: &ResourceType) -> Value {
    let to_core = to.group.is_empty();
    let mut converted = Map::new();
    converted.insert("apiVersion".into(), json!(to.api_version()));
    converted.insert("kind".into(), json!("Event"));
    for field in SAME {
        if let Some(value) = event.get(field) {
            converted.insert(field.into(), value.clone());
        }
    }
    for (core, new) in RENAMED {
        let (from, into) = if to_core { (new, core) } else { (core, new) };
        if let Some(value) = event.get(from) {
            converted.insert(into.into(), value.clone());
        }
    }
    Value::Object(converted)
}
