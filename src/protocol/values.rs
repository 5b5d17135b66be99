//! KEDA's rule for reading numbers off the wire: the float field wins when it is > 0,
//! otherwise the deprecated integer field; NaN, infinities and negatives read as 0.

use crate::proto::keda;

/// Clamps a reading to a finite, non-negative number (NaN, ±inf and negatives become 0).
pub fn sanitize_value(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

fn float_wins(float: f64, int: i64) -> f64 {
    if float > 0.0 && float.is_finite() {
        float
    } else {
        // i64 -> f64 loses precision only past 2^53 messages, far beyond any real queue.
        #[allow(clippy::cast_precision_loss)]
        sanitize_value(int as f64)
    }
}

/// The value of a KEDA `MetricValue`.
pub fn keda_metric_value(value: &keda::MetricValue) -> f64 {
    float_wins(value.metric_value_float, value.metric_value)
}

/// The target of a KEDA `MetricSpec`.
pub fn keda_target_value(spec: &keda::MetricSpec) -> f64 {
    float_wins(spec.target_size_float, spec.target_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(float: f64, int: i64) -> keda::MetricValue {
        keda::MetricValue {
            metric_name: "m".into(),
            metric_value: int,
            metric_value_float: float,
        }
    }

    #[test]
    fn float_wins_when_positive() {
        assert_eq!(keda_metric_value(&metric(2.5, 7)), 2.5);
    }

    #[test]
    fn int_used_when_float_is_zero_or_bad() {
        assert_eq!(keda_metric_value(&metric(0.0, 7)), 7.0);
        assert_eq!(keda_metric_value(&metric(-1.0, 7)), 7.0);
        assert_eq!(keda_metric_value(&metric(f64::NAN, 7)), 7.0);
    }

    #[test]
    fn negatives_and_non_finite_read_as_zero() {
        assert_eq!(keda_metric_value(&metric(0.0, -3)), 0.0);
        assert_eq!(keda_metric_value(&metric(f64::INFINITY, 0)), 0.0);
        assert_eq!(sanitize_value(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn target_follows_the_same_rule() {
        let spec = keda::MetricSpec {
            metric_name: "m".into(),
            target_size: 5,
            target_size_float: 0.0,
        };
        assert_eq!(keda_target_value(&spec), 5.0);
    }
}
