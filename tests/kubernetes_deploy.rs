//! The deploy manifests: the committed CRDs equal what `ebb crd` generates (CI's drift
//! check), every manifest decodes as the Kubernetes type it claims to be without losing a
//! field, every example ScaledObject is valid against the generated CRD schema and against
//! ebb's own validation, and the kustomizations render offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ebb::kubernetes::{ClusterScalerAuthentication, ScalerAuthentication, crd_files};
use ebb::spec::ScaledObject;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.ends_with("deploy/helm") {
            // Go templates, not YAML: tests/helm renders them with Helm's own engine.
            continue;
        }
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    out.sort();
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|value| !value.is_null())
        .collect()
}

/// Paths present in `original` but missing from `decoded` (fields a typo would lose).
fn lost_fields(original: &Value, decoded: &Value, path: &str, lost: &mut Vec<String>) {
    match (original, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => lost_fields(value, other, &format!("{path}.{key}"), lost),
                    None if value.is_null() => {}
                    None => lost.push(format!("{path}.{key}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                lost_fields(x, y, &format!("{path}[{index}]"), lost);
            }
        }
        _ => {}
    }
}

fn round_trip<T: DeserializeOwned + serde::Serialize>(document: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(document.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Decodes a manifest as its type; returns the problems found.
fn check_document(document: &Value) -> Vec<String> {
    let api_version = document["apiVersion"].as_str().unwrap_or("");
    let kind = document["kind"].as_str().unwrap_or("");
    let decoded = match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(document),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(document),
        ("v1", "Service") => round_trip::<Service>(document),
        ("v1", "Secret") => round_trip::<Secret>(document),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(document),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(document),
        ("batch/v1", "Job") => round_trip::<Job>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(document),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<ClusterRoleBinding>(document)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(document),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(document),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<CustomResourceDefinition>(document)
        }
        ("ebb.dev/v1alpha1", "ScaledObject") => round_trip::<ScaledObject>(document),
        ("ebb.dev/v1alpha1", "ScaledJob") => round_trip::<ebb::spec::ScaledJob>(document),
        ("ebb.dev/v1alpha1", "ScalerAuthentication") => {
            round_trip::<ScalerAuthentication>(document)
        }
        ("ebb.dev/v1alpha1", "ClusterScalerAuthentication") => {
            round_trip::<ClusterScalerAuthentication>(document)
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy") => {
            round_trip::<ValidatingAdmissionPolicy>(document)
        }
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding") => {
            round_trip::<ValidatingAdmissionPolicyBinding>(document)
        }
        ("kustomize.config.k8s.io/v1beta1", "Kustomization") => return Vec::new(),
        _ => return vec![format!("unknown apiVersion/kind {api_version}/{kind}")],
    };
    match decoded {
        Err(error) => vec![format!("{kind}: {error}")],
        Ok(decoded) => {
            let mut lost = Vec::new();
            lost_fields(document, &decoded, "", &mut lost);
            lost.into_iter()
                .map(|path| format!("{kind}: field {path} is not part of the type"))
                .collect()
        }
    }
}

#[test]
fn committed_crds_equal_the_generated_ones() {
    let generated = crd_files().unwrap();
    let dir = deploy_dir().join("crds");
    for (file, yaml) in &generated {
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| {
            panic!("deploy/crds/{file} is missing ({e}); run `ebb crd --out deploy/crds`")
        });
        assert!(
            &committed == yaml,
            "deploy/crds/{file} differs from the generated CRD; run `cargo run -p ebb -- crd --out deploy/crds`"
        );
    }
    let mut on_disk = Vec::new();
    yaml_files(&dir, &mut on_disk);
    let expected: Vec<&str> = generated.iter().map(|(file, _)| *file).collect();
    for path in on_disk {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name == "kustomization.yaml" || expected.contains(&name),
            "stray file deploy/crds/{name}"
        );
    }
}

#[test]
fn every_manifest_decodes_as_its_type() {
    let mut files = Vec::new();
    yaml_files(&deploy_dir(), &mut files);
    assert!(
        files.len() >= 15,
        "expected the deploy tree, found {files:?}"
    );
    let mut problems = Vec::new();
    let mut kinds = BTreeMap::<String, usize>::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for document in documents(&text) {
            *kinds
                .entry(document["kind"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
            for problem in check_document(&document) {
                problems.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "manifest problems:\n{}",
        problems.join("\n")
    );
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "ScaledObject",
        "ScalerAuthentication",
        "Job",
        "ClusterRole",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} among the manifests: {kinds:?}"
        );
    }
}

#[test]
fn the_field_check_catches_a_typo() {
    let document: Value = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"replica": 3, "selector": {}, "template": {}}
    });
    let problems = check_document(&document);
    assert!(
        problems.iter().any(|p| p.contains(".spec.replica")),
        "{problems:?}"
    );
}

/// A validator for the structural OpenAPI v3 subset CRD schemas use.
fn validate_schema(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            problems.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            problems.push(format!("{path}: expected an integer or a string"));
        }
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        problems.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    let type_ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        problems.push(format!("{path}: expected {}, got {value}", schema["type"]));
        return;
    }
    if let Some(minimum) = schema["minimum"].as_f64()
        && value.as_f64().is_some_and(|v| v < minimum)
    {
        problems.push(format!("{path}: {value} is below the minimum {minimum}"));
    }
    match value {
        Value::Object(fields) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                let required = required.as_str().unwrap_or("");
                if !fields.contains_key(required) {
                    problems.push(format!("{path}.{required}: required"));
                }
            }
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (key, field) in fields {
                let sub = format!("{path}.{key}");
                if let Some(property) = schema["properties"].get(key) {
                    validate_schema(property, field, &sub, problems);
                } else if let Some(additional) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    validate_schema(additional, field, &sub, problems);
                } else if schema.get("properties").is_some() && !preserve {
                    problems.push(format!("{sub}: unknown field"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    validate_schema(item_schema, item, &format!("{path}[{index}]"), problems);
                }
            }
        }
        _ => {}
    }
}

fn scaled_object_schema() -> Value {
    crd_schema("scaledobjects")
}

fn crd_schema(plural: &str) -> Value {
    let (_, yaml) = crd_files()
        .unwrap()
        .into_iter()
        .find(|(file, _)| file.starts_with(plural))
        .unwrap();
    let crd = documents(&yaml).remove(0);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn example_scaled_objects_are_valid_against_the_crd_schema() {
    let schema = scaled_object_schema();
    let job_schema = crd_schema("scaledjobs");
    let mut files = Vec::new();
    yaml_files(&deploy_dir().join("examples"), &mut files);
    let mut checked = 0;
    let mut jobs_checked = 0;
    for file in &files {
        for document in documents(&std::fs::read_to_string(file).unwrap()) {
            if document["kind"] == "ScaledJob" {
                let mut body = document.clone();
                for field in ["apiVersion", "kind", "metadata"] {
                    body.as_object_mut().unwrap().remove(field);
                }
                let mut problems = Vec::new();
                validate_schema(&job_schema, &body, "", &mut problems);
                assert!(problems.is_empty(), "{}: {problems:?}", file.display());
                let job: ebb::spec::ScaledJob = serde_json::from_value(document).unwrap();
                let invalid = job.validate();
                assert!(invalid.is_empty(), "{}: {invalid:?}", file.display());
                jobs_checked += 1;
                continue;
            }
            if document["kind"] != "ScaledObject" {
                continue;
            }
            let mut problems = Vec::new();
            // apiVersion, kind and metadata are the API server's own, not the CRD schema's.
            let mut body = document.clone();
            for field in ["apiVersion", "kind", "metadata"] {
                body.as_object_mut().unwrap().remove(field);
            }
            validate_schema(&schema, &body, "", &mut problems);
            assert!(problems.is_empty(), "{}: {problems:?}", file.display());
            let object: ScaledObject = serde_json::from_value(document).unwrap();
            let invalid = object.validate();
            assert!(invalid.is_empty(), "{}: {invalid:?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example ScaledObject found");
    assert!(jobs_checked >= 1, "no example ScaledJob found");
}

#[test]
fn the_schema_check_catches_bad_objects() {
    let schema = scaled_object_schema();
    let bad = serde_json::json!({
        "spec": {"scaleTargetRef": {"name": "x"}, "maxReplicaCount": "lots", "triggerz": []}
    });
    let mut problems = Vec::new();
    validate_schema(&schema, &bad, "", &mut problems);
    assert!(
        problems.iter().any(|p| p.contains(".spec.maxReplicaCount")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(".spec.triggerz: unknown field")),
        "{problems:?}"
    );
}

#[test]
fn the_seed_demo_is_the_specified_one() {
    let text =
        std::fs::read_to_string(deploy_dir().join("examples/rabbitmq-consumer/scaledobject.yaml"))
            .unwrap();
    let object: ScaledObject = serde_json::from_value(documents(&text).remove(0)).unwrap();
    assert_eq!(object.spec.max_replicas(), 30);
    assert_eq!(object.spec.cooldown_period().as_secs(), 30);
    let trigger = &object.spec.triggers[0];
    assert_eq!(trigger.metadata.get("value").map(String::as_str), Some("5"));
    assert_eq!(
        trigger.authentication_ref.as_ref().unwrap().name,
        "rabbitmq-broker"
    );
    assert!(
        !trigger.metadata.contains_key("host"),
        "the broker URL must come from the Secret"
    );
}

#[test]
fn kustomizations_render_offline() {
    let Ok(status) = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
    else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("kubectl is not installed, and CI must provide it");
        }
        eprintln!(
            "\n!!! SKIPPING: kubectl is not installed; cannot render the kustomizations. !!!\n"
        );
        return;
    };
    assert!(status.status.success());
    for dir in [
        "",
        "controller",
        "overlays/scaler-services",
        "examples/rabbitmq-consumer",
        "examples/azure-queue-functions",
        "overlays/virtual-node",
        "examples/rabbitmq-job",
        "crds",
    ] {
        let path = deploy_dir().join(dir);
        let output = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl kustomize {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let rendered = String::from_utf8(output.stdout).unwrap();
        let docs = documents(&rendered);
        assert!(!docs.is_empty());
        for document in &docs {
            let problems = check_document(document);
            assert!(problems.is_empty(), "{dir}: {problems:?}");
        }
        if dir == "overlays/scaler-services" {
            let controller = docs
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "ebb-controller")
                .unwrap();
            let containers = controller["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap();
            assert_eq!(containers.len(), 1, "the overlay removes the sidecars");
            let services: Vec<&Value> = docs
                .iter()
                .filter(|d| d["kind"] == "Service" && d["spec"]["clusterIP"] == "None")
                .collect();
            assert_eq!(services.len(), 2, "one headless Service per scaler");
        }
        if dir.is_empty() {
            let controller = docs
                .iter()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "ebb-controller")
                .unwrap();
            let args: Vec<String> = controller["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["args"].to_string())
                .collect();
            assert!(
                args.iter().any(|a| a.contains("127.0.0.1:9001")),
                "{args:?}"
            );
            assert!(
                args.iter().any(|a| a.contains("127.0.0.1:9002")),
                "{args:?}"
            );
        }
    }
}
