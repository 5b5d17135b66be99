//! The runtime's scale loops for the planned objects: one [`ManagedObject`] per ScaledObject,
//! its target the object's process group, its status going to the board. No scale logic
//! lives here: the loop, the engine, the pool and push are the runtime's.

use std::sync::Arc;
use std::time::SystemTime;

use super::group::ProcessGroupHandle;
use super::plan::Plan;
use super::status::StatusBoard;
use crate::dashboard::{History, HistorySink};
use crate::runtime::{ManagedObject, RuntimeConfig, ScalerPool, StatusSink, Supervisor};

/// The running scale loops.
pub(crate) struct Loops {
    supervisor: Supervisor,
}

/// Starts one scale loop per planned object. Every object's target group is in `groups`
/// (the plan checked it). With a `history` (the dashboard is on) statuses and events are
/// also recorded there.
pub(crate) fn start(
    plan: &Plan,
    groups: &[ProcessGroupHandle],
    board: &StatusBoard,
    history: Option<History>,
    pool: ScalerPool,
) -> Loops {
    let mut sink: Arc<dyn StatusSink> = Arc::new(board.clone());
    if let Some(history) = history {
        sink = Arc::new(HistorySink::new(sink, history));
    }
    let supervisor = Supervisor::new(pool, sink, RuntimeConfig::default());
    let created = SystemTime::now();
    for object in &plan.objects {
        if let Some(conflict) = &object.conflict {
            // It never writes the group: its board row says why.
            board.show_conflict(&object.key, conflict.reason(), &conflict.to_string());
            continue;
        }
        let Some(group) = groups.iter().find(|group| group.name() == object.group) else {
            tracing::error!(object = %object.key, group = %object.group, "no such process group");
            continue;
        };
        supervisor.apply(ManagedObject {
            key: object.key.clone(),
            generation: 0,
            spec: object.spec.clone(),
            pause: object.pause,
            triggers: object.triggers.clone(),
            target: Arc::new(group.clone()),
            last_status: None,
            created,
        });
    }
    Loops { supervisor }
}

impl Loops {
    /// Stops every loop; returns when none will touch a target again.
    pub(crate) async fn shutdown(self) {
        self.supervisor.shutdown().await;
    }
}
