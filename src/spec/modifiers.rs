//! Validation of `advanced.scalingModifiers` and `fallback.behavior: scalingModifiers`, shared
//! by both hosts through [`super::validate_spec`].

use super::scaled_object::{FallbackBehavior, ScaledObjectSpec};
use super::validate::ValidationProblem;
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
            "behavior scalingModifiers needs advanced.scalingModifiers.formula",
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
            "required: the value of the formula one replica handles".to_owned(),
        ),
        Some(target) if !target.value().is_some_and(|value| value > 0.0) => problem(
            "target",
            "InvalidScalingModifiers",
            format!("must be a number above 0, got {:?}", target.0),
        ),
        Some(_) => {}
    }
    if let Some(activation) = &modifiers.activation_target
        && !activation.value().is_some_and(|value| value >= 0.0)
    {
        problem(
            "activationTarget",
            "InvalidScalingModifiers",
            format!("must be a number of at least 0, got {:?}", activation.0),
        );
    }
    let Some(text) = formula_text else {
        problem(
            "formula",
            "InvalidFormula",
            "required when scalingModifiers is set".to_owned(),
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
                "every trigger needs a name when advanced.scalingModifiers.formula is set: \
                 the formula refers to triggers by name",
            ));
        } else if name == FORMULA_NAME {
            problems.push(ValidationProblem::new(
                format!("spec.triggers[{index}].name"),
                "InvalidTriggerName",
                format!(
                    "{FORMULA_NAME:?} is the composite metric's name while \
                     advanced.scalingModifiers.formula is set; rename the trigger"
                ),
            ));
        }
    }
    problems
}
