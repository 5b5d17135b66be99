//! The 0↔1 side: where an inactive object rests, and when the cooldown allows it to get there.

use std::time::{Duration, SystemTime};

use super::spec::EngineSpec;
use super::state::EngineState;

/// Whether the cooldown before resting has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cooldown {
    /// The object may go to its rest count.
    Elapsed {
        /// The object was never active: the initial cooldown applied.
        initial: bool,
    },
    /// Not yet.
    Remaining {
        /// Time left.
        left: Duration,
        /// The object was never active: the initial cooldown applies.
        initial: bool,
    },
}

impl Cooldown {
    /// Whether the cooldown has passed.
    pub fn elapsed(self) -> bool {
        matches!(self, Cooldown::Elapsed { .. })
    }
}

/// The cooldown state: from the last activity, or from creation for an object never active.
pub fn cooldown(spec: &EngineSpec, state: &EngineState, now: SystemTime) -> Cooldown {
    let (start, period, initial) = match state.last_active {
        Some(last_active) => (last_active, spec.cooldown_period, false),
        None => (
            state.created_at.unwrap_or(now),
            spec.initial_cooldown_period,
            true,
        ),
    };
    let deadline = start.checked_add(period).unwrap_or(start);
    match deadline.duration_since(now) {
        Ok(left) if !left.is_zero() => Cooldown::Remaining { left, initial },
        _ => Cooldown::Elapsed { initial },
    }
}

/// Seconds as text: "300s".
pub fn seconds(duration: Duration) -> String {
    let rounded = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    format!("{rounded}s")
}
