//! The supervisor: one scale loop per object, started, updated and stopped as the host's
//! object source (the Kubernetes watch, the local file loader) reports objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::mailbox::Mailbox;
use super::object::{ManagedObject, RuntimeConfig};
use super::pool::ScalerPool;
use super::scale_loop::{Control, LoopShared, ScaleLoop};
use super::sink::StatusSink;
use super::trigger::ObjectKey;

/// Runs the scale loops. Cheap to clone; clones share the loops.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<LoopShared>,
    loops: Arc<Mutex<HashMap<ObjectKey, LoopHandle>>>,
}

struct LoopHandle {
    control: Arc<Mailbox>,
    task: JoinHandle<()>,
}

impl Drop for LoopHandle {
    /// A loop whose handle is gone (supervisor dropped, loop replaced) shuts down; a stop
    /// already sent stays a stop.
    fn drop(&mut self) {
        let _ = self.control.send(Control::Shutdown);
    }
}

impl Supervisor {
    /// A supervisor polling through `pool` and reporting to `sink`.
    pub fn new(pool: ScalerPool, sink: Arc<dyn StatusSink>, config: RuntimeConfig) -> Self {
        Self {
            shared: Arc::new(LoopShared {
                metrics: pool.metrics().clone(),
                pool,
                sink,
                config,
            }),
            loops: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, LoopHandle>> {
        self.loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the object's loop, or hands the loop the new version of the object (spec,
    /// triggers, secrets, target). The loop keeps its engine state across updates and
    /// ignores an update equal to what it runs. Must be called inside a tokio runtime.
    pub fn apply(&self, object: ManagedObject) {
        let mut loops = self.lock();
        let key = object.key.clone();
        let object = match loops.get(&key) {
            Some(handle) if !handle.task.is_finished() => {
                match handle.control.send(Control::Update(Box::new(object))) {
                    Ok(()) => return,
                    // The loop ended between the check and the send: start a new one.
                    Err(Control::Update(object)) => *object,
                    Err(_) => return,
                }
            }
            _ => object,
        };
        let control = Arc::new(Mailbox::default());
        let task = tokio::spawn(
            Box::new(ScaleLoop::new(object, self.shared.clone(), control.clone())).run(),
        );
        loops.insert(key, LoopHandle { control, task });
    }

    /// Stops the object's loop (the object was deleted). Its metrics series are removed and
    /// the sink is told. Returns false when no loop ran for `key`.
    pub fn remove(&self, key: &ObjectKey) -> bool {
        match self.lock().remove(key) {
            Some(handle) => {
                let _ = handle.control.send(Control::Stop);
                true
            }
            None => false,
        }
    }

    /// Stops the object's loop, as [`Supervisor::remove`] does; the future resolves once the
    /// loop has ended, so it will not write the target again (a host restoring the target's
    /// replica count on deletion waits for it first).
    pub fn remove_and_wait(
        &self,
        key: &ObjectKey,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let handle = self.lock().remove(key);
        if let Some(handle) = &handle {
            let _ = handle.control.send(Control::Stop);
        }
        async move {
            if let Some(mut handle) = handle {
                let _ = (&mut handle.task).await;
            }
        }
    }

    /// Stops every loop whose key `keep` rejects (after a full re-list or a file reload).
    pub fn retain(&self, mut keep: impl FnMut(&ObjectKey) -> bool) {
        self.lock().retain(|key, handle| {
            let kept = keep(key);
            if !kept {
                let _ = handle.control.send(Control::Stop);
            }
            kept
        });
    }

    /// The objects with a loop, sorted.
    pub fn keys(&self) -> Vec<ObjectKey> {
        let mut keys: Vec<_> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Number of loops.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no loop runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops every loop and waits for them to finish (they publish nothing more afterwards).
    pub async fn shutdown(&self) {
        let handles: Vec<LoopHandle> = self.lock().drain().map(|(_, handle)| handle).collect();
        for handle in &handles {
            let _ = handle.control.send(Control::Shutdown);
        }
        for mut handle in handles {
            let _ = (&mut handle.task).await;
        }
    }
}
