//! What the runtime needs to poll a trigger, resolved by the host beforehand: where the scaler
//! is, which protocol it speaks, the metadata and the secrets, and the RPC deadline.

use std::fmt;
use std::time::Duration;

use crate::client::{ChannelSettings, Protocol, TriggerInput};

/// Deadline of every scaler RPC unless a trigger overrides it.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(2);

/// Identity of a scaled object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectKey {
    /// Namespace ("" outside Kubernetes).
    pub namespace: String,
    /// Name, unique within the namespace.
    pub name: String,
}

impl ObjectKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Whether the runtime subscribes to a trigger's StreamIsActive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PushMode {
    /// Subscribe when the scaler says it can push (v1 `Capabilities.push`); never over KEDA.
    #[default]
    Auto,
    /// Always subscribe (KEDA's `external-push` trigger type).
    Always,
    /// Never subscribe; poll only.
    Never,
}

/// One trigger, ready to poll. The host builds it from the object's spec: the Kubernetes
/// controller resolves `ScalerAuthentication` into `input.secrets`, `ebb run` reads env vars
/// and files. `Debug` never shows secret values (see [`TriggerInput`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedTrigger {
    /// Names, index, metadata and secrets, exactly as sent to the scaler.
    pub input: TriggerInput,
    /// Scaler address and TLS material; triggers with equal settings share one connection.
    pub channel: ChannelSettings,
    /// The protocol when known from the trigger type (KEDA's `external`); `None` detects it
    /// (v1 via GetInfo, else KEDA), once per connection.
    pub protocol: Option<Protocol>,
    /// Deadline of each RPC for this trigger.
    pub timeout: Duration,
    /// Push subscription policy.
    pub push: PushMode,
}

impl ResolvedTrigger {
    /// A plain-text trigger of object `key` on the scaler at `address`, with defaults: protocol
    /// detected, 2 s deadline, push when the scaler offers it.
    pub fn new(key: &ObjectKey, trigger_name: &str, trigger_index: u32, address: &str) -> Self {
        Self {
            input: TriggerInput {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                trigger_name: trigger_name.to_owned(),
                trigger_index,
                ..TriggerInput::default()
            },
            channel: ChannelSettings::plain(address),
            protocol: None,
            timeout: DEFAULT_RPC_TIMEOUT,
            push: PushMode::Auto,
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.input.metadata.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The trigger's name within its object (not `input.name`, which names the object).
    #[allow(clippy::misnamed_getters)]
    pub fn name(&self) -> &str {
        &self.input.trigger_name
    }
}
