//! What `ebb run` shows: one snapshot of objects, process groups and scalers, rendered as a
//! redrawn table on a terminal, as plain change lines otherwise, and as JSON on
//! `--status-addr`. The sink half receives the scale loops' statuses and events.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::watch;

use super::group::GroupStatus;
use super::jobs::JobView;
use super::sidecar::{SidecarState, SidecarStatus};
use crate::runtime::{EventKind, ObjectEvent, ObjectKey, StatusSink};
use crate::spec::{ConditionStatus, ConditionType, ScaledObjectStatus, TriggerHealth};

/// Everything `ebb run` knows right now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Scaled objects, by name.
    pub objects: Vec<ObjectView>,
    /// Process groups, by name.
    pub process_groups: Vec<NamedGroup>,
    /// Scaler sidecars, by name.
    pub scalers: Vec<NamedSidecar>,
    /// ScaledJobs, by name: running, succeeded and failed jobs.
    pub scaled_jobs: Vec<JobView>,
}

/// One scaled object. Deserialize too: `ebb status` reads it back from `/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectView {
    /// Its name.
    pub name: String,
    /// The process group it scales.
    pub target: String,
    /// The last status its loop published (None before the first poll).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ScaledObjectStatus>,
    /// The last event, `Reason: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
}

/// A process group's status with its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedGroup {
    /// The group's name.
    pub name: String,
    /// Its status.
    #[serde(flatten)]
    pub status: GroupStatus,
}

/// A sidecar's status with its name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedSidecar {
    /// The Scaler object's name.
    pub name: String,
    /// Its status.
    #[serde(flatten)]
    pub status: SidecarStatus,
}

/// Where the scale loops report. Clones share the data; [`StatusBoard::changes`] wakes
/// renderers.
#[derive(Clone, Debug)]
pub struct StatusBoard {
    objects: Arc<Mutex<BTreeMap<String, ObjectView>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl StatusBoard {
    /// A board for the objects `(name, target group)`.
    pub fn new(objects: impl IntoIterator<Item = (String, String)>) -> Self {
        let objects = objects
            .into_iter()
            .map(|(name, target)| {
                (
                    name.clone(),
                    ObjectView {
                        name,
                        target,
                        ..ObjectView::default()
                    },
                )
            })
            .collect();
        Self {
            objects: Arc::new(Mutex::new(objects)),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    /// The objects' views, by name.
    pub fn objects(&self) -> Vec<ObjectView> {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// A receiver that changes whenever an object's status or last event does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Shows an object that does not scale because of a conflict: Ready=False with `reason`.
    pub fn show_conflict(&self, key: &ObjectKey, reason: &'static str, message: &str) {
        let mut status = ScaledObjectStatus::default();
        let now = std::time::SystemTime::now();
        for condition_type in [ConditionType::Ready, ConditionType::Active] {
            status.set_condition(crate::spec::Condition::new(
                condition_type,
                ConditionStatus::False,
                reason,
                if condition_type == ConditionType::Ready {
                    message
                } else {
                    ""
                },
                now,
            ));
        }
        self.update(key, |view| {
            view.status = Some(status);
            view.last_reason = Some(format!("{reason}: {message}"));
        });
    }

    fn update(&self, key: &ObjectKey, change: impl FnOnce(&mut ObjectView)) {
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let view = objects
            .entry(key.name.clone())
            .or_insert_with(|| ObjectView {
                name: key.name.clone(),
                ..ObjectView::default()
            });
        change(view);
        drop(objects);
        self.changed.send_modify(|count| *count += 1);
    }
}

impl StatusSink for StatusBoard {
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<crate::runtime::SharedStatus>,
    ) -> BoxFuture<'a, ()> {
        self.update(key, |view| view.status = Some(status.get()));
        Box::pin(std::future::ready(()))
    }

    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()> {
        match event.kind {
            // The loop that raised it logged it already (the scale loop's "scaled"); the
            // table or the change line shows it.
            EventKind::Normal => {
                tracing::debug!(object = %key, reason = event.reason, "{}", event.message);
            }
            EventKind::Warning => {
                tracing::warn!(object = %key, reason = event.reason, "{}", event.message);
            }
        }
        let text = format!("{}: {}", event.reason, event.message);
        self.update(key, |view| view.last_reason = Some(text));
        Box::pin(std::future::ready(()))
    }
}

/// The columns of one object, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ObjectLine {
    name: String,
    triggers: String,
    active: String,
    replicas: String,
    reason: String,
}

/// A metric value for people, as reasons show it ([`crate::scaling::format_number`]).
pub fn format_value(value: f64) -> String {
    crate::scaling::format_number(value)
}

fn object_line(object: &ObjectView, groups: &[NamedGroup]) -> ObjectLine {
    let group = groups.iter().find(|group| group.name == object.target);
    // Without the process group (the controller's objects), the status's counts.
    let from_status = || {
        let status = object.status.as_ref();
        let count = |get: fn(&ScaledObjectStatus) -> Option<u32>| status.and_then(get).unwrap_or(0);
        (
            count(|s| s.current_replicas),
            count(|s| s.desired_replicas),
            0,
        )
    };
    let (running, desired, stopping) = group.map_or_else(from_status, |group| {
        (
            group.status.running,
            group.status.desired,
            group.status.stopping,
        )
    });
    let mut replicas = format!("{running} → {desired}");
    if stopping > 0 {
        let _ = write!(replicas, " ({stopping} stopping)");
    }
    let Some(status) = &object.status else {
        return ObjectLine {
            name: object.name.clone(),
            triggers: "(first poll pending)".to_owned(),
            active: "-".to_owned(),
            replicas,
            reason: object.last_reason.clone().unwrap_or_default(),
        };
    };
    let triggers = status
        .triggers
        .iter()
        .map(|trigger| {
            let value = trigger
                .last_value
                .map(format_value)
                .unwrap_or_else(|| "?".to_owned());
            let target = trigger
                .target
                .map(format_value)
                .unwrap_or_else(|| "?".to_owned());
            let mut text = format!("{} {value}/{target}", trigger.name);
            if trigger.health == TriggerHealth::Failing {
                let _ = write!(text, " FAILING×{}", trigger.number_of_failures);
            }
            text
        })
        .collect::<Vec<_>>()
        .join(", ");
    let condition_true = |kind| {
        status
            .condition(kind)
            .is_some_and(|condition| condition.status == ConditionStatus::True)
    };
    let mut active = if condition_true(ConditionType::Active) {
        "yes".to_owned()
    } else {
        "no".to_owned()
    };
    if condition_true(ConditionType::Fallback) {
        active.push_str(" (fallback)");
    }
    if condition_true(ConditionType::Paused) {
        active.push_str(" (paused)");
    }
    let reason = object.last_reason.clone().unwrap_or_else(|| {
        status
            .condition(ConditionType::Active)
            .map(|condition| condition.reason.to_string())
            .unwrap_or_default()
    });
    ObjectLine {
        name: object.name.clone(),
        triggers,
        active,
        replicas,
        reason,
    }
}

/// The snapshot as a table for a terminal of `width` columns.
pub fn render_table(snapshot: &Snapshot, width: usize) -> String {
    let lines: Vec<ObjectLine> = snapshot
        .objects
        .iter()
        .map(|object| object_line(object, &snapshot.process_groups))
        .collect();
    let header = ObjectLine {
        name: "OBJECT".to_owned(),
        triggers: "TRIGGER VALUE/TARGET".to_owned(),
        active: "ACTIVE".to_owned(),
        replicas: "REPLICAS".to_owned(),
        reason: "LAST REASON".to_owned(),
    };
    let column = |get: fn(&ObjectLine) -> &str| {
        std::iter::once(&header)
            .chain(&lines)
            .map(|line| get(line).chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths = [
        column(|line| &line.name),
        column(|line| &line.triggers),
        column(|line| &line.active),
        column(|line| &line.replicas),
    ];
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let mut row = String::new();
        for (text, width) in [
            (&line.name, widths[0]),
            (&line.triggers, widths[1]),
            (&line.active, widths[2]),
            (&line.replicas, widths[3]),
        ] {
            let pad = width.saturating_sub(text.chars().count());
            let _ = write!(row, "{text}{}  ", " ".repeat(pad));
        }
        row.push_str(&line.reason);
        out.push_str(&truncate(&row, width));
        out.push('\n');
    }
    if !snapshot.process_groups.is_empty() {
        out.push('\n');
        for group in &snapshot.process_groups {
            let status = &group.status;
            let mut row = format!(
                "group {}: {} running, {} stopping, {} restarts",
                group.name, status.running, status.stopping, status.restarts
            );
            if status.killed > 0 {
                let _ = write!(row, ", {} killed after grace", status.killed);
            }
            out.push_str(&truncate(&row, width));
            out.push('\n');
        }
    }
    for job in &snapshot.scaled_jobs {
        out.push_str(&truncate(&job_line(job), width));
        out.push('\n');
    }
    for scaler in &snapshot.scalers {
        out.push_str(&truncate(&scaler_line(scaler), width));
        out.push('\n');
    }
    out
}

/// One sidecar as text: the state its health check last showed, in the words of gRPC health
/// where it answers.
fn scaler_line(scaler: &NamedSidecar) -> String {
    let status = &scaler.status;
    let state = match status.state {
        SidecarState::Starting => "starting",
        SidecarState::Serving => "SERVING",
        SidecarState::NotServing => "NOT_SERVING (its event source is unreachable)",
        SidecarState::Unresponsive => "UNRESPONSIVE (no answer to health checks)",
        SidecarState::Restarting => "restarting",
        SidecarState::Stopped => "stopped",
    };
    format!(
        "scaler {} on {}: {state}, {} restarts",
        scaler.name, status.address, status.restarts
    )
}

fn job_line(job: &JobView) -> String {
    let mut line = format!(
        "jobs {}: {} running, {} succeeded, {} failed",
        job.name, job.jobs.running, job.jobs.succeeded, job.jobs.failed
    );
    if let Some(reason) = &job.last_reason {
        line.push_str(&format!(" | {reason}"));
    }
    line
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Plain output: one line per object whose shown state changed since `previous`, and one per
/// process group or scaler whose counts changed.
pub fn change_lines(previous: &Snapshot, current: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for object in &current.objects {
        let line = object_line(object, &current.process_groups);
        let before = previous
            .objects
            .iter()
            .find(|old| old.name == object.name)
            .map(|old| object_line(old, &previous.process_groups));
        if before.as_ref() != Some(&line) {
            out.push(format!(
                "{}: {} | active {} | replicas {} | {}",
                line.name, line.triggers, line.active, line.replicas, line.reason
            ));
        }
    }
    for group in &current.process_groups {
        let before = previous
            .process_groups
            .iter()
            .find(|old| old.name == group.name);
        let changed = before.is_none_or(|old| {
            old.status.restarts != group.status.restarts || old.status.killed != group.status.killed
        });
        if changed && (group.status.restarts > 0 || group.status.killed > 0) {
            out.push(format!(
                "group {}: {} restarts, {} killed after grace{}",
                group.name,
                group.status.restarts,
                group.status.killed,
                group
                    .status
                    .last_exit
                    .as_ref()
                    .map(|exit| format!(" (last exit: {exit})"))
                    .unwrap_or_default()
            ));
        }
    }
    for job in &current.scaled_jobs {
        let line = job_line(job);
        let before = previous.scaled_jobs.iter().find(|old| old.name == job.name);
        if before.map(job_line).as_ref() != Some(&line) {
            out.push(line);
        }
    }
    for scaler in &current.scalers {
        let before = previous.scalers.iter().find(|old| old.name == scaler.name);
        if before.is_none_or(|old| old.status != scaler.status) {
            out.push(scaler_line(scaler));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Condition, TriggerStatus};
    use std::time::SystemTime;

    fn snapshot(value: f64, running: u32, desired: u32) -> Snapshot {
        let mut status = ScaledObjectStatus {
            triggers: vec![TriggerStatus {
                name: "orders-queue".to_owned(),
                last_value: Some(value),
                target: Some(5.0),
                ..TriggerStatus::default()
            }],
            ..ScaledObjectStatus::default()
        };
        status.set_condition(Condition::new(
            ConditionType::Active,
            ConditionStatus::from_bool(value > 0.0),
            "",
            "",
            SystemTime::now(),
        ));
        Snapshot {
            objects: vec![ObjectView {
                name: "orders".to_owned(),
                target: "workers".to_owned(),
                status: Some(status),
                last_reason: Some("Scaled: 0 → 4".to_owned()),
            }],
            process_groups: vec![NamedGroup {
                name: "workers".to_owned(),
                status: GroupStatus {
                    desired,
                    running,
                    ..GroupStatus::default()
                },
            }],
            scalers: Vec::new(),
            scaled_jobs: Vec::new(),
        }
    }

    #[test]
    fn table_shows_value_target_active_replicas_and_reason() {
        let table = render_table(&snapshot(20.0, 1, 4), 200);
        let row = table.lines().nth(1).unwrap();
        assert!(row.starts_with("orders"), "{table}");
        assert!(row.contains("orders-queue 20/5"), "{table}");
        assert!(row.contains("yes"), "{table}");
        assert!(row.contains("1 → 4"), "{table}");
        assert!(row.contains("Scaled: 0 → 4"), "{table}");
        assert!(table.contains("group workers: 1 running"), "{table}");
    }

    #[test]
    fn table_rows_fit_the_terminal() {
        let table = render_table(&snapshot(20.0, 1, 4), 30);
        assert!(
            table.lines().all(|line| line.chars().count() <= 30),
            "{table}"
        );
    }

    #[test]
    fn sidecar_health_shows_in_table_lines_and_json() {
        let mut snapshot = snapshot(20.0, 1, 4);
        let sidecar = |state| NamedSidecar {
            name: "rabbitmq".to_owned(),
            status: SidecarStatus {
                address: "127.0.0.1:9001".to_owned(),
                state,
                restarts: 0,
                pid: Some(42),
            },
        };
        snapshot.scalers = vec![sidecar(SidecarState::Serving)];
        let before = snapshot.clone();
        for (state, shown, json) in [
            (SidecarState::NotServing, "NOT_SERVING", "NotServing"),
            (SidecarState::Unresponsive, "UNRESPONSIVE", "Unresponsive"),
        ] {
            snapshot.scalers = vec![sidecar(state)];
            let table = render_table(&snapshot, 200);
            assert!(
                table.contains(&format!("scaler rabbitmq on 127.0.0.1:9001: {shown}")),
                "{table}"
            );
            let lines = change_lines(&before, &snapshot);
            assert!(lines.iter().any(|line| line.contains(shown)), "{lines:?}");
            let value = serde_json::to_value(&snapshot).unwrap();
            assert_eq!(value["scalers"][0]["state"], json);
        }
    }

    #[test]
    fn change_lines_only_for_changes() {
        let first = snapshot(20.0, 0, 4);
        assert_eq!(change_lines(&Snapshot::default(), &first).len(), 1);
        assert!(change_lines(&first, &first).is_empty());
        let later = snapshot(20.0, 4, 4);
        let lines = change_lines(&first, &later);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("replicas 4 → 4"), "{lines:?}");
    }
}
