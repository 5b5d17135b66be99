//! Property tests: bounds, monotonicity in the metric, and no oscillation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use crate::scaling::{
    Behavior, EngineSpec, EngineState, Measurement, MetricType, Policy, Reading, Rules, decide,
};
use crate::spec::{PolicyType, SelectPolicy};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
}

fn rules(default: Rules) -> impl Strategy<Value = Rules> {
    (
        prop::bool::ANY,
        0u64..400,
        prop::sample::select(vec![
            SelectPolicy::Max,
            SelectPolicy::Min,
            SelectPolicy::Disabled,
        ]),
        prop::collection::vec(
            (prop::bool::ANY, 1u32..200, 1u64..120).prop_map(|(pods, value, period)| Policy {
                policy_type: if pods {
                    PolicyType::Pods
                } else {
                    PolicyType::Percent
                },
                value,
                period: Duration::from_secs(period),
            }),
            0..3,
        ),
    )
        .prop_map(move |(use_default, window, select_policy, policies)| {
            if use_default {
                default.clone()
            } else {
                Rules {
                    stabilization_window: Duration::from_secs(window),
                    select_policy,
                    policies: policies.into(),
                }
            }
        })
}

fn engine_spec() -> impl Strategy<Value = EngineSpec> {
    (
        0u32..6,
        1u32..60,
        prop::option::of(0u32..6),
        0u64..600,
        0u64..600,
        rules(Rules::default_scale_up()),
        rules(Rules::default_scale_down()),
    )
        .prop_map(
            |(min, extra, idle, cooldown, initial, scale_up, scale_down)| EngineSpec {
                min_replicas: min,
                max_replicas: min.max(1) + extra,
                idle_replicas: idle.filter(|idle| *idle < min),
                cooldown_period: Duration::from_secs(cooldown),
                initial_cooldown_period: Duration::from_secs(initial),
                behavior: Behavior {
                    scale_up,
                    scale_down,
                },
                ..EngineSpec::new(0, 1, &["orders"])
            },
        )
}

fn measurement(value: f64, target: f64, activation: f64, value_type: bool) -> Measurement {
    Measurement::new(value, target)
        .with_activation(activation)
        .with_metric_type(if value_type {
            MetricType::Value
        } else {
            MetricType::AverageValue
        })
}

/// A state reached by a random history of polls.
fn history() -> impl Strategy<Value = Vec<(u64, Option<f64>)>> {
    prop::collection::vec(
        (1u64..120, prop::option::weighted(0.9, 0.0f64..500.0)),
        0..12,
    )
}

fn replay(
    spec: &EngineSpec,
    mut replicas: u32,
    steps: &[(u64, Option<f64>)],
) -> (u32, EngineState, u64) {
    let mut state = EngineState::created(at(0));
    let mut second = 0;
    for (gap, value) in steps {
        second += gap;
        let reading = match value {
            Some(value) => Reading::ok("orders", Measurement::new(*value, 10.0)),
            None => Reading::error(
                "orders",
                crate::scaling::ReadingErrorKind::Unavailable,
                "down",
            ),
        };
        let decision = decide(spec, replicas, &[reading], &state, at(second));
        replicas = decision.desired_replicas;
        state = decision.state;
    }
    (replicas, state, second)
}

proptest! {
    #[test]
    fn desired_stays_within_bounds(
        spec in engine_spec(),
        start in 0u32..80,
        steps in history(),
        value in 0.0f64..5000.0,
        target in 0.5f64..100.0,
        activation in 0.0f64..20.0,
        value_type in prop::bool::ANY,
    ) {
        let (current, state, second) = replay(&spec, start, &steps);
        let reading = Reading::ok("orders", measurement(value, target, activation, value_type));
        let decision = decide(&spec, current, &[reading], &state, at(second + 1));
        let lowest = spec.rest_replicas().unwrap_or(spec.min_replicas);
        prop_assert!(decision.desired_replicas <= spec.max_replicas, "{}", decision.reason);
        prop_assert!(decision.desired_replicas >= lowest, "{}", decision.reason);
    }

    #[test]
    fn desired_does_not_decrease_when_the_metric_rises(
        spec in engine_spec(),
        start in 0u32..80,
        steps in history(),
        low in 0.0f64..2000.0,
        rise in 0.0f64..2000.0,
        target in 0.5f64..100.0,
        activation in 0.0f64..20.0,
        value_type in prop::bool::ANY,
        in_flight in prop::option::of(0u64..5),
    ) {
        let (current, state, second) = replay(&spec, start, &steps);
        let decide_at = |value: f64| {
            let mut reading = measurement(value, target, activation, value_type);
            reading.in_flight = in_flight;
            decide(&spec, current, &[Reading::ok("orders", reading)], &state, at(second + 1))
        };
        let lower = decide_at(low);
        let higher = decide_at(low + rise);
        prop_assert!(
            higher.desired_replicas >= lower.desired_replicas,
            "{} vs {}", lower.reason, higher.reason
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_constant_metric_does_not_oscillate_over_an_hour(
        spec in engine_spec(),
        start in 0u32..60,
        value in 0.0f64..3000.0,
        target in 0.5f64..100.0,
        activation in 0.0f64..20.0,
        value_type in prop::bool::ANY,
    ) {
        let mut replicas = start;
        let mut state = EngineState::created(at(0));
        let mut direction = 0i64;
        let mut reversals = Vec::new();
        for second in 0..3600u64 {
            let reading = Reading::ok("orders", measurement(value, target, activation, value_type));
            let decision = decide(&spec, replicas, &[reading], &state, at(second));
            let step = i64::from(decision.desired_replicas) - i64::from(replicas);
            if step != 0 {
                if direction != 0 && step.signum() != direction {
                    reversals.push(format!("t={second}: {}", decision.reason));
                }
                direction = step.signum();
            }
            replicas = decision.desired_replicas;
            state = decision.state;
        }
        prop_assert!(reversals.is_empty(), "{reversals:?}");
    }
}
