//! The job loop: one tokio task per ScaledJob. It polls the triggers with the same pollers
//! and connection pool as the scale loop, asks [`crate::scaling::decide_jobs`] how many Jobs
//! to start, and acts through the [`JobTarget`] seam: batch/v1 Jobs in the cluster, local
//! processes under `ebb run`.
//!
//! Per poll: every trigger is polled concurrently under its own deadline; the target's counts
//! are read (from a cache: Kubernetes answers from its watch); with `rollout.strategy:
//! default` Jobs from an older spec are retired; the decision's Jobs are created; finished
//! Jobs beyond the history limits are deleted; status is published when it changed. A poll
//! in which no trigger answered creates nothing (beyond `minReplicaCount`). ScaledJobs poll
//! only: a pushed activation would start Jobs between polls that the next poll cannot yet
//! count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::evaluate::measurement;
use super::poller::TriggerPoller;
use super::pool::ScalerPool;
use super::sink::{EventKind, ObjectEvent};
use super::target::TargetError;
use super::trigger::{ObjectKey, ResolvedTrigger};
use crate::scaling::{JobReading, RunningJobs, decide_jobs};
use crate::spec::{
    Condition, ConditionStatus, ConditionType, RolloutStrategy, ScaledJobSpec, ScaledJobStatus,
    to_time,
};

/// Jobs were created.
pub const REASON_JOBS_CREATED: &str = "JobsCreated";
/// Creating Jobs failed.
pub const REASON_JOBS_FAILED: &str = "JobCreateFailed";
/// Running Jobs from an older spec were deleted (`rollout.strategy: default`).
pub const REASON_JOBS_RETIRED: &str = "JobsRetired";
/// The Jobs could not be counted.
pub const REASON_JOBS_UNREADABLE: &str = "JobsUnreadable";

/// The Jobs of one ScaledJob as its host counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Created and not finished (pending included).
    pub running: u32,
    /// Not started yet (a subset of `running`).
    pub pending: u32,
    /// Finished successfully.
    pub succeeded: u32,
    /// Finished unsuccessfully.
    pub failed: u32,
}

/// One ScaledJob's Jobs: what the job loop counts, creates and cleans up through.
///
/// The host builds one handle per version of the ScaledJob (it carries the Job template).
/// [`JobTarget::counts`] is called once per poll and must be cheap: Kubernetes answers from
/// its watch of Jobs (plus Jobs it created that the watch has not shown yet), never by
/// listing.
pub trait JobTarget: Send + Sync + 'static {
    /// The Jobs now.
    fn counts(&self) -> BoxFuture<'_, Result<JobCounts, TargetError>>;

    /// Starts `count` new Jobs from the current template; returns how many started.
    fn create(&self, count: u32) -> BoxFuture<'_, Result<u32, TargetError>>;

    /// Deletes finished Jobs beyond the limits, oldest first; returns how many went.
    fn clean_history(
        &self,
        successful_limit: u32,
        failed_limit: u32,
    ) -> BoxFuture<'_, Result<u32, TargetError>>;

    /// Deletes unfinished Jobs made from an older template (`rollout.strategy: default`);
    /// returns how many went.
    fn retire_outdated(&self) -> BoxFuture<'_, Result<u32, TargetError>>;
}

/// Receives what the job loops report (the controller patches status and emits Events; `ebb
/// run` shows a table).
pub trait JobSink: Send + Sync + 'static {
    /// The ScaledJob's status changed.
    fn publish_job_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a ScaledJobStatus,
    ) -> BoxFuture<'a, ()>;

    /// Something happened to the ScaledJob.
    fn record_job_event<'a>(
        &'a self,
        key: &'a ObjectKey,
        event: &'a ObjectEvent,
    ) -> BoxFuture<'a, ()>;
}

/// One ScaledJob as the runtime runs it.
#[derive(Clone)]
pub struct ManagedJob {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `metadata.generation` (0 outside Kubernetes).
    pub generation: i64,
    /// The validated spec.
    pub spec: Arc<ScaledJobSpec>,
    /// `paused: "true"` (or `paused-replicas`) annotation: no new Jobs.
    pub paused: bool,
    /// The triggers, prepared by the host's one preparation path, in spec order.
    pub triggers: Vec<ResolvedTrigger>,
    /// The Jobs.
    pub target: Arc<dyn JobTarget>,
    /// The status last written (lastActiveTime survives a restart).
    pub last_status: Option<ScaledJobStatus>,
}

/// Runs the job loops. Cheap to clone; clones share the loops.
#[derive(Clone)]
pub struct JobSupervisor {
    pool: ScalerPool,
    sink: Arc<dyn JobSink>,
    loops: Arc<Mutex<HashMap<ObjectKey, JobLoopHandle>>>,
}

struct JobLoopHandle {
    updates: watch::Sender<Option<ManagedJob>>,
    task: JoinHandle<()>,
}

impl JobSupervisor {
    /// A supervisor polling through `pool` and reporting to `sink`.
    pub fn new(pool: ScalerPool, sink: Arc<dyn JobSink>) -> Self {
        Self {
            pool,
            sink,
            loops: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, JobLoopHandle>> {
        self.loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the ScaledJob's loop, or hands the running loop the new version.
    pub fn apply(&self, job: ManagedJob) {
        let mut loops = self.lock();
        if let Some(handle) = loops.get(&job.key)
            && !handle.task.is_finished()
        {
            let _ = handle.updates.send(Some(job));
            return;
        }
        let key = job.key.clone();
        let (updates, receiver) = watch::channel(None);
        let job_loop = JobLoop::new(job, self.pool.clone(), self.sink.clone());
        let task = tokio::spawn(job_loop.run(receiver));
        loops.insert(key, JobLoopHandle { updates, task });
    }

    /// Stops the ScaledJob's loop (it was deleted); false when none ran.
    pub fn remove(&self, key: &ObjectKey) -> bool {
        match self.lock().remove(key) {
            Some(handle) => {
                let _ = handle.updates.send(None);
                true
            }
            None => false,
        }
    }

    /// Stops every loop whose key `keep` rejects.
    pub fn retain(&self, mut keep: impl FnMut(&ObjectKey) -> bool) {
        self.lock().retain(|key, handle| {
            let kept = keep(key);
            if !kept {
                let _ = handle.updates.send(None);
            }
            kept
        });
    }

    /// The ScaledJobs with a loop, sorted.
    pub fn keys(&self) -> Vec<ObjectKey> {
        let mut keys: Vec<_> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Stops every loop and waits for them (a poll in progress finishes first).
    pub async fn shutdown(&self) {
        let handles: Vec<JobLoopHandle> = self.lock().drain().map(|(_, handle)| handle).collect();
        for handle in &handles {
            let _ = handle.updates.send(None);
        }
        for handle in handles {
            let _ = handle.task.await;
        }
    }
}

struct JobLoop {
    job: ManagedJob,
    pollers: Vec<TriggerPoller>,
    /// The job's trigger series, exported while the loop runs.
    series: Arc<super::series::ObjectSeries>,
    pool: ScalerPool,
    sink: Arc<dyn JobSink>,
    status: ScaledJobStatus,
    published: Option<ScaledJobStatus>,
    counts_failing: bool,
}

impl JobLoop {
    fn new(mut job: ManagedJob, pool: ScalerPool, sink: Arc<dyn JobSink>) -> Self {
        let triggers = std::mem::take(&mut job.triggers);
        let series = pool
            .metrics()
            .objects
            .scaled_job(super::metrics::ObjectLabels::from(&job.key));
        let pollers = build_pollers(&series, triggers, &pool);
        let status = job.last_status.take().unwrap_or_default();
        Self {
            job,
            pollers,
            series,
            pool,
            sink,
            published: Some(status.clone()),
            status,
            counts_failing: false,
        }
    }

    async fn run(mut self, mut updates: watch::Receiver<Option<ManagedJob>>) {
        let mut interval = self.job.spec.polling_interval();
        let mut due = Instant::now();
        loop {
            tokio::select! {
                biased;
                changed = updates.changed() => {
                    let next = if changed.is_ok() { updates.borrow_and_update().clone() } else { None };
                    let Some(next) = next else { break };
                    self.update(next);
                    let new_interval = self.job.spec.polling_interval();
                    if new_interval != interval {
                        interval = new_interval;
                        due = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(due.into()) => {
                    self.poll().await;
                    due += interval;
                    let now = Instant::now();
                    if due <= now {
                        due = now + interval;
                    }
                }
            }
        }
    }

    fn update(&mut self, mut job: ManagedJob) {
        let triggers = std::mem::take(&mut job.triggers);
        let same = triggers
            .iter()
            .eq(self.pollers.iter().map(|poller| &*poller.trigger));
        if !same {
            self.pollers = build_pollers(&self.series, triggers, &self.pool);
        }
        job.last_status = None;
        self.job = job;
    }

    async fn poll(&mut self) {
        let key = self.job.key.clone();
        let failing_before: Vec<bool> = self
            .pollers
            .iter()
            .map(|poller| poller.consecutive_failures > 0)
            .collect();
        let answered =
            futures::future::join_all(self.pollers.iter_mut().map(|poller| poller.poll(&key)))
                .await;
        self.report_trigger_transitions(&failing_before).await;
        let spec = self.job.spec.clone();
        let target = self.job.target.clone();
        if spec.rollout_strategy() == RolloutStrategy::Default {
            match target.retire_outdated().await {
                Ok(0) => {}
                Ok(retired) => {
                    let message = format!(
                        "deleted {retired} running job(s) made from an older spec (rollout.strategy: default)"
                    );
                    self.event(EventKind::Normal, REASON_JOBS_RETIRED, message)
                        .await;
                }
                Err(error) => tracing::warn!(object = %key, %error, "cannot retire outdated jobs"),
            }
        }
        let counts = match target.counts().await {
            Ok(counts) => {
                self.counts_failing = false;
                counts
            }
            Err(error) => {
                if !self.counts_failing {
                    self.counts_failing = true;
                    tracing::warn!(object = %key, %error, "cannot count jobs");
                    self.event(
                        EventKind::Warning,
                        REASON_JOBS_UNREADABLE,
                        error.to_string(),
                    )
                    .await;
                }
                return;
            }
        };
        // Only triggers that answered this poll speak; a failing scaler asks for nothing.
        let readings: Vec<JobReading> = self
            .pollers
            .iter()
            .zip(&answered)
            .filter(|(_, ok)| **ok)
            .filter_map(|(poller, _)| poller.last_reading.as_ref())
            .map(|reading| {
                let measurement = measurement(reading, crate::scaling::MetricType::AverageValue);
                JobReading {
                    value: measurement.value,
                    target: measurement.target,
                    active: measurement.active,
                }
            })
            .collect();
        let jobs = RunningJobs {
            running: counts.running,
            pending: counts.pending,
        };
        let decision = decide_jobs(&readings, jobs, &spec.limits(), self.job.paused);
        let mut running = counts.running;
        if decision.create > 0 {
            match target.create(decision.create).await {
                Ok(created) => {
                    running += created;
                    tracing::info!(object = %key, created, reason = %decision.reason, "created jobs");
                    let message = format!("created {created} job(s): {}", decision.reason);
                    self.event(EventKind::Normal, REASON_JOBS_CREATED, message)
                        .await;
                }
                Err(error) => {
                    tracing::warn!(object = %key, %error, "cannot create jobs");
                    let message = format!("cannot create {} job(s): {error}", decision.create);
                    self.event(EventKind::Warning, REASON_JOBS_FAILED, message)
                        .await;
                }
            }
        }
        if let Err(error) = target
            .clean_history(spec.successful_history_limit(), spec.failed_history_limit())
            .await
        {
            tracing::warn!(object = %key, %error, "cannot delete finished jobs");
        }
        let now = SystemTime::now();
        self.update_status(&answered, decision.active, running, counts, now);
        if self.published.as_ref() != Some(&self.status) {
            self.sink.publish_job_status(&key, &self.status).await;
            self.published = Some(self.status.clone());
        }
    }

    fn update_status(
        &mut self,
        answered: &[bool],
        active: bool,
        running: u32,
        counts: JobCounts,
        now: SystemTime,
    ) {
        let status = &mut self.status;
        status.running_jobs = running;
        status.pending_jobs = counts.pending;
        status.succeeded_jobs = counts.succeeded;
        status.failed_jobs = counts.failed;
        status.observed_generation = Some(self.job.generation);
        let failing: Vec<String> = self
            .pollers
            .iter()
            .zip(answered)
            .filter(|(_, ok)| !**ok)
            .map(|(poller, _)| match &poller.last_error {
                Some(error) => format!("{}: {}", poller.trigger.name(), error.message),
                None => poller.trigger.name().to_owned(),
            })
            .collect();
        let ready = if failing.is_empty() {
            Condition::new(
                ConditionType::Ready,
                ConditionStatus::True,
                "TriggersAnswer",
                "every trigger answered the last poll",
                now,
            )
        } else {
            Condition::new(
                ConditionType::Ready,
                ConditionStatus::False,
                "TriggerFailing",
                failing.join("; "),
                now,
            )
        };
        status.set_condition(ready);
        if active {
            status.last_active_time = to_time(now);
        }
        let (reason, message) = if active {
            ("TriggerActive", "a trigger reports work waiting")
        } else {
            ("NoActiveTrigger", "no trigger reports work waiting")
        };
        status.set_condition(Condition::new(
            ConditionType::Active,
            ConditionStatus::from_bool(active),
            reason,
            message,
            now,
        ));
        let (reason, message) = if self.job.paused {
            ("PausedByAnnotation", "no new jobs while paused")
        } else {
            ("NotPaused", "")
        };
        status.set_condition(Condition::new(
            ConditionType::Paused,
            ConditionStatus::from_bool(self.job.paused),
            reason,
            message,
            now,
        ));
    }

    async fn report_trigger_transitions(&self, failing_before: &[bool]) {
        for (poller, was_failing) in self.pollers.iter().zip(failing_before) {
            if let Some(event) = poller.transition(*was_failing) {
                self.sink.record_job_event(&self.job.key, &event).await;
            }
        }
    }

    async fn event(&self, kind: EventKind, reason: &'static str, message: String) {
        let event = ObjectEvent {
            kind,
            reason,
            message,
        };
        self.sink.record_job_event(&self.job.key, &event).await;
    }
}

fn build_pollers(
    series: &super::series::ObjectSeries,
    triggers: Vec<ResolvedTrigger>,
    pool: &ScalerPool,
) -> Vec<TriggerPoller> {
    let pollers: Vec<TriggerPoller> = triggers
        .into_iter()
        .map(|trigger| TriggerPoller::new(series, trigger, pool, None).for_scaled_job())
        .collect();
    series.set_triggers(pollers.iter().map(|poller| poller.series.clone()));
    pollers
}

impl Drop for JobLoop {
    fn drop(&mut self) {
        self.pool.metrics().objects.remove(&self.series);
    }
}

/// A job target held in memory, for tests: jobs move between states only when the test
/// says so (there is no job controller). Clones share the jobs.
#[derive(Clone, Debug, Default)]
pub struct InMemoryJobs {
    inner: Arc<Mutex<JobCounts>>,
}

impl InMemoryJobs {
    /// The counts now.
    pub fn snapshot(&self) -> JobCounts {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JobCounts> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `count` running jobs finish, successfully or not.
    pub fn finish(&self, count: u32, succeeded: bool) {
        let mut counts = self.lock();
        let count = count.min(counts.running);
        counts.running -= count;
        counts.pending = counts.pending.min(counts.running);
        if succeeded {
            counts.succeeded += count;
        } else {
            counts.failed += count;
        }
    }
}

impl JobTarget for InMemoryJobs {
    fn counts(&self) -> BoxFuture<'_, Result<JobCounts, TargetError>> {
        Box::pin(std::future::ready(Ok(self.snapshot())))
    }

    fn create(&self, count: u32) -> BoxFuture<'_, Result<u32, TargetError>> {
        self.lock().running += count;
        Box::pin(std::future::ready(Ok(count)))
    }

    fn clean_history(
        &self,
        successful_limit: u32,
        failed_limit: u32,
    ) -> BoxFuture<'_, Result<u32, TargetError>> {
        let mut counts = self.lock();
        let gone = counts.succeeded.saturating_sub(successful_limit)
            + counts.failed.saturating_sub(failed_limit);
        counts.succeeded = counts.succeeded.min(successful_limit);
        counts.failed = counts.failed.min(failed_limit);
        Box::pin(std::future::ready(Ok(gone)))
    }

    fn retire_outdated(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(std::future::ready(Ok(0)))
    }
}
