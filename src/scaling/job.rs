//! How many Jobs a ScaledJob starts on one poll: pure, from the triggers' readings, the jobs
//! already unfinished and the spec's bounds and strategy.
//!
//! Counts follow these definitions, in both hosts:
//! - `running`: jobs created and not finished (pending ones included);
//! - `pending`: the part of `running` not yet started (Kubernetes: no pod running yet).
//!
//! Demand: every trigger that answered gives `ceil(value / target)` jobs (0 when it is not
//! active); `multipleScalersCalculation` combines them (max, min, avg rounded up, sum) and
//! `maxReplicaCount` caps the result (`max_scale`). The strategy turns demand into new jobs;
//! whatever it says, the result is never negative and never takes `running` above
//! `maxReplicaCount`, and at least `minReplicaCount` jobs are kept unfinished.

use serde::{Deserialize, Serialize};

/// How the strategy turns demand into new jobs (`scalingStrategy.strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub enum JobStrategy {
    /// `max_scale - running`: every unfinished job is assumed to be taking an item.
    #[default]
    Default,
    /// `max_scale - deduction - running * percentage`: for jobs that take items late, or
    /// several at once.
    Custom {
        /// `customScalingQueueLengthDeduction`.
        deduction: u32,
        /// `customScalingRunningJobPercentage` (0.0 to 1.0 and above).
        running_percentage: f64,
    },
    /// For queues whose length excludes items already taken: `max - running` when demand
    /// plus running would exceed the maximum, else `max_scale - pending`.
    Accurate,
    /// Fills every free slot up to the demand: `min(max_scale, max - running)`.
    Eager,
}

/// How several triggers' demands combine (`multipleScalersCalculation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Combine {
    /// The largest demand.
    #[default]
    Max,
    /// The smallest demand.
    Min,
    /// The mean demand, rounded up.
    Avg,
    /// The sum of the demands.
    Sum,
}

/// One trigger's last reading, summed over its metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobReading {
    /// Queue length (or backlog) the scaler reported.
    pub value: f64,
    /// Items per job (`targetSize`); values <= 0 read as 1.
    pub target: f64,
    /// Whether the trigger is active (value above its activation threshold).
    pub active: bool,
}

impl JobReading {
    /// An active reading of `value` items at `target` per job.
    pub fn new(value: f64, target: f64) -> Self {
        Self {
            value,
            target,
            active: value > 0.0,
        }
    }

    /// Jobs this reading asks for: `ceil(value / target)`, 0 when inactive.
    pub fn demand(&self) -> u64 {
        if !self.active || !self.value.is_finite() || self.value <= 0.0 {
            return 0;
        }
        let target = if self.target.is_finite() && self.target > 0.0 {
            self.target
        } else {
            1.0
        };
        let jobs = (self.value / target).ceil();
        if jobs >= u64::MAX as f64 {
            u64::MAX
        } else {
            jobs as u64
        }
    }
}

/// What the decision needs from the spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobLimits {
    /// `minReplicaCount`: unfinished jobs kept at least.
    pub min: u32,
    /// `maxReplicaCount`: unfinished jobs at most.
    pub max: u32,
    /// The strategy.
    pub strategy: JobStrategy,
    /// How triggers combine.
    pub combine: Combine,
}

/// Jobs unfinished now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunningJobs {
    /// Created and not finished (pending included).
    pub running: u32,
    /// Not started yet (a subset of `running`).
    pub pending: u32,
}

/// The decision of one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDecision {
    /// Jobs to create now.
    pub create: u32,
    /// The combined demand, capped at `max` (`max_scale`).
    pub max_scale: u32,
    /// Whether any trigger is active.
    pub active: bool,
    /// One line for logs and events.
    pub reason: String,
}

/// Combines the readings of the triggers that answered (failed ones are left out by the
/// caller) into the capped demand. No readings: no demand.
pub fn max_scale(readings: &[JobReading], limits: &JobLimits) -> u32 {
    let demands = readings.iter().map(JobReading::demand);
    let combined = match limits.combine {
        Combine::Max => demands.max().unwrap_or(0),
        Combine::Min => demands.min().unwrap_or(0),
        Combine::Sum => demands.fold(0u64, u64::saturating_add),
        Combine::Avg => {
            let count = readings.len() as u64;
            let total = demands.fold(0u64, u64::saturating_add);
            total.div_ceil(count.max(1))
        }
    };
    u32::try_from(combined).unwrap_or(u32::MAX).min(limits.max)
}

/// How many jobs to create now. `paused`: none.
pub fn decide_jobs(
    readings: &[JobReading],
    jobs: RunningJobs,
    limits: &JobLimits,
    paused: bool,
) -> JobDecision {
    let active = readings.iter().any(|reading| reading.active);
    let max_scale = max_scale(readings, limits);
    let running = i64::from(jobs.running);
    let pending = i64::from(jobs.pending.min(jobs.running));
    let scale = i64::from(max_scale);
    let max = i64::from(limits.max);
    let wanted = match limits.strategy {
        JobStrategy::Default => scale - running,
        JobStrategy::Custom {
            deduction,
            running_percentage,
        } => {
            let percentage = if running_percentage.is_finite() {
                running_percentage.max(0.0)
            } else {
                0.0
            };
            // Truncated like an integer conversion: 2 running at 50 % deduct 1.
            let by_running = (running as f64 * percentage) as i64;
            scale - i64::from(deduction) - by_running
        }
        JobStrategy::Accurate => {
            if scale + running > max {
                max - running
            } else {
                scale - pending
            }
        }
        JobStrategy::Eager => scale.min(max - running),
    };
    let room = (max - running).max(0);
    let floor = (i64::from(limits.min.min(limits.max)) - running).max(0);
    let create = if paused {
        0
    } else {
        wanted.max(floor).clamp(0, room)
    };
    let create = u32::try_from(create).unwrap_or(0);
    let reason = if paused {
        "paused: no new jobs".to_owned()
    } else if create == 0 {
        format!(
            "no new jobs: demand {max_scale}, {} running ({} pending), max {}",
            jobs.running, jobs.pending, limits.max
        )
    } else {
        format!(
            "{create} new job{}: demand {max_scale}, {} running ({} pending), max {}",
            if create == 1 { "" } else { "s" },
            jobs.running,
            jobs.pending,
            limits.max
        )
    };
    JobDecision {
        create,
        max_scale,
        active,
        reason,
    }
}

#[cfg(test)]
#[path = "tests/jobs.rs"]
mod tests;
