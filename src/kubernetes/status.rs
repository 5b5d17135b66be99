//! Status and Events towards the API server. Scale loops must never wait on the API, so the
//! sink only records what changed and returns; a writer task patches the `/status`
//! subresource, coalescing several changes of one object into one write and skipping writes
//! that would not change the stored status. Events are created by another task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::status_policy::{ReadingsPolicy, should_write, strip_values};
use super::target::FIELD_MANAGER;
use super::target_watch::DirectReads;
use crate::runtime::{EventKind, ObjectEvent, ObjectKey, StatusSink};
use crate::spec::{ReplicasSource, ScaledObject, ScaledObjectStatus};

/// `reportingController` of ebb's Events.
pub const REPORTING_CONTROLLER: &str = "ebb.dev/controller";

#[derive(Default)]
struct State {
    /// Status as stored on the server (from the watch, or after our write).
    stored: HashMap<ObjectKey, Value>,
    /// Latest status to write, per object.
    pending: HashMap<ObjectKey, Value>,
    /// UIDs for event references.
    uids: HashMap<ObjectKey, String>,
    /// When a status was last queued for writing (or first seen), per object: readings alone
    /// wait a whole readings interval from here.
    queued_at: HashMap<ObjectKey, Instant>,
    /// Statuses taken from `pending` whose write has not finished.
    writing: usize,
}

struct Inner {
    client: kube::Client,
    state: Mutex<State>,
    wake: Notify,
    events: mpsc::UnboundedSender<(ObjectKey, ObjectEvent)>,
    instance: String,
    concurrency: usize,
    policy: ReadingsPolicy,
    direct: DirectReads,
}

/// The Kubernetes [`StatusSink`]. Cheap to clone.
#[derive(Clone)]
pub struct KubeStatusSink {
    inner: Arc<Inner>,
}

/// Says in `status` whether the target's count is read from `/scale` on every poll.
fn mark_replicas_source(status: &mut serde_json::Map<String, Value>, direct: bool) {
    if direct {
        status.insert(
            "replicasReadFrom".into(),
            json!(ReplicasSource::ScaleSubresource),
        );
    } else {
        status.remove("replicasReadFrom");
    }
}

/// The JSON merge patch turning `old` status into `new`: top-level fields that disappear are
/// set to null; lists are replaced whole, as merge patch does.
pub fn status_patch(old: Option<&Value>, new: &Value) -> Value {
    let mut status = new.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(old)) = old {
        for key in old.keys() {
            if !status.contains_key(key) {
                status.insert(key.clone(), Value::Null);
            }
        }
    }
    json!({"status": Value::Object(status)})
}

impl KubeStatusSink {
    /// Starts the writer tasks with the default [`ReadingsPolicy`]; they stop when every clone
    /// of the sink is dropped.
    pub fn start(client: kube::Client, instance: String, concurrency: usize) -> Self {
        Self::start_with(
            client,
            instance,
            concurrency,
            ReadingsPolicy::default(),
            DirectReads::default(),
        )
    }

    /// Starts the writer tasks: readings follow `policy`, and objects in `direct` (targets
    /// read from `/scale` on every poll) say so in their status.
    pub fn start_with(
        client: kube::Client,
        instance: String,
        concurrency: usize,
        policy: ReadingsPolicy,
        direct: DirectReads,
    ) -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        let sink = Self {
            inner: Arc::new(Inner {
                client,
                state: Mutex::default(),
                wake: Notify::new(),
                events,
                instance,
                concurrency: concurrency.max(1),
                policy,
                direct,
            }),
        };
        tokio::spawn(status_writer(Arc::downgrade(&sink.inner)));
        tokio::spawn(event_writer(
            sink.inner.client.clone(),
            sink.inner.instance.clone(),
            Arc::downgrade(&sink.inner),
            receiver,
        ));
        sink
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what the server holds for an object (from the watch), so equal statuses are
    /// not written again, e.g. after a controller restart.
    pub fn observe(&self, object: &ScaledObject) {
        let key = ObjectKey::new(
            object.metadata.namespace.clone().unwrap_or_default(),
            object.metadata.name.clone().unwrap_or_default(),
        );
        self.record_stored(key, object.metadata.uid.as_ref(), object.status.as_ref());
    }

    /// Like [`KubeStatusSink::observe`] from the undecoded object, for watch events that need
    /// nothing else. Only the status is decoded; one that does not decode counts as empty.
    pub fn observe_raw(&self, key: &ObjectKey, raw: &kube::api::DynamicObject) {
        let status = raw
            .data
            .get("status")
            .and_then(|status| ScaledObjectStatus::deserialize(status).ok());
        self.record_stored(key.clone(), raw.metadata.uid.as_ref(), status.as_ref());
    }

    /// Remembers the stored status, normalised through its type as `publish` does, so equal
    /// statuses compare equal.
    fn record_stored(
        &self,
        key: ObjectKey,
        uid: Option<&String>,
        status: Option<&ScaledObjectStatus>,
    ) {
        let status = status
            .and_then(|status| serde_json::to_value(status).ok())
            .unwrap_or(json!({}));
        let mut state = self.lock();
        if let Some(uid) = uid {
            state.uids.insert(key.clone(), uid.clone());
        }
        // A restarted controller waits a readings interval too, so that it does not rewrite
        // every object's readings at once.
        state
            .queued_at
            .entry(key.clone())
            .or_insert_with(Instant::now);
        state.stored.insert(key, status);
    }

    /// Queues `status` for writing when [`should_write`] says it is worth a write; returns
    /// whether it was queued.
    pub fn publish(&self, key: &ObjectKey, status: &ScaledObjectStatus) -> bool {
        let Ok(mut value) = serde_json::to_value(status) else {
            return false;
        };
        if self.inner.policy.readings_off() {
            strip_values(&mut value);
        }
        if let Some(object) = value.as_object_mut() {
            mark_replicas_source(object, self.inner.direct.contains(key));
        }
        let state = self.lock();
        // A write still waiting is replaced by the newer status whatever it holds.
        if state.pending.contains_key(key) {
            return self.queue(state, key, value);
        }
        let write = should_write(
            state.stored.get(key),
            &value,
            state.queued_at.get(key).copied(),
            Instant::now(),
            &self.inner.policy,
        );
        if !write {
            return false;
        }
        self.queue(state, key, value)
    }

    fn queue(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        key: &ObjectKey,
        value: Value,
    ) -> bool {
        state.queued_at.insert(key.clone(), Instant::now());
        state.pending.insert(key.clone(), value);
        drop(state);
        self.inner.wake.notify_one();
        true
    }

    /// Queues an Event about an object.
    pub fn event(&self, key: &ObjectKey, event: ObjectEvent) {
        let _ = self.inner.events.send((key.clone(), event));
    }

    /// The set of objects whose target is read from `/scale` on every poll, for their
    /// targets to mark themselves in.
    pub fn direct_reads(&self) -> DirectReads {
        self.inner.direct.clone()
    }

    /// Forgets an object (deleted).
    pub fn forget(&self, key: &ObjectKey) {
        self.inner.direct.set(key, false);
        let mut state = self.lock();
        state.stored.remove(key);
        state.pending.remove(key);
        state.uids.remove(key);
        state.queued_at.remove(key);
    }

    /// Number of statuses waiting to be written.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Waits until no status is waiting or being written (or `limit` passes): after it, every
    /// write published before has reached the server.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let busy = || {
            let state = self.lock();
            !state.pending.is_empty() || state.writing > 0
        };
        while busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn write_one(inner: &Inner, key: ObjectKey, value: Value) {
    let old = inner
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .stored
        .get(&key)
        .cloned();
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = status_patch(old.as_ref(), &value);
    // The answer (the whole object) is not decoded: nothing in it is needed, and the watch
    // brings the stored status back; decoding it on every write was work thrown away.
    // Errors still arrive as `kube::Error::Api`.
    let url = <ScaledObject as kube::Resource>::url_path(&(), Some(&key.namespace));
    let written = match kube::core::Request::new(url).patch_subresource(
        "status",
        &key.name,
        &params,
        &Patch::Merge(&patch),
    ) {
        Ok(request) => inner.client.request_text(request).await.map(drop),
        Err(error) => Err(kube::Error::BuildRequest(error)),
    };
    match written {
        Ok(()) => {
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.stored.insert(key, value);
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            tracing::debug!(object = %key, "object gone before its status was written");
        }
        Err(error) => {
            tracing::warn!(object = %key, %error, "writing status failed; will retry");
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.pending.entry(key).or_insert(value);
        }
    }
}

async fn status_writer(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let remarked = strong.direct.take_changed();
        let batch: Vec<(ObjectKey, Value)> = {
            let mut state = strong.state.lock().unwrap_or_else(|p| p.into_inner());
            for key in remarked {
                let direct = strong.direct.contains(&key);
                let base = state
                    .pending
                    .get(&key)
                    .or_else(|| state.stored.get(&key))
                    .cloned();
                if let Some(Value::Object(mut status)) = base {
                    mark_replicas_source(&mut status, direct);
                    state.pending.insert(key, Value::Object(status));
                }
            }
            let batch: Vec<(ObjectKey, Value)> = state.pending.drain().collect();
            state.writing = batch.len();
            batch
        };
        if batch.is_empty() {
            // Wake up now and then to notice the sink was dropped.
            let _ = tokio::time::timeout(Duration::from_secs(1), strong.wake.notified()).await;
            continue;
        }
        let failed_before = batch.len();
        futures::stream::iter(batch)
            .for_each_concurrent(strong.concurrency, |(key, value)| {
                write_one(&strong, key, value)
            })
            .await;
        let retrying = {
            let mut state = strong.state.lock().unwrap_or_else(|p| p.into_inner());
            state.writing = 0;
            state.pending.len()
        };
        drop(strong);
        if retrying > 0 && retrying >= failed_before {
            // Everything failed: the API server is struggling; do not spin.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn kubernetes_event(
    key: &ObjectKey,
    uid: Option<String>,
    event: &ObjectEvent,
    instance: &str,
    sequence: u64,
) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut note = event.message.clone();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}{:x}",
                key.name,
                now.as_nanosecond(),
                sequence
            )),
            namespace: Some(key.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some(
            if event.reason == crate::runtime::REASON_SCALED {
                "Scale"
            } else {
                "Reconcile"
            }
            .to_owned(),
        ),
        reason: Some(event.reason.to_owned()),
        note: Some(note),
        type_: Some(
            match event.kind {
                EventKind::Normal => "Normal",
                EventKind::Warning => "Warning",
            }
            .to_owned(),
        ),
        reporting_controller: Some(REPORTING_CONTROLLER.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        regarding: Some(ObjectReference {
            api_version: Some("ebb.dev/v1alpha1".to_owned()),
            kind: Some("ScaledObject".to_owned()),
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            uid,
            ..ObjectReference::default()
        }),
        ..Event::default()
    }
}

async fn event_writer(
    client: kube::Client,
    instance: String,
    inner: std::sync::Weak<Inner>,
    receiver: mpsc::UnboundedReceiver<(ObjectKey, ObjectEvent)>,
) {
    let sequence = std::sync::atomic::AtomicU64::new(0);
    tokio_stream::wrappers::UnboundedReceiverStream::new(receiver)
        .for_each_concurrent(16, |(key, event)| {
            let client = client.clone();
            let uid = inner
                .upgrade()
                .and_then(|inner| inner.state.lock().unwrap_or_else(|p| p.into_inner()).uids.get(&key).cloned());
            let number = sequence.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = kubernetes_event(&key, uid, &event, &instance, number);
            async move {
                let api: Api<Event> = Api::namespaced(client, &key.namespace);
                if let Err(error) = api.create(&PostParams::default(), &body).await {
                    tracing::warn!(object = %key, reason = event.reason, %error, "creating an Event failed");
                }
            }
        })
        .await;
}

impl StatusSink for KubeStatusSink {
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<crate::runtime::SharedStatus>,
    ) -> BoxFuture<'a, ()> {
        status.read(|status| self.publish(key, status));
        Box::pin(std::future::ready(()))
    }

    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()> {
        self.event(key, event.clone());
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanished_fields_become_null() {
        let old = json!({"desiredReplicas": 3, "lastActiveTime": "2026-01-01T00:00:00Z"});
        let new = json!({"desiredReplicas": 0});
        assert_eq!(
            status_patch(Some(&old), &new),
            json!({"status": {"desiredReplicas": 0, "lastActiveTime": null}})
        );
    }
}
