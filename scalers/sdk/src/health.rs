//! gRPC health per broker. A scaler pod is shared by many triggers, often of many tenants, so
//! one trigger's broker must not decide the health everyone's readiness probe reads:
//!
//! - each broker a trigger measures has its own health service, `broker:<key>` (the key is
//!   [`crate::Scaler::broker_key`], which carries no credential);
//! - the scaler's own services (`""`, `ebb.scaler.v1.Scaler`, `externalscaler.ExternalScaler`)
//!   are NOT_SERVING only while every broker that has answered before is unreachable now.
//!   A broker that never answered (a typo, a dead address) is unknown and never counts: its
//!   triggers get UNAVAILABLE in their RPC answers, which is where per-trigger failures belong.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::ScalerError;

/// gRPC service names whose health describes the scaler as a whole.
pub(crate) const SERVICE_NAMES: [&str; 3] =
    ["", "ebb.scaler.v1.Scaler", "externalscaler.ExternalScaler"];

/// Prefix of per-broker health service names.
pub const BROKER_SERVICE_PREFIX: &str = "broker:";

/// Brokers tracked at most; triggers come from users, so the table must be bounded.
const MAX_BROKERS: usize = 256;

/// A broker no trigger measured for this long is forgotten (its trigger was deleted).
const BROKER_TTL: Duration = Duration::from_secs(600);

/// What one measurement says about its broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The broker answered (with a value, or with "no such queue", "bad credentials").
    Answered,
    /// The broker could not be reached.
    Unreachable,
    /// Nothing is known about the broker (bad metadata, an internal error, a deadline).
    Unknown,
}

impl Outcome {
    /// What a measurement's result says about the broker.
    pub fn of<T>(result: &Result<T, ScalerError>) -> Self {
        match result {
            Ok(_)
            | Err(
                ScalerError::NotFound(_)
                | ScalerError::Unauthenticated(_)
                | ScalerError::PermissionDenied(_)
                | ScalerError::Throttled(_),
            ) => Self::Answered,
            Err(error) if error.source_down() => Self::Unreachable,
            Err(_) => Self::Unknown,
        }
    }
}

#[derive(Debug)]
struct Broker {
    up: bool,
    ever_up: bool,
    seen: Instant,
}

#[derive(Debug, Default)]
struct State {
    brokers: HashMap<String, Broker>,
    /// Last overall health published.
    overall: Option<bool>,
}

impl State {
    /// The scaler is serving unless every broker that ever answered is unreachable now.
    fn serving(&self) -> bool {
        let mut known = self
            .brokers
            .values()
            .filter(|broker| broker.ever_up)
            .peekable();
        known.peek().is_none() || known.any(|broker| broker.up)
    }
}

/// Health bookkeeping of a served scaler.
pub(crate) struct BrokerHealth {
    reporter: HealthReporter,
    state: Mutex<State>,
}

impl BrokerHealth {
    /// Health with every scaler service SERVING.
    pub async fn new(reporter: HealthReporter) -> Self {
        for name in SERVICE_NAMES {
            reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        Self {
            reporter,
            state: Mutex::new(State::default()),
        }
    }

    /// Records what a measurement said about `broker` and publishes any change.
    pub async fn record(&self, broker: &str, outcome: Outcome) {
        if outcome == Outcome::Unknown {
            return;
        }
        let up = outcome == Outcome::Answered;
        let now = Instant::now();
        let mut state = self.state.lock().await;
        let mut forgotten = Vec::new();
        if !state.brokers.contains_key(broker) {
            state.brokers.retain(|key, entry| {
                let keep = now.duration_since(entry.seen) < BROKER_TTL;
                if !keep {
                    forgotten.push(key.clone());
                }
                keep
            });
            if state.brokers.len() >= MAX_BROKERS {
                // Forget the broker least recently measured, preferring ones never reached.
                if let Some(oldest) = state
                    .brokers
                    .iter()
                    .min_by_key(|(_, entry)| (entry.ever_up, entry.seen))
                    .map(|(key, _)| key.clone())
                {
                    state.brokers.remove(&oldest);
                    forgotten.push(oldest);
                }
            }
        }
        let entry = state.brokers.entry(broker.to_owned()).or_insert(Broker {
            up: !up,
            ever_up: false,
            seen: now,
        });
        let changed = entry.up != up;
        entry.up = up;
        entry.ever_up |= up;
        entry.seen = now;
        for key in forgotten {
            // The reporter is a cheap handle on shared state; clearing needs an owned one.
            self.reporter
                .clone()
                .clear_service_status(&format!("{BROKER_SERVICE_PREFIX}{key}"))
                .await;
        }
        if changed && !broker.is_empty() {
            self.reporter
                .set_service_status(&format!("{BROKER_SERVICE_PREFIX}{broker}"), status(up))
                .await;
        }
        let serving = state.serving();
        if state.overall == Some(serving) {
            return;
        }
        if state.overall.is_some() || !serving {
            if serving {
                tracing::info!("a known broker is reachable again: health is SERVING");
            } else {
                tracing::warn!("every known broker is unreachable: health is NOT_SERVING");
            }
        }
        state.overall = Some(serving);
        for name in SERVICE_NAMES {
            self.reporter
                .set_service_status(name, status(serving))
                .await;
        }
    }
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(brokers: &[(bool, bool)]) -> State {
        State {
            brokers: brokers
                .iter()
                .enumerate()
                .map(|(index, &(up, ever_up))| {
                    let broker = Broker {
                        up,
                        ever_up,
                        seen: Instant::now(),
                    };
                    (index.to_string(), broker)
                })
                .collect(),
            overall: None,
        }
    }

    #[test]
    fn only_brokers_that_answered_before_count() {
        assert!(state(&[]).serving());
        assert!(state(&[(false, false)]).serving(), "never reached: unknown");
        assert!(
            !state(&[(false, true)]).serving(),
            "the one known broker is down"
        );
        assert!(
            state(&[(false, true), (true, true)]).serving(),
            "one of two"
        );
        assert!(!state(&[(false, true), (false, false)]).serving());
    }

    #[test]
    fn outcomes_of_results() {
        let ok: Result<(), ScalerError> = Ok(());
        assert_eq!(Outcome::of(&ok), Outcome::Answered);
        let down: Result<(), _> = Err(ScalerError::Unavailable("x".into()));
        assert_eq!(Outcome::of(&down), Outcome::Unreachable);
        let missing: Result<(), _> = Err(ScalerError::NotFound("q".into()));
        assert_eq!(Outcome::of(&missing), Outcome::Answered);
        let bad: Result<(), _> = Err(ScalerError::invalid("host", "x"));
        assert_eq!(Outcome::of(&bad), Outcome::Unknown);
    }
}
