//! A process group as a scale target: N replicas of one command, kept at the desired count.
//!
//! One task owns the replicas. Scaling up starts processes; scaling down sends the newest
//! replicas the stop signal and SIGKILLs any that are still running after the grace period.
//! A replica that exits on its own is counted as a restart and replaced, with a growing delay
//! when it keeps dying young so a broken command does not spin.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rustix::process::Signal;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use super::manifest::ProcessGroupConfig;
use super::process::{OutputMode, group_alive, signal_group, spawn};
use crate::runtime::{ScaleTarget, TargetError};

/// A replica that lived at least this long resets the restart delay.
const HEALTHY_UPTIME: Duration = Duration::from_secs(10);
/// The longest delay before restarting a replica that keeps dying.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// What a process group is doing, for the status table and JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// Replicas asked for.
    pub desired: u32,
    /// Replicas running and not stopping.
    pub running: u32,
    /// Replicas sent the stop signal and not exited yet.
    pub stopping: u32,
    /// Replicas that exited on their own and were replaced (or are about to be).
    pub restarts: u64,
    /// Replicas SIGKILLed after the grace period.
    pub killed: u64,
    /// How the last unexpected exit ended, e.g. `exit status: 1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<String>,
    /// While replicas keep dying young: the pause before the next restart (e.g. `4s`), so a
    /// crash loop shows as one and not as a group that silently runs fewer replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_delay: Option<String>,
    /// Process ids of the running replicas, oldest first.
    pub pids: Vec<u32>,
}

enum Command {
    SetReplicas(u32, oneshot::Sender<Result<(), TargetError>>),
    Shutdown(oneshot::Sender<()>),
    KillAll,
}

enum Event {
    Exited { id: u64, outcome: String },
    GraceOver { id: u64 },
}

/// Handle to a running process group. Cheap to clone; implements [`ScaleTarget`].
#[derive(Clone, Debug)]
pub struct ProcessGroupHandle {
    name: Arc<str>,
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<GroupStatus>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SetReplicas(n, _) => write!(f, "SetReplicas({n})"),
            Command::Shutdown(_) => f.write_str("Shutdown"),
            Command::KillAll => f.write_str("KillAll"),
        }
    }
}

impl ProcessGroupHandle {
    /// Starts supervising `config` with zero replicas.
    pub fn start(config: ProcessGroupConfig, output: OutputMode) -> Self {
        let (commands, command_rx) = mpsc::channel(16);
        let (status_tx, status) = watch::channel(GroupStatus::default());
        let name: Arc<str> = Arc::from(config.name.as_str());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            config,
            output,
            replicas: BTreeMap::new(),
            next_id: 0,
            status: GroupStatus::default(),
            status_tx,
            events_tx,
            young_deaths: 0,
            restart_not_before: None,
            pending_delay: Duration::ZERO,
            shutdown_waiters: Vec::new(),
        };
        tokio::spawn(supervisor.run(command_rx, events_rx));
        Self {
            name,
            commands,
            status,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest status.
    pub fn status(&self) -> GroupStatus {
        self.status.borrow().clone()
    }

    /// A receiver that changes whenever the status does.
    pub fn watch(&self) -> watch::Receiver<GroupStatus> {
        self.status.clone()
    }

    /// Sets the desired replica count; returns once the new processes are spawned (or
    /// failed to) and the surplus ones are signalled.
    pub async fn scale(&self, replicas: u32) -> Result<(), TargetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::SetReplicas(replicas, reply))
            .await
            .map_err(|_| TargetError::Failed(format!("process group {} stopped", self.name)))?;
        answer
            .await
            .map_err(|_| TargetError::Failed(format!("process group {} stopped", self.name)))?
    }

    /// SIGKILLs every replica at once (a second Ctrl-C); they are not restarted.
    pub async fn kill_all(&self) {
        let _ = self.commands.send(Command::KillAll).await;
    }

    /// Stops every replica gracefully and returns when all have exited.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

impl ScaleTarget for ProcessGroupHandle {
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        let desired = self.status.borrow().desired;
        Box::pin(std::future::ready(Ok(desired)))
    }

    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(self.scale(replicas))
    }
}

struct Replica {
    slot: u32,
    pid: u32,
    started: Instant,
    stopping: bool,
}

struct Supervisor {
    config: ProcessGroupConfig,
    output: OutputMode,
    // Keyed by a never-reused id, so the newest replica is the last entry.
    replicas: BTreeMap<u64, Replica>,
    next_id: u64,
    status: GroupStatus,
    status_tx: watch::Sender<GroupStatus>,
    events_tx: mpsc::UnboundedSender<Event>,
    young_deaths: u32,
    restart_not_before: Option<tokio::time::Instant>,
    /// The delay that set `restart_not_before`.
    pending_delay: Duration,
    shutdown_waiters: Vec<oneshot::Sender<()>>,
}

impl Supervisor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: mpsc::UnboundedReceiver<Event>,
    ) {
        let mut commands_open = true;
        loop {
            let restart_at = self.restart_not_before;
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(Command::SetReplicas(replicas, reply)) => {
                        if self.shutdown_waiters.is_empty() {
                            self.status.desired = replicas;
                        }
                        let result = self.reconcile();
                        let _ = reply.send(result);
                    }
                    Some(Command::Shutdown(reply)) => {
                        self.shutdown_waiters.push(reply);
                        self.status.desired = 0;
                        let _ = self.reconcile();
                    }
                    Some(Command::KillAll) => {
                        self.status.desired = 0;
                        let _ = self.reconcile();
                        for replica in self.replicas.values() {
                            signal_group(replica.pid, Signal::KILL);
                        }
                    }
                    // Every handle is gone: stop the replicas as on shutdown.
                    None => {
                        commands_open = false;
                        self.status.desired = 0;
                        let _ = self.reconcile();
                    }
                },
                Some(event) = events.recv() => self.handle(event),
                _ = sleep_until(restart_at), if restart_at.is_some() => {
                    self.restart_not_before = None;
                    if let Err(error) = self.reconcile() {
                        tracing::warn!(group = %self.config.name, %error, "restart failed");
                    }
                }
            }
            self.publish();
            let stopping_done = self.status.desired == 0 && self.replicas.is_empty();
            if stopping_done && !self.shutdown_waiters.is_empty() {
                for waiter in self.shutdown_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                return;
            }
            if stopping_done && !commands_open {
                return;
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Exited { id, outcome } => {
                let Some(replica) = self.replicas.remove(&id) else {
                    return;
                };
                // Children the replica left behind go with it.
                signal_group(replica.pid, Signal::KILL);
                if replica.stopping {
                    tracing::info!(group = %self.config.name, slot = replica.slot, pid = replica.pid, %outcome, "replica stopped");
                    return;
                }
                tracing::warn!(group = %self.config.name, slot = replica.slot, pid = replica.pid, %outcome, "replica exited unexpectedly; replacing it");
                self.status.restarts += 1;
                self.status.last_exit = Some(outcome);
                if replica.started.elapsed() < HEALTHY_UPTIME {
                    self.young_deaths += 1;
                } else {
                    self.young_deaths = 0;
                }
                let delay = restart_delay(self.young_deaths);
                if delay.is_zero() {
                    if let Err(error) = self.reconcile() {
                        tracing::warn!(group = %self.config.name, %error, "restart failed");
                    }
                } else {
                    self.restart_not_before = Some(tokio::time::Instant::now() + delay);
                    self.pending_delay = delay;
                }
            }
            Event::GraceOver { id } => {
                if let Some(replica) = self.replicas.get(&id)
                    && group_alive(replica.pid)
                {
                    tracing::warn!(group = %self.config.name, slot = replica.slot, pid = replica.pid, "grace period over; sending SIGKILL");
                    signal_group(replica.pid, Signal::KILL);
                    self.status.killed += 1;
                }
            }
        }
    }

    /// Starts or stops replicas until the running count matches the desired one.
    fn reconcile(&mut self) -> Result<(), TargetError> {
        let running: Vec<u64> = self
            .replicas
            .iter()
            .filter(|(_, replica)| !replica.stopping)
            .map(|(id, _)| *id)
            .collect();
        let desired = self.status.desired as usize;
        if running.len() > desired {
            for id in running.iter().rev().take(running.len() - desired) {
                self.stop(*id);
            }
            return Ok(());
        }
        if self.restart_not_before.is_some() {
            return Ok(());
        }
        for started in running.len()..desired {
            if let Err(error) = self.start_one() {
                // Report what really runs, so the scale loop tries again on its next poll.
                self.status.desired = started as u32;
                return Err(error);
            }
        }
        Ok(())
    }

    fn start_one(&mut self) -> Result<(), TargetError> {
        let slot = (0..)
            .find(|slot| {
                !self
                    .replicas
                    .values()
                    .any(|replica| !replica.stopping && replica.slot == *slot)
            })
            .unwrap_or(0);
        let label = format!("{}/{slot}", self.config.name);
        let extra_env = [
            ("EBB_PROCESS_GROUP", self.config.name.clone()),
            ("EBB_REPLICA", slot.to_string()),
        ];
        let mut child = spawn(
            &self.config.command,
            &extra_env,
            &label,
            &self.output,
            self.config.stop_signal.to_signal(),
        )
        .map_err(|error| {
            TargetError::Failed(format!(
                "process group {}: cannot start {}: {error}",
                self.config.name,
                self.config.command.program.display()
            ))
        })?;
        let pid = child.id().unwrap_or_default();
        let id = self.next_id;
        self.next_id += 1;
        tracing::info!(group = %self.config.name, slot, pid, "replica started");
        self.replicas.insert(
            id,
            Replica {
                slot,
                pid,
                started: Instant::now(),
                stopping: false,
            },
        );
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let outcome = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(error) => format!("wait failed: {error}"),
            };
            let _ = events.send(Event::Exited { id, outcome });
        });
        Ok(())
    }

    fn stop(&mut self, id: u64) {
        let Some(replica) = self.replicas.get_mut(&id) else {
            return;
        };
        replica.stopping = true;
        tracing::info!(group = %self.config.name, slot = replica.slot, pid = replica.pid, "stopping replica");
        signal_group(replica.pid, self.config.stop_signal.to_signal());
        let events = self.events_tx.clone();
        let grace = self.config.grace_period;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = events.send(Event::GraceOver { id });
        });
    }

    fn publish(&mut self) {
        self.status.running = self.replicas.values().filter(|r| !r.stopping).count() as u32;
        self.status.stopping = self.replicas.values().filter(|r| r.stopping).count() as u32;
        self.status.pids = self
            .replicas
            .values()
            .filter(|r| !r.stopping)
            .map(|r| r.pid)
            .collect();
        self.status.restart_delay = self
            .restart_not_before
            .filter(|_| self.status.running < self.status.desired)
            .map(|_| humantime::format_duration(self.pending_delay).to_string());
        let status = self.status.clone();
        self.status_tx.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// No delay for the first young death (a killed worker is replaced at once), then 1 s
/// doubling up to [`MAX_RESTART_DELAY`].
fn restart_delay(young_deaths: u32) -> Duration {
    if young_deaths <= 1 {
        return Duration::ZERO;
    }
    let doublings = (young_deaths - 2).min(5);
    (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_RESTART_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_grows_and_caps() {
        assert_eq!(restart_delay(0), Duration::ZERO);
        assert_eq!(restart_delay(1), Duration::ZERO);
        assert_eq!(restart_delay(2), Duration::from_secs(1));
        assert_eq!(restart_delay(3), Duration::from_secs(2));
        assert_eq!(restart_delay(10), MAX_RESTART_DELAY);
    }
}
