//! Where the loop reports: object status (the Kubernetes controller patches it, `ebb run`
//! shows a table) and events (scale changes with their reason, trigger failures).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::ObjectKey;
use crate::spec::ScaledObjectStatus;

/// Normal or Warning, as Kubernetes events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Something expected happened (a scale change).
    Normal,
    /// Something needs attention (a failing trigger, a failed write).
    Warning,
}

/// Something that happened to an object, worth telling people about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    /// Normal or Warning.
    pub kind: EventKind,
    /// A CamelCase machine reason: one of the `REASON_*` constants of this module.
    pub reason: &'static str,
    /// A sentence for people; never holds secrets.
    pub message: String,
}

/// The target's replica count was changed.
pub const REASON_SCALED: &str = "Scaled";
/// Writing the target's replica count failed.
pub const REASON_SCALE_FAILED: &str = "ScaleFailed";
/// Reading the target's replica count failed.
pub const REASON_TARGET_UNREADABLE: &str = "TargetUnreadable";
/// A trigger's poll failed after succeeding before (or at its first poll).
pub const REASON_TRIGGER_FAILING: &str = "TriggerFailing";
/// A failing trigger answered again.
pub const REASON_TRIGGER_RECOVERED: &str = "TriggerRecovered";
/// A trigger's connection could not be set up (bad address or TLS material).
pub const REASON_TRIGGER_INVALID: &str = "TriggerInvalid";

/// Receives what the scale loops report. Called from the objects' own tasks; an
/// implementation that does slow I/O should keep it short (queue and return) because the
/// object's next poll waits for it. Failures are the sink's to log: the loop does not retry.
pub trait StatusSink: Send + Sync + 'static {
    /// The object's status changed (called only when it differs from the last one published
    /// by this loop, and once at the first poll). `status` is the loop's own, updated in
    /// place poll after poll: a sink that shows it keeps the `Arc` (one copy per object, no
    /// copying per poll); a sink that must remember what it wrote copies it.
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<SharedStatus>,
    ) -> BoxFuture<'a, ()>;

    /// Something happened to the object.
    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()>;

    /// The object's loop stopped (the object was removed); forget what is kept about it.
    fn object_removed<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, ()> {
        let _ = key;
        Box::pin(std::future::ready(()))
    }
}

/// An object's status as its loop keeps it, shared with the sinks that show it.
#[derive(Debug, Default)]
pub struct SharedStatus(Mutex<ScaledObjectStatus>);

impl SharedStatus {
    /// A shared status holding `status`.
    pub fn new(status: ScaledObjectStatus) -> Self {
        Self(Mutex::new(status))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScaledObjectStatus> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the status now.
    pub fn get(&self) -> ScaledObjectStatus {
        self.lock().clone()
    }

    /// Reads the status now without copying it.
    pub fn read<R>(&self, read: impl FnOnce(&ScaledObjectStatus) -> R) -> R {
        read(&self.lock())
    }

    /// Changes the status in place; `change` says whether it changed anything.
    pub(crate) fn update(&self, change: impl FnOnce(&mut ScaledObjectStatus) -> bool) -> bool {
        change(&mut self.lock())
    }
}

/// A sink that keeps everything in memory: the latest status per object and every event.
/// For tests, benchmarks and hosts that render a table. Clones share the same data.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    inner: Arc<Mutex<MemorySinkInner>>,
}

#[derive(Debug, Default)]
struct MemorySinkInner {
    statuses: HashMap<ObjectKey, Arc<SharedStatus>>,
    events: Vec<(ObjectKey, ObjectEvent)>,
    publishes: u64,
    keep_events: bool,
}

impl MemorySink {
    /// A sink that keeps statuses and events.
    pub fn new() -> Self {
        let sink = Self::default();
        sink.lock().keep_events = true;
        sink
    }

    /// A sink that keeps statuses only (benchmarks: events would grow without bound).
    pub fn statuses_only() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemorySinkInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest status of `key`.
    pub fn status(&self, key: &ObjectKey) -> Option<ScaledObjectStatus> {
        self.lock().statuses.get(key).map(|status| status.get())
    }

    /// Every object with a status, sorted.
    pub fn statuses(&self) -> Vec<(ObjectKey, ScaledObjectStatus)> {
        let mut all: Vec<_> = self
            .lock()
            .statuses
            .iter()
            .map(|(key, status)| (key.clone(), status.get()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Every event recorded for `key`, oldest first.
    pub fn events(&self, key: &ObjectKey) -> Vec<ObjectEvent> {
        self.lock()
            .events
            .iter()
            .filter(|(owner, _)| owner == key)
            .map(|(_, event)| event.clone())
            .collect()
    }

    /// How many statuses were published in total.
    pub fn publishes(&self) -> u64 {
        self.lock().publishes
    }
}

impl StatusSink for MemorySink {
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<SharedStatus>,
    ) -> BoxFuture<'a, ()> {
        let mut inner = self.lock();
        inner.publishes += 1;
        match inner.statuses.get_mut(key) {
            Some(existing) if Arc::ptr_eq(existing, status) => {}
            Some(existing) => existing.clone_from(status),
            None => {
                inner.statuses.insert(key.clone(), status.clone());
            }
        }
        Box::pin(std::future::ready(()))
    }

    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()> {
        let mut inner = self.lock();
        if inner.keep_events {
            inner.events.push((key.clone(), event.clone()));
        }
        Box::pin(std::future::ready(()))
    }

    fn object_removed<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, ()> {
        self.lock().statuses.remove(key);
        Box::pin(std::future::ready(()))
    }
}

/// One object as the live status JSON shows it (`/status` of the controller, read by
/// `ebb status`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveObject {
    /// `namespace/name`.
    pub name: String,
    /// The status the loop last published (written to the API server or not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ScaledObjectStatus>,
    /// The last event, `Reason: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
}

/// A sink in front of another that keeps every object's latest status and last event in
/// memory, so the live values stay available when status writes to the API server are rare
/// (readings are written at most every `--status-readings-interval`). Clones share the data.
#[derive(Clone, Default)]
pub struct LiveStatus {
    objects: Arc<Mutex<HashMap<ObjectKey, LiveEntry>>>,
    next: Option<Arc<dyn StatusSink>>,
}

/// What [`LiveStatus`] keeps of an object: the loop's own status (shared, not copied).
#[derive(Default)]
struct LiveEntry {
    status: Option<Arc<SharedStatus>>,
    last_reason: Option<String>,
}

impl std::fmt::Debug for LiveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStatus").finish_non_exhaustive()
    }
}

impl LiveStatus {
    /// An empty live status that forwards nowhere; [`LiveStatus::wrap`] puts it in front of
    /// the sink that writes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same data, kept in front of `next`.
    pub fn wrap(&self, next: Arc<dyn StatusSink>) -> Self {
        Self {
            objects: self.objects.clone(),
            next: Some(next),
        }
    }

    fn update(&self, key: &ObjectKey, change: impl FnOnce(&mut LiveEntry)) {
        let mut objects = self
            .objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(objects.entry(key.clone()).or_default());
    }

    /// Every object, sorted by name: `{"objects": [...]}`, the shape `ebb run` serves.
    pub fn snapshot(&self) -> serde_json::Value {
        let mut objects: Vec<LiveObject> = self
            .objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(key, entry)| LiveObject {
                name: key.to_string(),
                status: entry.status.as_ref().map(|status| status.get()),
                last_reason: entry.last_reason.clone(),
            })
            .collect();
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        serde_json::json!({ "objects": objects })
    }
}

impl StatusSink for LiveStatus {
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<SharedStatus>,
    ) -> BoxFuture<'a, ()> {
        self.update(key, |entry| match &entry.status {
            Some(existing) if Arc::ptr_eq(existing, status) => {}
            _ => entry.status = Some(status.clone()),
        });
        match &self.next {
            Some(next) => next.publish_status(key, status),
            None => Box::pin(std::future::ready(())),
        }
    }

    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()> {
        let text = format!("{}: {}", event.reason, event.message);
        self.update(key, |entry| entry.last_reason = Some(text));
        match &self.next {
            Some(next) => next.record_event(key, event),
            None => Box::pin(std::future::ready(())),
        }
    }

    fn object_removed<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, ()> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
        match &self.next {
            Some(next) => next.object_removed(key),
            None => Box::pin(std::future::ready(())),
        }
    }
}
