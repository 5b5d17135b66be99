//! The CRDs' `x-kubernetes-validations`: the rules of `ebb run --check` and the controller
//! ([`crate::spec::validate`]) that a CEL rule can state, so the API server refuses a bad
//! object at `kubectl apply` in the same words ([`crate::spec::messages`] holds them).
//! `docs/conflicts.md` lists what no rule here states, and why.
//!
//! Two limits of the API server shape the rules:
//!
//! - **Cost.** Before it accepts a CRD, the API server estimates each rule's worst case: a
//!   string without `maxLength` counts as 3 MB, a list without `maxItems` as about 1.5
//!   million items, and a rule under a list costs once per item. So the trigger list has
//!   `maxItems` ([`messages::MAX_TRIGGERS`]) and trigger names ebb's `maxLength`; other
//!   strings inside a trigger are compared, never scanned (no `trim`, no regex), so a
//!   whitespace-only address is left to ebb; and each message is one `format` call (`+` on a
//!   string of unknown size is estimated as unbounded).
//! - **Field paths.** A rule names one fixed field. A rule that needs a trigger's index (an
//!   unnamed trigger is called `<type>-<index>`) or compares triggers is stated on the list,
//!   so the API server names `spec.triggers` where ebb names `spec.triggers[1].name`; the
//!   words are the same.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, ValidationRule,
};

use super::ControllerError;
use crate::scaling::{FORMULA_NAME, FormulaError, MAX_FORMULA_LENGTH};
use crate::spec::ScaledObjectSpec;
use crate::spec::messages::{self, MAX_TRIGGER_NAME, Message, Piece};

/// How a value appears in a message.
enum Shown {
    /// A CEL number or string, as it is.
    Plain(String),
    /// A CEL string that needs no escaping (a valid trigger name), in double quotes.
    Quoted(String),
    /// Any CEL string, as ebb shows it: Rust's debug form (in double quotes, with `\"`,
    /// `\\`, `\n`, `\u{1b}`...), so no control character reaches a terminal. `true`: the
    /// string is bounded (`maxLength`).
    Escaped(String, bool),
}

/// One `x-kubernetes-validations` entry and the schema node it goes on.
struct Rule {
    /// The node: properties separated by `.`, `[]` entering a list's items.
    at: String,
    rule: String,
    message: Message,
    shown: Vec<(&'static str, Shown)>,
    /// A CEL list of trigger indices: the message is about the first, bound to `k`.
    first_of: Option<String>,
    /// A message expression built otherwise (from [`FormulaError`]'s texts).
    expression: Option<String>,
    /// The field the API server names, relative to `at`.
    field: Option<&'static str>,
}

impl Rule {
    fn new(at: impl Into<String>, rule: impl Into<String>, message: Message) -> Self {
        Rule {
            at: at.into(),
            rule: rule.into(),
            message,
            shown: Vec::new(),
            first_of: None,
            expression: None,
            field: None,
        }
    }

    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    fn show(mut self, name: &'static str, value: Shown) -> Self {
        self.shown.push((name, value));
        self
    }

    fn about_first_of(mut self, indices: String) -> Self {
        self.first_of = Some(indices);
        self
    }

    fn into_validation_rule(self) -> ValidationRule {
        let formatted = self
            .expression
            .or_else(|| message_format(self.message, &self.shown));
        let (message, message_expression) = match formatted {
            None => (Some(self.message.text()), None),
            Some(expression) => match self.first_of {
                Some(indices) => (None, Some(format!("{indices}.map(k, {expression})[0]"))),
                None => (None, Some(expression)),
            },
        };
        ValidationRule {
            rule: self.rule,
            message,
            message_expression,
            field_path: self.field.map(str::to_owned),
            ..ValidationRule::default()
        }
    }
}

/// Adds the rules to ebb's ScaledObject and ScaledJob CRDs; other CRDs stay as they are.
pub fn add_rules(crd: &mut CustomResourceDefinition) -> Result<(), ControllerError> {
    let mut rules = match crd.spec.names.kind.as_str() {
        "ScaledObject" => scaled_object_rules(),
        "ScaledJob" => scaled_job_rules(),
        _ => return Ok(()),
    };
    rules.extend(trigger_rules());
    let rules: Vec<(String, ValidationRule)> = rules
        .into_iter()
        .map(|rule| (rule.at.clone(), rule.into_validation_rule()))
        .collect();
    for version in &mut crd.spec.versions {
        let root = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut())
            .ok_or_else(|| ControllerError::Crd("a CRD version without a schema".to_owned()))?;
        node(root, "spec.triggers")?.max_items = Some(count(messages::MAX_TRIGGERS));
        node(root, "spec.triggers[].name")?.max_length = Some(count(MAX_TRIGGER_NAME));
        for (at, rule) in &rules {
            node(root, at)?
                .x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .push(rule.clone());
        }
    }
    Ok(())
}

fn count(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The schema node at `path` under `root` (see [`Rule::at`]).
fn node<'a>(
    root: &'a mut JSONSchemaProps,
    path: &str,
) -> Result<&'a mut JSONSchemaProps, ControllerError> {
    let missing = || ControllerError::Crd(format!("the CRD schema has no {path}"));
    let mut current = root;
    for step in path.split('.') {
        let (name, items) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (step, false),
        };
        current = current
            .properties
            .as_mut()
            .and_then(|properties| properties.get_mut(name))
            .ok_or_else(missing)?;
        if items {
            current = match current.items.as_mut() {
                Some(JSONSchemaPropsOrArray::Schema(schema)) => schema,
                _ => return Err(missing()),
            };
        }
    }
    Ok(current)
}

/// `text` as a CEL string literal.
fn cel_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `pieces` as one CEL `format` call (whose estimated cost does not grow with the values'
/// sizes, unlike `+`).
fn format_call(pieces: &[(String, Option<String>)]) -> String {
    let mut format = String::new();
    let mut values = Vec::new();
    for (text, value) in pieces {
        format.push_str(&text.replace('%', "%%"));
        if let Some(value) = value {
            format.push_str("%s");
            values.push(value.clone());
        }
    }
    format!("{}.format([{}])", cel_string(&format), values.join(", "))
}

/// The CEL expression of `message` with its values, or `None` when it has no placeholders.
fn message_format(message: Message, shown: &[(&str, Shown)]) -> Option<String> {
    let pieces = message.pieces();
    if !pieces.iter().any(|piece| matches!(piece, Piece::Value(_))) {
        return None;
    }
    // Escaped values: the exact words while every value can be escaped as ebb escapes it,
    // else the same words with a stand-in for such a value.
    let escapable: Vec<String> = shown
        .iter()
        .filter_map(|(_, value)| match value {
            Shown::Escaped(expr, bound) => Some(escapable(expr, *bound)),
            _ => None,
        })
        .collect();
    let exact = format_pieces(&pieces, shown, true);
    if escapable.is_empty() {
        return Some(exact);
    }
    let stand_in = format_pieces(&pieces, shown, false);
    Some(format!(
        "({}) ? {exact} : {stand_in}",
        escapable.join(" && ")
    ))
}

/// `pieces` as one `format` call; escaped values escaped (`exact`) or replaced by
/// [`CONTROL_STAND_IN`].
fn format_pieces(pieces: &[Piece], shown: &[(&str, Shown)], exact: bool) -> String {
    let mut parts: Vec<(String, Option<String>)> = Vec::new();
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(literal) => text.push_str(literal),
            Piece::Value(name) => match shown.iter().find(|(key, _)| key == name) {
                Some((_, Shown::Plain(expr))) => {
                    parts.push((std::mem::take(&mut text), Some(format!("string({expr})"))));
                }
                Some((_, Shown::Quoted(expr))) => {
                    text.push('"');
                    parts.push((std::mem::take(&mut text), Some(expr.clone())));
                    text.push('"');
                }
                Some((_, Shown::Escaped(expr, bound))) if exact => {
                    text.push('"');
                    parts.push((std::mem::take(&mut text), Some(escaped(expr, *bound))));
                    text.push('"');
                }
                Some((_, Shown::Escaped(..))) => text.push_str(CONTROL_STAND_IN),
                None => text.push_str(&format!("{{{name}}}")),
            },
        }
    }
    parts.push((text, None));
    format_call(&parts)
}

/// What the API server shows instead of a value with a control character it cannot escape
/// as ebb does (ebb shows it escaped, e.g. `"a\u{7}b"`); never the raw character.
const CONTROL_STAND_IN: &str = "a value with control characters";

/// The characters [`escaped`] escapes beyond `\\` and `"` for a bounded string: those
/// names with control characters usually hold (a pasted escape sequence, a line break).
const BOUNDED_ESCAPES: [char; 5] = ['\0', '\t', '\n', '\r', '\u{1b}'];

/// CEL: the string `expr` can be shown as ebb shows it: it holds no control character, or
/// (`bound`: a short string, so more replacements stay cheap) only [`BOUNDED_ESCAPES`].
fn escapable(expr: &str, bound: bool) -> String {
    let mut class = String::from("[\\x00-\\x1f\\x7f-\\x9f]");
    if bound {
        class = "[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1a\\x1c-\\x1f\\x7f-\\x9f]".to_owned();
    }
    format!("!({expr}).matches('{class}')")
}

/// CEL: the string `expr` escaped as Rust's debug form escapes it (without the quotes), for
/// a string that [`escapable`] accepts. Each `replace` can multiply the estimated size, so an
/// unbounded string gets only the two it always needs.
fn escaped(expr: &str, bound: bool) -> String {
    let mut out = format!("({expr})");
    let mut chars = vec!['\\', '"'];
    if bound {
        chars.extend(BOUNDED_ESCAPES);
    }
    for c in chars {
        out = format!(
            "{out}.replace({}, {})",
            cel_string(&c.to_string()),
            cel_string(&c.escape_debug().to_string())
        );
    }
    out
}

/// `self.<field>`, or `default` when unset.
fn or_default(field: &str, default: impl std::fmt::Display) -> String {
    format!("(has(self.{field}) ? self.{field} : {default})")
}

/// A number as Rust's `f64` parse reads one (`inf` and `nan` left out: ebb refuses them too,
/// as not finite).
const NUMBER_PATTERN: &str = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$";

/// CEL: the string `text`, trimmed, is a number and `<number> <comparison> 0`. A text of
/// more than 64 characters, or with an exponent of three digits or more, is left to ebb: it
/// may lie beyond a double's range, and CEL's conversion would fail with its own words.
fn text_number_compares(text: &str, comparison: &str) -> String {
    format!(
        "size({text}) > 64 || {text}.trim().matches('[eE][+-]?[0-9]{{3,}}$') || \
         ({text}.trim().matches({}) && double({text}.trim()) {comparison} 0.0)",
        cel_string(NUMBER_PATTERN)
    )
}

/// Two rules for an int-or-string node holding a number (as
/// [`crate::spec::NumberText::value`] reads it) with `<number> <comparison> 0`: one for each
/// form, as each shows the value its own way.
fn number_rules(at: &str, comparison: &str, message: Message) -> [Rule; 2] {
    [
        Rule::new(
            at,
            format!("type(self) != int || self {comparison} 0"),
            message,
        )
        .show("value", Shown::Quoted("self".to_owned())),
        Rule::new(
            at,
            format!(
                "type(self) != string || ({})",
                text_number_compares("self", comparison)
            ),
            message,
        )
        .show("value", Shown::Escaped("self".to_owned(), false)),
    ]
}

fn scaled_object_rules() -> Vec<Rule> {
    let min = or_default("minReplicaCount", 0);
    let max = or_default("maxReplicaCount", ScaledObjectSpec::default_max_replicas());
    let formula_set = "(has(self.advanced) && has(self.advanced.scalingModifiers) && \
                       has(self.advanced.scalingModifiers.formula))";
    // ebb checks the triggers' names for a formula only once the formula compiles.
    let formula_checked = format!(
        "({formula_set} && {})",
        formula_passes_guards("self.advanced.scalingModifiers.formula")
    );
    let mut rules = vec![
        Rule::new("spec", format!("{min} <= {max}"), messages::MIN_ABOVE_MAX)
            .field(".minReplicaCount")
            .show("min", Shown::Plain(min.clone()))
            .show("max", Shown::Plain(max.clone())),
        Rule::new(
            "spec",
            format!("!has(self.idleReplicaCount) || self.idleReplicaCount < {min}"),
            messages::IDLE_NOT_BELOW_MIN,
        )
        .field(".idleReplicaCount")
        .show("idle", Shown::Plain("self.idleReplicaCount".to_owned()))
        .show("min", Shown::Plain(min)),
        Rule::new(
            "spec",
            format!("!has(self.fallback) || self.fallback.replicas <= {max}"),
            messages::FALLBACK_ABOVE_MAX,
        )
        .field(".fallback.replicas")
        .show(
            "replicas",
            Shown::Plain("self.fallback.replicas".to_owned()),
        )
        .show("max", Shown::Plain(max)),
        Rule::new(
            "spec",
            format!(
                "!has(self.fallback) || !has(self.fallback.behavior) || \
                 self.fallback.behavior != 'scalingModifiers' || {formula_set}"
            ),
            messages::FALLBACK_WITHOUT_FORMULA,
        )
        .field(".fallback.behavior"),
        Rule::new(
            "spec",
            format!("!{formula_checked} || self.triggers.all(t, {})", named("t")),
            messages::TRIGGER_NEEDS_NAME,
        )
        .field(".triggers"),
        Rule::new(
            "spec",
            format!(
                "!{formula_checked} || self.triggers.all(t, !has(t.name) || t.name != {})",
                cel_string(FORMULA_NAME)
            ),
            messages::TRIGGER_NAMED_FORMULA,
        )
        .field(".triggers")
        .show("name", Shown::Quoted(cel_string(FORMULA_NAME))),
        Rule::new(
            "spec.pollingInterval",
            "self >= 1",
            messages::POLLING_INTERVAL_TOO_SMALL,
        ),
        Rule::new("spec.maxReplicaCount", "self >= 1", messages::AT_LEAST_ONE),
        Rule::new(
            "spec.fallback.failureThreshold",
            "self >= 1",
            messages::AT_LEAST_ONE,
        ),
        Rule::new(
            "spec.scaleTargetRef.name",
            "self.trim() != ''",
            messages::MISSING_TARGET_NAME,
        ),
        // On `spec`: the list's default (`[]`) must pass the rules on the list itself.
        Rule::new("spec", "size(self.triggers) > 0", messages::NO_TRIGGERS).field(".triggers"),
        Rule::new(
            "spec.advanced.scalingModifiers",
            "has(self.target)",
            messages::MODIFIERS_TARGET_REQUIRED,
        )
        .field(".target"),
        Rule::new(
            "spec.advanced.scalingModifiers",
            "has(self.formula)",
            messages::FORMULA_REQUIRED,
        )
        .field(".formula"),
        formula_guard_rule(),
    ];
    rules.extend(number_rules(
        "spec.advanced.scalingModifiers.target",
        ">",
        messages::MODIFIERS_TARGET_NOT_POSITIVE,
    ));
    rules.extend(number_rules(
        "spec.advanced.scalingModifiers.activationTarget",
        ">=",
        messages::MODIFIERS_ACTIVATION_NEGATIVE,
    ));
    for direction in ["scaleUp", "scaleDown"] {
        let at = format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{direction}");
        let window = messages::MAX_STABILIZATION_WINDOW_SECONDS;
        let period = messages::MAX_POLICY_PERIOD_SECONDS;
        rules.extend([
            Rule::new(
                format!("{at}.stabilizationWindowSeconds"),
                format!("self <= {window}"),
                messages::WINDOW_TOO_LONG,
            )
            .show("window", Shown::Plain("self".to_owned()))
            .show("max", Shown::Plain(window.to_string())),
            Rule::new(
                format!("{at}.policies[].value"),
                "self > 0",
                messages::GREATER_THAN_ZERO,
            ),
            Rule::new(
                format!("{at}.policies[].periodSeconds"),
                format!("self >= 1 && self <= {period}"),
                messages::POLICY_PERIOD_OUT_OF_RANGE,
            )
            .show("period", Shown::Plain("self".to_owned()))
            .show("max", Shown::Plain(period.to_string())),
        ]);
    }
    rules
}

/// CEL: the formula `f` fails one of the checks made before it is parsed (empty, too long,
/// strings, ranges), each with its words (CEL too): in the order of
/// [`crate::scaling::Formula::compile`], with [`FormulaError`]'s texts.
fn formula_guards(f: &str) -> Vec<(String, String)> {
    let bytes = format!("size(bytes({f}))");
    // `TooLong`'s text around the length (a marker number stands for it).
    let marker = usize::MAX.to_string();
    let too_long_text = FormulaError::TooLong(usize::MAX).to_string();
    let (before, after) = too_long_text
        .split_once(&marker)
        .unwrap_or((too_long_text.as_str(), ""));
    vec![
        (
            format!("{f}.trim() == ''"),
            cel_string(&FormulaError::Empty.to_string()),
        ),
        (
            format!("{bytes} > {MAX_FORMULA_LENGTH}"),
            format_call(&[
                (before.to_owned(), Some(format!("string({bytes})"))),
                (after.to_owned(), None),
            ]),
        ),
        (
            format!("({f}.contains('\"') || {f}.contains('\\'') || {f}.contains('`'))"),
            cel_string(&FormulaError::Unsupported("strings").to_string()),
        ),
        (
            format!("{f}.contains('..')"),
            cel_string(&FormulaError::Unsupported("ranges (`..`)").to_string()),
        ),
    ]
}

/// CEL: the formula `f` passes the checks of [`formula_guards`].
fn formula_passes_guards(f: &str) -> String {
    let failures: Vec<String> = formula_guards(f)
        .into_iter()
        .map(|(fails, _)| fails)
        .collect();
    format!("!({})", failures.join(" || "))
}

/// The formula's checks before it is parsed, on the formula itself.
fn formula_guard_rule() -> Rule {
    let guards = formula_guards("self");
    let mut message = String::new();
    for (index, (fails, words)) in guards.iter().enumerate() {
        if index + 1 == guards.len() {
            message.push_str(words);
        } else {
            message.push_str(&format!("{fails} ? {words} : "));
        }
    }
    let mut rule = Rule::new(
        "spec.advanced.scalingModifiers.formula",
        formula_passes_guards("self"),
        // Not used: the expression gives the words.
        messages::FORMULA_REQUIRED,
    );
    rule.expression = Some(message);
    rule
}

fn scaled_job_rules() -> Vec<Rule> {
    let min = or_default("minReplicaCount", 0);
    let max = or_default("maxReplicaCount", ScaledObjectSpec::default_max_replicas());
    vec![
        Rule::new("spec", format!("{min} <= {max}"), messages::MIN_ABOVE_MAX)
            .field(".minReplicaCount")
            .show("min", Shown::Plain(min.clone()))
            .show("max", Shown::Plain(max)),
        Rule::new(
            "spec",
            "has(self.jobTargetRef.template) && has(self.jobTargetRef.template.spec) && \
             size(self.jobTargetRef.template.spec.containers) > 0",
            messages::JOB_MISSING_CONTAINER,
        )
        .field(".jobTargetRef.template.spec.containers"),
        Rule::new(
            "spec.pollingInterval",
            "self >= 1",
            messages::JOB_POLLING_INTERVAL_TOO_SMALL,
        ),
        Rule::new(
            "spec.scalingStrategy.customScalingRunningJobPercentage",
            text_number_compares("self", ">="),
            messages::JOB_RUNNING_PERCENTAGE,
        )
        .show("text", Shown::Escaped("self".to_owned(), false)),
        Rule::new("spec", "size(self.triggers) > 0", messages::JOB_NO_TRIGGERS).field(".triggers"),
    ]
}

/// CEL: trigger `t` has a name.
fn named(t: &str) -> String {
    format!("(has({t}.name) && {t}.name != '')")
}

/// CEL: the string `name` is a valid trigger name ([`crate::spec::check_trigger_name`]).
fn valid_name(name: &str) -> String {
    format!(
        "{name}.matches('^[A-Za-z0-9][-A-Za-z0-9_.]{{0,{}}}$')",
        MAX_TRIGGER_NAME - 1
    )
}

/// CEL: the effective name of trigger `t` at index `i` ([`crate::spec::Trigger::effective_name`]).
fn effective_name(i: &str, t: &str) -> String {
    format!(
        "({named} ? {t}.name : (has({t}.type) && {t}.type != '' ? \
         '%s-%s'.format([{t}.type, string({i})]) : 'trigger-%s'.format([string({i})])))",
        named = named(t)
    )
}

/// CEL: trigger `t` is in KEDA's external form.
fn keda_form(t: &str) -> String {
    format!("(has({t}.type) && ({t}.type == 'external' || {t}.type == 'external-push'))")
}

/// CEL: trigger `t` calls no scaler: `scaler.address` is empty, or there is no `scaler`, no
/// KEDA form and no type to find a registered scaler by.
fn missing_native_address(t: &str) -> String {
    format!(
        "(has({t}.scaler) ? {t}.scaler.address == '' : \
         (!{keda} && !(has({t}.type) && {t}.type != '')))",
        keda = keda_form(t)
    )
}

/// CEL: trigger `t` is in KEDA's form without `metadata.scalerAddress`.
fn missing_keda_address(t: &str) -> String {
    format!(
        "(!has({t}.scaler) && {keda} && \
         !('scalerAddress' in {t}.metadata && {t}.metadata.scalerAddress != ''))",
        keda = keda_form(t)
    )
}

/// CEL: trigger `t` (index `i`) has the effective name of the earlier `u` (index `j`), as
/// ebb's check finds it: it compares valid names only, and two unnamed triggers never share a
/// name (each ends in its own index).
fn same_name(i: &str, t: &str, j: &str, u: &str) -> String {
    format!(
        "({named_t} ? ({valid_t} && {t}.name == {name_u}) : \
         ({named_u} && {valid_u} && {u}.name == {name_t}))",
        named_t = named(t),
        valid_t = valid_name(&format!("{t}.name")),
        name_u = effective_name(j, u),
        named_u = named(u),
        valid_u = valid_name(&format!("{u}.name")),
        name_t = effective_name(i, t),
    )
}

/// The checks of ebb's trigger list ([`crate::spec::validate`]), for both kinds.
fn trigger_rules() -> Vec<Rule> {
    const ITEM: &str = "spec.triggers[]";
    // ebb checks nothing more of a trigger whose name is invalid.
    let checked = format!("(!{} || {})", named("self"), valid_name("self.name"));
    let tls = |leaf: &str| format!("has(self.scaler.tls.{leaf})");
    let ca_twice = format!("({} && {})", tls("caSecretRef"), tls("caFile"));
    let with_tls = "(has(self.scaler) && has(self.scaler.tls) && self.scaler.address != '')";
    // Unnamed triggers of another type are left to ebb: their names end in the type, which
    // a rule could only check by scanning an unbounded string.
    let unnamed_missing = |t: &str| {
        format!(
            "(!{named} && !(has({t}.type) && {t}.type != '' && !{keda}) && ({native} || {keda_missing}))",
            named = named(t),
            keda = keda_form(t),
            native = missing_native_address(t),
            keda_missing = missing_keda_address(t),
        )
    };
    let duplicate = |i: &str, t: &str| {
        format!(
            "self.exists(j, u, j < {i} && {})",
            same_name(i, t, "j", "u")
        )
    };
    vec![
        Rule::new(
            ITEM,
            format!("!{} || {}", named("self"), valid_name("self.name")),
            messages::INVALID_TRIGGER_NAME,
        )
        .field(".name")
        .show("name", Shown::Escaped("self.name".to_owned(), true))
        .show("max", Shown::Plain(MAX_TRIGGER_NAME.to_string())),
        Rule::new(
            ITEM,
            format!(
                "!{checked} || !has(self.authenticationRef) || self.authenticationRef.name != ''"
            ),
            messages::MISSING_AUTHENTICATION_NAME,
        )
        .field(".authenticationRef.name"),
        Rule::new(
            ITEM,
            format!(
                "!{} || !{checked} || !{}",
                named("self"),
                missing_native_address("self")
            ),
            messages::MISSING_SCALER_ADDRESS,
        )
        .field(".scaler.address")
        .show("name", Shown::Quoted("self.name".to_owned())),
        Rule::new(
            ITEM,
            format!(
                "!{} || !{checked} || !{}",
                named("self"),
                missing_keda_address("self")
            ),
            messages::MISSING_SCALER_ADDRESS,
        )
        .field(".metadata.scalerAddress")
        .show("name", Shown::Quoted("self.name".to_owned())),
        Rule::new(
            ITEM,
            format!("!{checked} || !{with_tls} || !{ca_twice}"),
            messages::CA_TWICE,
        )
        .field(".scaler.tls.caFile"),
        Rule::new(
            ITEM,
            format!(
                "!{checked} || !{with_tls} || {ca_twice} || {} == {}",
                tls("certFile"),
                tls("keyFile")
            ),
            messages::CERT_WITHOUT_KEY,
        )
        .field(".scaler.tls.certFile"),
        // Only the common spellings of a zero timeout: parsing a duration means scanning.
        Rule::new(
            ITEM,
            format!(
                "!{checked} || !has(self.scaler) || self.scaler.address == '' || \
                 !has(self.scaler.timeout) || !(self.scaler.timeout in ['0', '0s', '0ms'])"
            ),
            messages::GREATER_THAN_ZERO,
        )
        .field(".scaler.timeout"),
        Rule::new(
            ITEM,
            format!(
                "!{checked} || !has(self.scaler) || !self.scaler.address.startsWith('https://') \
                 || has(self.scaler.tls)"
            ),
            messages::HTTPS_WITHOUT_TLS,
        )
        .field(".scaler.address"),
        Rule::new(
            "spec.triggers",
            format!("!self.exists(i, t, {})", unnamed_missing("t")),
            messages::MISSING_SCALER_ADDRESS,
        )
        .about_first_of(format!(
            "self.transformList(i, t, {}, i)",
            unnamed_missing("t")
        ))
        .show("name", Shown::Quoted(effective_name("k", "self[k]"))),
        Rule::new(
            "spec.triggers",
            format!("!self.exists(i, t, {})", duplicate("i", "t")),
            messages::DUPLICATE_TRIGGER_NAME,
        )
        .about_first_of(format!(
            "self.transformList(i, t, {}, i)",
            duplicate("i", "t")
        ))
        .show("name", Shown::Quoted(effective_name("k", "self[k]")))
        .show(
            "first",
            Shown::Plain(format!(
                "self.transformList(j, u, j < k && {}, j)[0]",
                same_name("k", "self[k]", "j", "u")
            )),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_rules() -> Vec<ValidationRule> {
        super::super::crd::crds()
            .expect("every rule finds its schema node")
            .into_iter()
            .flat_map(|(_, crd)| {
                let mut rules = Vec::new();
                for version in crd.spec.versions {
                    if let Some(root) = version.schema.and_then(|s| s.open_api_v3_schema) {
                        collect(&root, &mut rules);
                    }
                }
                rules
            })
            .collect()
    }

    fn collect(schema: &JSONSchemaProps, rules: &mut Vec<ValidationRule>) {
        rules.extend(schema.x_kubernetes_validations.iter().flatten().cloned());
        for child in schema
            .properties
            .iter()
            .flat_map(|properties| properties.values())
        {
            collect(child, rules);
        }
        if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
            collect(items, rules);
        }
    }

    #[test]
    fn every_rule_has_words_and_no_unfilled_placeholder() {
        let rules = all_rules();
        assert!(rules.len() > 40, "{} rules", rules.len());
        for rule in &rules {
            match (&rule.message, &rule.message_expression) {
                (Some(message), None) => assert!(!message.is_empty()),
                (None, Some(expression)) => {
                    let unfilled = expression.split('{').skip(1).any(|rest| {
                        rest.split_once('}').is_some_and(|(name, _)| {
                            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase())
                        })
                    });
                    assert!(!unfilled, "unfilled placeholder in {expression}");
                }
                other => panic!("rule {} has {other:?}", rule.rule),
            }
        }
    }

    #[test]
    fn a_message_is_one_format_call_with_its_values() {
        let expression = message_format(
            messages::MIN_ABOVE_MAX,
            &[
                ("min", Shown::Plain("self.a".to_owned())),
                ("max", Shown::Plain("self.b".to_owned())),
            ],
        );
        assert_eq!(
            expression.as_deref(),
            Some(
                "'minReplicaCount %s is above maxReplicaCount %s'.format([string(self.a), string(self.b)])"
            )
        );
        assert_eq!(message_format(messages::NO_TRIGGERS, &[]), None);
        // Quoted: the quotes are text; `'` is escaped for CEL.
        let quoted = message_format(
            messages::INVALID_TRIGGER_NAME,
            &[
                ("name", Shown::Quoted("self.n".to_owned())),
                ("max", Shown::Plain("63".to_owned())),
            ],
        );
        assert_eq!(
            quoted.as_deref(),
            Some(
                r#"'"%s" is not a valid trigger name: letters, digits, \'-\', \'_\' and \'.\', starting with a letter or digit, at most %s characters'.format([self.n, string(63)])"#
            )
        );
        // `%` is doubled for `format`.
        assert_eq!(
            format_call(&[
                ("100% of ".to_owned(), Some("x".to_owned())),
                (String::new(), None)
            ]),
            "'100%% of %s'.format([x])"
        );
    }

    #[test]
    fn escaped_values_fall_back_to_a_stand_in_they_cannot_be_escaped() {
        let expression = message_format(
            messages::MODIFIERS_TARGET_NOT_POSITIVE,
            &[("value", Shown::Escaped("self".to_owned(), false))],
        )
        .expect("an expression");
        assert!(expression.starts_with("(!(self).matches("), "{expression}");
        assert!(
            expression.ends_with(&format!(
                "'must be a number above 0, got {CONTROL_STAND_IN}'.format([])"
            )),
            "{expression}"
        );
        // Unbounded: only `\\` and `"` are replaced; bounded: the usual control characters too.
        assert_eq!(escaped("x", false).matches(".replace(").count(), 2);
        assert_eq!(
            escaped("x", true).matches(".replace(").count(),
            2 + BOUNDED_ESCAPES.len()
        );
        assert!(escaped("x", true).contains(r"'\u001b', '\\u{1b}'"));
    }

    #[test]
    fn cel_strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(cel_string("it's a\\b"), r"'it\'s a\\b'");
        assert_eq!(cel_string("\u{1b}[2J\n"), r"'\u001b[2J\u000a'");
    }

    #[test]
    fn a_missing_schema_node_is_an_error() {
        use kube::CustomResourceExt;
        let mut crd = crate::spec::ScaledObject::crd();
        let root = crd.spec.versions[0]
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut())
            .expect("a schema");
        let error = node(root, "spec.nowhere[]").unwrap_err().to_string();
        assert!(error.contains("spec.nowhere[]"), "{error}");
    }
}
