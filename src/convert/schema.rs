//! The check every converted document goes through: ebb's own CRD schema (the one `ebb crd`
//! writes and the API server enforces), walked field by field. A field ebb's kind does not
//! have is dropped when dropping it changes nothing ([`DROPPED`]), else refused, with KEDA's
//! reason when one is known ([`EXPLAINED`]). Because the walk reads the generated schema,
//! a field ebb learns later is carried over without a change here.

use std::collections::BTreeMap;

use kube::CustomResourceExt;
use serde_json::Value as Json;
use serde_norway::Value;

use super::report::Findings;

/// KEDA fields that mean nothing under ebb, so leaving them out changes no behaviour. Keyed by
/// the field's path with list indices written `[]`.
const DROPPED: &[(&str, &str)] = &[
    (
        "spec.triggers[].useCachedMetrics",
        "removed: ebb reads each trigger once per poll and has no HPA queries to answer from a cache",
    ),
    (
        "spec.advanced.horizontalPodAutoscalerConfig.name",
        "removed: ebb creates no HorizontalPodAutoscaler to name",
    ),
];

const SECRET_STORE: &str = "ebb does not read secret stores; sync the secret into a Kubernetes Secret (for example with the External Secrets Operator) and use `secretTargetRef`";
const IDENTITY: &str = "ebb forwards credentials from Secrets, ConfigMaps and the target's environment only; cloud identities (pod or workload identity, service-account tokens) are not supported";

/// Why a KEDA field ebb lacks cannot simply be dropped.
const EXPLAINED: &[(&str, &str)] = &[
    ("spec.podIdentity", IDENTITY),
    ("spec.boundServiceAccountToken", IDENTITY),
    ("spec.hashiCorpVault", SECRET_STORE),
    ("spec.azureKeyVault", SECRET_STORE),
    ("spec.awsSecretManager", SECRET_STORE),
    ("spec.gcpSecretManager", SECRET_STORE),
];

/// The OpenAPI schema of each of ebb's kinds, by kind. Generating the CRDs is by far the
/// costliest step of a conversion (tens of milliseconds), so it is done once per process,
/// not once per file.
pub(crate) fn schemas() -> &'static BTreeMap<String, Json> {
    static SCHEMAS: std::sync::OnceLock<BTreeMap<String, Json>> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(generate)
}

fn generate() -> BTreeMap<String, Json> {
    let crds = [
        crate::spec::ScaledObject::crd(),
        crate::spec::ScaledJob::crd(),
        crate::spec::ScalerAuthentication::crd(),
        crate::spec::ClusterScalerAuthentication::crd(),
    ];
    crds.into_iter()
        .filter_map(|crd| {
            let kind = crd.spec.names.kind.clone();
            let schema = crd
                .spec
                .versions
                .first()?
                .schema
                .as_ref()?
                .open_api_v3_schema
                .as_ref()
                .and_then(|schema| serde_json::to_value(schema).ok())?;
            Some((kind, with_object_fields(schema)))
        })
        .collect()
}

/// The CRD schema with the fields every object has, which the API server checks itself and
/// the CRD therefore leaves out.
fn with_object_fields(mut schema: Json) -> Json {
    if let Some(properties) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        for key in ["apiVersion", "kind"] {
            properties
                .entry(key)
                .or_insert_with(|| serde_json::json!({"type": "string"}));
        }
        properties
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({"type": "object"}));
    }
    schema
}

/// Checks `value` against `schema`, dropping or refusing what ebb's kind `kind` lacks.
pub(crate) fn check(value: &mut Value, schema: &Json, kind: &str, findings: &mut Findings) {
    walk(value, schema, &Path::default(), kind, findings);
}

/// A field's path as shown (`spec.triggers[0].type`) and as a pattern (`spec.triggers[].type`).
#[derive(Default, Clone)]
struct Path {
    shown: String,
    pattern: String,
}

impl Path {
    fn key(&self, key: &str) -> Self {
        let join = |base: &str| {
            if base.is_empty() {
                key.to_owned()
            } else {
                format!("{base}.{key}")
            }
        };
        Self {
            shown: join(&self.shown),
            pattern: join(&self.pattern),
        }
    }

    fn index(&self, index: usize) -> Self {
        Self {
            shown: format!("{}[{index}]", self.shown),
            pattern: format!("{}[]", self.pattern),
        }
    }

    fn entry(&self, key: &str) -> Self {
        Self {
            shown: format!("{}[{key}]", self.shown),
            pattern: format!("{}[]", self.pattern),
        }
    }
}

fn type_matches(value: &Value, expected: &str) -> bool {
    match expected {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_bool(),
        "object" => value.is_mapping(),
        "array" => value.is_sequence(),
        _ => true,
    }
}

fn walk(value: &mut Value, schema: &Json, path: &Path, kind: &str, findings: &mut Findings) {
    let flag = |name: &str| schema.get(name).and_then(Json::as_bool) == Some(true);
    if flag("x-kubernetes-preserve-unknown-fields") || flag("x-kubernetes-int-or-string") {
        return;
    }
    if value.is_null() {
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Json::as_str)
        && !type_matches(value, expected)
    {
        // The value itself is not quoted: trigger metadata may hold credentials.
        findings.refuse(
            &path.shown,
            format!("ebb expects a value of type {expected}"),
        );
        return;
    }
    if let (Some(allowed), Some(text)) =
        (schema.get("enum").and_then(Json::as_array), value.as_str())
        && !allowed.iter().any(|option| option.as_str() == Some(text))
    {
        // Not quoted either: an enum field may have been given a credential by mistake.
        let options: Vec<&str> = allowed.iter().filter_map(Json::as_str).collect();
        findings.refuse(
            &path.shown,
            format!("the value is not one of {}", options.join(", ")),
        );
        return;
    }
    match value {
        Value::Mapping(mapping) => {
            let properties = schema.get("properties").and_then(Json::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            let mut unknown = Vec::new();
            for (key, child) in mapping.iter_mut() {
                let Some(key) = key.as_str().map(str::to_owned) else {
                    continue;
                };
                if let Some(child_schema) = properties.and_then(|p| p.get(&key)) {
                    walk(child, child_schema, &path.key(&key), kind, findings);
                } else if let Some(child_schema) = additional {
                    walk(child, child_schema, &path.entry(&key), kind, findings);
                } else {
                    unknown.push(key);
                }
            }
            for key in unknown {
                let field = path.key(&key);
                if let Some((_, what)) = DROPPED.iter().find(|(p, _)| *p == field.pattern) {
                    mapping.shift_remove(key.as_str());
                    findings.change(field.shown, *what);
                } else {
                    let reason = EXPLAINED
                        .iter()
                        .find(|(p, _)| *p == field.pattern)
                        .map_or_else(
                            || format!("ebb's {kind} has no field {key:?}"),
                            |(_, why)| (*why).to_owned(),
                        );
                    findings.refuse(field.shown, reason);
                }
            }
        }
        Value::Sequence(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &path.index(index), kind, findings);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: &str, yaml: &str) -> (Value, Findings) {
        let mut value: Value = serde_norway::from_str(yaml).unwrap();
        let mut findings = Findings::default();
        check(&mut value, &schemas()[kind], kind, &mut findings);
        (value, findings)
    }

    #[test]
    fn every_kind_has_a_schema() {
        let schemas = schemas();
        for kind in [
            "ScaledObject",
            "ScaledJob",
            "ScalerAuthentication",
            "ClusterScalerAuthentication",
        ] {
            assert!(schemas.contains_key(kind), "{kind}");
        }
    }

    #[test]
    fn the_fields_every_object_has_are_not_refused() {
        let (_, findings) = run(
            "ScalerAuthentication",
            "apiVersion: ebb.dev/v1alpha1\nkind: ScalerAuthentication\nmetadata: {name: a, labels: {x: y}}\nspec: {}\n",
        );
        assert!(findings.refusals.is_empty(), "{:?}", findings.refusals);
    }

    #[test]
    fn harmless_fields_are_dropped_and_reported() {
        let (value, findings) = run(
            "ScaledObject",
            "spec:\n  scaleTargetRef: {name: a}\n  triggers:\n  - type: rabbitmq\n    useCachedMetrics: true\n    metadata: {queueName: q}\n",
        );
        assert!(findings.refusals.is_empty(), "{:?}", findings.refusals);
        assert_eq!(findings.changes[0].0, "spec.triggers[0].useCachedMetrics");
        assert!(
            value["spec"]["triggers"][0]
                .get("useCachedMetrics")
                .is_none()
        );
    }

    #[test]
    fn unknown_fields_wrong_types_and_enums_are_refused_by_field() {
        let (_, findings) = run(
            "ScaledObject",
            "spec:\n  scaleTargetRef: {name: a}\n  minReplicas: 1\n  maxReplicaCount: ten\n  triggers:\n  - type: rabbitmq\n    metricType: Utilization\n",
        );
        let fields: Vec<&str> = findings.refusals.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.maxReplicaCount",
                "spec.triggers[0].metricType",
                "spec.minReplicas"
            ],
            "{:?}",
            findings.refusals
        );
        assert!(
            findings.refusals[1].1 == "the value is not one of AverageValue, Value",
            "the value itself is not shown: {:?}",
            findings.refusals[1]
        );
        assert!(
            findings.refusals[2]
                .1
                .contains("has no field \"minReplicas\"")
        );
    }

    #[test]
    fn secret_stores_and_identities_are_refused_with_their_reason() {
        let (_, findings) = run(
            "ScalerAuthentication",
            "spec:\n  hashiCorpVault: {address: x}\n  podIdentity: {provider: azure-workload}\n",
        );
        assert_eq!(findings.refusals.len(), 2);
        assert!(findings.refusals[0].1.contains("secret stores"));
        assert!(findings.refusals[1].1.contains("identities"));
    }
}
