//! What the caller measured for each trigger at one poll.

pub use crate::spec::MetricType;

/// One trigger's outcome at one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The trigger's effective name.
    pub trigger: String,
    /// The measurement, or why there is none.
    pub outcome: Result<Measurement, ReadingError>,
}

/// A successful measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The metric value (NaN, infinite or negative values count as 0).
    pub value: f64,
    /// The target per replica (AverageValue) or overall (Value); must be > 0.
    pub target: f64,
    /// How value and target compare.
    pub metric_type: MetricType,
    /// Whether the trigger is active (value above its activation threshold, strictly).
    pub active: bool,
    /// Whether `active` comes from a push (StreamIsActive) since the last poll, which read an
    /// inactive value: `value` is that poll's, and the reason says a push activated it.
    pub active_by_push: bool,
    /// Work taken but not finished (e.g. unacknowledged messages), when the scaler knows.
    pub in_flight: Option<u64>,
    /// The activation threshold the scaler declared, when it declared one (shown, not decided
    /// on: `active` already carries the scaler's verdict).
    pub activation: Option<f64>,
}

/// Why a trigger has no measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingError {
    /// The kind of failure.
    pub kind: ReadingErrorKind,
    /// For people; must not contain secrets.
    pub message: String,
}

/// Kinds of failed poll. All count towards fallback; none ever scales to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingErrorKind {
    /// The trigger's metadata or credentials are wrong.
    InvalidMetadata,
    /// The measured thing does not exist.
    NotFound,
    /// The scaler or the source cannot be reached.
    Unavailable,
    /// The measurement did not finish in time.
    Deadline,
    /// The source rejected the credentials.
    Unauthenticated,
    /// Anything else.
    Other,
}

impl ReadingErrorKind {
    /// A short lowercase label for messages.
    pub fn label(self) -> &'static str {
        match self {
            ReadingErrorKind::InvalidMetadata => "invalid metadata",
            ReadingErrorKind::NotFound => "not found",
            ReadingErrorKind::Unavailable => "unavailable",
            ReadingErrorKind::Deadline => "deadline exceeded",
            ReadingErrorKind::Unauthenticated => "unauthenticated",
            ReadingErrorKind::Other => "error",
        }
    }
}

impl std::fmt::Display for ReadingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.kind.label())
        } else {
            write!(f, "{}: {}", self.kind.label(), self.message)
        }
    }
}

impl Measurement {
    /// An AverageValue measurement, active when `value > 0`.
    pub fn new(value: f64, target: f64) -> Self {
        Measurement {
            value,
            target,
            metric_type: MetricType::AverageValue,
            active: value > 0.0,
            active_by_push: false,
            in_flight: None,
            activation: None,
        }
    }

    /// Sets active from an activation threshold: active when `value > activation`.
    pub fn with_activation(mut self, activation: f64) -> Self {
        self.active = self.value > activation;
        self.activation = Some(activation);
        self
    }

    /// Active because a push said so since the last poll; when that poll read it active
    /// already, nothing changes.
    pub fn activated_by_push(mut self) -> Self {
        if !self.active {
            self.active = true;
            self.active_by_push = true;
        }
        self
    }

    /// Sets the metric type.
    pub fn with_metric_type(mut self, metric_type: MetricType) -> Self {
        self.metric_type = metric_type;
        self
    }

    /// Sets the in-flight count.
    pub fn with_in_flight(mut self, in_flight: u64) -> Self {
        self.in_flight = Some(in_flight);
        self
    }

    /// The value with NaN, infinities and negatives mapped to 0.
    pub fn clean_value(&self) -> f64 {
        if self.value.is_finite() && self.value > 0.0 {
            self.value
        } else {
            0.0
        }
    }
}

impl Reading {
    /// A successful reading.
    pub fn ok(trigger: impl Into<String>, measurement: Measurement) -> Self {
        Reading {
            trigger: trigger.into(),
            outcome: Ok(measurement),
        }
    }

    /// A failed reading.
    pub fn error(
        trigger: impl Into<String>,
        kind: ReadingErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Reading {
            trigger: trigger.into(),
            outcome: Err(ReadingError {
                kind,
                message: message.into(),
            }),
        }
    }
}
