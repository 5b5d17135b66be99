//! Whole-file conversions: what passes through untouched, what is rewritten, what is refused.

use super::*;

fn known() -> BTreeSet<String> {
    BUNDLED_TYPES.iter().map(|t| (*t).to_owned()).collect()
}

const KEDA_FILE: &str = "\
# KEDA's docs
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: consumer
spec:
  scaleTargetRef:
    name: consumer
  triggers:
    - type: rabbitmq
      metadata:
        queueName: hello
        value: 5
      authenticationRef:
        name: auth
        kind: TriggerAuthentication
---
apiVersion: v1
kind: Secret # untouched, comment and all
metadata:
  name: s
stringData: {host: amqp://guest:guest@localhost}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: auth
spec:
  secretTargetRef:
    - {parameter: host, name: s, key: host}
";

#[test]
fn keda_documents_are_rewritten_and_others_pass_through() {
    let converted = convert_text("a.yaml", KEDA_FILE, &known()).unwrap();
    assert!(converted.refusals.is_empty(), "{:?}", converted.refusals);
    assert_eq!(converted.documents.len(), 3);
    assert!(
        converted.documents[0].starts_with("apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\n")
    );
    assert!(converted.documents[0].contains("kind: ScalerAuthentication"));
    assert!(
        converted.documents[0].contains("value: '5'"),
        "{}",
        converted.documents[0]
    );
    assert_eq!(
        converted.documents[1],
        "apiVersion: v1\nkind: Secret # untouched, comment and all\nmetadata:\n  name: s\nstringData: {host: amqp://guest:guest@localhost}\n"
    );
    assert!(converted.documents[2].contains("kind: ScalerAuthentication"));
    let lines: Vec<String> = converted.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "a.yaml: ScaledObject/consumer: apiVersion: keda.sh/v1alpha1 -> ebb.dev/v1alpha1",
            "a.yaml: ScaledObject/consumer: spec.triggers[0].authenticationRef.kind: TriggerAuthentication -> ScalerAuthentication",
            "a.yaml: ScaledObject/consumer: spec.triggers[0].metadata.value: written as a string",
            "a.yaml: TriggerAuthentication/auth: apiVersion: keda.sh/v1alpha1 -> ebb.dev/v1alpha1",
            "a.yaml: TriggerAuthentication/auth: kind: TriggerAuthentication -> ScalerAuthentication",
        ]
    );
    // The converted objects decode as ebb's types.
    let object: crate::spec::ScaledObject =
        serde_norway::from_str(&converted.documents[0]).unwrap();
    assert_eq!(
        object.spec.triggers[0].trigger_type.as_deref(),
        Some("rabbitmq")
    );
    let _: crate::spec::ScalerAuthentication =
        serde_norway::from_str(&converted.documents[2]).unwrap();
}

#[test]
fn a_refused_document_is_left_out_and_reported_by_field() {
    let text = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: vault}\nspec:\n  hashiCorpVault: {address: http://vault}\n---\napiVersion: keda.sh/v1alpha1\nkind: CloudEventSource\nmetadata: {name: events}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    let converted = convert_text("b.yaml", text, &known()).unwrap();
    let lines: Vec<String> = converted.refusals.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("b.yaml: TriggerAuthentication/vault: spec.hashiCorpVault: cannot convert: ebb does not read secret stores"));
    assert_eq!(
        lines[1],
        "b.yaml: CloudEventSource/events: kind: cannot convert: ebb has no counterpart of KEDA's \"CloudEventSource\""
    );
    assert_eq!(
        converted.documents.len(),
        1,
        "only the ConfigMap is written"
    );
    assert!(converted.documents[0].contains("ConfigMap"));
}

#[test]
fn ebb_documents_pass_through_unchanged() {
    let text = "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: y}, triggers: [{type: kafka}]}\n";
    let converted = convert_text("c.yaml", text, &known()).unwrap();
    assert!(converted.changes.is_empty() && converted.refusals.is_empty());
    assert_eq!(converted.yaml(), text);
}

#[test]
fn a_broken_document_names_file_and_index() {
    let error = convert_text("d.yaml", "a: 1\n---\nb: [\n", &known()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("d.yaml: document 1: not YAML"),
        "{error}"
    );
}
