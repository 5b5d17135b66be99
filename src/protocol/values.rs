//! How a host reads the numbers a scaler sends. A value or target that is NaN or infinite is
//! refused ([`NotFinite`]): the answer is broken, so the poll fails (it counts toward fallback
//! and the replica count holds) instead of reading as 0, which would scale in. Negative numbers
//! read as 0. Over KEDA's protocol the float field wins when it is > 0, otherwise the
//! deprecated integer field is read.

use crate::proto::keda;

/// A number a scaler sent that is NaN or infinite, named by its field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotFinite {
    /// The protocol field, e.g. `value` or `metricValueFloat`.
    pub field: &'static str,
    /// What was sent.
    pub value: f64,
}

impl std::fmt::Display for NotFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}, not a finite number", self.field, self.value)
    }
}

impl std::error::Error for NotFinite {}

/// `value` when it is finite; NaN and infinities are refused. For targets, whose other limits
/// the engine checks (a target must be above 0).
pub fn finite(field: &'static str, value: f64) -> Result<f64, NotFinite> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(NotFinite { field, value })
    }
}

/// Reads one measured number off the wire: NaN and infinities are refused, negatives read
/// as 0.
pub fn finite_value(field: &'static str, value: f64) -> Result<f64, NotFinite> {
    finite(field, value).map(|value| value.max(0.0))
}

/// Clamps a number to a finite, non-negative one (NaN, ±inf and negatives become 0). What a
/// scaler may do with what its source reports before sending it; a host refuses a non-finite
/// number instead ([`finite_value`]).
pub fn sanitize_value(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

fn float_wins(field: &'static str, float: f64, int: i64) -> Result<f64, NotFinite> {
    let float = finite_value(field, float)?;
    if float > 0.0 {
        Ok(float)
    } else {
        // i64 -> f64 loses precision only past 2^53 messages, far beyond any real queue.
        #[allow(clippy::cast_precision_loss)]
        Ok(sanitize_value(int as f64))
    }
}

/// The value of a KEDA `MetricValue`.
pub fn keda_metric_value(value: &keda::MetricValue) -> Result<f64, NotFinite> {
    float_wins(
        "metricValueFloat",
        value.metric_value_float,
        value.metric_value,
    )
}

/// The target of a KEDA `MetricSpec`.
pub fn keda_target_value(spec: &keda::MetricSpec) -> Result<f64, NotFinite> {
    float_wins("targetSizeFloat", spec.target_size_float, spec.target_size)
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
        assert_eq!(keda_metric_value(&metric(2.5, 7)), Ok(2.5));
    }

    #[test]
    fn int_used_when_float_is_zero_or_negative() {
        assert_eq!(keda_metric_value(&metric(0.0, 7)), Ok(7.0));
        assert_eq!(keda_metric_value(&metric(-1.0, 7)), Ok(7.0));
    }

    #[test]
    fn negatives_read_as_zero() {
        assert_eq!(keda_metric_value(&metric(0.0, -3)), Ok(0.0));
        assert_eq!(finite_value("value", -2.0), Ok(0.0));
        assert_eq!(
            finite("target", -2.0),
            Ok(-2.0),
            "a target's sign is the engine's"
        );
        assert_eq!(sanitize_value(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn non_finite_numbers_are_refused_not_read_as_zero() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let refused = keda_metric_value(&metric(bad, 7)).expect_err("refused");
            assert_eq!(refused.field, "metricValueFloat");
            assert!(
                refused.to_string().ends_with("not a finite number"),
                "{refused}"
            );
            assert!(finite_value("value", bad).is_err());
            assert!(finite("target", bad).is_err());
        }
        assert_eq!(
            finite_value("target", f64::NAN).unwrap_err().to_string(),
            "target is NaN, not a finite number"
        );
    }

    #[test]
    fn target_follows_the_same_rule() {
        let spec = |float: f64| keda::MetricSpec {
            metric_name: "m".into(),
            target_size: 5,
            target_size_float: float,
        };
        assert_eq!(keda_target_value(&spec(0.0)), Ok(5.0));
        assert_eq!(
            keda_target_value(&spec(f64::INFINITY)).unwrap_err().field,
            "targetSizeFloat"
        );
    }
}
