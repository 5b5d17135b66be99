//! What a host hands the supervisor for each scaled object, and the runtime's settings.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::push::PushBackoff;
use super::target::ScaleTarget;
use super::trigger::{ObjectKey, PushMode, ResolvedTrigger};
use crate::client::{ChannelSettings, Protocol, TlsSettings, TriggerInput};
use crate::spec::{
    PauseState, ScaledObjectSpec, ScaledObjectStatus, ScalerEndpoint, ScalerProtocol,
};

/// One scaled object as the runtime runs it: its spec, its triggers with secrets resolved,
/// its scale target, and what its last status said (for restart safety).
///
/// The host builds a new one whenever the object, its secrets or its target change and hands
/// it to [`Supervisor::apply`](super::Supervisor::apply); the loop keeps its engine state
/// across updates.
#[derive(Clone)]
pub struct ManagedObject {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `metadata.generation` (0 outside Kubernetes); reported as `observedGeneration`.
    pub generation: i64,
    /// The validated spec.
    pub spec: Arc<ScaledObjectSpec>,
    /// Pause annotations, parsed.
    pub pause: PauseState,
    /// The triggers, in the order of `spec.triggers`, resolved by the host.
    pub triggers: Vec<ResolvedTrigger>,
    /// The workload to scale.
    pub target: Arc<dyn ScaleTarget>,
    /// The status last written (Kubernetes: `.status` as read; locally: `None`). The engine
    /// state (lastActiveTime, trigger failures...) is restored from it, so a restart neither
    /// forgets a cooldown nor scales anything before its first successful poll.
    pub last_status: Option<ScaledObjectStatus>,
    /// When the object was created (`initialCooldownPeriod` counts from here).
    pub created: SystemTime,
}

impl std::fmt::Debug for ManagedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedObject")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .field("spec", &self.spec)
            .field("pause", &self.pause)
            .field("triggers", &self.triggers)
            .field("last_status", &self.last_status)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The default push window ([`RuntimeConfig::push_sample_interval`]): as often as ebb's
/// RabbitMQ scaler samples its queue for push, so a scaler that pushes every change it
/// samples is never held back.
pub const DEFAULT_PUSH_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// Settings shared by every scale loop.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Reconnect pacing of push subscriptions.
    pub push_backoff: PushBackoff,
    /// A new loop's first poll is spread randomly over `min(pollingInterval, this)`, so
    /// thousands of objects loaded at once do not poll in one burst; the gap before its second
    /// poll adds a random part of the rest of the interval, so their later polls spread over
    /// the whole interval. Zero turns both off (exact schedules, for tests).
    pub first_poll_spread: Duration,
    /// The push window: pushed activity starts at most one poll (or evaluation) per object
    /// per window, however fast a scaler's StreamIsActive toggles; an edge inside the window
    /// is handled when it ends, never dropped. Zero handles every edge at once.
    pub push_sample_interval: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            push_backoff: PushBackoff::default(),
            first_poll_spread: Duration::from_secs(1),
            push_sample_interval: DEFAULT_PUSH_SAMPLE_INTERVAL,
        }
    }
}

impl ResolvedTrigger {
    /// Builds a trigger from the spec's resolved endpoint. The host supplies what only it can
    /// resolve: the TLS material as PEM text (`tls`, `None` when the endpoint has no TLS) and
    /// the secrets. `metadata` is the trigger's metadata with `xFromEnv` keys already resolved.
    pub fn from_endpoint(
        key: &ObjectKey,
        trigger_name: &str,
        trigger_index: u32,
        endpoint: &ScalerEndpoint,
        tls: Option<TlsSettings>,
        metadata: std::collections::BTreeMap<String, String>,
        secrets: std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            input: TriggerInput {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                trigger_name: trigger_name.to_owned(),
                trigger_index,
                metadata: metadata.into(),
                secrets: secrets.into(),
            },
            channel: ChannelSettings {
                tls,
                ..ChannelSettings::plain(endpoint.address.clone())
            },
            protocol: match endpoint.protocol {
                ScalerProtocol::Auto => None,
                ScalerProtocol::V1 => Some(Protocol::V1),
                ScalerProtocol::Keda => Some(Protocol::Keda),
            },
            timeout: endpoint.timeout,
            push: match endpoint.push {
                None => PushMode::Auto,
                Some(true) => PushMode::Always,
                Some(false) => PushMode::Never,
            },
        }
    }
}
