//! Validation of `advanced.scalingModifiers` and `fallback.behavior: scalingModifiers`, shared
//! by both hosts through [`super::validate_spec`].

use super::messages;
use super::scaled_object::{FallbackBehavior, ScaledObjectSpec};
use super::validate::{ValidationProblem, quoted};
use crate::scaling::{FORMULA_NAME, Formula, scaling_modifiers};

const BASE: &str = "spec.advanced.scalingModifiers";

/// Every problem of the formula, its target and the triggers it names.
pub(crate) fn validate_modifiers(spec: &ScaledObjectSpec) -> Vec<ValidationProblem> {
    let mut problems = Vec::new();
    let modifiers = scaling_modifiers(spec);
    let formula_text = modifiers.and_then(|modifiers| modifiers.formula.as_deref());
    let uses_formula = spec
        .fallback
        .as_ref()
        .and_then(|fallback| fallback.behavior)
        == Some(FallbackBehavior::ScalingModifiers);
    if uses_formula && formula_text.is_none() {
        problems.push(ValidationProblem::new(
            "spec.fallback.behavior",
            "InvalidFallback",
            messages::FALLBACK_WITHOUT_FORMULA.text(),
        ));
    }
    let Some(modifiers) = modifiers else {
        return problems;
    };
    let mut problem = |field: &str, reason: &'static str, message: String| {
        problems.push(ValidationProblem::new(
            format!("{BASE}.{field}"),
            reason,
            message,
        ));
    };
    match &modifiers.target {
        None => problem(
            "target",
            "InvalidScalingModifiers",
            messages::MODIFIERS_TARGET_REQUIRED.text(),
        ),
        Some(target) if !target.value().is_some_and(|value| value > 0.0) => problem(
            "target",
            "InvalidScalingModifiers",
            messages::MODIFIERS_TARGET_NOT_POSITIVE.fill(&[("value", &quoted(&target.0))]),
        ),
        Some(_) => {}
    }
    if let Some(activation) = &modifiers.activation_target
        && !activation.value().is_some_and(|value| value >= 0.0)
    {
        problem(
            "activationTarget",
            "InvalidScalingModifiers",
            messages::MODIFIERS_ACTIVATION_NEGATIVE.fill(&[("value", &quoted(&activation.0))]),
        );
    }
    let Some(text) = formula_text else {
        problem(
            "formula",
            "InvalidFormula",
            messages::FORMULA_REQUIRED.text(),
        );
        return problems;
    };
    let formula = match Formula::compile(text) {
        Ok(formula) => formula,
        Err(error) => {
            problem("formula", "InvalidFormula", error.to_string());
            return problems;
        }
    };
    let names: Vec<String> = spec
        .triggers
        .iter()
        .enumerate()
        .map(|(index, trigger)| trigger.effective_name(index))
        .collect();
    let mut unknown = false;
    for name in formula.names() {
        if !names.contains(name) {
            unknown = true;
            problem(
                "formula",
                "InvalidFormula",
                format!(
                    "names {name:?}, which is no trigger's name (triggers: {}); a trigger is \
                     named by its `name`, which the formula can use when it is made of \
                     letters, digits and _",
                    names.join(", ")
                ),
            );
        }
    }
    if !unknown && let Err(error) = formula.trial() {
        problem(
            "formula",
            "InvalidFormula",
            format!("with every trigger at 1, {error}"),
        );
    }
    for (index, trigger) in spec.triggers.iter().enumerate() {
        let name = trigger.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            problems.push(ValidationProblem::new(
                format!("spec.triggers[{index}].name"),
                "MissingTriggerName",
                messages::TRIGGER_NEEDS_NAME.text(),
            ));
        } else if name == FORMULA_NAME {
            problems.push(ValidationProblem::new(
                format!("spec.triggers[{index}].name"),
                "InvalidTriggerName",
                messages::TRIGGER_NAMED_FORMULA.fill(&[("name", &quoted(FORMULA_NAME))]),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use crate::spec::{ScaledObject, ValidationProblem};

    fn object(advanced: &str, fallback: &str, triggers: &str) -> ScaledObject {
        let yaml = format!(
            "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {{name: o}}\nspec:\n  \
             scaleTargetRef: {{name: w}}\n{fallback}  advanced:\n    scalingModifiers: {advanced}\n  \
             triggers:\n{triggers}"
        );
        serde_norway::from_str(&yaml).expect("valid YAML")
    }

    const TWO: &str = "    - {name: a, scaler: {address: '127.0.0.1:1'}}\n    - {name: b, scaler: {address: '127.0.0.1:1'}}\n";

    fn problems(object: &ScaledObject) -> Vec<String> {
        object
            .validate()
            .iter()
            .map(ValidationProblem::to_string)
            .collect()
    }

    #[test]
    fn a_good_formula_passes_with_a_number_or_a_string_target() {
        for advanced in [
            "{formula: 'a + b', target: 5}",
            "{formula: 'a + (b ?? 0)', target: '2.5', activationTarget: '1', metricType: Value}",
        ] {
            assert_eq!(
                problems(&object(advanced, "", TWO)),
                Vec::<String>::new(),
                "{advanced}"
            );
        }
        let fallback =
            "  fallback: {failureThreshold: 3, replicas: 2, behavior: scalingModifiers}\n";
        let object = object("{formula: 'a + (b ?? 0)', target: 5}", fallback, TWO);
        assert_eq!(problems(&object), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_its_field() {
        let unnamed = "    - {name: a, scaler: {address: '127.0.0.1:1'}}\n    - {scaler: {address: '127.0.0.1:1'}}\n";
        let reserved = "    - {name: a, scaler: {address: '127.0.0.1:1'}}\n    - {name: formula, scaler: {address: '127.0.0.1:1'}}\n";
        for (advanced, fallback, triggers, expected) in [
            (
                "{formula: 'a +', target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: does not parse at 1:4",
            ),
            (
                "{formula: 'a + c', target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: names \"c\", which is no trigger's name (triggers: a, b)",
            ),
            (
                "{formula: 'a % 2', target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: with every trigger at 1, cannot be evaluated: Invalid operands for operator %",
            ),
            (
                "{formula: 'a > b', target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: with every trigger at 1, the result is a bool, not a number",
            ),
            (
                "{target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: required when scalingModifiers is set",
            ),
            (
                "{formula: 'a + b'}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.target: required",
            ),
            (
                "{formula: 'a + b', target: 'five'}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.target: must be a number above 0, got \"five\"",
            ),
            (
                "{formula: 'a + b', target: -1}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.target: must be a number above 0, got \"-1\"",
            ),
            (
                "{formula: 'a + b', target: 5, activationTarget: '-2'}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.activationTarget: must be a number of at least 0",
            ),
            (
                "{formula: 'a', target: 5}",
                "",
                unnamed,
                "spec.triggers[1].name: every trigger needs a name",
            ),
            (
                "{formula: 'a', target: 5}",
                "",
                reserved,
                "spec.triggers[1].name: \"formula\" is the composite metric's name",
            ),
            (
                "{formula: '\"x\"', target: 5}",
                "",
                TWO,
                "spec.advanced.scalingModifiers.formula: strings are not supported in formulas",
            ),
            (
                "null",
                "  fallback: {failureThreshold: 3, replicas: 2, behavior: scalingModifiers}\n",
                TWO,
                "spec.fallback.behavior: behavior scalingModifiers needs advanced.scalingModifiers.formula",
            ),
        ] {
            let found = problems(&object(advanced, fallback, triggers));
            assert!(
                found.iter().any(|problem| problem.starts_with(expected)),
                "{advanced}: expected {expected:?} in {found:#?}"
            );
        }
    }

    #[test]
    fn a_bad_metric_type_is_refused_when_read() {
        let yaml = "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: o}\nspec:\n  scaleTargetRef: {name: w}\n  advanced: {scalingModifiers: {formula: a, target: 5, metricType: Utilization}}\n  triggers: []\n";
        let error = serde_norway::from_str::<ScaledObject>(yaml)
            .unwrap_err()
            .to_string();
        assert!(error.contains("Utilization"), "{error}");
    }
}
