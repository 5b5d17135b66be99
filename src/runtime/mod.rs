//! What the Kubernetes controller and `ebb run` share: the scaler connection pool, the
//! per-object scale loop behind the [`ScaleTarget`] trait, status and event reporting through
//! [`StatusSink`], and telemetry. One implementation, two hosts.
//!
//! # How a host uses the runtime
//!
//! 1. **Telemetry.** Create one `prometheus_client` registry, register the host's own metrics,
//!    then [`RuntimeMetrics::register`] the runtime's; wrap the registry in an `Arc` and run
//!    [`serve`] on a bound listener with a shutdown future (`/metrics`, `/healthz`, `/readyz`
//!    driven by a [`Readiness`] flag, plus any extra `axum::Router` the host passes, such as
//!    the local runner's JSON status).
//! 2. **Pool.** Build one [`ScalerPool`] with those metrics. It holds one HTTP/2 channel per
//!    (address, TLS settings) for the whole process; DNS names are balanced over every
//!    address they resolve to and re-resolved every [`PoolConfig::resolve_interval`].
//! 3. **Seams.** Implement [`ScaleTarget`] (Kubernetes: the `/scale` subresource, answering
//!    `current_replicas` from a cache; local: the process group) and [`StatusSink`]
//!    (Kubernetes: patch `.status` and emit Events; local: the status table). Tests use
//!    [`InMemoryTarget`] and [`MemorySink`].
//! 4. **Supervisor.** Create a [`Supervisor`] with the pool, the sink and a
//!    [`RuntimeConfig`]. For every object the host's source reports (watch event, file
//!    load), build a [`ManagedObject`] and call [`Supervisor::apply`]: it starts the loop, or
//!    hands the running loop the new version. Call [`Supervisor::remove`] when the object is
//!    deleted (or [`Supervisor::retain`] after a full re-list) and [`Supervisor::shutdown`] on
//!    exit or lost leadership.
//!
//! Building a [`ManagedObject`]: `spec` is the validated spec, `pause` its parsed
//! annotations, `target` the host's handle, `last_status` the status as last written (so the
//! engine restores lastActiveTime and failure counts after a restart), and `triggers` one
//! [`ResolvedTrigger`] per `spec.triggers` entry, IN THE SAME ORDER, whose
//! `input.trigger_name` is the trigger's effective name ([`crate::spec::Trigger::effective_name`]).
//! The host resolves everything the runtime must not know how to find: secrets (Kubernetes:
//! ScalerAuthentication; local: env vars and files) into `input.secrets`, `xFromEnv` metadata
//! into values, TLS material into PEM text. [`ResolvedTrigger::from_endpoint`] builds one from
//! [`crate::spec::ScalerEndpoint`]. Re-apply the object when a secret rotates.
//!
//! # What a loop does
//!
//! One tokio task per object; no threads per object. Every `pollingInterval` (scheduled from
//! the intended start, so it never drifts; lag is measured) it polls every trigger
//! concurrently, each under its own deadline (default [`DEFAULT_RPC_TIMEOUT`]), so a dead
//! trigger costs its deadline and never blocks the others. A poll is ONE `GetMetrics` over
//! `ebb.scaler.v1`, and `GetMetrics` + `IsActive` over KEDA's protocol (whose metric specs are
//! fetched once per trigger configuration). Readings go to the engine
//! ([`crate::scaling::decide`]); the target is written only when the decision differs from
//! the current count, and never before the first poll in which a scaler answered (except for
//! a configured fallback). Status is published only when it changed; scale changes and
//! trigger failures/recoveries become [`ObjectEvent`]s.
//!
//! Push: triggers whose scaler offers `StreamIsActive` (or with [`PushMode::Always`]) keep a
//! subscription, resubscribed forever with jittered exponential backoff. A pushed `true`
//! evaluates at once (0→1 without waiting for the poll); a pushed `false` polls at once. The
//! first message of every stream counts as an edge when it differs from the last known
//! state, so an activation is not lost across a reconnect.
//!
//! ScaledJobs run the same way with the same pollers and pool: [`JobSupervisor`] runs one
//! job loop per [`ManagedJob`], which decides with [`crate::scaling::decide_jobs`] and acts
//! through the [`JobTarget`] seam (Kubernetes: batch/v1 Jobs; `ebb run`: local processes).

pub mod conflict;
mod evaluate;
mod http;
mod jobs;
mod keda_metrics;
mod mailbox;
mod metrics;
mod object;
mod poller;
mod pool;
pub mod prepare;
mod push;
mod scale_loop;
mod series;
mod sink;
mod supervisor;
mod target;
pub mod telemetry;
mod trigger;

pub use http::{Readiness, router, serve};
pub use jobs::{
    InMemoryJobs, JobCounts, JobSink, JobSupervisor, JobTarget, ManagedJob, REASON_JOBS_CREATED,
    REASON_JOBS_FAILED, REASON_JOBS_RETIRED, REASON_JOBS_UNREADABLE,
};
pub use keda_metrics::{KedaMetrics, MetricNames};
pub use metrics::{MetricLabels, ObjectLabels, RpcLabels, RuntimeMetrics, TriggerLabels};
pub use object::{DEFAULT_PUSH_SAMPLE_INTERVAL, ManagedObject, RuntimeConfig};
pub use pool::{DEFAULT_RESOLVE_INTERVAL, PoolConfig, ScalerConnection, ScalerPool};
pub use push::PushBackoff;
pub use sink::{
    EventKind, LiveObject, LiveStatus, MemorySink, ObjectEvent, REASON_SCALE_FAILED, REASON_SCALED,
    REASON_TARGET_UNREADABLE, REASON_TRIGGER_FAILING, REASON_TRIGGER_INVALID,
    REASON_TRIGGER_RECOVERED, SharedStatus, StatusSink,
};
pub use supervisor::Supervisor;
pub use target::{InMemoryTarget, ScaleTarget, TargetError};
pub use trigger::{DEFAULT_RPC_TIMEOUT, KeyParts, ObjectKey, PushMode, ResolvedTrigger};

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The telemetry HTTP server stopped with an I/O error.
    #[error("telemetry server failed: {0}")]
    Serve(#[source] std::io::Error),
}
