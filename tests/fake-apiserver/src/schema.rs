//! A CustomResourceDefinition's structural schema applied to an object, in the order the real
//! API server does it: unknown fields are found and pruned, nulls of non-nullable fields
//! dropped, `default:` values filled in, and what is left validated (types, enums, bounds,
//! lengths, item counts, required fields). Error texts follow the real server's field errors.
//!
//! Not modelled: `pattern` (no regular expressions here), `format` checks, `oneOf`/`anyOf`/
//! `allOf`/`not`, and CEL `x-kubernetes-validations`.

use serde_json::{Map, Value};

/// One field error, as `k8s.io/apimachinery/pkg/util/validation/field.Error` renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// `FieldValueInvalid`, `FieldValueRequired` or `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The field path, e.g. `spec.maxReplicaCount`.
    pub field: String,
    /// The text after the path, e.g. `Required value`.
    pub detail: String,
}

impl FieldError {
    /// `spec.x: Required value`, the form the real server joins into its message.
    pub fn render(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
}

/// What applying a schema found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Paths of the fields the schema does not know (they were pruned).
    pub unknown: Vec<String>,
    /// Validation failures.
    pub errors: Vec<FieldError>,
}

/// The value at a field path such as `spec.triggers[0].name`, if there is one.
pub fn at_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = object;
    for part in path.split('.') {
        let (field, indices) = part
            .split_once('[')
            .map_or((part, ""), |(f, rest)| (f, rest));
        if !field.is_empty() {
            current = current.get(field)?;
        }
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let index: usize = index.trim_end_matches(']').parse().ok()?;
            current = current.get(index)?;
        }
    }
    Some(current)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// Prunes, defaults and validates `object` (a whole custom resource) against `schema`
/// (`openAPIV3Schema`). `apiVersion`, `kind` and `metadata` are the server's and are left alone.
pub fn apply(schema: &Value, object: &mut Value) -> Outcome {
    let mut outcome = Outcome::default();
    if let Value::Object(fields) = object {
        // The server's fields step aside while the rest is walked, then come back.
        let server_fields: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
            .iter()
            .filter_map(|name| fields.remove(*name).map(|value| (name.to_string(), value)))
            .collect();
        let mut body = Value::Object(std::mem::take(fields));
        walk(schema, &mut body, "", &mut outcome);
        if let Value::Object(body) = body {
            *fields = body;
        }
        fields.extend(server_fields);
    }
    outcome
}

/// Prunes and defaults below `value`, then validates it.
fn walk(schema: &Value, value: &mut Value, path: &str, outcome: &mut Outcome) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    match value {
        Value::Object(fields) if schema.get("type").and_then(Value::as_str) != Some("string") => {
            walk_object(schema, fields, path, preserve, outcome);
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{index}]"), outcome);
                }
            }
        }
        _ => {}
    }
    validate(schema, value, path, outcome);
}

fn walk_object(
    schema: &Value,
    fields: &mut Map<String, Value>,
    path: &str,
    preserve: bool,
    outcome: &mut Outcome,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    let names: Vec<String> = fields.keys().cloned().collect();
    for name in names {
        let child_path = join(path, &name);
        let child_schema = properties
            .and_then(|p| p.get(&name))
            .or(additional.filter(|a| a.is_object()));
        match child_schema {
            Some(child_schema) => {
                let nullable = flag(child_schema, "nullable");
                if fields.get(&name).is_some_and(Value::is_null) && !nullable {
                    // A null for a non-nullable field is dropped, then defaulted.
                    fields.remove(&name);
                    continue;
                }
                if let Some(child) = fields.get_mut(&name) {
                    walk(child_schema, child, &child_path, outcome);
                }
            }
            None if preserve
                || additional == Some(&Value::Bool(true))
                || (embedded && matches!(name.as_str(), "apiVersion" | "kind" | "metadata")) => {}
            None => {
                outcome.unknown.push(child_path);
                fields.remove(&name);
            }
        }
    }
    if let Some(properties) = properties {
        for (name, child_schema) in properties {
            if fields.contains_key(name) {
                continue;
            }
            if let Some(default) = child_schema.get("default") {
                let mut value = default.clone();
                walk(child_schema, &mut value, &join(path, name), outcome);
                fields.insert(name.clone(), value);
            }
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                outcome.errors.push(FieldError {
                    reason: "FieldValueRequired",
                    field: join(path, name),
                    detail: "Required value".into(),
                });
            }
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as Go's `%v`-ish rendering in field errors: strings quoted, numbers bare.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("{text:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn number_text(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{}", number as i64)
    } else {
        number.to_string()
    }
}

fn type_matches(expected: &str, value: &Value, int_or_string: bool) -> bool {
    let actual = type_name(value);
    if int_or_string {
        return matches!(actual, "integer" | "string");
    }
    match expected {
        "number" => matches!(actual, "integer" | "number"),
        "integer" => actual == "integer" || value.as_f64().is_some_and(|n| n.fract() == 0.0),
        other => other == actual,
    }
}

fn validate(schema: &Value, value: &Value, path: &str, outcome: &mut Outcome) {
    let invalid = |outcome: &mut Outcome, detail: String| {
        outcome.errors.push(FieldError {
            reason: "FieldValueInvalid",
            field: path.to_string(),
            detail: format!("Invalid value: {}: {detail}", shown(value)),
        })
    };
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value, int_or_string)
    {
        let actual = type_name(value);
        outcome.errors.push(FieldError {
            reason: "FieldValueInvalid",
            field: path.to_string(),
            detail: format!(
                "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
            ),
        });
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed.iter().map(shown).collect();
        outcome.errors.push(FieldError {
            reason: "FieldValueNotSupported",
            field: path.to_string(),
            detail: format!(
                "Unsupported value: {}: supported values: {}",
                shown(value),
                supported.join(", ")
            ),
        });
        return;
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64) {
            let exclusive = flag(schema, "exclusiveMinimum");
            if number < minimum || (exclusive && number == minimum) {
                let relation = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                invalid(
                    outcome,
                    format!(
                        "{path} in body should be {relation} {}",
                        number_text(minimum)
                    ),
                );
            }
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64) {
            let exclusive = flag(schema, "exclusiveMaximum");
            if number > maximum || (exclusive && number == maximum) {
                let relation = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                invalid(
                    outcome,
                    format!(
                        "{path} in body should be {relation} {}",
                        number_text(maximum)
                    ),
                );
            }
        }
    }
    let bound = |name: &str| schema.get(name).and_then(Value::as_u64);
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min) = bound("minLength").filter(|min| length < *min) {
            invalid(
                outcome,
                format!("{path} in body should be at least {min} chars long"),
            );
        }
        if let Some(max) = bound("maxLength").filter(|max| length > *max) {
            outcome.errors.push(FieldError {
                reason: "FieldValueTooLong",
                field: path.to_string(),
                detail: format!("Too long: may not be more than {max} bytes"),
            });
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = bound("minItems").filter(|min| count < *min) {
            invalid(
                outcome,
                format!("{path} in body should have at least {min} items"),
            );
        }
        if let Some(max) = bound("maxItems").filter(|max| count > *max) {
            outcome.errors.push(FieldError {
                reason: "FieldValueTooMany",
                field: path.to_string(),
                detail: format!("Too many: {count}: must have at most {max} items"),
            });
        }
    }
    if let Some(fields) = value.as_object() {
        let count = fields.len() as u64;
        if let Some(min) = bound("minProperties").filter(|min| count < *min) {
            invalid(
                outcome,
                format!("{path} in body should have at least {min} properties"),
            );
        }
        if let Some(max) = bound("maxProperties").filter(|max| count > *max) {
            invalid(
                outcome,
                format!("{path} in body should have at most {max} properties"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["target"], "properties": {
                "target": {"type": "string"},
                "max": {"type": "integer", "minimum": 0.0, "maximum": 10, "default": 5},
                "mode": {"type": "string", "enum": ["A", "B"]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "opt": {"type": "integer", "nullable": true}
            }}
        }})
    }

    #[test]
    fn prunes_defaults_and_keeps_preserved_fields() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"target": "t", "typo": 1, "free": {"any": 1}, "labels": {"a": "b"}, "opt": null},
            "extra": true});
        let outcome = apply(&schema(), &mut object);
        assert_eq!(
            outcome.unknown,
            vec!["extra".to_string(), "spec.typo".to_string()]
        );
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(object["spec"]["max"], json!(5));
        assert_eq!(object["spec"]["free"], json!({"any": 1}));
        assert_eq!(object["spec"]["opt"], Value::Null);
        assert_eq!(object["metadata"]["name"], json!("a"));
    }

    #[test]
    fn reports_type_enum_bound_and_required_errors() {
        let mut object = json!({"spec": {"max": "thirty", "mode": "C"}});
        let rendered: Vec<String> = apply(&schema(), &mut object)
            .errors
            .iter()
            .map(FieldError::render)
            .collect();
        assert!(rendered.contains(&"spec.target: Required value".to_string()));
        assert!(rendered.contains(&"spec.max: Invalid value: \"string\": spec.max in body must be of type integer: \"string\"".to_string()));
        assert!(rendered.contains(
            &"spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"".to_string()
        ));
        let mut object = json!({"spec": {"target": "t", "max": 11}});
        let rendered: Vec<String> = apply(&schema(), &mut object)
            .errors
            .iter()
            .map(FieldError::render)
            .collect();
        assert_eq!(
            rendered,
            vec![
                "spec.max: Invalid value: 11: spec.max in body should be less than or equal to 10"
                    .to_string()
            ]
        );
    }

    #[test]
    fn field_paths_resolve_through_lists() {
        let object = json!({"spec": {"triggers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(at_path(&object, "spec.triggers[1].name"), Some(&json!("b")));
        assert_eq!(at_path(&object, "spec.triggers[2].name"), None);
        assert_eq!(at_path(&object, "spec.missing"), None);
    }
}
