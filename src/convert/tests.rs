//! Whole-file conversions: what passes through untouched, what is rewritten, what is refused.

use std::path::Path;

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
fn a_refused_document_is_kept_as_written_under_the_reason_and_reported_by_field() {
    let vault = "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication # keep me\nmetadata: {name: vault}\nspec:\n  hashiCorpVault: {address: http://vault}\n";
    let text = format!(
        "{vault}---\napiVersion: keda.sh/v1alpha1\nkind: CloudEventSource\nmetadata: {{name: events}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"
    );
    let converted = convert_text("b.yaml", &text, &known()).unwrap();
    let lines: Vec<String> = converted.refusals.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("b.yaml: TriggerAuthentication/vault: spec.hashiCorpVault: cannot convert: ebb does not read secret stores"));
    assert_eq!(
        lines[1],
        "b.yaml: CloudEventSource/events: kind: cannot convert: ebb has no counterpart of KEDA's \"CloudEventSource\""
    );
    assert_eq!(converted.documents.len(), 3, "nothing is left out");
    assert_eq!(
        converted.documents[0],
        format!(
            "# ebb convert: not converted, kept as written:\n#   spec.hashiCorpVault: {}\n{vault}",
            converted.refusals[0].reason
        ),
        "the original text, comments and all, under the reason"
    );
    assert!(converted.documents[1].starts_with(
        "# ebb convert: not converted, kept as written:\n#   kind: ebb has no counterpart"
    ));
    assert!(converted.documents[2].contains("ConfigMap"));
    // The kept file parses to the same documents as the input.
    let reread =
        crate::spec::load::split_documents(Path::new("b.yaml"), &converted.yaml()).unwrap();
    let original = crate::spec::load::split_documents(Path::new("b.yaml"), &text).unwrap();
    let values = |documents: &[Document]| -> Vec<serde_norway::Value> {
        documents
            .iter()
            .map(|document| document.value.clone())
            .collect()
    };
    assert_eq!(values(&reread), values(&original));
}

#[test]
fn enum_values_are_never_printed_and_bad_object_names_are_refused() {
    let text = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: ../../x}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: rabbitmq\n    metricType: TOPSECRET-metric\n    authenticationRef: {name: a, kind: TOPSECRET-kind}\n";
    let converted = convert_text("e.yaml", text, &known()).unwrap();
    let lines: Vec<String> = converted.refusals.iter().map(ToString::to_string).collect();
    let report = lines.join("\n");
    assert!(!report.contains("TOPSECRET"), "{report}");
    for field in [
        "metadata.name: cannot convert: \"../../x\" is not a valid name",
        "spec.triggers[0].metricType: cannot convert: the value is not one of AverageValue, Value",
        "spec.triggers[0].authenticationRef.kind: cannot convert: the value is not one of",
    ] {
        assert!(report.contains(field), "{field}\n{report}");
    }
}

#[test]
fn ebb_documents_pass_through_unchanged() {
    let text = "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {scaleTargetRef: {name: y}, triggers: [{type: kafka}]}\n";
    let converted = convert_text("c.yaml", text, &known()).unwrap();
    assert!(converted.changes.is_empty() && converted.refusals.is_empty());
    assert_eq!(converted.yaml(), text);
}

#[test]
fn a_broken_document_is_numbered_as_ebb_run_numbers_it() {
    let text = "# comment\na: 1\n---\nb: [\n";
    let error = convert_text("d.yaml", text, &known())
        .unwrap_err()
        .to_string();
    let run = crate::spec::load::parse_documents(Path::new("d.yaml"), text)
        .unwrap_err()
        .to_string();
    assert_eq!(error, run, "one numbering for both commands");
    assert!(
        error.starts_with("d.yaml (document 2, line 5): "),
        "{error}"
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    // Right before the first key, where the parser took it for the start of another document.
    let text = format!(
        "\u{feff}{}",
        KEDA_FILE.trim_start_matches("# KEDA's docs\n")
    );
    assert!(text.starts_with("\u{feff}apiVersion"));
    let converted = convert_text("bom.yaml", &text, &known()).unwrap();
    assert!(converted.refusals.is_empty(), "{:?}", converted.refusals);
    assert_eq!(converted.documents.len(), 3);
}

#[test]
fn a_file_over_the_size_limit_is_refused_as_ebb_run_refuses_it() {
    let padding = "# padding\n".repeat(crate::spec::load::MAX_FILE_BYTES / 10 + 1);
    let text = format!("{padding}{KEDA_FILE}");
    let error = convert_text("big.yaml", &text, &known())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "big.yaml (document 1, line 1): the file is larger than 1048576 bytes"
    );
}

#[test]
fn hostile_nesting_is_refused_by_the_same_pre_scan_as_ebb_run() {
    let deep = format!(
        "kind: A\nspec: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let error = convert_text("deep.yaml", &deep, &known())
        .unwrap_err()
        .to_string();
    assert!(error.contains("nested more than 64 levels deep"), "{error}");
}
