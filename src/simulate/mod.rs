//! `ebb simulate`: replay a metric series through the scaling engine.
//!
//! The simulation is a pure function ([`simulate`]); this module only reads the files, prints
//! the timeline and writes the SVG.

pub mod chart;
pub mod jobs;
mod model;
mod series;
mod timeline;

use std::path::PathBuf;
use std::time::Duration;

pub use chart::{ChartError, draw};
pub use model::{
    Consumption, ModelError, Outcome, Poll, Sample, Simulation, TriggerModel, simulate,
};
pub use series::{Row, Series, SeriesError};
pub use timeline::{clock, render};

use crate::scaling::EngineSpec;
use crate::spec::load::{self, LoadError};
use crate::spec::{ScaledJob, ScaledObject};

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The ScaledObject file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The file holds no (matching) ScaledObject.
    #[error("{path}: {message}")]
    NoObject {
        /// The file.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// The series file could not be read.
    #[error("{path}: {source}")]
    ReadSeries {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The series is malformed.
    #[error("{path}: {source}")]
    Series {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SeriesError,
    },
    /// A flag or a trigger setting is unusable.
    #[error("{0}")]
    Settings(String),
    /// The series does not fit the object.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// The chart could not be written.
    #[error("{path}: {source}")]
    WriteChart {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

const SERIES_HELP: &str = "\
THE SERIES (CSV):
  A header `time,<trigger>,<trigger>...` naming every trigger of the object, then rows.
  `time` is seconds from the start (90) or a duration (1m30s); a row's values hold until the
  next row. Lines starting with # are comments. An empty cell means that trigger's scaler
  fails at that time (counts towards fallback; errors never scale to zero).

  Without --drain-rate, a cell is the metric value the scaler reports (e.g. queue length).
  With --drain-rate R, a cell is the ARRIVAL RATE in messages per second: the simulator keeps
  one queue per trigger that gains the arrivals and loses R per ready replica every second,
  and the scaler reports the queue depth. While a cell is empty the arrivals continue at the
  last known rate.

TARGETS:
  Each trigger's target comes from --target NAME=N, else from its metadata `value`,
  `targetValue` or `queueLength`; activation from --activation NAME=N, else metadata
  `activationValue`, `activationTargetValue` or `activationQueueLength`, else 0.
  With advanced.scalingModifiers the formula's result is compared with its own target and
  activationTarget (the triggers' targets may be left out), and the chart draws it as a line.

EXAMPLE:
  ebb simulate -f examples/simulate/burst.yaml --series examples/simulate/burst.csv \\
      --drain-rate 5 --svg burst.svg";

/// `ebb simulate` flags.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERIES_HELP)]
pub struct SimulateArgs {
    /// The ScaledObject YAML (a file or a directory of them).
    #[arg(short = 'f', long, env = "EBB_SIMULATE_FILE")]
    pub file: PathBuf,
    /// Which ScaledObject (by name) when the file holds several; default the first.
    #[arg(long, env = "EBB_SIMULATE_OBJECT")]
    pub object: Option<String>,
    /// The metric series CSV (see below).
    #[arg(long, env = "EBB_SIMULATE_SERIES")]
    pub series: PathBuf,
    /// Write an SVG chart of metric and replicas over time here.
    #[arg(long, env = "EBB_SIMULATE_SVG")]
    pub svg: Option<PathBuf>,
    /// Consumption model: messages one ready replica processes per second. Makes the series
    /// cells arrival rates into a simulated queue.
    #[arg(long, env = "EBB_SIMULATE_DRAIN_RATE")]
    pub drain_rate: Option<f64>,
    /// With --drain-rate: time from adding a replica to it consuming (e.g. 10s).
    #[arg(long, env = "EBB_SIMULATE_STARTUP_DELAY", default_value = "0s", value_parser = crate::process::parse_duration)]
    pub startup_delay: Duration,
    /// Replicas at the start (default: the object's idle count, else its minimum).
    #[arg(long, env = "EBB_SIMULATE_INITIAL_REPLICAS")]
    pub initial_replicas: Option<u32>,
    /// Decide this often instead of the object's pollingInterval (whole seconds, e.g. 5s).
    #[arg(long, env = "EBB_SIMULATE_POLL", value_parser = crate::process::parse_duration)]
    pub poll: Option<Duration>,
    /// How long to simulate (default: the series plus cooldown and stabilization, so the
    /// scale-in shows).
    #[arg(long, env = "EBB_SIMULATE_DURATION", value_parser = crate::process::parse_duration)]
    pub duration: Option<Duration>,
    /// A trigger's target, as NAME=VALUE (repeatable).
    #[arg(long = "target", env = "EBB_SIMULATE_TARGETS", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// A trigger's activation threshold, as NAME=VALUE (repeatable).
    #[arg(
        long = "activation",
        env = "EBB_SIMULATE_ACTIVATIONS",
        value_delimiter = ','
    )]
    pub activations: Vec<String>,
    /// Print every poll, not only replica changes.
    #[arg(long, env = "EBB_SIMULATE_EVERY_POLL")]
    pub every_poll: bool,
    /// ScaledJob: how long each job runs before it finishes (e.g. 2m).
    #[arg(long, env = "EBB_SIMULATE_JOB_DURATION", default_value = "60s", value_parser = crate::process::parse_duration)]
    pub job_duration: Duration,
}

const TARGET_KEYS: [&str; 3] = ["value", "targetValue", "queueLength"];
const ACTIVATION_KEYS: [&str; 3] = [
    "activationValue",
    "activationTargetValue",
    "activationQueueLength",
];

fn overrides(flags: &[String], flag: &str) -> Result<Vec<(String, f64)>, SimulateError> {
    flags
        .iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                SimulateError::Settings(format!("--{flag} {pair:?}: expected NAME=VALUE"))
            })?;
            let value = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite());
            let value = value.ok_or_else(|| {
                SimulateError::Settings(format!("--{flag} {pair:?}: VALUE must be a number"))
            })?;
            Ok((name.trim().to_owned(), value))
        })
        .collect()
}

/// Each trigger's name, target, activation and metric type, from the flags or its metadata;
/// `default_target` for a trigger with neither (with a formula, whose target is the one that
/// counts).
fn trigger_models(
    triggers: &[crate::spec::Trigger],
    args: &SimulateArgs,
    default_target: Option<f64>,
) -> Result<Vec<TriggerModel>, SimulateError> {
    let targets = overrides(&args.targets, "target")?;
    let activations = overrides(&args.activations, "activation")?;
    let mut models = Vec::new();
    for (index, trigger) in triggers.iter().enumerate() {
        let name = trigger.effective_name(index);
        let from_metadata = |keys: &[&str]| -> Result<Option<f64>, SimulateError> {
            for key in keys {
                if let Some(text) = trigger.metadata.get(*key) {
                    return text.trim().parse::<f64>().map(Some).map_err(|_| {
                        SimulateError::Settings(format!(
                            "trigger {name:?}: metadata.{key} {text:?} is not a number"
                        ))
                    });
                }
            }
            Ok(None)
        };
        let flag = |pairs: &[(String, f64)]| {
            pairs
                .iter()
                .find(|(trigger, _)| *trigger == name)
                .map(|(_, value)| *value)
        };
        let target = match flag(&targets) {
            Some(target) => target,
            None => from_metadata(&TARGET_KEYS)?.or(default_target).ok_or_else(|| {
                SimulateError::Settings(format!(
                    "trigger {name:?} has no target: pass --target {name}=N or set metadata.value"
                ))
            })?,
        };
        if target <= 0.0 {
            return Err(SimulateError::Settings(format!(
                "trigger {name:?}: target must be above 0, got {target}"
            )));
        }
        let activation = match flag(&activations) {
            Some(activation) => activation,
            None => from_metadata(&ACTIVATION_KEYS)?.unwrap_or(0.0),
        };
        models.push(TriggerModel {
            name,
            target,
            activation,
            metric_type: trigger.metric_type(),
        });
    }
    Ok(models)
}

/// Builds the simulation settings for an object; `series_end` is the last row's time.
pub fn settings(
    object: &ScaledObject,
    args: &SimulateArgs,
    series_end: f64,
) -> Result<Simulation, SimulateError> {
    let spec = EngineSpec::from_scaled_object(object)
        .map_err(|problem| SimulateError::Settings(problem.to_string()))?;
    // A trigger's own target plays no part under a formula; the engine only needs one above 0.
    let default_target = spec.modifiers.is_some().then_some(1.0);
    let triggers = trigger_models(&object.spec.triggers, args, default_target)?;
    let poll = args.poll.unwrap_or(spec.polling_interval);
    if poll.as_secs() == 0 {
        return Err(SimulateError::Settings(
            "--poll must be at least 1s".to_owned(),
        ));
    }
    let duration = args.duration.unwrap_or_else(|| {
        let tail = spec.cooldown_period + spec.behavior.scale_down.stabilization_window + poll * 4;
        Duration::from_secs(series_end.ceil() as u64) + tail
    });
    let consumption = match args.drain_rate {
        None => None,
        Some(rate) if rate.is_finite() && rate > 0.0 => Some(Consumption {
            per_replica_per_second: rate,
            startup_delay: args.startup_delay,
        }),
        Some(rate) => {
            return Err(SimulateError::Settings(format!(
                "--drain-rate must be above 0, got {rate}"
            )));
        }
    };
    let initial_replicas = args
        .initial_replicas
        .unwrap_or(spec.idle_replicas.unwrap_or(spec.min_replicas));
    Ok(Simulation {
        spec,
        triggers,
        initial_replicas,
        poll: Duration::from_secs(poll.as_secs()),
        duration,
        consumption,
    })
}

/// Runs a simulation and prints the timeline.
pub fn run(args: SimulateArgs) -> Result<(), SimulateError> {
    let documents = load::load_path(&args.file)?;
    let has_object = documents
        .iter()
        .any(|document| document.kind == "ScaledObject");
    if let Some(document) = documents
        .iter()
        .filter(|document| document.kind == "ScaledJob")
        .find(|document| {
            args.object
                .as_ref()
                .is_none_or(|name| *name == document.name)
        })
        .filter(|_| !has_object || args.object.is_some())
    {
        return run_jobs(document, &args);
    }
    let document = documents
        .iter()
        .filter(|document| document.kind == "ScaledObject")
        .find(|document| {
            args.object
                .as_ref()
                .is_none_or(|name| *name == document.name)
        })
        .ok_or_else(|| SimulateError::NoObject {
            path: args.file.clone(),
            message: match &args.object {
                Some(name) => format!("no ScaledObject named {name:?}"),
                None => "no ScaledObject in the file".to_owned(),
            },
        })?;
    let object = document.scaled_object()?;
    let series = read_series(&args.series)?;
    let simulation = settings(&object, &args, series.end())?;
    let outcome = simulate(&simulation, &series)?;
    print!("{}", render(&simulation, &outcome, args.every_poll));
    if let Some(path) = &args.svg {
        let title = format!(
            "ebb simulate: {} with {}",
            document.name,
            args.series
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let svg = draw(&simulation, &outcome, &title)?;
        std::fs::write(path, svg).map_err(|source| SimulateError::WriteChart {
            path: path.clone(),
            source,
        })?;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

/// `ebb simulate` of a ScaledJob: every strategy side by side (see [`jobs`]).
fn run_jobs(document: &load::Document, args: &SimulateArgs) -> Result<(), SimulateError> {
    let job: ScaledJob = document.parse()?;
    if let Some(problem) = job.validate().first() {
        return Err(SimulateError::Settings(problem.to_string()));
    }
    let series = read_series(&args.series)?;
    let triggers: Vec<(String, f64)> = trigger_models(&job.spec.triggers, args, None)?
        .into_iter()
        .map(|model| (model.name, model.target))
        .collect();
    let poll = args.poll.unwrap_or(job.spec.polling_interval());
    if poll.as_secs() == 0 {
        return Err(SimulateError::Settings(
            "--poll must be at least 1s".to_owned(),
        ));
    }
    let duration = args.duration.unwrap_or_else(|| {
        Duration::from_secs(series.end().ceil() as u64) + args.job_duration + poll
    });
    let outcome = jobs::simulate_jobs(
        &job.spec,
        &triggers,
        &series,
        poll,
        duration,
        args.job_duration,
    );
    print!("{}", jobs::render_jobs(&outcome, args.every_poll));
    Ok(())
}

fn read_series(path: &std::path::Path) -> Result<Series, SimulateError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimulateError::ReadSeries {
        path: path.to_path_buf(),
        source,
    })?;
    Series::parse(&text).map_err(|source| SimulateError::Series {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
