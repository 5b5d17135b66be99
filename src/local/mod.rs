//! `ebb run`: the autoscaler on one machine, scaling local process groups.
//!
//! The same ScaledObject (and ScaledJob: [`jobs`]) YAML as in a cluster; the scale target is a local `ProcessGroup` and
//! scalers may run as local sidecars (`kind: Scaler`). The scale loop, the scaler connection
//! pool and push subscriptions are the runtime's ([`crate::runtime`]), shared with the
//! Kubernetes controller: this module only supplies the process-group target
//! ([`ProcessGroupHandle`]), the status sink ([`StatusBoard`]) and the sidecars.
//!
//! Modules: [`manifest`] (the local kinds), [`plan`] (files to a checked plan), [`sources`]
//! (Secrets, ConfigMaps, authentication objects, env and files for preparation), [`process`]
//! and [`group`] (processes), [`orphans`] (processes that left their group), [`sidecar`] (scalers), [`status`] (table, lines, JSON) and
//! [`runner`] (putting it together).

mod conflicts;
pub mod group;
pub mod jobs;
mod loops;
pub mod manifest;
pub mod orphans;
pub mod plan;
pub mod process;
mod runner;
pub mod sidecar;
pub mod sources;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use group::{GroupStatus, ProcessGroupHandle};
pub use plan::{Plan, PlanError};
pub use runner::run;
pub use sidecar::{Sidecar, SidecarError};
pub use status::{Snapshot, StatusBoard};

/// Why `ebb run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The files have problems; nothing was started.
    #[error("cannot run these files:\n{0}")]
    Plan(#[from] PlanError),
    /// A scaler sidecar did not come up; everything started so far was stopped.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// The status address could not be bound.
    #[error("--status-addr {address}: {source}")]
    StatusAddr {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The status server failed while running.
    #[error("status server: {0}")]
    StatusServer(String),
    /// A signal handler could not be installed.
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

/// How `ebb run` shows status on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputStyle {
    /// A redrawn table when stdout is a terminal, plain lines otherwise.
    Auto,
    /// A redrawn table.
    Table,
    /// One line per change.
    Lines,
}

/// The file format, shown after `ebb run --help`.
const RUN_HELP: &str = "\
FILES: ScaledObjects (ebb.dev/v1alpha1, or KEDA's keda.sh/v1alpha1) whose scaleTargetRef is
`{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: ...}`, plus these local kinds:

  apiVersion: ebb.dev/v1alpha1
  kind: ProcessGroup
  metadata: {name: workers}
  spec:
    command: my-worker          # a PATH name, or a path relative to this file
    args: [--queue, orders]
    env: {QUEUE: orders}        # or [{name: QUEUE, value: orders}]
    workingDir: .               # relative to this file
    stopSignal: SIGTERM         # sent on scale-in and on exit
    gracePeriod: 30s            # then SIGKILL
  ---
  apiVersion: ebb.dev/v1alpha1
  kind: Scaler                  # a scaler sidecar, started and health-checked by ebb run
  metadata: {name: rabbitmq}    # triggers with `type: rabbitmq` call it
  spec:
    command: ebb-rabbitmq-scaler
    args: [--listen, \"{address}\"]
    address: 127.0.0.1:9090     # default: a free port (also in $EBB_SCALER_LISTEN)
    startupTimeout: 30s

A `kind: ScaledJob` (same apiVersions) runs one local process per job: the first container of
jobTargetRef.template.spec (command + args, env); the image is ignored. backoffLimit retries a
failed job, activeDeadlineSeconds kills a slow one, Ctrl-C lets running jobs finish within
terminationGracePeriodSeconds (default 30).

A trigger may also name a sidecar in scaler.address (or KEDA's metadata.scalerAddress), or
point at a scaler that is already running (host:port).

SECRETS: trigger metadata `<key>FromEnv: VAR` (from the ProcessGroup's env, else ebb's) and
`<key>FromFile: path` become the secret `<key>` sent to the scaler; never printed.";

/// `ebb run`: scale local processes from ScaledObject YAML, no cluster needed.
#[derive(Debug, clap::Args)]
#[command(after_long_help = RUN_HELP)]
pub struct RunArgs {
    /// A YAML file, or a directory of them, with ScaledObject, ProcessGroup and Scaler objects.
    #[arg(short = 'f', long = "file", env = "EBB_RUN_FILE")]
    pub file: PathBuf,
    /// Serve the status as JSON on /status, plus /metrics, /healthz and /readyz, here, and the
    /// live dashboard on / (with its bounded per-object history; see docs/dashboard.md).
    #[arg(long, env = "EBB_STATUS_ADDR")]
    pub status_addr: Option<SocketAddr>,
    /// Status output on stdout: a redrawn table, plain change lines, or auto (table on a TTY).
    #[arg(long, env = "EBB_RUN_OUTPUT", value_enum, default_value_t = OutputStyle::Auto)]
    pub output: OutputStyle,
    /// Append each process's output to <DIR>/<name>.log. Default: prefixed lines on stderr,
    /// or (with the table) files in a temporary directory shown in the table.
    #[arg(long, env = "EBB_PROCESS_LOGS")]
    pub process_logs: Option<PathBuf>,
    /// Check the files, print what would run, and exit.
    #[arg(long, env = "EBB_RUN_CHECK")]
    pub check: bool,
    /// Exit by itself once every process group has run replicas and all are back to zero
    /// (for demos and scripts).
    #[arg(long, env = "EBB_RUN_UNTIL_IDLE")]
    pub until_idle: bool,
    /// Metric names on /metrics: `ebb`, or `keda` for ebb's and also KEDA's names and labels
    /// for the same series (see docs/metrics.md).
    #[arg(long, env = "EBB_METRICS_NAMES", value_enum, default_value_t = crate::runtime::MetricNames::Ebb)]
    pub metrics_names: crate::runtime::MetricNames,
    /// Log at info (each scale change, each process started and stopped) even when the logs
    /// go to a terminal, where the default is warnings only so the table stays calm.
    /// Redirected logs (`2>ebb.log`) are at info anyway; `--log` sets any filter.
    #[arg(short = 'v', long, env = "EBB_RUN_VERBOSE")]
    pub verbose: bool,
}
