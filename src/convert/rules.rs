//! The rewrites from KEDA's kinds to ebb's, one function per rule, each on the parsed
//! document. What no rule rewrites is checked afterwards against ebb's schema
//! ([`super::schema`]).

use std::collections::BTreeSet;

use serde_norway::Value;

use super::documents::str_field;
use super::report::Findings;

/// KEDA's API group and version.
pub(crate) const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
/// ebb's API group and version.
pub(crate) const EBB_API_VERSION: &str = "ebb.dev/v1alpha1";

/// KEDA's kinds and the ebb kind each becomes.
pub(crate) const KINDS: [(&str, &str); 4] = [
    ("ScaledObject", "ScaledObject"),
    ("ScaledJob", "ScaledJob"),
    ("TriggerAuthentication", "ScalerAuthentication"),
    (
        "ClusterTriggerAuthentication",
        "ClusterScalerAuthentication",
    ),
];

/// The ebb kind a KEDA kind becomes, `None` for a kind ebb has no counterpart of.
pub(crate) fn ebb_kind(keda_kind: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|(keda, _)| *keda == keda_kind)
        .map(|(_, ebb)| *ebb)
}

/// Trigger types ebb calls through a registered scaler: the bundled sidecars, which `deploy/`
/// and the Helm chart register by default, plus whatever `--scaler`/`--scaler-registry` add.
pub const BUNDLED_TYPES: [&str; 2] = ["rabbitmq", "azure-queue"];

/// `metadata.name` must be a name the API server accepts (a DNS subdomain), checked as
/// `ebb run` checks it: a name such as `../../x` is refused, not carried over.
pub(crate) fn object_name(document: &Value, findings: &mut Findings) {
    let name = document
        .get("metadata")
        .and_then(|metadata| metadata.get("name"));
    let problem = match name {
        None => Some("required".to_owned()),
        Some(Value::String(name)) => crate::spec::check_object_name(name).err(),
        Some(_) => Some("must be text".to_owned()),
    };
    if let Some(message) = problem {
        findings.refuse("metadata.name", message);
    }
}

/// `apiVersion` and `kind`.
pub(crate) fn rename_kind(document: &mut Value, keda_kind: &str, findings: &mut Findings) {
    findings.change(
        "apiVersion",
        format!("{KEDA_API_VERSION} -> {EBB_API_VERSION}"),
    );
    set(document, "apiVersion", EBB_API_VERSION);
    if let Some(kind) = ebb_kind(keda_kind)
        && kind != keda_kind
    {
        findings.change("kind", format!("{keda_kind} -> {kind}"));
        set(document, "kind", kind);
    }
    if keda_kind == "ClusterTriggerAuthentication" {
        findings.change(
            "spec",
            "its Secrets and ConfigMaps are now read from the ebb controller's namespace (ebb-system by default) instead of KEDA's",
        );
    }
}

/// `status` is written by the controller, and KEDA's differs from ebb's: leave it out.
pub(crate) fn drop_status(document: &mut Value, findings: &mut Findings) {
    if let Some(mapping) = document.as_mapping_mut()
        && mapping.shift_remove("status").is_some()
    {
        findings.change("status", "removed: the controller writes it");
    }
}

/// Every trigger of a ScaledObject or ScaledJob: its type must have a scaler, its
/// `authenticationRef.kind` is renamed, and metadata values become strings.
pub(crate) fn triggers(document: &mut Value, known: &BTreeSet<String>, findings: &mut Findings) {
    let Some(triggers) = document
        .get_mut("spec")
        .and_then(|spec| spec.get_mut("triggers"))
        .and_then(Value::as_sequence_mut)
    else {
        return;
    };
    for (index, trigger) in triggers.iter_mut().enumerate() {
        let field = format!("spec.triggers[{index}]");
        trigger_type(trigger, &field, known, findings);
        authentication_kind(trigger, &field, findings);
        metadata_strings(trigger, &field, findings);
    }
}

/// A trigger's `type` must name a scaler ebb can reach: KEDA's external forms carry their own
/// address, a native `scaler:` block too; any other type needs a registered scaler. The type
/// is kept as written rather than replaced by an address: the registry (the controller's
/// `--scaler` flags, or `kind: Scaler` under `ebb run`) is where an address belongs, so one
/// manifest works in every cluster and moving a scaler changes no object.
fn trigger_type(trigger: &Value, field: &str, known: &BTreeSet<String>, findings: &mut Findings) {
    if trigger.get("scaler").is_some() {
        return;
    }
    match str_field(trigger, "type") {
        None | Some("") => findings.refuse(
            format!("{field}.type"),
            "a trigger needs a type (or an ebb `scaler:` block)",
        ),
        Some("external" | "external-push") => {}
        Some(kind) if known.contains(kind) => {}
        Some(kind @ ("cpu" | "memory")) => findings.refuse(
            format!("{field}.type"),
            format!(
                "{kind} comes from the metrics server through an HPA, which ebb does not create; keep a HorizontalPodAutoscaler for {kind}"
            ),
        ),
        Some(kind) => findings.refuse(
            format!("{field}.type"),
            format!(
                "no scaler is registered for type {kind:?}; register one (`--scaler {kind}=HOST:PORT` or `--scaler-registry FILE`, as for the controller) or use `type: external` with `metadata.scalerAddress`"
            ),
        ),
    }
}

fn authentication_kind(trigger: &mut Value, field: &str, findings: &mut Findings) {
    let Some(reference) = trigger.get_mut("authenticationRef") else {
        return;
    };
    let Some(kind) = str_field(reference, "kind").map(str::to_owned) else {
        return;
    };
    if let Some(renamed) = ebb_kind(&kind)
        && renamed != kind
    {
        findings.change(
            format!("{field}.authenticationRef.kind"),
            format!("{kind} -> {renamed}"),
        );
        set(reference, "kind", renamed);
    }
}

/// Trigger metadata is a map of strings; YAML readers (and KEDA's docs) sometimes leave a
/// number or a boolean unquoted. Values are not shown: they may be credentials.
fn metadata_strings(trigger: &mut Value, field: &str, findings: &mut Findings) {
    let Some(metadata) = trigger.get_mut("metadata").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (key, value) in metadata.iter_mut() {
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => continue,
        };
        *value = Value::String(text);
        findings.change(
            format!("{field}.metadata.{}", key.as_str().unwrap_or("?")),
            "written as a string",
        );
    }
}

fn set(document: &mut Value, key: &str, text: &str) {
    if let Some(mapping) = document.as_mapping_mut() {
        mapping.insert(
            Value::String(key.to_owned()),
            Value::String(text.to_owned()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap()
    }

    fn known() -> BTreeSet<String> {
        BUNDLED_TYPES.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn kinds_and_api_version_are_renamed_in_place() {
        let mut document = parse(
            "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: a}\n",
        );
        let mut findings = Findings::default();
        rename_kind(&mut document, "TriggerAuthentication", &mut findings);
        assert_eq!(str_field(&document, "apiVersion"), Some(EBB_API_VERSION));
        assert_eq!(str_field(&document, "kind"), Some("ScalerAuthentication"));
        assert_eq!(
            super::super::documents::render(&document).lines().next(),
            Some("apiVersion: ebb.dev/v1alpha1"),
            "the key keeps its place"
        );
        assert_eq!(findings.changes.len(), 2);
    }

    #[test]
    fn cluster_authentication_reports_the_namespace_move() {
        let mut document = parse("kind: ClusterTriggerAuthentication\n");
        let mut findings = Findings::default();
        rename_kind(&mut document, "ClusterTriggerAuthentication", &mut findings);
        assert!(
            findings
                .changes
                .iter()
                .any(|(_, what)| what.contains("controller's namespace"))
        );
    }

    #[test]
    fn registered_and_external_types_stay_and_others_are_refused() {
        let mut document = parse(
            "spec:\n  triggers:\n  - type: rabbitmq\n  - type: external\n    metadata: {scalerAddress: a:1}\n  - type: kafka\n  - type: cpu\n  - metadata: {}\n  - type: kafka\n    scaler: {address: k:1}\n",
        );
        let mut findings = Findings::default();
        triggers(&mut document, &known(), &mut findings);
        let fields: Vec<&str> = findings.refusals.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.triggers[2].type",
                "spec.triggers[3].type",
                "spec.triggers[4].type"
            ]
        );
        assert!(findings.refusals[0].1.contains("--scaler kafka=HOST:PORT"));
        assert!(findings.refusals[1].1.contains("HorizontalPodAutoscaler"));
        assert_eq!(
            str_field(&document["spec"]["triggers"][0], "type"),
            Some("rabbitmq"),
            "no address is written: the registry supplies it"
        );
        assert!(document["spec"]["triggers"][0].get("scaler").is_none());
    }

    #[test]
    fn a_type_registered_by_flag_is_known() {
        let mut document = parse("spec:\n  triggers:\n  - type: kafka\n");
        let mut known = known();
        known.insert("kafka".into());
        let mut findings = Findings::default();
        triggers(&mut document, &known, &mut findings);
        assert!(findings.refusals.is_empty());
    }

    #[test]
    fn authentication_kinds_are_renamed() {
        let mut document = parse(
            "spec:\n  triggers:\n  - type: rabbitmq\n    authenticationRef: {name: a, kind: ClusterTriggerAuthentication}\n  - type: rabbitmq\n    authenticationRef: {name: b}\n",
        );
        let mut findings = Findings::default();
        triggers(&mut document, &known(), &mut findings);
        assert_eq!(
            str_field(
                &document["spec"]["triggers"][0]["authenticationRef"],
                "kind"
            ),
            Some("ClusterScalerAuthentication")
        );
        assert!(
            document["spec"]["triggers"][1]["authenticationRef"]
                .get("kind")
                .is_none()
        );
        assert_eq!(
            findings.changes,
            [(
                "spec.triggers[0].authenticationRef.kind".to_owned(),
                "ClusterTriggerAuthentication -> ClusterScalerAuthentication".to_owned()
            )]
        );
    }

    #[test]
    fn unquoted_metadata_becomes_strings_without_showing_values() {
        let mut document = parse(
            "spec:\n  triggers:\n  - type: rabbitmq\n    metadata: {value: 5, useRegex: true, queueName: q}\n",
        );
        let mut findings = Findings::default();
        triggers(&mut document, &known(), &mut findings);
        assert_eq!(
            document["spec"]["triggers"][0]["metadata"]["value"].as_str(),
            Some("5")
        );
        assert_eq!(findings.changes.len(), 2);
        assert!(
            findings
                .changes
                .iter()
                .all(|(_, what)| what == "written as a string")
        );
    }

    #[test]
    fn object_names_are_checked_as_ebb_run_checks_them() {
        for (yaml, refused) in [
            ("metadata: {name: orders-1.v2}", None),
            (
                "metadata: {name: ../../x}",
                Some("\"../../x\" is not a valid name"),
            ),
            ("metadata: {name: Orders}", Some("is not a valid name")),
            ("metadata: {name: 5}", Some("must be text")),
            ("metadata: {}", Some("required")),
        ] {
            let mut findings = Findings::default();
            object_name(&parse(yaml), &mut findings);
            match refused {
                None => assert!(findings.refusals.is_empty(), "{yaml}: {findings:?}"),
                Some(words) => {
                    assert_eq!(findings.refusals.len(), 1, "{yaml}");
                    assert_eq!(findings.refusals[0].0, "metadata.name");
                    assert!(
                        findings.refusals[0].1.contains(words),
                        "{yaml}: {findings:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn status_is_left_out() {
        let mut document = parse("kind: ScaledObject\nstatus: {health: {}}\n");
        let mut findings = Findings::default();
        drop_status(&mut document, &mut findings);
        assert!(document.get("status").is_none());
        assert_eq!(findings.changes[0].0, "status");
    }
}
