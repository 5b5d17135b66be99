//! Stabilization windows and rate-limit policies, as the HPA applies them.

use std::time::SystemTime;

use super::spec::{Behavior, Policy, Rules};
use super::state::EngineState;
use crate::spec::{PolicyType, SelectPolicy};

/// How the behavior changed a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Not changed.
    None,
    /// Held by the scale-up stabilization window (lowest recent recommendation).
    UpStabilization(u32),
    /// Held by the scale-down stabilization window (highest recent recommendation).
    DownStabilization(u32),
    /// Capped by the scale-up policies.
    UpPolicy(u32),
    /// Capped by the scale-down policies.
    DownPolicy(u32),
}

fn within(at: SystemTime, now: SystemTime, window: std::time::Duration) -> bool {
    // Strictly inside the window, like the HPA: a window of 0 sees nothing of the past.
    match now.checked_sub(window) {
        Some(cutoff) => at > cutoff,
        None => true,
    }
}

/// Applies the stabilization windows: the result lies between the lowest recommendation of
/// the scale-up window and the highest of the scale-down window, staying at `current` when
/// it can.
pub fn stabilize(
    behavior: &Behavior,
    state: &EngineState,
    raw: u32,
    current: u32,
    now: SystemTime,
) -> (u32, Limit) {
    let mut up_bound = raw;
    let mut down_bound = raw;
    for recommendation in &state.recommendations {
        if within(
            recommendation.at,
            now,
            behavior.scale_up.stabilization_window,
        ) {
            up_bound = up_bound.min(recommendation.replicas);
        }
        if within(
            recommendation.at,
            now,
            behavior.scale_down.stabilization_window,
        ) {
            down_bound = down_bound.max(recommendation.replicas);
        }
    }
    let stabilized = current.max(up_bound).min(down_bound);
    let limit = match stabilized.cmp(&raw) {
        std::cmp::Ordering::Equal => Limit::None,
        std::cmp::Ordering::Less => Limit::UpStabilization(stabilized),
        std::cmp::Ordering::Greater => Limit::DownStabilization(stabilized),
    };
    (stabilized, limit)
}

fn changed_within(state: &EngineState, policy: &Policy, now: SystemTime, up: bool) -> u32 {
    state
        .scale_events
        .iter()
        .filter(|event| within(event.at, now, policy.period))
        .map(|event| {
            if up && event.to > event.from {
                event.to - event.from
            } else if !up && event.from > event.to {
                event.from - event.to
            } else {
                0
            }
        })
        .fold(0u32, u32::saturating_add)
}

fn combine(rules: &Rules, limits: impl Iterator<Item = u32>, up: bool) -> Option<u32> {
    // "Max" picks the policy allowing the most change: the highest cap up, the lowest floor down.
    let most_change = matches!(rules.select_policy, SelectPolicy::Max);
    if most_change == up {
        limits.max()
    } else {
        limits.min()
    }
}

/// The most replicas the scale-up policies allow now.
pub fn scale_up_cap(rules: &Rules, state: &EngineState, current: u32, now: SystemTime) -> u32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let limits = rules.policies.iter().map(|policy| {
        let start = current.saturating_sub(changed_within(state, policy, now, true));
        match policy.policy_type {
            PolicyType::Pods => start.saturating_add(policy.value),
            PolicyType::Percent => {
                let grown = (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil();
                grown.min(f64::from(u32::MAX)) as u32
            }
        }
    });
    combine(rules, limits, true).unwrap_or(u32::MAX)
}

/// The fewest replicas the scale-down policies allow now.
pub fn scale_down_floor(rules: &Rules, state: &EngineState, current: u32, now: SystemTime) -> u32 {
    if rules.select_policy == SelectPolicy::Disabled {
        return current;
    }
    let limits = rules.policies.iter().map(|policy| {
        let start = current.saturating_add(changed_within(state, policy, now, false));
        match policy.policy_type {
            PolicyType::Pods => start.saturating_sub(policy.value),
            PolicyType::Percent => {
                let shrunk = f64::from(start) * (1.0 - f64::from(policy.value.min(100)) / 100.0);
                shrunk.max(0.0) as u32
            }
        }
    });
    combine(rules, limits, false).unwrap_or(0)
}

/// Stabilizes `raw` and applies the rate limits; returns the replicas to set and what limited
/// them.
pub fn apply(
    behavior: &Behavior,
    state: &EngineState,
    raw: u32,
    current: u32,
    now: SystemTime,
) -> (u32, Limit) {
    let (stabilized, stabilization) = stabilize(behavior, state, raw, current, now);
    if stabilized > current {
        let cap = scale_up_cap(&behavior.scale_up, state, current, now);
        if stabilized > cap {
            let capped = cap.max(current);
            return (capped, Limit::UpPolicy(capped));
        }
    } else if stabilized < current {
        let floor = scale_down_floor(&behavior.scale_down, state, current, now);
        if stabilized < floor {
            let floored = floor.min(current);
            return (floored, Limit::DownPolicy(floored));
        }
    }
    (stabilized, stabilization)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::scaling::state::{Recommendation, ScaleEvent};

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn default_scale_up_allows_four_pods_or_double() {
        let rules = Rules::default_scale_up();
        let state = EngineState::default();
        assert_eq!(scale_up_cap(&rules, &state, 1, at(100)), 5);
        assert_eq!(scale_up_cap(&rules, &state, 10, at(100)), 20);
        assert_eq!(scale_up_cap(&rules, &state, 0, at(100)), 4);
    }

    #[test]
    fn policies_count_changes_within_the_period() {
        let rules = Rules::default_scale_up();
        let state = EngineState {
            scale_events: vec![ScaleEvent {
                at: at(95),
                from: 1,
                to: 5,
            }],
            ..EngineState::default()
        };
        // Period start had 1 replica: 1 + 4 pods = 5, or 1 * 2 = 2; max is 5.
        assert_eq!(scale_up_cap(&rules, &state, 5, at(100)), 5);
        // 15 s later the event left the period.
        assert_eq!(scale_up_cap(&rules, &state, 5, at(110)), 10);
    }

    #[test]
    fn scale_down_stabilization_keeps_the_highest_recent_recommendation() {
        let behavior = Behavior::default();
        let state = EngineState {
            recommendations: vec![Recommendation {
                at: at(50),
                replicas: 8,
            }],
            ..EngineState::default()
        };
        assert_eq!(
            apply(&behavior, &state, 2, 8, at(100)),
            (8, Limit::DownStabilization(8))
        );
        assert_eq!(apply(&behavior, &state, 2, 8, at(351)), (2, Limit::None));
    }

    #[test]
    fn min_select_policy_takes_the_smallest_change() {
        let rules = Rules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Min,
            policies: vec![Policy::pods(1, 60), Policy::percent(50, 60)].into(),
        };
        let state = EngineState::default();
        assert_eq!(scale_down_floor(&rules, &state, 10, at(100)), 9);
        assert_eq!(scale_up_cap(&rules, &state, 10, at(100)), 11);
    }

    #[test]
    fn disabled_blocks_the_direction() {
        let rules = Rules {
            select_policy: SelectPolicy::Disabled,
            ..Rules::default_scale_down()
        };
        assert_eq!(
            scale_down_floor(&rules, &EngineState::default(), 6, at(1)),
            6
        );
    }
}
