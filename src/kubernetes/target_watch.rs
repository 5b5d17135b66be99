//! Replica counts of scale targets from one lean watch per target kind, so that a poll reads
//! its target's count from memory instead of a `GET …/scale` (one request per object per poll
//! was most of ebb's API load).
//!
//! Each watch keeps, per object of the kind, only its name (grouped by namespace), its
//! `spec.replicas` and its resourceVersion: the rest of each Deployment is decoded and dropped
//! at once. Every ScaledObject scaling that kind shares the one watch. Where a watch is not
//! possible (listing or watching the kind is forbidden, or a custom kind's replica field is
//! unknown), targets read `/scale` on every poll and their ScaledObject says so in its status
//! ([`DirectReads`], `status.replicasReadFrom`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::Value;

use crate::runtime::ObjectKey;

/// ScaledObjects whose target's replica count is read from `/scale` on every poll. Shared by
/// the targets (which add and remove themselves) and the status sink (which reports it).
#[derive(Clone, Debug, Default)]
pub struct DirectReads(Arc<Mutex<DirectState>>);

#[derive(Debug, Default)]
struct DirectState {
    keys: HashSet<ObjectKey>,
    /// Keys whose mark changed since [`DirectReads::take_changed`]: their status must say so
    /// even when the loop publishes nothing new.
    changed: Vec<ObjectKey>,
}

impl DirectReads {
    fn lock(&self) -> std::sync::MutexGuard<'_, DirectState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `key` as read directly (`true`) or from a watch (`false`).
    pub fn set(&self, key: &ObjectKey, direct: bool) {
        let mut state = self.lock();
        let changed = if direct {
            !state.keys.contains(key) && state.keys.insert(key.clone())
        } else {
            state.keys.remove(key)
        };
        if changed {
            state.changed.push(key.clone());
        }
    }

    /// Whether `key`'s target is read directly.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.lock().keys.contains(key)
    }

    /// The keys whose mark changed since the last call.
    pub fn take_changed(&self) -> Vec<ObjectKey> {
        std::mem::take(&mut self.lock().changed)
    }
}

/// What the watch knows of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `spec.replicas` (absent counts as 0, as `/scale` reports it).
    pub replicas: u32,
    /// The object's resourceVersion when numeric (what every API server sends); 0 if not.
    pub version: u64,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The watch has the object.
    Known(Entry),
    /// The watch has listed the kind, and the object is not (or not yet) in it.
    Missing,
    /// The watch has not listed the kind yet.
    Pending,
    /// No watch is possible for the kind (forbidden, or its replica field is unknown).
    Unwatchable,
}

/// namespace → name → entry.
type Objects = HashMap<Box<str>, HashMap<Box<str>, Entry>>;
/// The watches by `(apiVersion, kind)`.
type Kinds = Arc<Mutex<HashMap<(String, String), Arc<KindWatch>>>>;

#[derive(Default)]
struct KindState {
    /// namespace → name → entry.
    objects: Objects,
    /// The list in progress after a (re)start of the watch.
    building: Option<Objects>,
    synced: bool,
    /// Why no watch is possible, when it is not.
    unwatchable: Option<String>,
}

/// The watch of one target kind.
pub struct KindWatch {
    description: String,
    state: Mutex<KindState>,
    /// Writes refused because someone else changed the target first (HTTP 409).
    conflicts: AtomicU64,
    /// Dropped with the watch: ends its task.
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn version_number(version: Option<&str>) -> u64 {
    version.and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn insert(objects: &mut Objects, namespace: &str, name: &str, entry: Entry) {
    let names = match objects.get_mut(namespace) {
        Some(names) => names,
        None => objects.entry(namespace.into()).or_default(),
    };
    match names.get_mut(name) {
        // Never go back to an older version (a write's answer can overtake the watch).
        Some(known) if known.version > entry.version && entry.version != 0 => {}
        Some(known) => *known = entry,
        None => {
            names.insert(name.into(), entry);
        }
    }
}

impl KindWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, KindState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the watch knows of `namespace/name`.
    pub fn lookup(&self, namespace: &str, name: &str) -> Lookup {
        let state = self.lock();
        if state.unwatchable.is_some() {
            return Lookup::Unwatchable;
        }
        if !state.synced {
            return Lookup::Pending;
        }
        state
            .objects
            .get(namespace)
            .and_then(|names| names.get(name))
            .map_or(Lookup::Missing, |entry| Lookup::Known(*entry))
    }

    /// Records a count learnt outside the watch (a write's answer, a direct read).
    pub fn record(&self, namespace: &str, name: &str, replicas: u32, version: Option<&str>) {
        let entry = Entry {
            replicas,
            version: version_number(version),
        };
        let mut state = self.lock();
        insert(&mut state.objects, namespace, name, entry);
    }

    /// Why no watch is possible, if it is not.
    pub fn unwatchable(&self) -> Option<String> {
        self.lock().unwatchable.clone()
    }

    /// Counts a write refused with 409 Conflict; returns the count so far.
    pub fn count_conflict(&self) -> u64 {
        self.conflicts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Writes refused with 409 Conflict so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Objects the watch holds.
    pub fn len(&self) -> usize {
        self.lock().objects.values().map(HashMap::len).sum()
    }

    /// Whether the watch holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held for the objects (table slots at capacity, control bytes and names),
    /// computed from the maps' capacities: the memory per target the benchmark reports.
    pub fn heap_bytes(&self) -> usize {
        let state = self.lock();
        let slot = std::mem::size_of::<(Box<str>, Entry)>() + 1;
        let outer = std::mem::size_of::<(Box<str>, HashMap<Box<str>, Entry>)>() + 1;
        state.objects.capacity() * outer
            + state
                .objects
                .iter()
                .map(|(namespace, names)| {
                    namespace.len()
                        + names.capacity() * slot
                        + names.keys().map(|name| name.len()).sum::<usize>()
                })
                .sum::<usize>()
    }

    fn apply(&self, event: watcher::Event<DynamicObject>, replicas_path: &str) {
        let mut state = self.lock();
        // `Init` comes before the list is even asked for: only objects prove the watch works.
        if !matches!(event, watcher::Event::Init) {
            state.unwatchable = None;
        }
        let entry_of = |object: &DynamicObject| {
            let replicas = object
                .data
                .pointer(replicas_path)
                .and_then(Value::as_i64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            Entry {
                replicas,
                version: version_number(object.metadata.resource_version.as_deref()),
            }
        };
        let names = |object: &DynamicObject| {
            (
                object.metadata.namespace.clone().unwrap_or_default(),
                object.metadata.name.clone().unwrap_or_default(),
            )
        };
        match event {
            watcher::Event::Init => state.building = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                let (namespace, name) = names(&object);
                let entry = entry_of(&object);
                drop(object);
                if let Some(building) = state.building.as_mut() {
                    insert(building, &namespace, &name, entry);
                }
            }
            watcher::Event::InitDone => {
                if let Some(mut building) = state.building.take() {
                    building.shrink_to_fit();
                    state.objects = building;
                }
                state.synced = true;
            }
            watcher::Event::Apply(object) => {
                let (namespace, name) = names(&object);
                let entry = entry_of(&object);
                drop(object);
                insert(&mut state.objects, &namespace, &name, entry);
            }
            watcher::Event::Delete(object) => {
                let (namespace, name) = names(&object);
                if let Some(names) = state.objects.get_mut(namespace.as_str()) {
                    names.remove(name.as_str());
                }
            }
        }
    }

    fn failed(&self, error: &watcher::Error) {
        let forbidden = match error {
            watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => {
                status.code == 403 || status.code == 401
            }
            _ => false,
        };
        if forbidden {
            let mut state = self.lock();
            if state.unwatchable.is_none() {
                tracing::warn!(kind = %self.description, %error, "cannot list or watch the target kind; reading /scale on every poll instead");
            }
            state.unwatchable = Some(format!(
                "listing or watching {} is forbidden",
                self.description
            ));
        } else {
            tracing::warn!(kind = %self.description, %error, "target watch failed; retrying");
        }
    }
}

/// The watches of every target kind, started on first use. Cheap to clone.
#[derive(Clone)]
pub struct TargetWatches {
    client: kube::Client,
    namespace: Option<String>,
    kinds: Kinds,
}

impl TargetWatches {
    /// Watches through `client`, in `namespace` only when given (the controller's
    /// `--watch-namespace`), else in all namespaces.
    pub fn new(client: kube::Client, namespace: Option<String>) -> Self {
        Self {
            client,
            namespace,
            kinds: Arc::default(),
        }
    }

    /// The watch of `resource`'s kind, started if it is not running yet.
    pub fn watch(&self, resource: &ApiResource) -> Arc<KindWatch> {
        let key = (resource.api_version.clone(), resource.kind.clone());
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = kinds.get(&key) {
            return found.clone();
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let watch = Arc::new(KindWatch {
            description: format!("{} ({})", resource.plural, resource.api_version),
            state: Mutex::default(),
            conflicts: AtomicU64::new(0),
            _stop: stop,
        });
        kinds.insert(key, watch.clone());
        tokio::spawn(run(
            self.client.clone(),
            self.namespace.clone(),
            resource.clone(),
            Arc::downgrade(&watch),
            stopped,
        ));
        watch
    }

    /// Every watch started, by `apiVersion` and kind.
    pub fn kinds(&self) -> Vec<((String, String), Arc<KindWatch>)> {
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        kinds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Where `spec.replicas` lives for the kind: fixed for the built-in workloads, the CRD's
/// `specReplicasPath` for custom kinds.
async fn replicas_path(client: &kube::Client, resource: &ApiResource) -> Result<String, String> {
    if resource.group == "apps" {
        return Ok("/spec/replicas".to_owned());
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = format!("{}.{}", resource.plural, resource.group);
    let crd = crds
        .get(&name)
        .await
        .map_err(|error| format!("cannot read CustomResourceDefinition {name}: {error}"))?;
    crd.spec
        .versions
        .iter()
        .find(|version| version.name == resource.version)
        .and_then(|version| version.subresources.as_ref())
        .and_then(|subresources| subresources.scale.as_ref())
        .map(|scale| {
            scale
                .spec_replicas_path
                .trim_start_matches('.')
                .replace('.', "/")
        })
        .map(|path| format!("/{path}"))
        .ok_or_else(|| format!("CustomResourceDefinition {name} has no scale subresource"))
}

async fn run(
    client: kube::Client,
    namespace: Option<String>,
    resource: ApiResource,
    watch: std::sync::Weak<KindWatch>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let path = match replicas_path(&client, &resource).await {
        Ok(path) => path,
        Err(reason) => {
            if let Some(watch) = watch.upgrade() {
                tracing::warn!(kind = %watch.description, %reason, "reading /scale on every poll for this kind");
                watch.lock().unwatchable = Some(reason);
            }
            return;
        }
    };
    let api: Api<DynamicObject> = match &namespace {
        Some(namespace) => Api::namespaced_with(client, namespace, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(watch) = watch.upgrade() else { return };
                match event {
                    Some(Ok(event)) => watch.apply(event, &path),
                    Some(Err(error)) => watch.failed(&error),
                    None => return,
                }
            }
            _ = &mut stopped => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_never_replace_newer_ones() {
        let mut objects = HashMap::new();
        insert(
            &mut objects,
            "ns",
            "a",
            Entry {
                replicas: 3,
                version: 10,
            },
        );
        insert(
            &mut objects,
            "ns",
            "a",
            Entry {
                replicas: 1,
                version: 9,
            },
        );
        assert_eq!(
            objects["ns"]["a"],
            Entry {
                replicas: 3,
                version: 10
            }
        );
        insert(
            &mut objects,
            "ns",
            "a",
            Entry {
                replicas: 5,
                version: 11,
            },
        );
        assert_eq!(objects["ns"]["a"].replicas, 5);
        // Versions that are not numbers cannot be ordered: the latest wins.
        insert(
            &mut objects,
            "ns",
            "a",
            Entry {
                replicas: 2,
                version: 0,
            },
        );
        assert_eq!(objects["ns"]["a"].replicas, 2);
    }

    #[test]
    fn direct_reads_are_marked_and_cleared() {
        let direct = DirectReads::default();
        let key = ObjectKey::new("ns", "so");
        assert!(!direct.contains(&key));
        direct.set(&key, true);
        direct.set(&key, true);
        assert!(direct.contains(&key));
        assert_eq!(direct.take_changed(), vec![key.clone()]);
        direct.set(&key, false);
        assert!(!direct.contains(&key));
        assert_eq!(direct.take_changed(), vec![key]);
        assert!(direct.take_changed().is_empty());
    }
}
