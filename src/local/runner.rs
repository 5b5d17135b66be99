//! Putting `ebb run` together: plan, sidecars, process groups, the runtime's scale loops,
//! the status server and output, then an orderly stop on Ctrl-C.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::group::ProcessGroupHandle;
use super::jobs::{JobBoard, LocalJobs};
use super::plan::{Plan, PlanError, plan};
use super::process::OutputMode;
use super::sidecar::Sidecar;
use super::status::{NamedGroup, NamedSidecar, Snapshot, StatusBoard, change_lines, render_table};
use super::{OutputStyle, RunArgs, RunError};
use crate::runtime::prepare::{PoolInfo, check_schemas};
use crate::runtime::{PoolConfig, Readiness, RuntimeMetrics, ScalerPool};

/// Deadline of the GetInfo call that checks trigger metadata against a scaler's schema.
const INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the status output is refreshed at most.
const RENDER_INTERVAL: Duration = Duration::from_millis(250);

/// Everything whose state is shown.
#[derive(Clone)]
struct Sources {
    board: StatusBoard,
    job_board: JobBoard,
    jobs: Vec<LocalJobs>,
    groups: Vec<ProcessGroupHandle>,
    sidecars: Vec<Sidecar>,
}

impl Sources {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            objects: self.board.objects(),
            process_groups: self
                .groups
                .iter()
                .map(|group| NamedGroup {
                    name: group.name().to_owned(),
                    status: group.status(),
                })
                .collect(),
            scalers: self
                .sidecars
                .iter()
                .map(|sidecar| NamedSidecar {
                    name: sidecar.name().to_owned(),
                    status: sidecar.status(),
                })
                .collect(),
            scaled_jobs: self.job_board.views(&self.jobs),
        }
    }
}

/// Runs until Ctrl-C (SIGINT) or SIGTERM, or until idle with `--until-idle`; then stops
/// whatever its processes left running outside their process groups (see [`super::orphans`]).
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let reaper = super::orphans::start_reaper();
    let result = run_until_stopped(args).await;
    super::orphans::stop_all_leftovers().await;
    if let Some(reaper) = reaper {
        reaper.abort();
    }
    result
}

async fn run_until_stopped(args: RunArgs) -> Result<(), RunError> {
    let plan = plan(&args.file, &|name| std::env::var(name).ok())?;
    if args.check {
        print!("{}", crate::spec::terminal_safe(&describe(&plan), true));
        return Ok(());
    }
    let table = match args.output {
        OutputStyle::Auto => std::io::stdout().is_terminal(),
        OutputStyle::Table => true,
        OutputStyle::Lines => false,
    };
    let output = match (&args.process_logs, table) {
        (Some(dir), _) => OutputMode::Directory(dir.clone()),
        (None, true) => OutputMode::Directory(
            std::env::temp_dir().join(format!("ebb-run-{}", std::process::id())),
        ),
        (None, false) => OutputMode::Prefixed,
    };
    let status_listener = match args.status_addr {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| RunError::StatusAddr { address, source })?,
        ),
        None => None,
    };
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signal)?;

    let mut sidecars: Vec<Sidecar> = Vec::new();
    for config in &plan.scalers {
        let started = tokio::select! {
            started = Sidecar::start(config.clone(), output.clone()) => started,
            _ = interrupt.recv() => { stop_sidecars(&sidecars).await; return Ok(()); }
            _ = terminate.recv() => { stop_sidecars(&sidecars).await; return Ok(()); }
        };
        match started {
            Ok(sidecar) => sidecars.push(sidecar),
            Err(error) => {
                stop_sidecars(&sidecars).await;
                return Err(error.into());
            }
        }
    }

    let groups: Vec<ProcessGroupHandle> = plan
        .groups
        .iter()
        .map(|config| ProcessGroupHandle::start(config.clone(), output.clone()))
        .collect();
    let board = StatusBoard::new(
        plan.objects
            .iter()
            .map(|object| (object.key.name.clone(), object.group.clone())),
    );
    let jobs: Vec<LocalJobs> = plan
        .jobs
        .iter()
        .map(|job| LocalJobs::new(job.config.clone(), output.clone()))
        .collect();
    let job_board = JobBoard::new();
    let sources = Sources {
        board: board.clone(),
        job_board: job_board.clone(),
        jobs: jobs.clone(),
        groups: groups.clone(),
        sidecars: sidecars.clone(),
    };

    let mut registry = Registry::default();
    let metrics = RuntimeMetrics::register_with(&mut registry, args.metrics_names);
    let local_metrics = LocalMetrics::register(&mut registry);
    let pool = ScalerPool::new(PoolConfig::default(), metrics);
    let problems = schema_problems(&plan, &pool).await;
    if !problems.is_empty() {
        futures::future::join_all(groups.iter().map(ProcessGroupHandle::shutdown)).await;
        stop_sidecars(&sidecars).await;
        return Err(PlanError { problems }.into());
    }
    let job_loops = super::jobs::start_loops(&plan, &jobs, &job_board, pool.clone());
    // History is recorded only when the dashboard is served (on the status address).
    let history = args.status_addr.map(|_| crate::dashboard::History::new());
    let loops = super::loops::start(&plan, &groups, &board, history.clone(), pool);

    let readiness = Readiness::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server = None;
    if let Some(listener) = status_listener {
        let address = listener.local_addr().ok();
        let registry = Arc::new(registry);
        let mut routes = Router::new()
            .route("/status", get(status_json))
            .with_state(sources.clone());
        if let Some(history) = history {
            let view = host_view(&sources);
            routes = routes.merge(crate::dashboard::routes(history, view, registry.clone()));
        }
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        server = Some(tokio::spawn(crate::runtime::serve(
            listener,
            registry,
            readiness.clone(),
            routes,
            shutdown,
        )));
        if let Some(address) = address {
            tracing::info!(%address, "status on http://{address}/status, dashboard on http://{address}/");
        }
    }
    readiness.set_ready(true);

    let header = header_text(&args, &output);
    let renderer = tokio::spawn(render(
        sources.clone(),
        table,
        header,
        local_metrics,
        stop_rx.clone(),
    ));

    let reason = tokio::select! {
        _ = interrupt.recv() => "interrupted",
        _ = terminate.recv() => "terminated",
        _ = until_idle(&sources), if args.until_idle => "idle again",
    };
    tracing::info!(
        reason,
        "stopping: scale loops, then workers (gracefully), then scalers"
    );
    loops.shutdown().await;
    job_loops.shutdown().await;
    let stop_groups = futures::future::join_all(groups.iter().map(ProcessGroupHandle::shutdown));
    // Running jobs get their grace period to finish, then are killed.
    let stop_jobs = futures::future::join_all(jobs.iter().map(LocalJobs::shutdown));
    tokio::select! {
        _ = futures::future::join(stop_groups, stop_jobs) => {}
        _ = interrupt.recv() => {
            tracing::warn!("second interrupt: killing every process now");
            for group in &groups {
                group.kill_all().await;
            }
            for job in &jobs {
                job.kill_all();
            }
        }
    }
    stop_sidecars(&sidecars).await;
    let _ = stop_tx.send(true);
    let _ = renderer.await;
    if let Some(server) = server {
        match server.await {
            Ok(Err(error)) => return Err(RunError::StatusServer(error.to_string())),
            Err(error) => return Err(RunError::StatusServer(error.to_string())),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// Trigger metadata checked against each scaler's GetInfo schema, as the controller does
/// before it accepts an object; each problem names file, object and field.
async fn schema_problems(plan: &Plan, pool: &ScalerPool) -> Vec<String> {
    let info = PoolInfo::new(pool.clone(), INFO_TIMEOUT);
    let mut problems = Vec::new();
    for object in &plan.objects {
        for problem in check_schemas(&info, &object.triggers).await {
            problems.push(format!("ScaledObject {:?}: {problem}", object.key.name));
        }
    }
    for job in &plan.jobs {
        for problem in check_schemas(&info, &job.triggers).await {
            problems.push(format!("ScaledJob {:?}: {problem}", job.key.name));
        }
    }
    problems
}

async fn stop_sidecars(sidecars: &[Sidecar]) {
    futures::future::join_all(sidecars.iter().map(Sidecar::shutdown)).await;
}

async fn status_json(State(sources): State<Sources>) -> axum::Json<Snapshot> {
    axum::Json(sources.snapshot())
}

/// The dashboard's view of the process groups and scalers (objects come from its history).
fn host_view(sources: &Sources) -> crate::dashboard::HostView {
    let sources = sources.clone();
    Arc::new(move || {
        let snapshot = sources.snapshot();
        serde_json::json!({
            "processGroups": snapshot.process_groups,
            "scalers": snapshot.scalers,
        })
    })
}

/// Resolves once every group has had replicas and all are back to zero.
async fn until_idle(sources: &Sources) {
    let mut seen_busy = vec![false; sources.groups.len()];
    loop {
        let mut idle = true;
        for (index, group) in sources.groups.iter().enumerate() {
            let status = group.status();
            if status.running > 0 {
                seen_busy[index] = true;
            }
            if status.desired > 0 || status.running > 0 || status.stopping > 0 {
                idle = false;
            }
        }
        let mut jobs_seen = true;
        for job in &sources.jobs {
            let status = job.status();
            jobs_seen &= status.succeeded + status.failed > 0;
            idle &= status.running == 0;
        }
        if idle && jobs_seen && seen_busy.iter().all(|busy| *busy) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn header_text(args: &RunArgs, output: &OutputMode) -> String {
    let mut header = format!(
        "ebb run -f {}   (Ctrl-C stops everything)",
        args.file.display()
    );
    if let Some(address) = args.status_addr {
        header.push_str(&format!("\nstatus JSON: http://{address}/status"));
        header.push_str(&format!("\ndashboard: http://{address}/"));
    }
    if let OutputMode::Directory(dir) = output {
        header.push_str(&format!("\nprocess output: {}", dir.display()));
    }
    header
}

/// Redraws the table, or prints change lines, until stopped; then prints the final state.
async fn render(
    sources: Sources,
    table: bool,
    header: String,
    metrics: LocalMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let mut previous = Snapshot::default();
    let mut changes = sources.board.changes();
    loop {
        let snapshot = sources.snapshot();
        metrics.record(&snapshot);
        {
            let mut out = std::io::stdout().lock();
            if table {
                if snapshot != previous {
                    let width = terminal_width();
                    // Home, clear screen, then the whole table: no partial frames.
                    let _ = write!(
                        out,
                        "\x1b[H\x1b[2J{header}\n\n{}",
                        crate::spec::terminal_safe(&render_table(&snapshot, width), true)
                    );
                }
            } else {
                for line in change_lines(&previous, &snapshot) {
                    let line = crate::spec::terminal_safe(&line, false);
                    let _ = writeln!(out, "{} {line}", clock());
                }
            }
            let _ = out.flush();
        }
        previous = snapshot;
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = changes.changed() => {}
            _ = tokio::time::sleep(RENDER_INTERVAL) => {}
        }
        // Batch bursts of changes into one frame.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.parse().ok())
        .unwrap_or(120)
}

fn clock() -> String {
    let text = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    text.get(11..19).unwrap_or(&text).to_owned()
}

fn describe(plan: &Plan) -> String {
    let mut text = String::from("ok\n");
    for scaler in &plan.scalers {
        text.push_str(&format!(
            "scaler {}: {} on {}\n",
            scaler.name,
            scaler.command.program.display(),
            scaler.address
        ));
    }
    for group in &plan.groups {
        text.push_str(&format!(
            "process group {}: {} {} (stop {:?}, grace {:?})\n",
            group.name,
            group.command.program.display(),
            group.command.args.join(" "),
            group.stop_signal,
            group.grace_period
        ));
    }
    for object in &plan.objects {
        let triggers: Vec<String> = object
            .triggers
            .iter()
            .map(|trigger| format!("{} -> {}", trigger.name(), trigger.channel.address))
            .collect();
        text.push_str(&format!(
            "scaled object {}: scales {} from {} to {} on {}\n",
            object.key.name,
            object.group,
            object.spec.min_replicas(),
            object.spec.max_replicas(),
            triggers.join(", ")
        ));
        for note in &object.notes {
            text.push_str(&format!("  note: {note}\n"));
        }
        if let Some(conflict) = &object.conflict {
            text.push_str(&format!(
                "  does not scale: {}: {conflict}\n",
                conflict.reason()
            ));
        }
    }
    text.push_str(&super::jobs::describe(plan));
    text
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

/// Process-group gauges on /metrics.
#[derive(Clone)]
struct LocalMetrics {
    running: Family<GroupLabels, Gauge>,
    restarts: Family<GroupLabels, Gauge>,
}

impl LocalMetrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            running: Family::default(),
            restarts: Family::default(),
        };
        let local = registry.sub_registry_with_prefix("ebb_local");
        local.register(
            "running_processes",
            "Replicas of a process group running and not stopping",
            metrics.running.clone(),
        );
        local.register(
            "process_restarts",
            "Replicas of a process group that exited on their own and were replaced",
            metrics.restarts.clone(),
        );
        metrics
    }

    fn record(&self, snapshot: &Snapshot) {
        for group in &snapshot.process_groups {
            let labels = GroupLabels {
                group: group.name.clone(),
            };
            self.running
                .get_or_create(&labels)
                .set(i64::from(group.status.running));
            self.restarts
                .get_or_create(&labels)
                .set(i64::try_from(group.status.restarts).unwrap_or(i64::MAX));
        }
    }
}
