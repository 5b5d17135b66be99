//! Scaler sidecars: scaler processes `ebb run` starts, waits for (gRPC health SERVING),
//! restarts when they die and stops on exit.

use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::manifest::ScalerConfig;
use super::process::{OutputMode, group_alive, signal_group, spawn};

/// Time a stopping scaler gets before SIGKILL.
const SCALER_GRACE: Duration = Duration::from_secs(5);
/// Pause between health checks while a scaler starts.
const HEALTH_POLL: Duration = Duration::from_millis(50);
/// How often a running sidecar's health is checked, so the status shows what it says now.
const HEALTH_WATCH: Duration = Duration::from_secs(1);
/// The longest pause before restarting a scaler that keeps dying.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// Why a scaler sidecar could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The command could not be started.
    #[error("scaler {name}: cannot start {program}: {source}")]
    Spawn {
        /// The Scaler object's name.
        name: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It did not report SERVING in time (or exited first).
    #[error("scaler {name}: not SERVING on {address} within {timeout:?}: {detail}")]
    NotServing {
        /// The Scaler object's name.
        name: String,
        /// Where it should listen.
        address: String,
        /// The startup timeout.
        timeout: Duration,
        /// The last thing seen.
        detail: String,
    },
}

/// What a sidecar is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SidecarState {
    /// Started, not SERVING yet.
    Starting,
    /// Health says SERVING.
    Serving,
    /// Running, but health says NOT_SERVING (its event source is unreachable).
    NotServing,
    /// Running, but its health check does not answer (hung, or stopped with SIGSTOP).
    Unresponsive,
    /// Exited; about to be restarted.
    Restarting,
    /// Stopped by `ebb run`.
    Stopped,
}

/// A sidecar's status, for the table and JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarStatus {
    /// Listen address.
    pub address: String,
    /// State.
    pub state: SidecarState,
    /// Times it died and was restarted.
    pub restarts: u64,
    /// Process id while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// A running scaler sidecar.
#[derive(Clone, Debug)]
pub struct Sidecar {
    name: Arc<str>,
    status: watch::Receiver<SidecarStatus>,
    stop: Arc<Notify>,
    done: watch::Receiver<bool>,
}

impl Sidecar {
    /// Starts the scaler and returns once its health says SERVING; then keeps it running.
    pub async fn start(config: ScalerConfig, output: OutputMode) -> Result<Self, SidecarError> {
        let (status_tx, status) = watch::channel(SidecarStatus {
            address: config.address.to_string(),
            state: SidecarState::Starting,
            restarts: 0,
            pid: None,
        });
        let mut child = launch(&config, &output)?;
        let pid = child.id().unwrap_or_default();
        status_tx.send_modify(|status| status.pid = Some(pid));
        if let Err(detail) = wait_serving(&config, &mut child).await {
            stop_process(pid, &mut child).await;
            return Err(SidecarError::NotServing {
                name: config.name.clone(),
                address: config.address.to_string(),
                timeout: config.startup_timeout,
                detail,
            });
        }
        tracing::info!(scaler = %config.name, address = %config.address, pid, "scaler SERVING");
        status_tx.send_modify(|status| status.state = SidecarState::Serving);
        let stop = Arc::new(Notify::new());
        let (done_tx, done) = watch::channel(false);
        let name: Arc<str> = Arc::from(config.name.as_str());
        tokio::spawn(watch_health(
            format!("http://{}", config.address),
            status_tx.clone(),
            done.clone(),
        ));
        tokio::spawn(keep_running(
            config,
            output,
            child,
            status_tx,
            stop.clone(),
            done_tx,
        ));
        Ok(Self {
            name,
            status,
            stop,
            done,
        })
    }

    /// The Scaler object's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest status.
    pub fn status(&self) -> SidecarStatus {
        self.status.borrow().clone()
    }

    /// Stops the scaler (SIGTERM, SIGKILL after a few seconds) and waits for it.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        let mut done = self.done.clone();
        let _ = done.wait_for(|done| *done).await;
    }
}

fn launch(
    config: &ScalerConfig,
    output: &OutputMode,
) -> Result<tokio::process::Child, SidecarError> {
    let extra_env = [("EBB_SCALER_LISTEN", config.address.to_string())];
    let label = format!("scaler/{}", config.name);
    // A scaler whose ebb died has nobody to answer: it stops too.
    spawn(
        &config.command,
        &extra_env,
        &label,
        output,
        rustix::process::Signal::TERM,
    )
    .map_err(|source| SidecarError::Spawn {
        name: config.name.clone(),
        program: config.command.program.display().to_string(),
        source,
    })
}

/// Polls gRPC health until SERVING, the process exits, or the startup timeout passes.
async fn wait_serving(
    config: &ScalerConfig,
    child: &mut tokio::process::Child,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + config.startup_timeout;
    let uri = format!("http://{}", config.address);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the process exited first ({status})"));
        }
        let last = match check_health(&uri).await {
            Ok(true) => return Ok(()),
            Ok(false) => "health answers NOT_SERVING".to_owned(),
            Err(error) => error,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}

/// One health check of the whole server (service ""); `Ok(true)` when SERVING.
pub async fn check_health(uri: &str) -> Result<bool, String> {
    let endpoint = Endpoint::from_shared(uri.to_owned())
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(1));
    let channel = endpoint
        .connect()
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| format!("health check: {}", status.message()))?;
    Ok(answer.into_inner().status == ServingStatus::Serving as i32)
}

async fn stop_process(pid: u32, child: &mut tokio::process::Child) {
    signal_group(pid, Signal::TERM);
    if tokio::time::timeout(SCALER_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(pid, Signal::KILL);
        let _ = child.wait().await;
    }
    if group_alive(pid) {
        signal_group(pid, Signal::KILL);
    }
}

async fn keep_running(
    config: ScalerConfig,
    output: OutputMode,
    mut child: tokio::process::Child,
    status: watch::Sender<SidecarStatus>,
    stop: Arc<Notify>,
    done: watch::Sender<bool>,
) {
    let mut quick_deaths = 0u32;
    loop {
        let pid = child.id().unwrap_or_default();
        let started = tokio::time::Instant::now();
        tokio::select! {
            _ = stop.notified() => {
                stop_process(pid, &mut child).await;
                status.send_modify(|status| {
                    status.state = SidecarState::Stopped;
                    status.pid = None;
                });
                let _ = done.send(true);
                return;
            }
            exit = child.wait() => {
                let outcome = exit.map(|status| status.to_string()).unwrap_or_else(|error| error.to_string());
                tracing::warn!(scaler = %config.name, pid, %outcome, "scaler exited; restarting it");
                signal_group(pid, Signal::KILL);
                status.send_modify(|status| {
                    status.state = SidecarState::Restarting;
                    status.restarts += 1;
                    status.pid = None;
                });
            }
        }
        quick_deaths = if started.elapsed() < Duration::from_secs(10) {
            quick_deaths + 1
        } else {
            0
        };
        // Restart until it runs, or until asked to stop.
        loop {
            let delay = match quick_deaths {
                0 | 1 => Duration::ZERO,
                n => (Duration::from_millis(500) * 2u32.pow((n - 2).min(5))).min(MAX_RESTART_DELAY),
            };
            tokio::select! {
                _ = stop.notified() => {
                    status.send_modify(|status| status.state = SidecarState::Stopped);
                    let _ = done.send(true);
                    return;
                }
                _ = tokio::time::sleep(delay) => {}
            }
            match launch(&config, &output) {
                Ok(new_child) => {
                    child = new_child;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "scaler restart failed");
                    quick_deaths += 1;
                }
            }
        }
        let pid = child.id().unwrap_or_default();
        status.send_modify(|status| {
            status.state = SidecarState::Starting;
            status.pid = Some(pid);
        });
        // The health watcher reports SERVING once health says so; meanwhile the process may
        // die again, which the outer loop notices.
    }
}

/// Keeps the sidecar's state equal to what its health check says, for as long as it runs:
/// SERVING, NOT_SERVING, or no answer at all (hung or stopped). A restart in progress is left
/// to [`keep_running`].
async fn watch_health(
    uri: String,
    status: watch::Sender<SidecarStatus>,
    mut done: watch::Receiver<bool>,
) {
    loop {
        let (pid, starting) = {
            let current = status.borrow();
            (current.pid, current.state == SidecarState::Starting)
        };
        let wait = if starting { HEALTH_POLL } else { HEALTH_WATCH };
        tokio::select! {
            _ = done.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if *done.borrow() {
            return;
        }
        let Some(pid) = pid else {
            continue;
        };
        let seen = match check_health(&uri).await {
            Ok(true) => SidecarState::Serving,
            Ok(false) => SidecarState::NotServing,
            Err(_) if starting => continue,
            Err(_) => SidecarState::Unresponsive,
        };
        status.send_if_modified(|status| {
            let current = status.pid == Some(pid)
                && !matches!(
                    status.state,
                    SidecarState::Restarting | SidecarState::Stopped
                );
            let changed = current && status.state != seen;
            if changed {
                tracing::info!(pid, from = ?status.state, to = ?seen, "scaler health changed");
                status.state = seen;
            }
            changed
        });
    }
}
