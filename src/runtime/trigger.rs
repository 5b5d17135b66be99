//! What the runtime needs to poll a trigger, resolved by the host beforehand: where the scaler
//! is, which protocol it speaks, the metadata and the secrets, and the RPC deadline.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{ChannelSettings, Protocol, TriggerInput};

/// Deadline of every scaler RPC unless a trigger overrides it.
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(2);

/// Identity of a scaled object. One shared allocation: a controller keeps a copy of each key
/// in a dozen tables (loops, status, claims, watches), and at 100,000 objects two strings per
/// copy cost more than the rest of an idle object. Fields read through [`KeyParts`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectKey(Arc<KeyParts>);

/// The parts of an [`ObjectKey`].
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyParts {
    /// Namespace ("" outside Kubernetes).
    pub namespace: String,
    /// Name, unique within the namespace.
    pub name: String,
}

impl ObjectKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self(Arc::new(KeyParts {
            namespace: namespace.into(),
            name: name.into(),
        }))
    }
}

impl std::ops::Deref for ObjectKey {
    type Target = KeyParts;

    fn deref(&self) -> &KeyParts {
        &self.0
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectKey")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish()
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
