//! Push: one StreamIsActive subscription per push-enabled trigger, resubscribed forever with
//! jittered exponential backoff while the object exists.
//!
//! Activity edges are handed to the object's loop through [`TriggerActivity`] plus a wake-up
//! in the loop's mailbox, which stays set while the loop is busy: an edge is never lost, even
//! when it arrives while a poll runs. The first message of every stream carries the scaler's
//! current state; it counts as an edge whenever it differs from the last known state, so an
//! activation that happened while the stream was down is delivered on reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;

use super::pool::ScalerConnection;
use super::trigger::{PushMode, ResolvedTrigger};
use crate::client::{Protocol, ScalerClient};

const UNKNOWN: u8 = 0;
const INACTIVE: u8 = 1;
const ACTIVE: u8 = 2;

/// A pushed edge the loop has not handled yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushEdge {
    /// The scaler pushed `true` while the trigger was known inactive (or unknown).
    Activated,
    /// The scaler pushed `false` while the trigger was known active (or unknown).
    Deactivated,
}

/// The last known activity of a trigger, shared by its poller and its push task.
#[derive(Debug, Default)]
pub(crate) struct TriggerActivity {
    known: AtomicU8,
    pending: AtomicU8,
}

impl TriggerActivity {
    /// Records activity learnt from a poll (not an edge: the loop already acts on it).
    pub(crate) fn set_polled(&self, active: bool) {
        self.known
            .store(if active { ACTIVE } else { INACTIVE }, Ordering::SeqCst);
    }

    /// Records pushed activity; true when it is an edge the loop must handle.
    fn set_pushed(&self, active: bool) -> bool {
        let state = if active { ACTIVE } else { INACTIVE };
        let previous = self.known.swap(state, Ordering::SeqCst);
        // Inactive is what the loop assumes before it knows anything: a first `false` asks
        // for nothing (the loop polls soon anyway).
        if previous == state || (previous == UNKNOWN && !active) {
            return false;
        }
        self.pending.store(state, Ordering::SeqCst);
        true
    }

    /// Takes the pending edge, if any.
    pub(crate) fn take_edge(&self) -> Option<PushEdge> {
        match self.pending.swap(UNKNOWN, Ordering::SeqCst) {
            ACTIVE => Some(PushEdge::Activated),
            INACTIVE => Some(PushEdge::Deactivated),
            _ => None,
        }
    }
}

/// Reconnect pacing of push subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushBackoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait; the wait doubles per failure up to this.
    pub max: Duration,
}

impl Default for PushBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl PushBackoff {
    /// `base` scaled by a random factor in [0.5, 1.5), so many subscribers that lost the same
    /// scaler do not come back in lockstep.
    fn jittered(base: Duration) -> Duration {
        base.mul_f64(rand::rng().random_range(0.5..1.5))
    }
}

/// Everything a push task needs; it runs until aborted (the loop aborts it on drop).
pub(crate) struct PushTask {
    pub(crate) trigger: Arc<ResolvedTrigger>,
    pub(crate) client: ScalerClient,
    pub(crate) connection: Arc<ScalerConnection>,
    pub(crate) activity: Arc<TriggerActivity>,
    pub(crate) wake: Arc<super::mailbox::Mailbox>,
    pub(crate) backoff: PushBackoff,
    pub(crate) subscriptions: Arc<super::series::ObjectSeries>,
    pub(crate) object: String,
}

impl PushTask {
    pub(crate) async fn run(self) {
        let timeout = self.trigger.timeout;
        let mut wait = self.backoff.initial;
        loop {
            match self.client.info(timeout).await {
                Ok(info) => {
                    let offered = info.protocol == Protocol::V1 && info.capabilities.push;
                    let wanted = match self.trigger.push {
                        PushMode::Always => true,
                        PushMode::Auto => offered,
                        PushMode::Never => false,
                    };
                    if !wanted {
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(object = %self.object, trigger = self.trigger.name(), address = self.connection.address(), %error, "push: scaler not reachable");
                    self.pause(&mut wait).await;
                    continue;
                }
            }
            match self
                .client
                .activity_stream(&self.trigger.input, timeout)
                .await
            {
                Err(error) if error.is_unimplemented() => {
                    tracing::info!(object = %self.object, trigger = self.trigger.name(), address = self.connection.address(), "push: scaler does not offer StreamIsActive; polling only");
                    return;
                }
                Err(error) => {
                    tracing::debug!(object = %self.object, trigger = self.trigger.name(), address = self.connection.address(), %error, "push: cannot subscribe");
                }
                Ok(mut stream) => {
                    self.subscriptions.count_push_subscription();
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(active) => {
                                wait = self.backoff.initial;
                                if self.activity.set_pushed(active) {
                                    tracing::debug!(object = %self.object, trigger = self.trigger.name(), active, "push: activity changed");
                                    self.wake.wake_for_push();
                                }
                            }
                            Err(error) if error.is_unimplemented() => {
                                tracing::info!(object = %self.object, trigger = self.trigger.name(), "push: scaler does not offer StreamIsActive; polling only");
                                return;
                            }
                            Err(error) => {
                                tracing::debug!(object = %self.object, trigger = self.trigger.name(), %error, "push: stream broke");
                                break;
                            }
                        }
                    }
                }
            }
            self.pause(&mut wait).await;
        }
    }

    async fn pause(&self, wait: &mut Duration) {
        tokio::time::sleep(PushBackoff::jittered(*wait)).await;
        *wait = (*wait * 2).min(self.backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_edges() {
        let activity = TriggerActivity::default();
        assert!(
            !activity.set_pushed(false),
            "unknown -> false asks for nothing"
        );
        activity.known.store(UNKNOWN, Ordering::SeqCst);
        assert!(activity.set_pushed(true), "unknown -> true is an edge");
        assert_eq!(activity.take_edge(), Some(PushEdge::Activated));
        assert_eq!(activity.take_edge(), None);
        assert!(!activity.set_pushed(true), "true -> true is not");
        activity.set_polled(false);
        assert!(
            activity.set_pushed(true),
            "a reconnect's first message differing from the poll is"
        );
        assert!(activity.set_pushed(false));
        assert_eq!(
            activity.take_edge(),
            Some(PushEdge::Deactivated),
            "latest edge wins"
        );
    }

    #[test]
    fn jitter_stays_within_half_to_one_and_a_half() {
        for _ in 0..100 {
            let wait = PushBackoff::jittered(Duration::from_secs(2));
            assert!(wait >= Duration::from_secs(1) && wait < Duration::from_secs(3));
        }
    }
}
