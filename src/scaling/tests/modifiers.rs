//! `advanced.scalingModifiers`: the formula language (one row per construct) and the engine
//! with a formula (one row per rule, fallback interplay included).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::scaling::{
    Behavior, Decision, EngineSpec, EngineState, FORMULA_NAME, FallbackSpec, Formula, FormulaError,
    MAX_FORMULA_LENGTH, Measurement, MetricType, ModifiersSpec, Reading, ReadingErrorKind, decide,
};
use crate::spec::{ConditionStatus, ConditionType, FallbackBehavior, TriggerHealth};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
}

fn value(formula: &str, values: &[(&str, Option<f64>)]) -> Result<f64, FormulaError> {
    let formula = Formula::compile(formula)?;
    formula.evaluate(|name| {
        values
            .iter()
            .find(|(known, _)| *known == name)
            .and_then(|(_, value)| *value)
    })
}

#[test]
fn the_language_covers_arithmetic_comparisons_ternary_functions_and_nil_coalescing() {
    let (a, b) = (("a", Some(7.0)), ("b", Some(6.0)));
    let failed = ("b", None);
    for (formula, values, expected) in [
        ("a + b", vec![a, b], 13.0),
        ("a - b * 2 / 4 + 1", vec![a, b], 5.0),
        ("(a + b) / 13 == 1 ? 1 : 0", vec![a, b], 1.0),
        ("a > b ? a : b", vec![a, b], 7.0),
        ("a <= b || b == 6 ? 10 : 20", vec![a, b], 10.0),
        ("a != 7 and b >= 6 ? 1 : 2", vec![a, b], 2.0),
        ("max(a, b, 9)", vec![a, b], 9.0),
        ("min(a, b)", vec![a, b], 6.0),
        ("abs(b - a)", vec![a, b], 1.0),
        ("ceil(a / 2) + floor(b / 4)", vec![a, b], 5.0),
        ("a + (b ?? 100)", vec![a, failed], 107.0),
        ("a + (b ?? 100)", vec![a, b], 13.0),
        ("b ?? a ?? 1", vec![("a", None), failed], 1.0),
        ("a ^ 2", vec![a], 49.0),
        ("-a + 10", vec![a], 3.0),
    ] {
        assert_eq!(value(formula, &values), Ok(expected), "{formula}");
    }
}

/// expr's integers wrap (`i64::MAX + 1` was `i64::MIN`, and the object scaled on it); a
/// formula computes in floats, where nothing wraps and a value out of range fails.
#[test]
fn integer_overflow_never_wraps_and_out_of_range_values_fail() {
    let a = ("a", Some(7.0));
    assert_eq!(
        value("9223372036854775807 + 1", &[]),
        Ok(9_223_372_036_854_775_808.0)
    );
    assert_eq!(value("-9223372036854775807 - 2 < 0 ? 1 : 2", &[]), Ok(1.0));
    assert_eq!(value("0x7fffffffffffffff * 2 > 0 ? a : 0", &[a]), Ok(7.0));
    assert_eq!(
        value("abs(-9223372036854775807 - 1) > 0 ? 1 : 0", &[]),
        Ok(1.0)
    );
    // Integers can come back through no function either.
    for call in [
        "int(a) * int(a)",
        "len([a, a])",
        "count([a], # > 1)",
        "bitshl(1, 63)",
    ] {
        assert!(
            matches!(
                Formula::compile(call),
                Err(FormulaError::UnsupportedFunction(_))
            ),
            "{call}"
        );
    }
    // A product past the float range is infinite: a failed evaluation, not a number.
    assert_eq!(
        value("a * 1e308 * 10", &[a]),
        Err(FormulaError::NotFinite(f64::INFINITY))
    );
    // Whole numbers are still exact in the float range.
    assert_eq!(value("(a + 3) / 2 * 1_000", &[a]), Ok(5000.0));
}

#[test]
fn formulas_that_give_no_finite_number_are_errors() {
    let a = ("a", Some(7.0));
    let zero = ("b", Some(0.0));
    assert_eq!(
        value("a / b", &[a, zero]),
        Err(FormulaError::NotFinite(f64::INFINITY))
    );
    assert!(matches!(
        value("b / b", &[zero]),
        Err(FormulaError::NotFinite(nan)) if nan.is_nan()
    ));
    assert_eq!(
        value("a > 1", &[a]),
        Err(FormulaError::NotANumber("a bool"))
    );
    assert_eq!(
        value("b", &[("b", None)]),
        Err(FormulaError::NotANumber("nil"))
    );
    // A failed trigger without `??` cannot take part in arithmetic.
    assert!(matches!(
        value("a + b", &[a, ("b", None)]),
        Err(FormulaError::Evaluation(_))
    ));
    // Negative results are numbers; the engine counts them as 0.
    assert_eq!(value("a - 10", &[a]), Ok(-3.0));
}

#[test]
fn compiling_refuses_bad_text() {
    let refused = |formula: &str| Formula::compile(formula).map(|_| ()).unwrap_err();
    assert_eq!(refused("  "), FormulaError::Empty);
    assert_eq!(
        refused("a +"),
        FormulaError::Syntax(
            "at 1:4: expected conditional_if, negation_op, sign_op, value, array, map, or ident"
                .to_owned()
        )
    );
    assert!(matches!(refused("max(a, b"), FormulaError::Syntax(_)));
    assert_eq!(refused("len(\"x\")"), FormulaError::Unsupported("strings"));
    assert_eq!(
        refused("len(1..100000000)"),
        FormulaError::Unsupported("ranges (`..`)")
    );
    assert_eq!(
        refused("let x = a; x"),
        FormulaError::Unsupported("`let` bindings")
    );
}

/// Compiles and evaluates `text` on a thread with `stack` bytes: a formula must never
/// overflow the stack of the thread that runs it (that aborts the whole process).
fn on_small_stack(text: String, stack: usize) -> Result<f64, FormulaError> {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || Formula::compile(&text)?.evaluate(|_| Some(1.0)))
        .expect("thread")
        .join()
        .expect("no panic")
}

#[test]
fn pathological_formulas_are_refused_or_run_within_a_small_stack() {
    let n = MAX_FORMULA_LENGTH;
    let long = format!("a{}", " + a".repeat(n / 4));
    assert_eq!(
        on_small_stack(long.clone(), 1 << 20),
        Err(FormulaError::TooLong(long.len()))
    );
    // Chains as long as the length limit allows: each operator nests the tree one level.
    for (text, refused) in [
        (format!("{}1", "true ? 1 : ".repeat((n - 1) / 11)), true),
        (format!("1{}", " + 1".repeat((n - 1) / 4)), true),
        (format!("a{}", " ?? a".repeat((n - 1) / 5)), true),
        (format!("1{}", "^1".repeat((n - 1) / 2)), true),
        (format!("{}1", "1 + -".repeat((n - 1) / 5)), true),
        (format!("{}a{}", "(".repeat(40), ")".repeat(40)), true),
        (format!("{}a{}", "abs(".repeat(20), ")".repeat(20)), true),
        // Just within the limit.
        (format!("1{}", " + 1".repeat(28)), false),
        (format!("{}a{}", "abs(".repeat(15), ")".repeat(15)), false),
        (format!("{}1", "true ? 1 : ".repeat(9)), false),
    ] {
        let outcome = on_small_stack(text.clone(), 1 << 20);
        if refused {
            assert_eq!(outcome, Err(FormulaError::TooDeep), "{text}");
        } else {
            assert!(outcome.is_ok(), "{text}: {outcome:?}");
        }
    }
}

#[test]
fn the_names_a_formula_reads_are_its_identifiers_only() {
    let formula = Formula::compile("max(b, a ?? 0) + abs(c) + (d > 1 ? e : f_2) + a").unwrap();
    assert_eq!(formula.names(), ["a", "b", "c", "d", "e", "f_2"]);
    assert_eq!(Formula::compile("1 + 2").unwrap().names(), [] as [&str; 0]);
    // Type errors are found by the trial evaluation at validation, functions when compiling.
    assert!(Formula::compile("a % 2").unwrap().trial().is_err());
    assert_eq!(
        Formula::compile("nosuch(a)").map(|_| ()),
        Err(FormulaError::UnsupportedFunction("nosuch".to_owned()))
    );
    assert!(Formula::compile("a > 1").unwrap().trial().is_err());
    // A division by zero depends on the values: left to run time.
    assert!(Formula::compile("a / (b - 1)").unwrap().trial().is_ok());
}

fn ok(trigger: &str, value: f64) -> Reading {
    // The trigger's own target (1000) plays no part under a formula.
    Reading::ok(trigger, Measurement::new(value, 1000.0))
}

fn down(trigger: &str) -> Reading {
    Reading::error(trigger, ReadingErrorKind::Unavailable, "connection refused")
}

fn spec(formula: &str, target: f64) -> EngineSpec {
    EngineSpec {
        behavior: Behavior::immediate(),
        modifiers: Some(Box::new(ModifiersSpec::new(formula, target))),
        ..EngineSpec::new(0, 20, &["a", "b"])
    }
}

fn with_fallback(mut spec: EngineSpec, behavior: FallbackBehavior) -> EngineSpec {
    spec.fallback = Some(FallbackSpec {
        failure_threshold: 1,
        replicas: 4,
        behavior,
    });
    spec
}

/// A scenario: `polls` readings, one poll every 10 s from `replicas`, each decision applied.
struct Case {
    rule: &'static str,
    spec: EngineSpec,
    replicas: u32,
    polls: Vec<Vec<Reading>>,
    desired: u32,
    reason: &'static str,
}

fn run(case: &Case) -> Decision {
    let mut replicas = case.replicas;
    let mut state = EngineState::created(at(0));
    let mut last = None;
    for (index, readings) in case.polls.iter().enumerate() {
        let decision = decide(
            &case.spec,
            replicas,
            readings,
            &state,
            at(10 * index as u64),
        );
        replicas = decision.desired_replicas;
        state = decision.state.clone();
        last = Some(decision);
    }
    last.expect("a case has polls")
}

fn cases() -> Vec<Case> {
    let value_type = |mut spec: EngineSpec| {
        if let Some(modifiers) = &mut spec.modifiers {
            modifiers.metric_type = MetricType::Value;
        }
        spec
    };
    let activation = |mut spec: EngineSpec| {
        if let Some(modifiers) = &mut spec.modifiers {
            modifiers.activation_target = 20.0;
        }
        spec
    };
    vec![
        Case {
            rule: "the composite replaces the largest per-trigger count: ceil((7 + 6) / 5)",
            spec: spec("a + b", 5.0),
            replicas: 0,
            polls: vec![vec![ok("a", 7.0), ok("b", 6.0)]],
            desired: 3,
            reason: "activated 0→3: formula 13/5 per replica",
        },
        Case {
            rule: "a changed value moves the composite",
            spec: spec("a + b", 5.0),
            replicas: 0,
            polls: vec![
                vec![ok("a", 7.0), ok("b", 6.0)],
                vec![ok("a", 19.0), ok("b", 6.0)],
            ],
            desired: 5,
            reason: "scaled 3→5: formula 25/5 per replica",
        },
        Case {
            rule: "ternary and max pick the driving value",
            spec: spec("a > 10 ? max(a, b) : b", 5.0),
            replicas: 1,
            polls: vec![vec![ok("a", 30.0), ok("b", 6.0)]],
            desired: 6,
            reason: "scaled 1→6: formula 30/5 per replica",
        },
        Case {
            rule: "activation is the composite above activationTarget (13 is not above 20)",
            spec: activation(spec("a + b", 5.0)),
            replicas: 0,
            polls: vec![vec![ok("a", 7.0), ok("b", 6.0)]],
            desired: 0,
            reason: "steady at 0: no trigger active",
        },
        Case {
            rule: "Value metric type: ceil(current × result / target)",
            spec: value_type(spec("a", 10.0)),
            replicas: 2,
            polls: vec![vec![ok("a", 20.0), ok("b", 0.0)]],
            desired: 4,
            reason: "scaled 2→4: formula 20 vs target 10 at 2 replicas",
        },
        Case {
            rule: "a negative result counts as 0: down to the floor",
            spec: EngineSpec {
                min_replicas: 1,
                ..spec("a - b", 5.0)
            },
            replicas: 3,
            polls: vec![vec![ok("a", 2.0), ok("b", 10.0)]],
            desired: 1,
            reason: "scaled 3→1: formula 0/5 per replica (minimum 1)",
        },
        Case {
            rule: "?? replaces a failing trigger: scale out goes on",
            spec: spec("a + (b ?? 0)", 5.0),
            replicas: 0,
            polls: vec![vec![ok("a", 12.0), down("b")]],
            desired: 3,
            reason: "activated 0→3: formula 12/5 per replica",
        },
        Case {
            rule: "a failing trigger (below the threshold) still blocks scale-in, ?? or not",
            spec: spec("a + (b ?? 0)", 5.0),
            replicas: 6,
            polls: vec![vec![ok("a", 5.0), down("b")]],
            desired: 6,
            reason: "steady at 6: formula 5/5 per replica; no scale-in while b failing (unavailable: connection refused), 1 failures, no fallback configured",
        },
        Case {
            rule: "a failed trigger without ?? leaves no composite: hold",
            spec: spec("a + b", 5.0),
            replicas: 4,
            polls: vec![vec![ok("a", 50.0), down("b")]],
            desired: 4,
            reason: "steady at 4: b failing (unavailable: connection refused), 1 failures, no fallback configured",
        },
        Case {
            rule: "division by zero: hold",
            spec: spec("a / b", 5.0),
            replicas: 2,
            polls: vec![vec![ok("a", 50.0), ok("b", 0.0)]],
            desired: 2,
            reason: "steady at 2: formula failing (error: the result is inf, not a finite number), 0 failures, no fallback configured",
        },
        Case {
            rule: "fallback scalingModifiers: the formula goes on without the trigger, ?? supplies it",
            spec: with_fallback(
                spec("a + (b ?? 10)", 5.0),
                FallbackBehavior::ScalingModifiers,
            ),
            replicas: 8,
            polls: vec![vec![ok("a", 5.0), down("b")], vec![ok("a", 5.0), down("b")]],
            desired: 3,
            reason: "scaled 8→3: formula 15/5 per replica",
        },
        Case {
            rule: "fallback scalingModifiers: a formula that cannot do without it gives fallback.replicas",
            spec: with_fallback(spec("a + b", 5.0), FallbackBehavior::ScalingModifiers),
            replicas: 8,
            polls: vec![vec![ok("a", 5.0), down("b")], vec![ok("a", 5.0), down("b")]],
            desired: 4,
            reason: "scaled 8→4: fallback for b (2 failures > threshold 1): 4 replicas",
        },
        Case {
            rule: "other fallback behaviors replace the formula, even one that could go on",
            spec: with_fallback(spec("a + (b ?? 10)", 5.0), FallbackBehavior::Static),
            replicas: 8,
            polls: vec![vec![ok("a", 5.0), down("b")], vec![ok("a", 5.0), down("b")]],
            desired: 4,
            reason: "scaled 8→4: fallback for b (2 failures > threshold 1): 4 replicas",
        },
    ]
}

#[test]
fn the_engine_with_a_formula_follows_each_rule() {
    let mut failures = Vec::new();
    for case in cases() {
        let decision = run(&case);
        if decision.desired_replicas != case.desired || decision.reason != case.reason {
            failures.push(format!(
                "{}:\n  want {} {:?}\n  got  {} {:?}",
                case.rule, case.desired, case.reason, decision.desired_replicas, decision.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn condition(decision: &Decision, kind: ConditionType) -> (ConditionStatus, String) {
    let condition = decision.condition(kind).expect("condition");
    (condition.status, condition.message.clone())
}

#[test]
fn status_shows_the_composite_against_its_target_beside_the_triggers() {
    let spec = spec("a + b", 5.0);
    let decision = decide(
        &spec,
        0,
        &[ok("a", 7.0), ok("b", 6.0)],
        &EngineState::created(at(0)),
        at(0),
    );
    let mut status = crate::spec::ScaledObjectStatus::default();
    decision.apply_to_status(&mut status, at(0));
    let names: Vec<&str> = status.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", FORMULA_NAME]);
    let formula = &status.triggers[2];
    assert_eq!(
        (formula.last_value, formula.target),
        (Some(13.0), Some(5.0))
    );
    assert_eq!(formula.active, Some(true));
    assert_eq!(
        condition(&decision, ConditionType::Active),
        (ConditionStatus::True, "active: formula".to_owned())
    );
}

#[test]
fn conditions_name_the_formula_and_the_fallback_it_goes_on_without() {
    let spec = with_fallback(spec("a / b", 5.0), FallbackBehavior::ScalingModifiers);
    let state = EngineState::created(at(0));
    let decision = decide(&spec, 2, &[ok("a", 5.0), ok("b", 0.0)], &state, at(0));
    let (ready, message) = condition(&decision, ConditionType::Ready);
    assert_eq!(ready, ConditionStatus::False);
    assert!(
        message.contains("formula: error: the result is inf"),
        "{message}"
    );

    let spec = with_fallback(
        EngineSpec {
            modifiers: Some(Box::new(ModifiersSpec::new("a + (b ?? 10)", 5.0))),
            ..spec
        },
        FallbackBehavior::ScalingModifiers,
    );
    let first = decide(&spec, 2, &[ok("a", 5.0), down("b")], &state, at(0));
    let second = decide(&spec, 2, &[ok("a", 5.0), down("b")], &first.state, at(10));
    assert_eq!(
        condition(&second, ConditionType::Fallback),
        (
            ConditionStatus::True,
            "fallback for b (2 failures > threshold 1): the formula goes on without it".to_owned()
        )
    );
    let mut status = crate::spec::ScaledObjectStatus::default();
    second.apply_to_status(&mut status, at(10));
    assert_eq!(status.triggers[1].health, TriggerHealth::Failing);
    assert_eq!(status.triggers[2].last_value, Some(15.0));
    // The composite's status entry is not restored as a trigger's failure count.
    let restored = EngineState::restore(&status, Some(at(0)));
    let third = decide(&spec, 3, &[ok("a", 5.0), ok("b", 1.0)], &restored, at(20));
    assert!(!third.state.failures.contains_key(FORMULA_NAME));
}
