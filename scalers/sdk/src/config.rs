//! Trigger metadata: merging plain metadata with secrets, and parsing it into a scaler's typed
//! configuration guided by the schema derived from that same type.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ScalerError;
use crate::proto::v1::{MetadataField, ValueKind};

/// Suffix of KEDA keys whose value the host already resolved from the target's environment.
const FROM_ENV_SUFFIX: &str = "FromEnv";

/// The metadata schema of a config type, as reported by `GetInfo`.
#[derive(Debug, Clone, Default)]
pub struct MetadataSchema {
    fields: Vec<MetadataField>,
    /// Inclusive bounds of integer fields, by key, from the type (`u32` is 0 to 2^32-1), so
    /// an out-of-range value is reported under its key rather than by serde without one.
    bounds: BTreeMap<String, (i64, i64)>,
}

impl MetadataSchema {
    /// Derives the schema of `C` from its `JsonSchema` implementation.
    pub fn of<C: JsonSchema>() -> Self {
        let root = serde_json::to_value(schemars::schema_for!(C)).unwrap_or(Value::Null);
        let required: Vec<&str> = root
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = Vec::new();
        let mut bounds = BTreeMap::new();
        if let Some(properties) = root.get("properties").and_then(Value::as_object) {
            for (key, property) in properties {
                let property = resolve(&root, property);
                if let Some(range) = integer_bounds(&property) {
                    bounds.insert(key.clone(), range);
                }
                fields.push(field_of(key, &property, required.contains(&key.as_str())));
            }
        }
        Self { fields, bounds }
    }

    /// The fields, in key order.
    pub fn fields(&self) -> &[MetadataField] {
        &self.fields
    }

    /// The field for `key`, if the schema has it.
    pub fn field(&self, key: &str) -> Option<&MetadataField> {
        self.fields.iter().find(|field| field.key == key)
    }
}

/// The range of an integer property: its `format` (`uint32`, `int8`, ...) narrowed by
/// `minimum` and `maximum`.
fn integer_bounds(property: &Value) -> Option<(i64, i64)> {
    if json_type(property) != Some("integer") {
        return None;
    }
    let (mut low, mut high) = match property.get("format").and_then(Value::as_str) {
        Some("uint8") => (0, i64::from(u8::MAX)),
        Some("uint16") => (0, i64::from(u16::MAX)),
        Some("uint32") => (0, i64::from(u32::MAX)),
        Some("uint64" | "uint") => (0, i64::MAX),
        Some("int8") => (i64::from(i8::MIN), i64::from(i8::MAX)),
        Some("int16") => (i64::from(i16::MIN), i64::from(i16::MAX)),
        Some("int32") => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    // Bounds beyond i64 are clamped, and fractional ones rounded inward by the casts' sense.
    #[allow(clippy::cast_possible_truncation)]
    if let Some(minimum) = property.get("minimum").and_then(Value::as_f64) {
        low = low.max(minimum.ceil() as i64);
    }
    #[allow(clippy::cast_possible_truncation)]
    if let Some(maximum) = property.get("maximum").and_then(Value::as_f64) {
        high = high.min(maximum.floor() as i64);
    }
    Some((low, high))
}

/// Follows `$ref`s and unwraps `Option`'s `anyOf [T, null]` so the property's own shape is seen.
fn resolve(root: &Value, property: &Value) -> Value {
    let mut merged = property.clone();
    let mut target = property.clone();
    for _ in 0..8 {
        if let Some(reference) = target.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            target = root
                .get("$defs")
                .and_then(|defs| defs.get(name))
                .cloned()
                .unwrap_or(Value::Null);
        } else if let Some(options) = target.get("anyOf").and_then(Value::as_array) {
            target = options
                .iter()
                .find(|option| option.get("type").and_then(Value::as_str) != Some("null"))
                .cloned()
                .unwrap_or(Value::Null);
        } else {
            break;
        }
    }
    if let (Some(merged), Some(target)) = (merged.as_object_mut(), target.as_object()) {
        for (key, value) in target {
            merged.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    merged
}

fn field_of(key: &str, property: &Value, required: bool) -> MetadataField {
    let allowed_values = enum_values(property);
    let kind = if !allowed_values.is_empty() {
        ValueKind::Enum
    } else if property.get("x-kind").and_then(Value::as_str) == Some("duration") {
        ValueKind::Duration
    } else {
        match json_type(property) {
            Some("integer") => ValueKind::Integer,
            Some("number") => ValueKind::Number,
            Some("boolean") => ValueKind::Boolean,
            Some("string") => ValueKind::String,
            _ => ValueKind::Unspecified,
        }
    };
    let default_value = match property.get("default") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    MetadataField {
        key: key.to_owned(),
        required,
        default_value,
        description: property
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        secret: property.get("x-secret").and_then(Value::as_bool) == Some(true),
        kind: kind as i32,
        allowed_values,
    }
}

fn json_type(property: &Value) -> Option<&str> {
    match property.get("type") {
        Some(Value::String(kind)) => Some(kind),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null"),
        _ => None,
    }
}

fn enum_values(property: &Value) -> Vec<String> {
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    property
        .get("oneOf")
        .and_then(Value::as_array)
        .map(|variants| {
            variants
                .iter()
                .flat_map(|variant| {
                    let constant = variant.get("const").and_then(Value::as_str);
                    let listed = variant
                        .get("enum")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str);
                    constant
                        .into_iter()
                        .chain(listed)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A trigger's metadata merged with its resolved secrets, ready to parse.
#[derive(Clone, Default)]
pub struct TriggerMetadata {
    values: BTreeMap<String, String>,
    /// Keys whose value came from the secret map: masked in errors like schema secrets.
    from_secrets: std::collections::BTreeSet<String>,
}

impl std::fmt::Debug for TriggerMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may hold credentials; only the keys are safe to show.
        f.debug_struct("TriggerMetadata")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TriggerMetadata {
    /// Merges v1 metadata and secrets; a secret wins over a plain key of the same name.
    pub fn from_v1(metadata: &HashMap<String, String>, secrets: &HashMap<String, String>) -> Self {
        let mut merged = Self::from_plain(metadata);
        for (key, value) in secrets {
            merged.values.insert(key.clone(), value.clone());
            merged.from_secrets.insert(key.clone());
        }
        merged
    }

    /// KEDA's `scalerMetadata`: every trigger key plus resolved `xFromEnv` keys.
    pub fn from_keda(metadata: &HashMap<String, String>) -> Self {
        Self::from_plain(metadata)
    }

    /// Plain metadata: a resolved `xFromEnv` value stands for `x` unless `x` is given too.
    fn from_plain(metadata: &HashMap<String, String>) -> Self {
        let mut values: BTreeMap<String, String> = metadata
            .iter()
            .filter(|(key, _)| !key.ends_with(FROM_ENV_SUFFIX))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        for (key, value) in metadata {
            if let Some(base) = key.strip_suffix(FROM_ENV_SUFFIX)
                && !base.is_empty()
                && !value.is_empty()
            {
                values
                    .entry(base.to_owned())
                    .or_insert_with(|| value.clone());
            }
        }
        Self {
            values,
            from_secrets: std::collections::BTreeSet::new(),
        }
    }

    /// A redactor for the values an error about this trigger must never quote: every value
    /// of a secret key (by schema or because it came in the secret map), and every URL.
    pub fn redactor(&self, schema: &MetadataSchema) -> ebb::protocol::Redactor {
        ebb::protocol::Redactor::new(self.values.iter().filter_map(|(key, value)| {
            let secret = self.from_secrets.contains(key)
                || schema.field(key).is_some_and(|field| field.secret)
                || value.contains("://");
            secret.then_some(value.as_str())
        }))
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Parses the metadata into `C`, checking required keys, numbers, booleans and enum values
    /// against `schema` first so every error names its key. Keys outside the schema are
    /// ignored (KEDA sends `scalerAddress` and friends along).
    pub fn parse<C: DeserializeOwned>(&self, schema: &MetadataSchema) -> Result<C, ScalerError> {
        let mut object = Map::new();
        for field in schema.fields() {
            match self.values.get(&field.key) {
                Some(raw) => {
                    let secret = field.secret || self.from_secrets.contains(&field.key);
                    let value = coerce(field, raw, secret)?;
                    if let (Some((low, high)), Some(number)) =
                        (schema.bounds.get(&field.key), value.as_i64())
                        && !(*low..=*high).contains(&number)
                    {
                        return Err(ScalerError::invalid(
                            &field.key,
                            format!("must be a whole number from {low} to {high}"),
                        ));
                    }
                    object.insert(field.key.clone(), value);
                }
                None if field.required => {
                    return Err(ScalerError::invalid(&field.key, "is required"));
                }
                None => {}
            }
        }
        serde_json::from_value(Value::Object(object)).map_err(|error| {
            let message = error.to_string();
            let key = schema
                .fields()
                .iter()
                .find(|field| message.contains(&format!("`{}`", field.key)))
                .map_or("metadata", |field| field.key.as_str());
            ScalerError::invalid(key, message)
        })
    }
}

fn coerce(field: &MetadataField, raw: &str, secret: bool) -> Result<Value, ScalerError> {
    let text = raw.trim();
    // A secret's value must never appear in an error message.
    let shown = if secret { "<secret>" } else { text };
    match ValueKind::try_from(field.kind).unwrap_or(ValueKind::Unspecified) {
        ValueKind::Integer => text.parse::<i64>().map(Value::from).map_err(|_| {
            ScalerError::invalid(&field.key, format!("`{shown}` is not a whole number"))
        }),
        ValueKind::Number => match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(Value::from(number)),
            _ => Err(ScalerError::invalid(
                &field.key,
                format!("`{shown}` is not a number"),
            )),
        },
        ValueKind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(ScalerError::invalid(
                &field.key,
                format!("`{shown}` is not true or false"),
            )),
        },
        ValueKind::Enum => field
            .allowed_values
            .iter()
            .find(|allowed| allowed.eq_ignore_ascii_case(text))
            .map(|allowed| Value::String(allowed.clone()))
            .ok_or_else(|| {
                ScalerError::invalid(
                    &field.key,
                    format!(
                        "`{shown}` is not one of {}",
                        field.allowed_values.join(", ")
                    ),
                )
            }),
        ValueKind::Duration => parse_duration(text)
            .map(|duration| Value::String(format!("{}ms", duration.as_millis())))
            .ok_or_else(|| {
                ScalerError::invalid(
                    &field.key,
                    format!("`{shown}` is not a duration (milliseconds, or like 2s, 1m30s)"),
                )
            }),
        ValueKind::String | ValueKind::Unspecified => Ok(Value::String(raw.to_owned())),
    }
}

/// Parses a duration: a bare number is milliseconds (KEDA's convention), otherwise humantime
/// syntax such as `2s`, `500ms` or `1m30s`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    ebb::process::parse_duration(text).ok()
}

/// Serde helpers for config fields.
pub mod serde_helpers {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Deserializes a duration field written as milliseconds or humantime text. Mark the field
    /// with `#[schemars(extend("x-kind" = "duration"), with = "String")]` so the schema and the
    /// SDK know it is a duration.
    pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a duration")))
    }

    /// Like [`duration`], for an optional field.
    pub fn optional_duration<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| {
            super::parse_duration(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a duration")))
        })
        .transpose()
    }
}
