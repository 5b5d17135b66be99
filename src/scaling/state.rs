//! What the engine remembers between decisions. Serializable, and rebuildable from status
//! after a restart.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::spec::ScaledObjectStatus;

/// The engine's memory of one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineState {
    /// When the object was created (or first seen); the initial cooldown counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<SystemTime>,
    /// Last decision at which any trigger was active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<SystemTime>,
    /// The target's replicas at the first decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replicas: Option<u32>,
    /// Recent unstabilized recommendations, oldest first, for the stabilization windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendations: Vec<Recommendation>,
    /// Recent replica changes, oldest first, for the rate-limit policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_events: Vec<ScaleEvent>,
    /// Since when the recommendation history is complete; `None` before the first decision
    /// and after a restart, when the engine seeds it with the current replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_since: Option<SystemTime>,
    /// Consecutive failed polls per trigger.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u32>,
}

/// One past recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// When it was made.
    pub at: SystemTime,
    /// The replicas recommended.
    pub replicas: u32,
}

/// One past change of the replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When it was decided.
    pub at: SystemTime,
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
}

impl EngineState {
    /// State for an object created at `created_at` (its `metadata.creationTimestamp`).
    pub fn created(created_at: SystemTime) -> Self {
        EngineState {
            created_at: Some(created_at),
            ..EngineState::default()
        }
    }

    /// Rebuilds state after a restart from the object's status and creation time.
    ///
    /// Recommendation and scale-event history is not in status; the engine then treats the
    /// current replica count as recommended at the first decision, so a restart never causes
    /// a scale-down before a full stabilization window has passed.
    pub fn restore(status: &ScaledObjectStatus, created_at: Option<SystemTime>) -> Self {
        EngineState {
            created_at,
            last_active: status.last_active(),
            original_replicas: status.original_replica_count,
            recommendations: Vec::new(),
            scale_events: Vec::new(),
            history_since: None,
            failures: status
                .triggers
                .iter()
                .filter(|trigger| trigger.number_of_failures > 0)
                .map(|trigger| (trigger.name.clone(), trigger.number_of_failures))
                .collect(),
        }
    }

    /// Records a recommendation, merging it with an equal predecessor (the newer one
    /// dominates in every window, so the older one is redundant).
    pub(crate) fn record_recommendation(&mut self, at: SystemTime, replicas: u32) {
        match self.recommendations.last_mut() {
            Some(last) if last.replicas == replicas => last.at = last.at.max(at),
            _ => self.recommendations.push(Recommendation { at, replicas }),
        }
    }

    /// Drops history older than `keep` before `now`.
    pub(crate) fn prune(
        &mut self,
        now: SystemTime,
        keep_recommendations: Duration,
        keep_events: Duration,
    ) {
        let cutoff = |keep: Duration| now.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH);
        let recommendations_cutoff = cutoff(keep_recommendations);
        self.recommendations
            .retain(|recommendation| recommendation.at >= recommendations_cutoff);
        let events_cutoff = cutoff(keep_events);
        self.scale_events.retain(|event| event.at >= events_cutoff);
    }
}
