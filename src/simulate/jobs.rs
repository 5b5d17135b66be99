//! `ebb simulate` for a ScaledJob: the recorded series (each cell the queue length a trigger's
//! scaler reported) replayed through [`decide_jobs`] under every strategy side by side, so
//! strategies can be compared on the same data. Each job runs `job_duration` and then
//! finishes; the series is not changed by the jobs (it is what was recorded).

use std::fmt::Write as _;
use std::time::Duration;

use super::series::Series;
use crate::scaling::{JobLimits, JobReading, JobStrategy, RunningJobs, decide_jobs};
use crate::spec::ScaledJobSpec;

/// One strategy's run.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyRun {
    /// Its name, as written in `scalingStrategy.strategy`.
    pub name: &'static str,
    /// Jobs created at each poll.
    pub created: Vec<u32>,
    /// Unfinished jobs at each poll, after creating.
    pub running: Vec<u32>,
}

impl StrategyRun {
    /// Jobs created in total.
    pub fn total(&self) -> u32 {
        self.created.iter().sum()
    }
}

/// The simulation of a ScaledJob.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutcome {
    /// Seconds of each poll.
    pub times: Vec<u64>,
    /// The combined reported queue length at each poll (failed cells left out).
    pub values: Vec<f64>,
    /// One run per strategy: the spec's own first, then the others.
    pub runs: Vec<StrategyRun>,
}

fn strategy_name(strategy: JobStrategy) -> &'static str {
    match strategy {
        JobStrategy::Default => "default",
        JobStrategy::Custom { .. } => "custom",
        JobStrategy::Accurate => "accurate",
        JobStrategy::Eager => "eager",
    }
}

/// Replays `series` (one column per trigger, `targets` in the same order) at `poll` for
/// `duration`, jobs lasting `job_duration`.
pub fn simulate_jobs(
    spec: &ScaledJobSpec,
    triggers: &[(String, f64)],
    series: &Series,
    poll: Duration,
    duration: Duration,
    job_duration: Duration,
) -> JobOutcome {
    let limits = spec.limits();
    let mut strategies = vec![limits.strategy];
    for other in [
        JobStrategy::Default,
        JobStrategy::Accurate,
        JobStrategy::Eager,
    ] {
        if strategy_name(other) != strategy_name(limits.strategy) {
            strategies.push(other);
        }
    }
    let step = poll.as_secs().max(1);
    let times: Vec<u64> = (0..=duration.as_secs()).step_by(step as usize).collect();
    let mut values = Vec::with_capacity(times.len());
    let readings_at: Vec<Vec<JobReading>> = times
        .iter()
        .map(|&time| {
            let row = series.row_at(time as f64);
            let readings: Vec<JobReading> = triggers
                .iter()
                .filter_map(|(name, target)| {
                    let value = series
                        .column(name)
                        .and_then(|column| row.values.get(column).copied().flatten())?;
                    Some(JobReading::new(value, *target))
                })
                .collect();
            values.push(readings.iter().map(|reading| reading.value).sum());
            readings
        })
        .collect();
    let runs = strategies
        .into_iter()
        .map(|strategy| {
            let limits = JobLimits { strategy, ..limits };
            run(&limits, &times, &readings_at, job_duration.as_secs())
        })
        .collect();
    JobOutcome {
        times,
        values,
        runs,
    }
}

fn run(limits: &JobLimits, times: &[u64], readings: &[Vec<JobReading>], lasts: u64) -> StrategyRun {
    // Finish time of every unfinished job.
    let mut jobs: Vec<u64> = Vec::new();
    let mut created = Vec::with_capacity(times.len());
    let mut running = Vec::with_capacity(times.len());
    for (time, readings) in times.iter().zip(readings) {
        jobs.retain(|finish| finish > time);
        let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
        let decision = decide_jobs(
            readings,
            RunningJobs {
                running: count,
                pending: 0,
            },
            limits,
            false,
        );
        jobs.extend(std::iter::repeat_n(time + lasts, decision.create as usize));
        created.push(decision.create);
        running.push(u32::try_from(jobs.len()).unwrap_or(u32::MAX));
    }
    StrategyRun {
        name: strategy_name(limits.strategy),
        created,
        running,
    }
}

/// The outcome as a table: one row per poll where anything was created, then totals.
pub fn render_jobs(outcome: &JobOutcome, every_poll: bool) -> String {
    let mut out = String::from("   time   queue");
    for run in &outcome.runs {
        let _ = write!(out, "  {:>16}", format!("{} new/running", run.name));
    }
    out.push('\n');
    for (index, time) in outcome.times.iter().enumerate() {
        let any = outcome.runs.iter().any(|run| run.created[index] > 0);
        if !any && !every_poll {
            continue;
        }
        let _ = write!(
            out,
            "{:>7}  {:>6}",
            super::timeline::clock(*time),
            outcome.values[index]
        );
        for run in &outcome.runs {
            let _ = write!(
                out,
                "  {:>16}",
                format!("{}/{}", run.created[index], run.running[index])
            );
        }
        out.push('\n');
    }
    out.push_str("  total        ");
    for run in &outcome.runs {
        let _ = write!(out, "  {:>16}", run.total());
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ScaledJobSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn strategies_side_by_side_on_one_series() {
        // Queue 4 from 0 s to 20 s, then 0. Jobs last 30 s, polls every 10 s, max 10.
        let series = Series::parse("time,q\n0,4\n20,0\n").unwrap();
        let spec = spec(
            "jobTargetRef: {template: {spec: {containers: [{name: a}]}}}\nmaxReplicaCount: 10\n",
        );
        let outcome = simulate_jobs(
            &spec,
            &[("q".to_owned(), 1.0)],
            &series,
            Duration::from_secs(10),
            Duration::from_secs(40),
            Duration::from_secs(30),
        );
        assert_eq!(outcome.times, [0, 10, 20, 30, 40]);
        let by_name = |name: &str| {
            outcome
                .runs
                .iter()
                .find(|run| run.name == name)
                .unwrap()
                .clone()
        };
        // default: 4 at 0 s (4 - 0), none at 10 s (4 - 4 running).
        assert_eq!(by_name("default").created, [4, 0, 0, 0, 0]);
        // eager: min(4, 10 - running) every poll while the queue says 4: 4 then 4 more.
        assert_eq!(by_name("eager").created, [4, 4, 0, 0, 0]);
        // accurate: 4 + 4 running <= 10, so 4 - 0 pending = 4 again at 10 s.
        assert_eq!(by_name("accurate").created, [4, 4, 0, 0, 0]);
        assert_eq!(
            outcome.runs[0].name, "default",
            "the spec's own strategy first"
        );
        let table = render_jobs(&outcome, false);
        assert!(table.contains("default new/running"), "{table}");
        assert!(table.lines().last().unwrap().contains('4'), "{table}");
    }
}
