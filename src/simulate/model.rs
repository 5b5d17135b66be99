//! The simulation itself: a pure function from a series and settings to what the engine did.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::series::Series;
use crate::scaling::{
    EngineSpec, EngineState, Measurement, MetricType, Reading, ReadingErrorKind, decide,
};

/// How one trigger is measured in the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerModel {
    /// Trigger name (a series column).
    pub name: String,
    /// Target per replica (AverageValue) or overall (Value).
    pub target: f64,
    /// The trigger is active when the value is above this.
    pub activation: f64,
    /// How value and target compare.
    pub metric_type: MetricType,
}

/// The consumption model: the series gives arrivals and replicas drain a queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Consumption {
    /// Messages one ready replica processes per second.
    pub per_replica_per_second: f64,
    /// Time from a replica being added to it consuming.
    pub startup_delay: Duration,
}

/// Everything a simulation needs besides the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The engine's spec.
    pub spec: EngineSpec,
    /// One model per trigger, in the spec's order.
    pub triggers: Vec<TriggerModel>,
    /// Replicas at time 0.
    pub initial_replicas: u32,
    /// Time between decisions (whole seconds, at least 1).
    pub poll: Duration,
    /// Simulated time span.
    pub duration: Duration,
    /// Queue model; `None` means the series gives the metric values directly.
    pub consumption: Option<Consumption>,
}

/// The state of the world after one simulated second.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds from the start.
    pub time: u64,
    /// Replicas after this second's decision.
    pub replicas: u32,
    /// Replicas consuming (equal to `replicas` without a startup delay).
    pub ready: u32,
    /// The value each trigger reports; `None` while its scaler fails.
    pub values: Vec<Option<f64>>,
    /// With `advanced.scalingModifiers`: the formula's result at the last decision; `None`
    /// without a formula or while it cannot be evaluated.
    pub composite: Option<f64>,
}

/// One decision of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Poll {
    /// Seconds from the start.
    pub time: u64,
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
    /// The engine's reason.
    pub reason: String,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// One sample per simulated second.
    pub samples: Vec<Sample>,
    /// Every decision.
    pub polls: Vec<Poll>,
}

impl Outcome {
    /// The decisions that changed the replica count.
    pub fn changes(&self) -> impl Iterator<Item = &Poll> {
        self.polls.iter().filter(|poll| poll.from != poll.to)
    }

    /// Replica-seconds used (what the run would cost).
    pub fn replica_seconds(&self) -> u64 {
        self.samples
            .iter()
            .map(|sample| u64::from(sample.replicas))
            .sum()
    }
}

/// Why a simulation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A trigger of the object has no column in the series.
    #[error("trigger {trigger:?} has no column in the series (columns: {columns})")]
    MissingColumn {
        /// The trigger.
        trigger: String,
        /// The series' columns.
        columns: String,
    },
}

fn instant(second: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(second)
}

/// Replays `series` through the engine, one second at a time, deciding every `poll`.
///
/// Without consumption each cell is the metric value from its row's time until the next row.
/// With consumption each cell is an arrival rate (messages per second) into one queue per
/// trigger; every second the queue gains the arrivals and loses up to
/// `ready replicas × per_replica_per_second`, and the trigger reports the queue depth. An
/// empty cell makes the trigger's scaler fail; with consumption the arrivals continue at the
/// last known rate meanwhile.
pub fn simulate(simulation: &Simulation, series: &Series) -> Result<Outcome, ModelError> {
    let columns = simulation
        .triggers
        .iter()
        .map(|trigger| {
            series
                .column(&trigger.name)
                .ok_or_else(|| ModelError::MissingColumn {
                    trigger: trigger.name.clone(),
                    columns: series.columns.join(", "),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let poll = simulation.poll.as_secs().max(1);
    let mut replicas = simulation.initial_replicas;
    // When each running replica starts consuming; the newest are removed first.
    let mut ready_at: Vec<u64> = vec![0; replicas as usize];
    let mut depths = vec![0.0f64; columns.len()];
    let mut last_rates = vec![0.0f64; columns.len()];
    let mut state = EngineState::created(instant(0));
    let mut samples = Vec::new();
    let mut polls = Vec::new();
    let mut composite = None;
    for second in 0..=simulation.duration.as_secs() {
        let row = series.row_at(second as f64);
        let ready = ready_at.iter().filter(|at| **at <= second).count() as u32;
        let values: Vec<Option<f64>> = match &simulation.consumption {
            None => columns.iter().map(|column| row.values[*column]).collect(),
            Some(consumption) => columns
                .iter()
                .enumerate()
                .map(|(index, column)| {
                    let cell = row.values[*column];
                    if let Some(rate) = cell {
                        last_rates[index] = rate;
                    }
                    let capacity = f64::from(ready) * consumption.per_replica_per_second;
                    depths[index] = (depths[index] + last_rates[index] - capacity).max(0.0);
                    cell.map(|_| depths[index])
                })
                .collect(),
        };
        if second % poll == 0 {
            let readings: Vec<Reading> = simulation
                .triggers
                .iter()
                .zip(&values)
                .map(|(trigger, value)| match value {
                    Some(value) => Reading::ok(
                        trigger.name.clone(),
                        Measurement::new(*value, trigger.target)
                            .with_activation(trigger.activation)
                            .with_metric_type(trigger.metric_type),
                    ),
                    None => Reading::error(
                        trigger.name.clone(),
                        ReadingErrorKind::Unavailable,
                        "no value in the series",
                    ),
                })
                .collect();
            let decision = decide(
                &simulation.spec,
                replicas,
                &readings,
                &state,
                instant(second),
            );
            polls.push(Poll {
                time: second,
                from: replicas,
                to: decision.desired_replicas,
                reason: decision.reason.clone(),
            });
            let delay = simulation
                .consumption
                .map(|consumption| consumption.startup_delay.as_secs())
                .unwrap_or(0);
            let desired = decision.desired_replicas as usize;
            while ready_at.len() < desired {
                ready_at.push(second + delay);
            }
            ready_at.truncate(desired);
            replicas = decision.desired_replicas;
            composite = decision
                .formula
                .as_ref()
                .and_then(|formula| formula.outcome.as_ref().ok())
                .map(Measurement::clean_value);
            state = decision.state;
        }
        samples.push(Sample {
            time: second,
            replicas,
            ready: ready_at.iter().filter(|at| **at <= second).count() as u32,
            values,
            composite,
        });
    }
    Ok(Outcome { samples, polls })
}
