//! The HPA's replica formula for one metric, with its 10 % tolerance.

use super::readings::{Measurement, MetricType};

/// No change while the usage ratio is within this distance of 1 (the HPA default).
pub const TOLERANCE: f64 = 0.1;

/// Guards `ceil` against float noise such as 30.000000000000004 / 10.
const EPSILON: f64 = 1e-9;

/// What one metric asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRecommendation {
    /// Replicas the metric asks for (unclamped).
    pub replicas: u32,
    /// The usage ratio was within tolerance, so the current count was kept.
    pub within_tolerance: bool,
}

fn ceil_to_u32(value: f64) -> u32 {
    let ceiled = (value - EPSILON).ceil();
    if ceiled <= 0.0 {
        0
    } else if ceiled >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        ceiled as u32
    }
}

/// Replicas for one metric at `current` replicas (`current` 0 is computed as from 1).
///
/// AverageValue: `ceil(value / target)`, unchanged while `value / (target * current)` is
/// within tolerance. Value: `ceil(current * value / target)`, unchanged while
/// `value / target` is within tolerance.
pub fn recommend(measurement: &Measurement, current: u32) -> MetricRecommendation {
    let value = measurement.clean_value();
    let target = measurement.target;
    let base = f64::from(current.max(1));
    let (ratio, replicas) = match measurement.metric_type {
        MetricType::AverageValue => (value / (target * base), ceil_to_u32(value / target)),
        MetricType::Value => (value / target, ceil_to_u32(base * value / target)),
    };
    if current > 0 && (ratio - 1.0).abs() <= TOLERANCE {
        MetricRecommendation {
            replicas: current,
            within_tolerance: true,
        }
    } else {
        MetricRecommendation {
            replicas,
            within_tolerance: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_value_divides_by_target() {
        let recommendation = recommend(&Measurement::new(68.0, 10.0), 3);
        assert_eq!(recommendation.replicas, 7);
        assert!(!recommendation.within_tolerance);
        assert_eq!(recommend(&Measurement::new(30.0, 10.0), 1).replicas, 3);
    }

    #[test]
    fn tolerance_keeps_current() {
        // 32 / (10 * 3) = 1.067: within 10 %.
        let recommendation = recommend(&Measurement::new(32.0, 10.0), 3);
        assert_eq!(recommendation.replicas, 3);
        assert!(recommendation.within_tolerance);
        // 34 / 30 = 1.13: outside.
        assert_eq!(recommend(&Measurement::new(34.0, 10.0), 3).replicas, 4);
    }

    #[test]
    fn value_scales_current() {
        let cpu = Measurement::new(80.0, 40.0).with_metric_type(MetricType::Value);
        assert_eq!(recommend(&cpu, 3).replicas, 6);
        let calm = Measurement::new(42.0, 40.0).with_metric_type(MetricType::Value);
        assert_eq!(recommend(&calm, 3).replicas, 3);
    }

    #[test]
    fn bad_values_count_as_zero() {
        assert_eq!(recommend(&Measurement::new(f64::NAN, 10.0), 4).replicas, 0);
        assert_eq!(recommend(&Measurement::new(-5.0, 10.0), 4).replicas, 0);
        assert_eq!(
            recommend(&Measurement::new(f64::INFINITY, 10.0), 4).replicas,
            0
        );
    }
}
