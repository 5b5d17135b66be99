//! The Kubernetes controller: the ScaledObject and ScalerAuthentication CRDs, the watch that
//! feeds the runtime supervisor, `/scale` writes, status and Events, and leader election.
//!
//! The scale loops, the scaler client pool and the engine live in [`crate::runtime`] and
//! [`crate::scaling`]; this module is the Kubernetes host around them:
//! - [`controller`]: watch, validate, resolve, hand objects to the supervisor;
//! - [`conflict`]: claims and the HPA watch for the shared conflict rule
//!   ([`crate::runtime::conflict`]);
//! - [`adopt`]: the target label, the restore finalizer and the restore on deletion;
//! - [`resolve`] + [`lookup`]: the cluster's lookups for the shared preparation step
//!   ([`crate::runtime::prepare`]): Secrets, ConfigMaps, authentication objects, target env;
//! - [`target`]: any kind with a `/scale` subresource;
//! - [`status`] + [`status_policy`]: status patches only on changes that matter, and Events;
//! - [`target_watch`]: one lean watch per target kind, so reading replicas costs no request;
//! - [`leader`]: Lease-based leader election;
//! - [`crd`]: `ebb crd`.

pub mod adopt;
mod cel_rules;
pub mod conflict;
pub mod controller;
pub mod crd;
pub mod jobs;
pub mod leader;
pub mod lookup;
pub mod registry;
pub mod resolve;
#[cfg(test)]
mod resolve_tests;
pub mod status;
pub mod status_policy;
pub mod target;
pub mod target_watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::spec::{
    AuthenticationSource, ClusterScalerAuthentication, ClusterScalerAuthenticationSpec, EnvRef,
    KeyRef, ScalerAuthentication, ScalerAuthenticationSpec,
};
pub use controller::{ControllerSettings, lead};
pub use crd::{CrdArgs, crd_files, crds, write_crds};
pub use leader::{LeaderElector, LeaseError, LeaseTiming};

use crate::runtime::{PoolConfig, Readiness, RuntimeMetrics, ScalerPool};

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// No usable cluster configuration (in-cluster or kubeconfig).
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    /// The telemetry listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The telemetry server failed.
    #[error("telemetry server failed: {0}")]
    Telemetry(String),
    /// A CRD could not be rendered.
    #[error("cannot render a CRD: {0}")]
    Crd(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `ebb controller` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Kubeconfig file; without it, the in-cluster service account, then `$KUBECONFIG` and
    /// `~/.kube/config`.
    #[arg(long, env = "EBB_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch ScaledObjects in this namespace only; all namespaces when unset.
    #[arg(long, env = "EBB_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// The controller's own namespace: home of its Lease and of the Secrets that
    /// ClusterScalerAuthentications refer to.
    #[arg(long, env = "POD_NAMESPACE", default_value = "ebb-system")]
    pub namespace: String,
    /// This replica's identity in the leader Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Take part in leader election; turn off only when exactly one replica runs.
    #[arg(long, env = "EBB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "EBB_LEASE_NAME", default_value = "ebb-controller")]
    pub lease_name: String,
    /// How long the leader Lease stays valid without renewal.
    #[arg(long, env = "EBB_LEASE_DURATION", default_value = "15s", value_parser = crate::process::parse_duration)]
    pub lease_duration: Duration,
    /// How often the leader renews its Lease.
    #[arg(long, env = "EBB_LEASE_RENEW_INTERVAL", default_value = "5s", value_parser = crate::process::parse_duration)]
    pub lease_renew_interval: Duration,
    /// How often a standby replica tries to take the Lease.
    #[arg(long, env = "EBB_LEASE_RETRY_INTERVAL", default_value = "2s", value_parser = crate::process::parse_duration)]
    pub lease_retry_interval: Duration,
    /// Address of the telemetry server (/metrics, /healthz, /readyz).
    #[arg(long, env = "EBB_METRICS_LISTEN", default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,
    /// How often every object is resolved again (rotated Secrets, scalers that came back).
    #[arg(long, env = "EBB_RESYNC_INTERVAL", default_value = "5m", value_parser = crate::process::parse_duration)]
    pub resync_interval: Duration,
    /// Deadline of the GetInfo call that checks trigger metadata against the scaler's schema.
    #[arg(long, env = "EBB_INFO_TIMEOUT", default_value = "2s", value_parser = crate::process::parse_duration)]
    pub info_timeout: Duration,
    /// Status writes in flight at once (the API client itself is not throttled).
    #[arg(long, env = "EBB_STATUS_CONCURRENCY", default_value_t = 32)]
    pub status_concurrency: usize,
    /// The scaler a trigger type calls when the trigger gives no address, as TYPE=ADDRESS
    /// (repeat the flag, or separate with commas), e.g. `rabbitmq=127.0.0.1:9001`.
    #[arg(long = "scaler", env = "EBB_SCALERS", value_delimiter = ',')]
    pub scalers: Vec<String>,
    /// YAML file of `scalers: {TYPE: {address, timeout, tls, ...}}`, e.g. mounted from a
    /// ConfigMap; `--scaler` flags win over it.
    #[arg(long, env = "EBB_SCALER_REGISTRY")]
    pub scaler_registry: Option<PathBuf>,
    /// Serve the read-only live dashboard at `/` of the telemetry address, and keep the
    /// bounded per-object history it charts (off: nothing is recorded).
    #[arg(long, env = "EBB_DASHBOARD", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub dashboard: bool,
    /// Metric names on /metrics: `ebb`, or `keda` for ebb's and also KEDA's names and labels
    /// for the same series, so KEDA dashboards and alerts keep working (see docs/metrics.md).
    #[arg(long, env = "EBB_METRICS_NAMES", value_enum, default_value_t = crate::runtime::MetricNames::Ebb)]
    pub metrics_names: crate::runtime::MetricNames,
    /// How often a status whose only change is readings (trigger values, work in flight) may
    /// be written, and then only when a value moved beyond the 10 % tolerance and asks for a
    /// different replica count than the stored value did (noise inside the HPA's tolerance
    /// band is never written). Conditions,
    /// replica counts and trigger health are written within one poll whatever this says.
    /// `0` keeps readings out of status (see `/metrics`, the status JSON or `ebb status`).
    #[arg(long, env = "EBB_STATUS_READINGS_INTERVAL", default_value = "5m", value_parser = crate::process::parse_duration)]
    pub status_readings_interval: Duration,
}

impl Default for ControllerArgs {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            watch_namespace: None,
            namespace: "ebb-system".into(),
            identity: None,
            leader_elect: true,
            lease_name: "ebb-controller".into(),
            lease_duration: Duration::from_secs(15),
            lease_renew_interval: Duration::from_secs(5),
            lease_retry_interval: Duration::from_secs(2),
            metrics_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            resync_interval: Duration::from_secs(300),
            info_timeout: Duration::from_secs(2),
            status_concurrency: 32,
            scalers: Vec::new(),
            scaler_registry: None,
            dashboard: false,
            metrics_names: crate::runtime::MetricNames::Ebb,
            status_readings_interval: status_policy::DEFAULT_READINGS_INTERVAL,
        }
    }
}

impl ControllerArgs {
    /// The identity: `--identity`, else the host name, else a random name.
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .filter(|identity| !identity.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| format!("ebb-{:08x}", rand::random::<u32>()))
    }

    /// The leader's work settings.
    pub fn settings(&self) -> Result<ControllerSettings, ControllerError> {
        let registry = registry::build(&self.scalers, self.scaler_registry.as_deref())
            .map_err(|error| ControllerError::Config(error.to_string()))?;
        Ok(ControllerSettings {
            registry: Arc::new(registry),
            watch_namespace: self.watch_namespace.clone(),
            controller_namespace: self.namespace.clone(),
            identity: self.identity(),
            resync_interval: self.resync_interval,
            retry_interval: Duration::from_secs(5),
            info_timeout: self.info_timeout,
            status_concurrency: self.status_concurrency,
            history: self.dashboard.then(crate::dashboard::History::new),
            readings: status_policy::ReadingsPolicy {
                interval: self.status_readings_interval,
                ..status_policy::ReadingsPolicy::default()
            },
            live: crate::runtime::LiveStatus::new(),
        })
    }
}

/// Builds the API client: `--kubeconfig`, else in-cluster, else the default kubeconfig.
/// kube's client has no client-side rate limit, and none is added: status writes are
/// coalesced instead (KEDA #3730, #7615).
pub async fn kube_client(args: &ControllerArgs) -> Result<kube::Client, ControllerError> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ControllerError::Config(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| ControllerError::Config(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ControllerError::Config(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| ControllerError::Config(e.to_string()))
}

/// Runs the controller with `client` until `shutdown` completes: leader election (when
/// enabled) and, while leading, the watch and the scale loops. Telemetry is served on
/// `listener`.
pub async fn run_with_client(
    client: kube::Client,
    args: ControllerArgs,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ControllerError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = RuntimeMetrics::register_with(&mut registry, args.metrics_names);
    let registry = Arc::new(registry);
    let readiness = Readiness::new();
    let pool = ScalerPool::new(PoolConfig::default(), metrics);
    let settings = args.settings()?;
    let live = settings.live.clone();
    let status = axum::Router::new().route(
        "/status",
        axum::routing::get(move || {
            let live = live.clone();
            async move { axum::Json(live.snapshot()) }
        }),
    );
    let extra = match &settings.history {
        Some(history) => status.merge(crate::dashboard::routes(
            history.clone(),
            Arc::new(|| serde_json::Value::Null),
            registry.clone(),
        )),
        None => status,
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_sender.send(true);
    });
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let telemetry = tokio::spawn(crate::runtime::serve(
        listener,
        registry,
        readiness.clone(),
        extra,
        stopped(stop.clone()),
    ));
    if !args.leader_elect {
        lead(client, pool, settings, readiness, stopped(stop.clone())).await;
    } else {
        let timing = LeaseTiming {
            lease_duration: args.lease_duration,
            renew_interval: args.lease_renew_interval,
            retry_interval: args.lease_retry_interval,
        };
        let mut elector = LeaderElector::new(
            client.clone(),
            &args.namespace,
            &args.lease_name,
            &settings.identity,
            timing,
        );
        // A standby is healthy and ready: it serves telemetry and waits.
        readiness.set_ready(true);
        loop {
            tokio::select! {
                () = elector.acquire(&readiness) => {}
                () = stopped(stop.clone()) => break,
            }
            tracing::info!(identity = %settings.identity, "became leader");
            readiness.set_ready(false);
            let (lost_sender, lost) = tokio::sync::oneshot::channel::<()>();
            let stop_for_work = stopped(stop.clone());
            let work = lead(
                client.clone(),
                pool.clone(),
                settings.clone(),
                readiness.clone(),
                async move {
                    tokio::select! {
                        _ = lost => {}
                        () = stop_for_work => {}
                    }
                },
            );
            let hold = elector.hold();
            tokio::pin!(work);
            tokio::pin!(hold);
            tokio::select! {
                () = &mut work => {}
                () = &mut hold => {
                    tracing::warn!("lost leadership; stopping the scale loops");
                    let _ = lost_sender.send(());
                    work.await;
                    readiness.set_ready(true);
                    continue;
                }
            }
            break;
        }
        elector.release().await;
    }
    match telemetry.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ControllerError::Telemetry(error.to_string())),
        Err(error) => Err(ControllerError::Telemetry(error.to_string())),
    }
}

/// Runs `ebb controller` until SIGTERM or Ctrl-C.
pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    let client = kube_client(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.metrics_listen)
        .await
        .map_err(|source| ControllerError::Listen {
            address: args.metrics_listen,
            source,
        })?;
    run_with_client(client, args, listener, crate::process::shutdown_signal()).await
}
