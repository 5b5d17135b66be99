//! ScaledJobs under `ebb run`: each Job is one local process, the first container of
//! `jobTargetRef.template.spec` (`command` + `args`, with its `env`). The image is ignored
//! (there is no container runtime); `--check` says so.
//!
//! Job semantics kept from batch/v1: a failed process is run again up to `backoffLimit`
//! times (default 6; `restartPolicy` `OnFailure` or `Never`), `activeDeadlineSeconds` kills a
//! job that runs too long (no retry), and on exit running jobs get their
//! `terminationGracePeriodSeconds` (default 30) to finish before they are killed. The job loop
//! itself (polling, deciding, history cleanup) is the runtime's ([`crate::runtime::JobSupervisor`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rustix::process::Signal;
use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::manifest::{
    CommandFields, EnvSpec, FieldProblem, LOCAL_GROUP, ResolvedCommand, ScalerConfig,
    resolve_command,
};
use super::plan::Plan;
use super::plan::{EnvLookup, attach_local_scaler, base_dir};
use super::process::{OutputMode, signal_group, spawn};
use super::sources::{LocalObjects, LocalSources};
use crate::runtime::prepare::prepare_trigger_list;
use crate::runtime::{
    EventKind, JobCounts, JobSink, JobSupervisor, JobTarget, ManagedJob, ObjectEvent, ObjectKey,
    ResolvedTrigger, ScalerPool, TargetError,
};
use crate::spec::load::Document;
use crate::spec::{ScaledJob, ScaledJobSpec, ScaledJobStatus};

/// Kubernetes' default `backoffLimit`.
const DEFAULT_BACKOFF_LIMIT: u32 = 6;
/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Pause before a failed job process is run again.
const RETRY_DELAY: Duration = Duration::from_millis(200);
const CONTAINER: &str = "spec.jobTargetRef.template.spec.containers[0]";

/// What each job of a ScaledJob runs, read from its Job template.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The ScaledJob's name; jobs are `<name>-<n>`.
    pub name: String,
    /// The first container's command, args and env.
    pub command: ResolvedCommand,
    /// The container image, ignored locally (shown by `--check`).
    pub image: Option<String>,
    /// Runs of a failed job after the first.
    pub backoff_limit: u32,
    /// A job still running after this is killed and failed.
    pub active_deadline: Option<Duration>,
    /// Time a running job gets to finish when `ebb run` stops.
    pub grace_period: Duration,
}

/// One ScaledJob, ready for the runtime.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// Its key (namespace "").
    pub key: ObjectKey,
    /// The validated spec.
    pub spec: Arc<ScaledJobSpec>,
    /// `paused` annotation.
    pub paused: bool,
    /// What each job runs.
    pub config: JobConfig,
    /// Triggers prepared by the shared preparation path, in spec order.
    pub triggers: Vec<ResolvedTrigger>,
}

/// Checks one `kind: ScaledJob` document and prepares its triggers through the shared
/// preparation path, with the Job container's `env` as the target environment.
pub(super) fn plan_job(
    document: &Document,
    mut job: ScaledJob,
    scalers: &[ScalerConfig],
    sources: &LocalObjects,
    env: EnvLookup<'_>,
) -> Result<PlannedJob, Vec<String>> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let prefix = format!("{}: ScaledJob {name:?}", document.path.display());
    let mut problems = Vec::new();
    let group_of = document.api_version.split('/').next().unwrap_or_default();
    if group_of != LOCAL_GROUP && group_of != "keda.sh" {
        problems.push(format!(
            "{prefix}: apiVersion: expected {LOCAL_GROUP}/v1alpha1 (or keda.sh/v1alpha1), got {:?}",
            document.api_version
        ));
    }
    for trigger in &mut job.spec.triggers {
        attach_local_scaler(trigger, scalers);
    }
    for problem in job.validate() {
        problems.push(format!("{prefix}: {problem}"));
    }
    let base = base_dir(&document.path);
    let config = match job_config(&name, &job.spec, &base) {
        Ok(config) => Some(config),
        Err(list) => {
            problems.extend(
                list.into_iter()
                    .map(|problem| format!("{prefix}: {problem}")),
            );
            None
        }
    };
    let (Some(config), true) = (config, problems.is_empty()) else {
        return Err(problems);
    };
    let key = ObjectKey::new("", name);
    let sidecars = super::plan::sidecar_addresses(scalers);
    let lookups = LocalSources {
        objects: sources,
        group_env: Some(&config.command.env),
        env,
        base: &base,
        scalers: &sidecars,
    };
    // Local lookups answer at once, so blocking here is safe (as for ScaledObjects).
    let triggers =
        futures::executor::block_on(prepare_trigger_list(&lookups, &key, &job.spec.triggers, ""))
            .map_err(|list| {
            list.into_iter()
                .map(|problem| format!("{prefix}: {problem}"))
                .collect::<Vec<_>>()
        })?;
    let paused = job.pause_state().unwrap_or_default().is_paused();
    Ok(PlannedJob {
        key,
        spec: Arc::new(job.spec),
        paused,
        config,
        triggers,
    })
}

fn problem(field: String, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field,
        message: message.into(),
    }
}

/// Reads the Job template of `spec` into what a local job runs; `base` is the manifest's
/// directory (relative programs and working directories start there).
pub fn job_config(
    name: &str,
    spec: &ScaledJobSpec,
    base: &Path,
) -> Result<JobConfig, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let Some(container) = spec.first_container() else {
        return Err(vec![problem(
            "spec.jobTargetRef.template.spec.containers".to_owned(),
            "at least one container is required",
        )]);
    };
    let mut words = container.command.iter().flatten().cloned();
    let program = words.next().unwrap_or_default();
    if program.is_empty() {
        problems.push(problem(
            format!("{CONTAINER}.command"),
            "required under ebb run: the image's entrypoint is not known without a container runtime",
        ));
    }
    let args: Vec<String> = words
        .chain(container.args.iter().flatten().cloned())
        .collect();
    let program_missing = program.is_empty();
    let mut env = BTreeMap::new();
    for (index, var) in container.env.iter().flatten().enumerate() {
        if var.value_from.is_some() {
            problems.push(problem(
                format!("{CONTAINER}.env[{index}].valueFrom"),
                "not supported by ebb run; write `value`",
            ));
        }
        env.insert(var.name.clone(), var.value.clone().unwrap_or_default());
    }
    if container
        .env_from
        .as_ref()
        .is_some_and(|list| !list.is_empty())
    {
        problems.push(problem(
            format!("{CONTAINER}.envFrom"),
            "not supported by ebb run; list the variables in `env`",
        ));
    }
    let pod = spec.job_target_ref.template.spec.as_ref();
    let restart = pod
        .and_then(|pod| pod.restart_policy.as_deref())
        .unwrap_or("Never");
    if restart != "Never" && restart != "OnFailure" {
        problems.push(problem(
            "spec.jobTargetRef.template.spec.restartPolicy".to_owned(),
            format!("a Job's pods restart `Never` or `OnFailure`, got {restart:?}"),
        ));
    }
    let mut field_problems = Vec::new();
    let command = resolve_command(
        CommandFields {
            command: &program,
            args: &args,
            env: &EnvSpec::Map(env),
            working_dir: container.working_dir.as_deref(),
        },
        base,
        &mut field_problems,
    );
    // resolve_command names ProcessGroup fields; here they are the container's.
    field_problems.retain(|found| !(program_missing && found.field == "spec.command"));
    problems.extend(field_problems.into_iter().map(|mut found| {
        found.field = found.field.replace("spec.", &format!("{CONTAINER}."));
        found
    }));
    let seconds = |value: Option<i64>, field: &str, problems: &mut Vec<FieldProblem>| match value {
        None => None,
        Some(value) if value > 0 => Some(Duration::from_secs(value.unsigned_abs())),
        Some(value) => {
            problems.push(problem(
                field.to_owned(),
                format!("must be a positive number of seconds, got {value}"),
            ));
            None
        }
    };
    let active_deadline = seconds(
        spec.job_target_ref.active_deadline_seconds,
        "spec.jobTargetRef.activeDeadlineSeconds",
        &mut problems,
    );
    let grace_period = match pod.and_then(|pod| pod.termination_grace_period_seconds) {
        Some(0) => Duration::ZERO,
        other => seconds(
            other,
            "spec.jobTargetRef.template.spec.terminationGracePeriodSeconds",
            &mut problems,
        )
        .unwrap_or(DEFAULT_GRACE),
    };
    let backoff_limit = match spec.job_target_ref.backoff_limit {
        None => DEFAULT_BACKOFF_LIMIT,
        Some(limit) => u32::try_from(limit).unwrap_or_else(|_| {
            problems.push(problem(
                "spec.jobTargetRef.backoffLimit".to_owned(),
                format!("must be 0 or more, got {limit}"),
            ));
            0
        }),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(JobConfig {
        name: name.to_owned(),
        command,
        image: container.image.clone(),
        backoff_limit,
        active_deadline,
        grace_period,
    })
}

/// The local jobs of one ScaledJob: a [`JobTarget`] of processes. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LocalJobs {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: JobConfig,
    output: OutputMode,
    state: Mutex<State>,
    /// Wakes the shutdown when a job finishes.
    finished: Notify,
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// Unfinished jobs: name → pid of the current run (None between runs).
    running: HashMap<String, Option<u32>>,
    succeeded: u64,
    failed: u64,
    /// Finished jobs kept, oldest first: (name, succeeded).
    history: VecDeque<(String, bool)>,
    /// `ebb run` is stopping: no new jobs, no retries.
    stopping: bool,
}

/// Live counts of one ScaledJob's local jobs, for the table and JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalJobCounts {
    /// Jobs whose process runs (or waits to run again).
    pub running: u32,
    /// Jobs finished successfully since `ebb run` started.
    pub succeeded: u64,
    /// Jobs failed since `ebb run` started (retries used up, or deadline passed).
    pub failed: u64,
    /// Process ids of the running jobs.
    pub pids: Vec<u32>,
}

impl LocalJobs {
    /// Jobs of `config`, their output going to `output`.
    pub fn new(config: JobConfig, output: OutputMode) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                output,
                state: Mutex::default(),
                finished: Notify::new(),
                changed: watch::channel(0).0,
            }),
        }
    }

    /// The ScaledJob's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The counts now.
    pub fn status(&self) -> LocalJobCounts {
        let state = self.lock();
        let mut pids: Vec<u32> = state.running.values().flatten().copied().collect();
        pids.sort_unstable();
        LocalJobCounts {
            running: u32::try_from(state.running.len()).unwrap_or(u32::MAX),
            succeeded: state.succeeded,
            failed: state.failed,
            pids,
        }
    }

    /// A receiver that changes whenever a job starts or finishes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Stops starting jobs, lets running ones finish within their grace period, then kills
    /// what is left and waits for it to be gone.
    pub async fn shutdown(&self) {
        self.lock().stopping = true;
        let deadline = tokio::time::Instant::now() + self.shared.config.grace_period;
        loop {
            let finished = self.shared.finished.notified();
            if self.lock().running.is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                break;
            }
        }
        self.kill_all();
        loop {
            let finished = self.shared.finished.notified();
            if self.lock().running.is_empty() {
                return;
            }
            finished.await;
        }
    }

    /// SIGKILLs every running job.
    pub fn kill_all(&self) {
        let pids: Vec<u32> = self.lock().running.values().flatten().copied().collect();
        for pid in pids {
            tracing::warn!(job = self.name(), pid, "killing a job still running");
            signal_group(pid, Signal::KILL);
        }
    }

    fn start(&self) -> Option<String> {
        let mut state = self.lock();
        if state.stopping {
            return None;
        }
        state.next += 1;
        let name = format!("{}-{}", self.shared.config.name, state.next);
        state.running.insert(name.clone(), None);
        Some(name)
    }

    async fn run_job(self, name: String) {
        let config = &self.shared.config;
        let started = Instant::now();
        let mut attempt = 0u32;
        let succeeded = loop {
            match self.run_once(&name, attempt, started).await {
                Outcome::Succeeded => break true,
                Outcome::DeadlineExceeded => {
                    tracing::warn!(job = %name, "activeDeadlineSeconds passed: killed");
                    break false;
                }
                Outcome::Failed(why) => {
                    let stopping = self.lock().stopping;
                    if attempt >= config.backoff_limit || stopping {
                        tracing::warn!(job = %name, attempts = attempt + 1, %why, "job failed");
                        break false;
                    }
                    tracing::info!(job = %name, attempt = attempt + 1, %why, "job process failed; running it again (backoffLimit {})", config.backoff_limit);
                    attempt += 1;
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        };
        let mut state = self.lock();
        state.running.remove(&name);
        if succeeded {
            state.succeeded += 1;
        } else {
            state.failed += 1;
        }
        state.history.push_back((name, succeeded));
        drop(state);
        self.shared.finished.notify_waiters();
        self.shared.changed.send_modify(|count| *count += 1);
    }

    async fn run_once(&self, name: &str, attempt: u32, started: Instant) -> Outcome {
        let config = &self.shared.config;
        let extra = [
            ("EBB_JOB_NAME", name.to_owned()),
            ("EBB_JOB_ATTEMPT", attempt.to_string()),
        ];
        let mut child = match spawn(
            &config.command,
            &extra,
            name,
            &self.shared.output,
            Signal::TERM,
        ) {
            Ok(child) => child,
            Err(error) => return Outcome::Failed(format!("cannot start: {error}")),
        };
        let pid = child.id();
        if let Some(slot) = self.lock().running.get_mut(name) {
            *slot = pid;
        }
        self.shared.changed.send_modify(|count| *count += 1);
        let deadline = config
            .active_deadline
            .map(|limit| tokio::time::Instant::from_std(started + limit));
        let waited = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, child.wait()).await,
            None => Ok(child.wait().await),
        };
        let outcome = match waited {
            Ok(Ok(status)) if status.success() => Outcome::Succeeded,
            Ok(Ok(status)) => Outcome::Failed(status.to_string()),
            Ok(Err(error)) => Outcome::Failed(error.to_string()),
            Err(_) => {
                if let Some(pid) = pid {
                    signal_group(pid, Signal::KILL);
                }
                let _ = child.wait().await;
                Outcome::DeadlineExceeded
            }
        };
        // What the run started outside its process group goes with it, as with a pod.
        super::orphans::stop_job_leftovers(name).await;
        if let Some(slot) = self.lock().running.get_mut(name) {
            *slot = None;
        }
        outcome
    }
}

enum Outcome {
    Succeeded,
    Failed(String),
    DeadlineExceeded,
}

impl JobTarget for LocalJobs {
    fn counts(&self) -> BoxFuture<'_, Result<JobCounts, TargetError>> {
        let state = self.lock();
        let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        let counts = JobCounts {
            running: u32::try_from(state.running.len()).unwrap_or(u32::MAX),
            pending: 0,
            succeeded: clamp(state.succeeded),
            failed: clamp(state.failed),
        };
        Box::pin(std::future::ready(Ok(counts)))
    }

    fn create(&self, count: u32) -> BoxFuture<'_, Result<u32, TargetError>> {
        let mut created = 0;
        for _ in 0..count {
            let Some(name) = self.start() else { break };
            tokio::spawn(self.clone().run_job(name));
            created += 1;
        }
        Box::pin(std::future::ready(Ok(created)))
    }

    fn clean_history(
        &self,
        successful_limit: u32,
        failed_limit: u32,
    ) -> BoxFuture<'_, Result<u32, TargetError>> {
        let mut state = self.lock();
        let mut removed = 0;
        for (succeeded, limit) in [(true, successful_limit), (false, failed_limit)] {
            let kept = state
                .history
                .iter()
                .filter(|(_, ok)| *ok == succeeded)
                .count();
            let mut excess = kept.saturating_sub(limit as usize);
            state.history.retain(|(_, ok)| {
                if *ok == succeeded && excess > 0 {
                    excess -= 1;
                    removed += 1;
                    false
                } else {
                    true
                }
            });
        }
        Box::pin(std::future::ready(Ok(removed)))
    }

    fn retire_outdated(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        // `ebb run` reads its files once: every job runs the one template there is.
        Box::pin(std::future::ready(Ok(0)))
    }
}

/// One ScaledJob on the status board.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Its name.
    pub name: String,
    /// Live counts of its jobs.
    #[serde(flatten)]
    pub jobs: LocalJobCounts,
    /// The status its loop last published (None before the first poll).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ScaledJobStatus>,
    /// The last event, `Reason: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
}

/// What a job loop last reported: its status and its last event.
type Reported = (Option<ScaledJobStatus>, Option<String>);

/// Where the job loops report under `ebb run`. Clones share the data.
#[derive(Clone, Debug, Default)]
pub struct JobBoard {
    views: Arc<Mutex<BTreeMap<String, Reported>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl JobBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// The views of `jobs`, with what their loops last reported.
    pub fn views(&self, jobs: &[LocalJobs]) -> Vec<JobView> {
        let views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.iter()
            .map(|job| {
                let (status, last_reason) = views.get(job.name()).cloned().unwrap_or_default();
                JobView {
                    name: job.name().to_owned(),
                    jobs: job.status(),
                    status,
                    last_reason,
                }
            })
            .collect()
    }

    /// A receiver that changes whenever a loop reports.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, key: &ObjectKey, change: impl FnOnce(&mut Reported)) {
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        change(views.entry(key.name.clone()).or_default());
        drop(views);
        self.changed.send_modify(|count| *count += 1);
    }
}

impl JobSink for JobBoard {
    fn publish_job_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a ScaledJobStatus,
    ) -> BoxFuture<'a, ()> {
        self.update(key, |view| view.0 = Some(status.clone()));
        Box::pin(std::future::ready(()))
    }

    fn record_job_event<'a>(
        &'a self,
        key: &'a ObjectKey,
        event: &'a ObjectEvent,
    ) -> BoxFuture<'a, ()> {
        if event.kind == EventKind::Warning {
            tracing::warn!(job = %key, reason = event.reason, "{}", event.message);
        }
        self.update(key, |view| {
            view.1 = Some(format!("{}: {}", event.reason, event.message));
        });
        Box::pin(std::future::ready(()))
    }
}

/// Starts one job loop per planned ScaledJob (the runtime's [`JobSupervisor`]), each acting
/// on its [`LocalJobs`] and reporting to `board`.
pub(super) fn start_loops(
    plan: &Plan,
    jobs: &[LocalJobs],
    board: &JobBoard,
    pool: ScalerPool,
) -> JobSupervisor {
    let supervisor = JobSupervisor::new(pool, Arc::new(board.clone()));
    for (planned, target) in plan.jobs.iter().zip(jobs) {
        supervisor.apply(ManagedJob {
            key: planned.key.clone(),
            generation: 0,
            spec: planned.spec.clone(),
            paused: planned.paused,
            triggers: planned.triggers.clone(),
            target: Arc::new(target.clone()),
            last_status: None,
        });
    }
    supervisor
}

/// `--check` lines for the ScaledJobs: what each job runs, and that the image is ignored.
pub(super) fn describe(plan: &Plan) -> String {
    let mut text = String::new();
    for job in &plan.jobs {
        let config = &job.config;
        let triggers: Vec<String> = job
            .triggers
            .iter()
            .map(|trigger| format!("{} -> {}", trigger.name(), trigger.channel.address))
            .collect();
        text.push_str(&format!(
            "scaled job {}: one process per job: {} {} (max {} running, backoffLimit {}) on {}\n",
            config.name,
            config.command.program.display(),
            config.command.args.join(" "),
            job.spec.max_replicas(),
            config.backoff_limit,
            triggers.join(", ")
        ));
        if let Some(image) = &config.image {
            text.push_str(&format!(
                "scaled job {}: image {image} is ignored locally: the command runs on this machine\n",
                config.name
            ));
        }
    }
    text
}
