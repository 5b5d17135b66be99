//! One table row per rule of the engine, each with the reason a person would read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::scaling::fallback_replicas;
use crate::scaling::{
    Behavior, Decision, EngineSpec, EngineState, FallbackSpec, Measurement, MetricType, Policy,
    Reading, ReadingErrorKind, Rules, decide,
};
use crate::spec::{ConditionStatus, ConditionType, FallbackBehavior, PauseState, SelectPolicy};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
}

fn ok(trigger: &str, value: f64, target: f64) -> Reading {
    Reading::ok(trigger, Measurement::new(value, target))
}

fn down(trigger: &str) -> Reading {
    Reading::error(trigger, ReadingErrorKind::Unavailable, "connection refused")
}

/// A scenario: polls at given seconds (from creation at 0), each decision applied.
struct Case {
    rule: &'static str,
    spec: EngineSpec,
    replicas: u32,
    state: EngineState,
    polls: Vec<(u64, Vec<Reading>)>,
    desired: u32,
    reason: &'static str,
}

fn run(case: &Case) -> (Vec<u32>, Decision) {
    let mut replicas = case.replicas;
    let mut state = case.state.clone();
    let mut history = Vec::new();
    let mut last = None;
    for (second, readings) in &case.polls {
        let decision = decide(&case.spec, replicas, readings, &state, at(*second));
        replicas = decision.desired_replicas;
        state = decision.state.clone();
        history.push(replicas);
        last = Some(decision);
    }
    (history, last.expect("a case has polls"))
}

fn every(
    step: u64,
    until: u64,
    readings: impl Fn(u64) -> Vec<Reading>,
) -> Vec<(u64, Vec<Reading>)> {
    (0..=until / step)
        .map(|i| (i * step, readings(i * step)))
        .collect()
}

fn spec(min: u32, max: u32) -> EngineSpec {
    EngineSpec::new(min, max, &["orders"])
}

fn fast(min: u32, max: u32) -> EngineSpec {
    EngineSpec {
        behavior: Behavior::immediate(),
        ..spec(min, max)
    }
}

fn created() -> EngineState {
    EngineState::created(at(0))
}

fn with_fallback(mut spec: EngineSpec, threshold: u32, replicas: u32) -> EngineSpec {
    spec.fallback = Some(FallbackSpec {
        failure_threshold: threshold,
        replicas,
        behavior: FallbackBehavior::Static,
    });
    spec
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            rule: "activation is strict: value equal to the activation threshold stays at 0",
            spec: spec(0, 10),
            replicas: 0,
            state: created(),
            polls: vec![(
                0,
                vec![Reading::ok(
                    "orders",
                    Measurement::new(5.0, 10.0).with_activation(5.0),
                )],
            )],
            desired: 0,
            reason: "steady at 0: no trigger active",
        },
        Case {
            rule: "activation above the threshold scales 0 to max(min, 1)",
            spec: spec(0, 10),
            replicas: 0,
            state: created(),
            polls: vec![(
                0,
                vec![Reading::ok(
                    "orders",
                    Measurement::new(6.0, 10.0).with_activation(5.0),
                )],
            )],
            desired: 1,
            reason: "activated 0→1: orders 6/10 per replica",
        },
        Case {
            rule: "a push activates between polls: the reason says so beside the last poll's 0",
            spec: spec(0, 10),
            replicas: 0,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 0.0, 5.0)]),
                (
                    1,
                    vec![Reading::ok(
                        "orders",
                        Measurement::new(0.0, 5.0).activated_by_push(),
                    )],
                ),
            ],
            desired: 1,
            reason: "activated 0→1: orders 0/5 per replica (last poll), active by push (minimum 1)",
        },
        Case {
            rule: "activation goes straight to what the metric needs, within the scale-up policy",
            spec: spec(0, 10),
            replicas: 0,
            state: created(),
            polls: vec![(0, vec![ok("orders", 68.0, 10.0)])],
            desired: 4,
            reason: "activated 0→4: orders 68/10 per replica (scale-up policy allows 4 now)",
        },
        Case {
            rule: "activation respects minReplicaCount above the policy",
            spec: spec(6, 10),
            replicas: 0,
            state: created(),
            polls: vec![(0, vec![ok("orders", 1.0, 10.0)])],
            desired: 6,
            reason: "scaled 0→6: orders 1/10 per replica (minimum 6)",
        },
        Case {
            rule: "HPA AverageValue: ceil(value / target)",
            spec: spec(0, 10),
            replicas: 3,
            state: created(),
            polls: vec![(0, vec![ok("orders", 68.0, 10.0)])],
            desired: 7,
            reason: "scaled 3→7: orders 68/10 per replica",
        },
        Case {
            rule: "HPA Value: ceil(current * value / target)",
            spec: spec(0, 10),
            replicas: 3,
            state: created(),
            polls: vec![(
                0,
                vec![Reading::ok(
                    "orders",
                    Measurement::new(80.0, 40.0).with_metric_type(MetricType::Value),
                )],
            )],
            desired: 6,
            reason: "scaled 3→6: orders 80 vs target 40 at 3 replicas",
        },
        Case {
            rule: "HPA tolerance: no change within 10 %",
            spec: spec(0, 10),
            replicas: 3,
            state: created(),
            polls: vec![(0, vec![ok("orders", 32.0, 10.0)])],
            desired: 3,
            reason: "steady at 3: orders 32/10 per replica",
        },
        Case {
            rule: "maxReplicaCount caps the metric",
            spec: fast(0, 8),
            replicas: 5,
            state: created(),
            polls: vec![(0, vec![ok("orders", 1000.0, 10.0)])],
            desired: 8,
            reason: "scaled 5→8: orders 1000/10 per replica (maxReplicaCount 8)",
        },
        Case {
            rule: "several triggers combine by max",
            spec: EngineSpec::new(0, 20, &["orders", "payments"]),
            replicas: 2,
            state: created(),
            polls: vec![(
                0,
                vec![ok("orders", 20.0, 10.0), ok("payments", 50.0, 10.0)],
            )],
            desired: 5,
            reason: "scaled 2→5: payments 50/10 per replica",
        },
        Case {
            rule: "default scale-up: +100 % or +4 pods per 15 s, the larger",
            spec: spec(0, 100),
            replicas: 10,
            state: created(),
            polls: vec![(0, vec![ok("orders", 1000.0, 10.0)])],
            desired: 20,
            reason: "scaled 10→20: orders 1000/10 per replica (scale-up policy allows 20 now)",
        },
        Case {
            rule: "default scale-down waits for the 300 s stabilization window",
            spec: spec(1, 100),
            replicas: 8,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 80.0, 10.0)]),
                (60, vec![ok("orders", 10.0, 10.0)]),
            ],
            desired: 8,
            reason: "steady at 8: orders 10/10 per replica; 1 wanted, held by the 300s scale-down stabilization window",
        },
        Case {
            rule: "default scale-down after the window: -100 % per 15 s",
            spec: spec(1, 100),
            replicas: 8,
            state: created(),
            polls: every(15, 300, |_| vec![ok("orders", 10.0, 10.0)]),
            desired: 1,
            reason: "scaled 8→1: orders 10/10 per replica",
        },
        Case {
            rule: "cooldown: inactive at 1 waits cooldownPeriod since last activity",
            spec: fast(0, 10),
            replicas: 1,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 5.0, 10.0)]),
                (100, vec![ok("orders", 0.0, 10.0)]),
            ],
            desired: 1,
            reason: "steady at 1: no trigger active, 0 in 200s (cooldown)",
        },
        Case {
            rule: "cooldown passed: 1→0",
            spec: fast(0, 10),
            replicas: 1,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 5.0, 10.0)]),
                (300, vec![ok("orders", 0.0, 10.0)]),
            ],
            desired: 0,
            reason: "scaled 1→0: no trigger active for 300s (cooldown)",
        },
        Case {
            rule: "idleReplicaCount: inactive rests at idle, not 0",
            spec: EngineSpec {
                idle_replicas: Some(1),
                ..fast(3, 10)
            },
            replicas: 3,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 5.0, 10.0)]),
                (300, vec![ok("orders", 0.0, 10.0)]),
            ],
            desired: 1,
            reason: "scaled 3→1: no trigger active for 300s (cooldown)",
        },
        Case {
            rule: "idleReplicaCount: activity from idle goes to min",
            spec: EngineSpec {
                idle_replicas: Some(1),
                ..fast(3, 10)
            },
            replicas: 1,
            state: created(),
            polls: vec![(0, vec![ok("orders", 5.0, 10.0)])],
            desired: 3,
            reason: "activated 1→3: orders 5/10 per replica (minimum 3)",
        },
        Case {
            rule: "minReplicaCount > 0 without idle never goes below min",
            spec: fast(2, 10),
            replicas: 2,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 0.0, 10.0)]),
                (10_000, vec![ok("orders", 0.0, 10.0)]),
            ],
            desired: 2,
            reason: "steady at 2: orders 0/10 per replica",
        },
        Case {
            rule: "in-flight work blocks the scale to zero",
            spec: fast(0, 10),
            replicas: 1,
            state: created(),
            polls: vec![(
                600,
                vec![Reading::ok(
                    "orders",
                    Measurement::new(0.0, 10.0).with_in_flight(3),
                )],
            )],
            desired: 1,
            reason: "steady at 1: no trigger active but orders has 3 in flight; not scaling to 0",
        },
        Case {
            rule: "a failing trigger does not block the others from scaling up",
            spec: EngineSpec::new(0, 20, &["orders", "payments"]),
            replicas: 2,
            state: created(),
            polls: vec![(0, vec![down("orders"), ok("payments", 60.0, 10.0)])],
            desired: 6,
            reason: "scaled 2→6: payments 60/10 per replica",
        },
        Case {
            rule: "a failing trigger holds the count instead of letting the others shrink it",
            spec: EngineSpec {
                behavior: Behavior::immediate(),
                ..EngineSpec::new(0, 20, &["orders", "payments"])
            },
            replicas: 5,
            state: created(),
            polls: vec![(0, vec![down("orders"), ok("payments", 10.0, 10.0)])],
            desired: 5,
            reason: "steady at 5: payments 10/10 per replica; no scale-in while orders failing (unavailable: connection refused), 1 failures, no fallback configured",
        },
        Case {
            rule: "before failureThreshold a failing trigger holds",
            spec: with_fallback(spec(0, 10), 3, 5),
            replicas: 2,
            state: created(),
            polls: every(30, 60, |_| vec![down("orders")]),
            desired: 2,
            reason: "steady at 2: orders failing (unavailable: connection refused), 3/3 failures before fallback",
        },
        Case {
            rule: "fallback applies after failureThreshold failures",
            spec: with_fallback(spec(0, 10), 3, 5),
            replicas: 2,
            state: created(),
            polls: every(30, 90, |_| vec![down("orders")]),
            desired: 5,
            reason: "scaled 2→5: fallback for orders (4 failures > threshold 3): 5 replicas",
        },
        Case {
            rule: "a scaler unreachable since creation reaches fallback, even at 0",
            spec: with_fallback(spec(0, 10), 2, 3),
            replicas: 0,
            state: created(),
            polls: every(30, 60, |_| vec![down("orders")]),
            desired: 3,
            reason: "activated 0→3: fallback for orders (3 failures > threshold 2): 3 replicas",
        },
        Case {
            rule: "a failing trigger never scales to zero, whatever the cooldown",
            spec: fast(0, 10),
            replicas: 1,
            state: created(),
            polls: vec![
                (0, vec![ok("orders", 5.0, 10.0)]),
                (3600, vec![down("orders")]),
            ],
            desired: 1,
            reason: "steady at 1: orders failing (unavailable: connection refused), 1 failures, no fallback configured; errors never scale to 0",
        },
        Case {
            rule: "a silent trigger (no reading) counts as failing",
            spec: fast(0, 10),
            replicas: 1,
            state: created(),
            polls: vec![(3600, vec![])],
            desired: 1,
            reason: "steady at 1: orders failing (unavailable: no reading this poll), 1 failures, no fallback configured; errors never scale to 0",
        },
        Case {
            rule: "scale-in to 0 follows the scale-down policy: no jump from N to 0 (KEDA #7204)",
            spec: EngineSpec {
                cooldown_period: Duration::from_secs(30),
                behavior: Behavior {
                    scale_up: Rules::default_scale_up(),
                    scale_down: Rules {
                        stabilization_window: Duration::ZERO,
                        select_policy: SelectPolicy::Max,
                        policies: vec![Policy::pods(1, 60)].into(),
                    },
                },
                ..spec(0, 10)
            },
            replicas: 4,
            state: EngineState {
                last_active: Some(at(0)),
                ..created()
            },
            polls: every(60, 180, |_| vec![ok("orders", 0.0, 10.0)]),
            desired: 0,
            reason: "scaled 1→0: no trigger active for 30s (cooldown)",
        },
        Case {
            rule: "a new object does not scale an existing workload to 0 at once (KEDA #5008)",
            spec: spec(0, 10),
            replicas: 10,
            state: created(),
            polls: vec![(0, vec![ok("orders", 0.0, 10.0)])],
            desired: 10,
            reason: "steady at 10: no trigger active, cooldown passed, stepping down to 1 before 0; 1 wanted, held by the 300s scale-down stabilization window",
        },
        Case {
            rule: "initialCooldownPeriod holds a never-active object",
            spec: EngineSpec {
                initial_cooldown_period: Duration::from_secs(600),
                ..fast(0, 10)
            },
            replicas: 1,
            state: created(),
            polls: vec![(300, vec![ok("orders", 0.0, 10.0)])],
            desired: 1,
            reason: "steady at 1: no trigger active, 0 in 300s (initial cooldown)",
        },
        Case {
            rule: "after initialCooldownPeriod a never-active object rests",
            spec: EngineSpec {
                initial_cooldown_period: Duration::from_secs(600),
                ..fast(0, 10)
            },
            replicas: 1,
            state: created(),
            polls: vec![(600, vec![ok("orders", 0.0, 10.0)])],
            desired: 0,
            reason: "scaled 1→0: never active, initial cooldown 600s passed",
        },
        Case {
            rule: "paused-replicas holds that count",
            spec: EngineSpec {
                pause: PauseState {
                    paused_replicas: Some(3),
                    ..PauseState::default()
                },
                ..spec(0, 10)
            },
            replicas: 5,
            state: created(),
            polls: vec![(0, vec![ok("orders", 100.0, 10.0)])],
            desired: 3,
            reason: "scaled 5→3: paused-replicas annotation",
        },
        Case {
            rule: "paused holds the current count",
            spec: EngineSpec {
                pause: PauseState {
                    paused: true,
                    ..PauseState::default()
                },
                ..spec(0, 10)
            },
            replicas: 5,
            state: created(),
            polls: vec![(0, vec![ok("orders", 100.0, 10.0)])],
            desired: 5,
            reason: "paused at 5: paused annotation",
        },
        Case {
            rule: "paused-scale-in keeps replicas",
            spec: EngineSpec {
                pause: PauseState {
                    paused_scale_in: true,
                    ..PauseState::default()
                },
                ..fast(0, 10)
            },
            replicas: 5,
            state: created(),
            polls: vec![(0, vec![ok("orders", 10.0, 10.0)])],
            desired: 5,
            reason: "steady at 5: scale-in paused by annotation (would have scaled 5→1: orders 10/10 per replica)",
        },
        Case {
            rule: "paused-scale-out keeps replicas",
            spec: EngineSpec {
                pause: PauseState {
                    paused_scale_out: true,
                    ..PauseState::default()
                },
                ..fast(0, 10)
            },
            replicas: 2,
            state: created(),
            polls: vec![(0, vec![ok("orders", 50.0, 10.0)])],
            desired: 2,
            reason: "steady at 2: scale-out paused by annotation (would have scaled 2→5: orders 50/10 per replica)",
        },
    ]
}

#[test]
fn every_rule_gives_its_replicas_and_reason() {
    let mut failures = Vec::new();
    for case in cases() {
        let (history, decision) = run(&case);
        if decision.desired_replicas != case.desired || decision.reason != case.reason {
            failures.push(format!(
                "rule: {}\n  expected {} {:?}\n  got      {} {:?}\n  history  {history:?}",
                case.rule, case.desired, case.reason, decision.desired_replicas, decision.reason
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn scale_in_to_zero_steps_one_by_one() {
    let case = cases()
        .into_iter()
        .find(|case| case.rule.contains("#7204"))
        .expect("the #7204 case");
    let (history, _) = run(&case);
    assert_eq!(history, vec![3, 2, 1, 0]);
}

#[test]
fn fallback_behaviors() {
    let fallback = |behavior| FallbackSpec {
        failure_threshold: 1,
        replicas: 4,
        behavior,
    };
    for (behavior, current, expected) in [
        (FallbackBehavior::Static, 7, 4),
        (FallbackBehavior::CurrentReplicas, 7, 7),
        (FallbackBehavior::CurrentReplicasIfHigher, 7, 7),
        (FallbackBehavior::CurrentReplicasIfHigher, 2, 4),
        (FallbackBehavior::CurrentReplicasIfLower, 7, 4),
        (FallbackBehavior::CurrentReplicasIfLower, 2, 2),
    ] {
        assert_eq!(
            fallback_replicas(&fallback(behavior), current),
            expected,
            "{behavior:?} at {current}"
        );
    }
}

#[test]
fn a_success_resets_the_failure_count() {
    let spec = with_fallback(fast(0, 10), 2, 5);
    let mut state = created();
    for second in [0, 30] {
        state = decide(&spec, 2, &[down("orders")], &state, at(second)).state;
    }
    assert_eq!(state.failures.get("orders"), Some(&2));
    let decision = decide(&spec, 2, &[ok("orders", 20.0, 10.0)], &state, at(60));
    assert!(decision.state.failures.is_empty());
    let decision = decide(&spec, 2, &[down("orders")], &decision.state, at(90));
    assert_eq!(decision.desired_replicas, 2, "{}", decision.reason);
    assert_eq!(decision.triggers[0].failures, 1);
}

#[test]
fn conditions_report_ready_active_fallback_paused() {
    let spec = with_fallback(EngineSpec::new(0, 10, &["orders", "payments"]), 1, 3);
    let state = created();
    let first = decide(
        &spec,
        1,
        &[down("orders"), ok("payments", 0.0, 10.0)],
        &state,
        at(0),
    );
    let second = decide(
        &spec,
        1,
        &[down("orders"), ok("payments", 0.0, 10.0)],
        &first.state,
        at(30),
    );
    let status = |decision: &Decision, kind| {
        let condition = decision
            .condition(kind)
            .expect("every condition is reported");
        (condition.status, condition.reason)
    };
    assert_eq!(
        status(&first, ConditionType::Ready),
        (ConditionStatus::False, "TriggerFailing")
    );
    assert_eq!(
        status(&first, ConditionType::Fallback),
        (ConditionStatus::False, "NoFallback")
    );
    assert_eq!(
        status(&second, ConditionType::Fallback),
        (ConditionStatus::True, "FallbackActive")
    );
    assert_eq!(
        status(&second, ConditionType::Active),
        (ConditionStatus::True, "TriggerActive")
    );
    assert_eq!(
        status(&second, ConditionType::Paused),
        (ConditionStatus::False, "NotPaused")
    );
    assert_eq!(second.desired_replicas, 3, "{}", second.reason);

    let idle = decide(
        &fast(0, 10),
        1,
        &[ok("orders", 5.0, 10.0)],
        &created(),
        at(0),
    );
    let cooling = decide(
        &fast(0, 10),
        1,
        &[ok("orders", 0.0, 10.0)],
        &idle.state,
        at(60),
    );
    assert_eq!(
        status(&cooling, ConditionType::Active),
        (ConditionStatus::False, "Cooldown")
    );
    assert_eq!(
        status(&cooling, ConditionType::Ready),
        (ConditionStatus::True, "TriggersHealthy")
    );
}

#[test]
fn state_survives_serialization_and_restart_from_status() {
    let spec = fast(0, 10);
    let active = decide(&spec, 1, &[ok("orders", 5.0, 10.0)], &created(), at(0));
    let json = serde_json::to_string(&active.state).expect("state serializes");
    let back: EngineState = serde_json::from_str(&json).expect("state deserializes");
    assert_eq!(back, active.state);

    // A restarted controller rebuilds state from status: the cooldown continues from the
    // recorded lastActiveTime rather than starting over or being skipped.
    let mut status = crate::spec::ScaledObjectStatus::default();
    active.apply_to_status(&mut status, at(0));
    let restored = EngineState::restore(&status, Some(at(0)));
    let early = decide(&spec, 1, &[ok("orders", 0.0, 10.0)], &restored, at(200));
    assert_eq!(early.desired_replicas, 1, "{}", early.reason);
    let late = decide(&spec, 1, &[ok("orders", 0.0, 10.0)], &restored, at(300));
    assert_eq!(late.desired_replicas, 0, "{}", late.reason);
}

#[test]
fn restart_does_not_scale_down_before_a_full_window() {
    let spec = spec(1, 10);
    let restored = EngineState::restore(&crate::spec::ScaledObjectStatus::default(), Some(at(0)));
    let decision = decide(&spec, 8, &[ok("orders", 10.0, 10.0)], &restored, at(10_000));
    assert_eq!(decision.desired_replicas, 8, "{}", decision.reason);
    let later = decide(
        &spec,
        8,
        &[ok("orders", 10.0, 10.0)],
        &decision.state,
        at(10_300),
    );
    assert_eq!(later.desired_replicas, 1, "{}", later.reason);
}

#[test]
fn engine_spec_from_a_scaled_object_applies_keda_defaults() {
    let object: crate::spec::ScaledObject = serde_norway::from_str(
        r#"
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  annotations:
    autoscaling.keda.sh/paused: "false"
spec:
  scaleTargetRef: {name: worker}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 60
  triggers:
    - type: external
      metadata: {scalerAddress: "127.0.0.1:9000"}
"#,
    )
    .expect("object parses");
    let spec = EngineSpec::from_scaled_object(&object).expect("valid pause annotations");
    assert_eq!(spec.min_replicas, 0);
    assert_eq!(spec.max_replicas, 100);
    assert_eq!(spec.polling_interval, Duration::from_secs(30));
    assert_eq!(spec.cooldown_period, Duration::from_secs(300));
    assert!(!spec.pause.is_paused());
    assert_eq!(spec.triggers, vec!["external-0".to_owned()]);
    assert_eq!(
        spec.behavior.scale_down.stabilization_window,
        Duration::from_secs(60)
    );
    assert_eq!(
        spec.behavior.scale_down.policies,
        Rules::default_scale_down().policies
    );
    assert_eq!(spec.behavior.scale_up, Rules::default_scale_up());
}

#[test]
fn a_fallback_of_zero_replicas_still_never_scales_to_zero() {
    let spec = with_fallback(fast(0, 10), 1, 0);
    let mut state = EngineState {
        last_active: Some(at(0)),
        ..created()
    };
    let mut replicas = 2;
    for second in [600, 630, 660, 690] {
        let decision = decide(&spec, replicas, &[down("orders")], &state, at(second));
        replicas = decision.desired_replicas;
        state = decision.state;
    }
    assert_eq!(replicas, 1);
}
