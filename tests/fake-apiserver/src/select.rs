//! Label and field selectors (the equality-based forms).

use serde_json::Value;

use crate::store::ApiError;

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    Absent(String),
}

/// Parsed `labelSelector` and `fieldSelector` query parameters.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

fn parse(text: &str, fields: bool) -> Result<Vec<Requirement>, ApiError> {
    let mut requirements = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let requirement = if let Some((key, value)) = term.split_once("!=") {
            Requirement::NotEquals(key.trim().into(), value.trim().into())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Requirement::Equals(key.trim().into(), value.trim().into())
        } else if term.contains(' ') || term.contains('(') {
            return Err(ApiError::bad_request(format!(
                "set-based selector {term:?} is not supported by the fake API server"
            )));
        } else if let Some(key) = term.strip_prefix('!') {
            Requirement::Absent(key.into())
        } else {
            Requirement::Exists(term.into())
        };
        if fields {
            match &requirement {
                Requirement::Equals(key, _) | Requirement::NotEquals(key, _)
                    if key == "metadata.name" || key == "metadata.namespace" => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {term}"
                    )));
                }
            }
        }
        requirements.push(requirement);
    }
    Ok(requirements)
}

impl Selectors {
    /// Parses the two query parameters.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            labels: parse(labels.unwrap_or(""), false)?,
            fields: parse(fields.unwrap_or(""), true)?,
        })
    }

    /// Whether `object` satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let field = |key: &str| {
            let pointer = format!("/{}", key.replace('.', "/"));
            object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let check = |requirement: &Requirement, lookup: &dyn Fn(&str) -> Option<String>| {
            match requirement {
                Requirement::Equals(key, value) => lookup(key).as_deref() == Some(value.as_str()),
                Requirement::NotEquals(key, value) => {
                    lookup(key).as_deref() != Some(value.as_str())
                }
                Requirement::Exists(key) => lookup(key).is_some(),
                Requirement::Absent(key) => lookup(key).is_none(),
            }
        };
        self.labels.iter().all(|r| check(r, &label)) && self.fields.iter().all(|r| check(r, &field))
    }
}
