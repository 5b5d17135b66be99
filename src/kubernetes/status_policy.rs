//! When a ScaledObject's status is worth an API write. Pure: the sink in [`super::status`]
//! asks [`should_write`] with the stored and the new status and acts on the answer.
//!
//! Changes that matter (conditions' status or reason, replica counts, a trigger's health, the
//! generation) are written at once. Readings alone (trigger values, work in flight, failure
//! counts below the point where the Fallback condition flips, condition messages,
//! `lastActiveTime`) are written at most once per [`ReadingsPolicy::interval`], and only when a
//! value moved beyond the tolerance and asks for a different replica count than the stored
//! value did: an API write per poll per object is what gets an autoscaler throttled by API
//! Priority and Fairness, and noise that changes no decision is not worth one.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scaling::{Measurement, MetricType, recommend};

/// Default of `--status-readings-interval`.
pub const DEFAULT_READINGS_INTERVAL: Duration = Duration::from_secs(300);

/// How readings reach the status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadingsPolicy {
    /// Readings alone are written at most this often; zero keeps readings out of status.
    pub interval: Duration,
    /// Relative change of a trigger value (or work in flight) below which it has not moved.
    pub tolerance: f64,
}

impl Default for ReadingsPolicy {
    fn default() -> Self {
        Self {
            interval: DEFAULT_READINGS_INTERVAL,
            tolerance: crate::scaling::TOLERANCE,
        }
    }
}

impl ReadingsPolicy {
    /// Whether readings are kept out of status altogether (`--status-readings-interval 0`).
    pub fn readings_off(&self) -> bool {
        self.interval.is_zero()
    }
}

/// Fields of a trigger's status that are readings.
const TRIGGER_READINGS: &[&str] = &["lastValue", "inFlight", "message", "numberOfFailures"];
/// Fields of a condition that are readings.
const CONDITION_READINGS: &[&str] = &["message", "lastTransitionTime"];

/// `status` without the fields that move on every poll of an active object.
pub fn without_readings(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(object) = status.as_object_mut() {
        object.remove("lastActiveTime");
        for (list, fields) in [
            ("triggers", TRIGGER_READINGS),
            ("conditions", CONDITION_READINGS),
        ] {
            if let Some(Value::Array(items)) = object.get_mut(list) {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    for field in fields {
                        item.remove(*field);
                    }
                }
            }
        }
    }
    status
}

/// Removes the trigger values from `status` (readings kept out of status).
pub fn strip_values(status: &mut Value) {
    if let Some(Value::Array(triggers)) = status.get_mut("triggers") {
        for trigger in triggers.iter_mut().filter_map(Value::as_object_mut) {
            trigger.remove("lastValue");
            trigger.remove("inFlight");
        }
    }
}

fn moved(old: Option<f64>, new: Option<f64>, tolerance: f64) -> bool {
    match (old, new) {
        (Some(old), Some(new)) => (new - old).abs() > tolerance * old.abs(),
        (None, None) => false,
        _ => true,
    }
}

/// The replica count a trigger's stored value asks for at `current` replicas, by the HPA's
/// formula and tolerance; `None` when the entry has no value or no usable target.
fn asks_for(trigger: &Value, current: u32) -> Option<u32> {
    let value = trigger.get("lastValue").and_then(Value::as_f64)?;
    let target = trigger
        .get("target")
        .and_then(Value::as_f64)
        .filter(|target| *target > 0.0)?;
    let metric_type = match trigger.get("metricType").and_then(Value::as_str) {
        Some("Value") => MetricType::Value,
        _ => MetricType::AverageValue,
    };
    let measurement = Measurement::new(value, target).with_metric_type(metric_type);
    Some(recommend(&measurement, current).replicas)
}

/// Whether a trigger's value moved enough to matter: beyond `tolerance` of the stored value,
/// and (where the entry has a target) to a value that asks for a different replica count
/// at `current` replicas. Noise inside the HPA's tolerance band changes no decision, so it
/// earns no API write however often it is due.
fn value_moved(old: &Value, new: &Value, current: u32, tolerance: f64) -> bool {
    let value = |trigger: &Value| trigger.get("lastValue").and_then(Value::as_f64);
    if !moved(value(old), value(new), tolerance) {
        return false;
    }
    match (asks_for(old, current), asks_for(new, current)) {
        (Some(before), Some(after)) => before != after,
        _ => true,
    }
}

fn triggers(status: &Value) -> &[Value] {
    status
        .get("triggers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Whether any trigger's value or work in flight moved beyond `tolerance` (relative to the
/// stored one; a value must also ask for a different replica count, see [`value_moved`]),
/// or a trigger appeared or went.
pub fn readings_moved(stored: &Value, new: &Value, tolerance: f64) -> bool {
    let current = new
        .get("currentReplicas")
        .and_then(Value::as_u64)
        .map_or(0, |replicas| u32::try_from(replicas).unwrap_or(u32::MAX));
    let (old, new) = (triggers(stored), triggers(new));
    if old.len() != new.len() {
        return true;
    }
    old.iter().zip(new).any(|(old, new)| {
        old.get("name") != new.get("name")
            || value_moved(old, new, current, tolerance)
            || moved(
                old.get("inFlight").and_then(Value::as_f64),
                new.get("inFlight").and_then(Value::as_f64),
                tolerance,
            )
    })
}

/// Whether `new` should be written over `stored`, given when this object's status was last
/// written (`last_write`) and `now`.
pub fn should_write(
    stored: Option<&Value>,
    new: &Value,
    last_write: Option<Instant>,
    now: Instant,
    policy: &ReadingsPolicy,
) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    if stored == new {
        return false;
    }
    if without_readings(stored) != without_readings(new) {
        return true;
    }
    if policy.readings_off() {
        return false;
    }
    let due = last_write.is_none_or(|at| now.saturating_duration_since(at) >= policy.interval);
    due && readings_moved(stored, new, policy.tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steady() -> Value {
        json!({
            "lastActiveTime": "2026-01-01T00:00:00Z",
            "desiredReplicas": 3,
            "currentReplicas": 3,
            "triggers": [{"name": "q", "health": "Happy", "numberOfFailures": 0, "lastValue": 10.0, "inFlight": 1}],
            "conditions": [{"type": "Active", "status": "True", "reason": "Active", "message": "q 10/5"}]
        })
    }

    fn policy(minutes: u64) -> ReadingsPolicy {
        ReadingsPolicy {
            interval: Duration::from_secs(minutes * 60),
            tolerance: 0.1,
        }
    }

    #[test]
    fn readings_alone_wait_for_the_interval_and_a_real_move() {
        let start = Instant::now();
        let stored = steady();
        let mut moved = stored.clone();
        moved["lastActiveTime"] = json!("2026-01-01T00:00:30Z");
        moved["triggers"][0]["lastValue"] = json!(20.0);
        moved["conditions"][0]["message"] = json!("q 20/5");
        let p = policy(5);
        // Within the interval: not written, however far the value moved.
        assert!(!should_write(
            Some(&stored),
            &moved,
            Some(start),
            start + Duration::from_secs(299),
            &p
        ));
        // Due, and moved beyond the tolerance: written.
        assert!(should_write(
            Some(&stored),
            &moved,
            Some(start),
            start + Duration::from_secs(300),
            &p
        ));
        // Due, but within the tolerance (10 -> 10.5) and only the time moved: not written.
        let mut jitter = stored.clone();
        jitter["triggers"][0]["lastValue"] = json!(10.5);
        jitter["lastActiveTime"] = json!("2026-01-01T01:00:00Z");
        assert!(!should_write(
            Some(&stored),
            &jitter,
            Some(start),
            start + Duration::from_secs(3600),
            &p
        ));
        // Never written before (a fresh controller): due at once.
        assert!(should_write(Some(&stored), &moved, None, start, &p));
    }

    #[test]
    fn changes_that_matter_are_written_at_once() {
        let start = Instant::now();
        let stored = steady();
        let p = policy(60);
        let recent = Some(start);
        for change in [
            ("/desiredReplicas", json!(4)),
            ("/currentReplicas", json!(2)),
            ("/triggers/0/health", json!("Failing")),
            ("/conditions/0/status", json!("False")),
            ("/conditions/0/reason", json!("Inactive")),
        ] {
            let mut new = stored.clone();
            *new.pointer_mut(change.0).unwrap() = change.1.clone();
            assert!(
                should_write(Some(&stored), &new, recent, start, &p),
                "{change:?}"
            );
        }
        let mut fallback = stored.clone();
        fallback["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Fallback", "status": "True", "reason": "FallbackActive"}));
        assert!(should_write(Some(&stored), &fallback, recent, start, &p));
        assert!(should_write(None, &stored, recent, start, &p));
        assert!(!should_write(
            Some(&stored),
            &stored.clone(),
            None,
            start,
            &p
        ));
    }

    #[test]
    fn failure_counts_are_readings_until_health_or_fallback_changes() {
        let start = Instant::now();
        let mut stored = steady();
        stored["triggers"][0]["health"] = json!("Failing");
        stored["triggers"][0]["numberOfFailures"] = json!(1);
        let mut more = stored.clone();
        more["triggers"][0]["numberOfFailures"] = json!(2);
        more["triggers"][0]["message"] = json!("still failing");
        assert!(!should_write(
            Some(&stored),
            &more,
            Some(start),
            start,
            &policy(5)
        ));
    }

    #[test]
    fn interval_zero_keeps_readings_out() {
        let start = Instant::now();
        let stored = steady();
        let mut moved = stored.clone();
        moved["triggers"][0]["lastValue"] = json!(1000.0);
        let off = policy(0);
        assert!(off.readings_off());
        assert!(!should_write(
            Some(&stored),
            &moved,
            None,
            start + Duration::from_secs(86_400),
            &off
        ));
        let mut stripped = moved.clone();
        strip_values(&mut stripped);
        assert!(stripped["triggers"][0].get("lastValue").is_none());
        assert!(stripped["triggers"][0].get("inFlight").is_none());
        assert_eq!(stripped["triggers"][0]["health"], "Happy");
    }

    #[test]
    fn noise_inside_the_hpa_band_is_never_written() {
        let start = Instant::now();
        let p = policy(5);
        let at = |value: f64| {
            let mut status = steady();
            status["triggers"][0]["lastValue"] = json!(value);
            status["triggers"][0]["target"] = json!(1.0);
            status["triggers"][0]["metricType"] = json!("AverageValue");
            status
        };
        // 2.8 -> 3.2 is 14 % of the stored value, but at 3 replicas with target 1 both ask
        // for 3 replicas: not written, even hours after the last write.
        assert!(!should_write(
            Some(&at(2.8)),
            &at(3.2),
            Some(start),
            start + Duration::from_secs(7200),
            &p
        ));
        // 2.8 -> 3.5 asks for 4: written once due.
        assert!(should_write(
            Some(&at(2.8)),
            &at(3.5),
            Some(start),
            start + Duration::from_secs(300),
            &p
        ));
        // Far beyond what max replicas allows still moved: 100 asks for 100, 150 for 150.
        assert!(readings_moved(&at(100.0), &at(150.0), 0.1));
        // Within the relative tolerance: not moved, though 100 and 104 ask for different counts.
        assert!(!readings_moved(&at(100.0), &at(104.0), 0.1));
        // A Value metric compares value and target whatever the replica count: 40 -> 48
        // against 40 is outside the band (ratio 1.2) and asks for 4 replicas instead of 3.
        let value_type = |value: f64| {
            let mut status = at(value);
            status["triggers"][0]["target"] = json!(40.0);
            status["triggers"][0]["metricType"] = json!("Value");
            status
        };
        assert!(readings_moved(&value_type(40.0), &value_type(48.0), 0.1));
        assert!(!readings_moved(&value_type(38.0), &value_type(43.0), 0.1));
    }

    #[test]
    fn a_value_from_zero_or_a_new_trigger_has_moved() {
        let mut old = steady();
        old["triggers"][0]["lastValue"] = json!(0.0);
        let mut new = old.clone();
        new["triggers"][0]["lastValue"] = json!(0.01);
        assert!(readings_moved(&old, &new, 0.1));
        let mut more = old.clone();
        more["triggers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "r"}));
        assert!(readings_moved(&old, &more, 0.1));
        assert!(!readings_moved(&old, &old, 0.1));
    }
}
