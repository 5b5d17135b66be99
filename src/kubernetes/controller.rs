//! The leader's work: watch ScaledObjects, check and resolve each one, and hand it to the
//! runtime supervisor, which runs one scale loop per object. Objects that cannot run get
//! Ready=False with a specific reason and a Warning Event; objects that cannot even be decoded
//! are logged and skipped, and the watch goes on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};

use super::adopt::{self, RESTORE_FINALIZER, Restore};
use super::conflict::{claim_of, hpa_id, hpa_target, hpas_unavailable, watch_hpas};
use super::lookup::KubeLookup;
use super::resolve::{ResolveProblem, resolve_registered_triggers};
use super::status::KubeStatusSink;
use super::target::TargetResolver;
use crate::runtime::conflict::{
    ConflictIndex, REASON_HPA_CONFLICT, REASON_TARGET_CONFLICT, TargetKey,
};
use crate::runtime::prepare::{PoolInfo, check_schemas};
use crate::runtime::{
    EventKind, ManagedObject, ObjectEvent, ObjectKey, Readiness, RuntimeConfig, ScaleTarget,
    ScalerPool, Supervisor,
};
use crate::spec::{Condition, ConditionStatus, ConditionType, ScaledObject, from_time};

/// Settings of the leader's work.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Watch only this namespace; all when `None`.
    pub watch_namespace: Option<String>,
    /// Where ClusterScalerAuthentication Secrets live.
    pub controller_namespace: String,
    /// This replica's name (Events' reportingInstance).
    pub identity: String,
    /// How often every object is resolved again (Secret rotation, scalers that came up).
    pub resync_interval: Duration,
    /// How often objects whose resolution hit a cluster read error are retried.
    pub retry_interval: Duration,
    /// Deadline of the GetInfo call used to check trigger metadata.
    pub info_timeout: Duration,
    /// Status writes in flight at once.
    pub status_concurrency: usize,
    /// The scaler each trigger type calls when a trigger gives no address.
    pub registry: Arc<crate::runtime::prepare::ScalerRegistry>,
    /// Where the dashboard's history is recorded; `None` (the default) records nothing.
    pub history: Option<crate::dashboard::History>,
    /// When readings alone are written to status.
    pub readings: super::status_policy::ReadingsPolicy,
    /// Every object's latest status and event, served as `/status` (for `ebb status`).
    pub live: crate::runtime::LiveStatus,
}

/// Reason of Ready=False for an object that cannot be decoded.
pub const REASON_UNDECODABLE: &str = "InvalidObject";
/// Event reason for an object that is not valid.
pub const REASON_INVALID: &str = "InvalidScaledObject";

/// What was applied for an object, to skip our own status writes coming back on the watch.
#[derive(PartialEq)]
struct Applied {
    generation: Option<i64>,
    annotations: BTreeMap<String, String>,
}

struct Controller {
    settings: ControllerSettings,
    supervisor: Supervisor,
    sink: KubeStatusSink,
    objects: HashMap<ObjectKey, DynamicObject>,
    applied: HashMap<ObjectKey, Applied>,
    retry: HashSet<ObjectKey>,
    /// What preparations need; cloned into each.
    preparer: Preparer,
    /// Preparations running (resolving references, checking metadata against GetInfo).
    preparing: FuturesUnordered<BoxFuture<'static, Prepared>>,
    /// The newest preparation per object; an older one finishing late is dropped.
    latest: HashMap<ObjectKey, u64>,
    next_preparation: u64,
    /// The target handle given to each loop, reused while the reference is unchanged.
    target_handles: HashMap<ObjectKey, (TargetIdentity, Arc<dyn ScaleTarget>)>,
    /// Who claims which target, and the HPAs on targets: who may scale what.
    conflicts: ConflictIndex,
    /// HPAs known, `(namespace, name)`, to forget those missing from a re-list.
    known_hpas: HashSet<(String, String)>,
    /// The first ScaledObject list is done.
    listed_objects: bool,
    /// The first HPA list is done (or HPAs cannot be listed).
    listed_hpas: bool,
    /// Preparations finished before both first lists were done: nothing scales until every
    /// claim is known, so a later object never writes a target its elder owns.
    deferred: Vec<Prepared>,
    /// Per object: the target labelled and whether the restore finalizer was wanted.
    adopted: HashMap<ObjectKey, (TargetIdentity, bool)>,
    /// Objects being finalized (restore, then the finalizer removed).
    finalizing: HashSet<ObjectKey>,
    /// Label, finalizer and restore writes in flight.
    tasks: tokio::task::JoinSet<TaskDone>,
}

/// A finished background write.
enum TaskDone {
    /// Nothing to follow up.
    Done,
    /// Labelling the target or setting the finalizer failed: try again on the retry tick.
    AdoptFailed(ObjectKey),
    /// The finalizer of a deleted object was handled.
    Finalized(ObjectKey),
}

/// The slow part of a reconcile, run concurrently with the watch: reading Secrets and the
/// target's kind, and asking scalers for their metadata schema. A scaler that hangs until its
/// deadline then holds up only its own objects, not every object behind it on the watch.
#[derive(Clone)]
struct Preparer {
    client: kube::Client,
    targets: TargetResolver,
    controller_namespace: String,
    /// Trigger types and their scalers.
    registry: Arc<crate::runtime::prepare::ScalerRegistry>,
    /// GetInfo answers for the schema check, shared by every preparation.
    info: PoolInfo,
    /// Bounds preparations in flight (each may read Secrets from the API server).
    permits: Arc<tokio::sync::Semaphore>,
}

/// A finished preparation.
struct Prepared {
    key: ObjectKey,
    number: u64,
    object: Box<ScaledObject>,
    outcome: Result<Ready, Rejection>,
}

/// Everything needed to run an object.
struct Ready {
    resource: ApiResource,
    triggers: Vec<crate::runtime::ResolvedTrigger>,
}

/// Why an object cannot run (yet).
enum Rejection {
    /// A reason and message for Ready=False.
    Failed(&'static str, String),
    /// Problems found while resolving or checking metadata.
    Problems(Vec<ResolveProblem>),
}

/// Preparations in flight at once.
const PREPARE_CONCURRENCY: usize = 64;

/// apiVersion, kind and name of a scale target.
type TargetIdentity = (String, String, String);

/// The ScaledObject resource, for dynamic (decode-per-object) watching.
pub fn scaled_object_resource() -> ApiResource {
    ApiResource::erase::<ScaledObject>(&())
}

/// The typed object, read from the watch's copy in place: serializing the whole object into a
/// new JSON tree only to read it back cost a deep copy per watch event.
fn decode(raw: &DynamicObject) -> Result<ScaledObject, serde_json::Error> {
    use serde::Deserialize as _;
    let spec = raw.data.get("spec").unwrap_or(&serde_json::Value::Null);
    let status = match raw.data.get("status") {
        None | Some(serde_json::Value::Null) => None,
        Some(status) => Some(crate::spec::ScaledObjectStatus::deserialize(status)?),
    };
    Ok(ScaledObject {
        metadata: raw.metadata.clone(),
        spec: crate::spec::ScaledObjectSpec::deserialize(spec)?,
        status,
    })
}

fn key_of(object: &DynamicObject) -> ObjectKey {
    ObjectKey::new(
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// Runs the leader's work until `stop` completes, then stops every scale loop.
pub async fn lead(
    client: kube::Client,
    pool: ScalerPool,
    settings: ControllerSettings,
    readiness: Readiness,
    stop: impl std::future::Future<Output = ()>,
) {
    let sink = KubeStatusSink::start_with(
        client.clone(),
        settings.identity.clone(),
        settings.status_concurrency,
        settings.readings,
        super::target_watch::DirectReads::default(),
    );
    let mut loop_sink: Arc<dyn crate::runtime::StatusSink> =
        Arc::new(settings.live.wrap(Arc::new(sink.clone())));
    if let Some(history) = settings.history.clone() {
        loop_sink = Arc::new(crate::dashboard::HistorySink::new(loop_sink, history));
    }
    let supervisor = Supervisor::new(pool.clone(), loop_sink, RuntimeConfig::default());
    let preparer = Preparer {
        client: client.clone(),
        targets: TargetResolver::in_namespace(client.clone(), settings.watch_namespace.clone()),
        controller_namespace: settings.controller_namespace.clone(),
        registry: settings.registry.clone(),
        info: PoolInfo::new(pool.clone(), settings.info_timeout),
        permits: Arc::new(tokio::sync::Semaphore::new(PREPARE_CONCURRENCY)),
    };
    let mut controller = Controller {
        preparer,
        settings,
        supervisor,
        sink,
        objects: HashMap::new(),
        applied: HashMap::new(),
        retry: HashSet::new(),
        preparing: FuturesUnordered::new(),
        latest: HashMap::new(),
        next_preparation: 0,
        target_handles: HashMap::new(),
        conflicts: ConflictIndex::new(),
        known_hpas: HashSet::new(),
        listed_objects: false,
        listed_hpas: false,
        deferred: Vec::new(),
        adopted: HashMap::new(),
        finalizing: HashSet::new(),
        tasks: tokio::task::JoinSet::new(),
    };
    // ScaledJobs run beside, under the same leadership and stop.
    let (jobs_stop, jobs_stopped) = tokio::sync::watch::channel(false);
    let jobs = tokio::spawn(super::jobs::lead_jobs(
        client.clone(),
        pool.clone(),
        controller.settings.clone(),
        jobs_stopped,
    ));
    let resource = scaled_object_resource();
    let api: Api<DynamicObject> = match &controller.settings.watch_namespace {
        Some(namespace) => Api::namespaced_with(client, namespace, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut hpas = watch_hpas(
        controller.preparer.client.clone(),
        controller.settings.watch_namespace.as_deref(),
    );
    let mut hpas_listed: HashSet<(String, String)> = HashSet::new();
    let mut resync = tokio::time::interval(controller.settings.resync_interval);
    resync.tick().await;
    let mut retry = tokio::time::interval(controller.settings.retry_interval);
    let mut listed: HashSet<ObjectKey> = HashSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::Init)) => listed.clear(),
                Some(Ok(watcher::Event::InitApply(object))) => {
                    listed.insert(key_of(&object));
                    controller.reconcile(object, false);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    let gone: Vec<ObjectKey> = controller.objects.keys().filter(|k| !listed.contains(*k)).cloned().collect();
                    for key in gone {
                        controller.removed(&key);
                    }
                    readiness.set_ready(true);
                    tracing::info!(objects = controller.objects.len(), "initial list done");
                    controller.listed_objects = true;
                    controller.start_deferred();
                }
                Some(Ok(watcher::Event::Apply(object))) => controller.reconcile(object, false),
                Some(Ok(watcher::Event::Delete(object))) => controller.removed(&key_of(&object)),
                Some(Err(error)) => tracing::warn!(%error, "ScaledObject watch failed; retrying"),
                None => break,
            },
            event = hpas.next() => match event {
                Some(Ok(watcher::Event::Init)) => hpas_listed.clear(),
                Some(Ok(watcher::Event::InitApply(hpa))) => {
                    hpas_listed.insert(hpa_id(&hpa));
                    controller.hpa_changed(&hpa, true);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    let gone: Vec<(String, String)> = controller.known_hpas.difference(&hpas_listed).cloned().collect();
                    for (namespace, name) in gone {
                        controller.known_hpas.remove(&(namespace.clone(), name.clone()));
                        let touched = controller.conflicts.set_hpa(&namespace, &name, None);
                        controller.recheck(touched, None);
                    }
                    controller.listed_hpas = true;
                    controller.start_deferred();
                }
                Some(Ok(watcher::Event::Apply(hpa))) => controller.hpa_changed(&hpa, true),
                Some(Ok(watcher::Event::Delete(hpa))) => controller.hpa_changed(&hpa, false),
                Some(Err(error)) if hpas_unavailable(&error) => {
                    tracing::warn!(%error, "HorizontalPodAutoscalers cannot be listed; conflicts with them are not checked");
                    hpas = futures::stream::pending().boxed();
                    controller.listed_hpas = true;
                    controller.start_deferred();
                }
                Some(Err(error)) => tracing::warn!(%error, "HorizontalPodAutoscaler watch failed; retrying"),
                None => hpas = futures::stream::pending().boxed(),
            },
            Some(done) = controller.tasks.join_next(), if !controller.tasks.is_empty() => {
                controller.task_done(done);
            }
            Some(prepared) = controller.preparing.next(), if !controller.preparing.is_empty() => {
                controller.finish(prepared);
            }
            _ = resync.tick() => controller.resync(None),
            _ = retry.tick(), if !controller.retry.is_empty() => {
                let keys: HashSet<ObjectKey> = std::mem::take(&mut controller.retry);
                controller.resync(Some(keys));
            }
            () = &mut stop => break,
        }
    }
    let _ = jobs_stop.send(true);
    let _ = jobs.await;
    // A restore cut short here is done by the next leader: the finalizer is still there.
    controller.tasks.abort_all();
    controller.supervisor.shutdown().await;
    controller.sink.flush(Duration::from_secs(5)).await;
}

impl Controller {
    fn removed(&mut self, key: &ObjectKey) {
        self.supervisor.remove(key);
        self.finalizing.remove(key);
        if let Some(((api_version, kind, name), _)) = self.adopted.remove(key) {
            let client = self.preparer.client.clone();
            let targets = self.preparer.targets.clone();
            let key = key.clone();
            self.tasks.spawn(async move {
                if let Ok(resource) = targets.resource(&api_version, &kind).await {
                    adopt::unlabel_target(client, &resource, &key.namespace, &name, &key.name)
                        .await;
                }
                TaskDone::Done
            });
        }
        if let Some(target) = self.conflicts.release(key) {
            // The next claimant (if any) takes over.
            self.recheck(vec![target], Some(key));
        }
        self.sink.forget(key);
        self.objects.remove(key);
        self.applied.remove(key);
        self.retry.remove(key);
        self.target_handles.remove(key);
        // A preparation still running for it is dropped when it finishes.
        self.latest.remove(key);
        tracing::info!(object = %key, "ScaledObject removed");
    }

    fn resync(&mut self, only: Option<HashSet<ObjectKey>>) {
        let objects: Vec<DynamicObject> = self
            .objects
            .iter()
            .filter(|(key, _)| only.as_ref().is_none_or(|only| only.contains(*key)))
            .map(|(_, object)| object.clone())
            .collect();
        for object in objects {
            self.reconcile(object, true);
        }
    }

    /// Marks an object not Ready, stops its loop, and tells people once.
    fn fail(
        &mut self,
        key: &ObjectKey,
        object: Option<&ScaledObject>,
        reason: &'static str,
        message: String,
    ) {
        let status = object.and_then(|o| o.status.clone());
        let generation = object.and_then(|o| o.metadata.generation);
        self.fail_with(key, status, generation, reason, message);
    }

    fn fail_with(
        &mut self,
        key: &ObjectKey,
        status: Option<crate::spec::ScaledObjectStatus>,
        generation: Option<i64>,
        reason: &'static str,
        message: String,
    ) {
        self.supervisor.remove(key);
        self.latest.remove(key);
        let mut status = status.unwrap_or_default();
        let previous = status.condition(ConditionType::Ready).cloned();
        status.set_condition(Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            reason,
            message.clone(),
            SystemTime::now(),
        ));
        status.set_condition(Condition::new(
            ConditionType::Active,
            ConditionStatus::False,
            reason,
            String::new(),
            SystemTime::now(),
        ));
        if generation.is_some() {
            status.observed_generation = generation;
        }
        self.sink.publish(key, &status);
        let unchanged = previous.is_some_and(|p| {
            p.status == ConditionStatus::False && p.reason == reason && p.message == message
        });
        if !unchanged {
            tracing::warn!(object = %key, reason, %message, "ScaledObject cannot run");
            let reason_static = match reason {
                REASON_UNDECODABLE => REASON_UNDECODABLE,
                REASON_TARGET_CONFLICT => REASON_TARGET_CONFLICT,
                REASON_HPA_CONFLICT => REASON_HPA_CONFLICT,
                _ => REASON_INVALID,
            };
            self.sink.event(
                key,
                ObjectEvent {
                    kind: EventKind::Warning,
                    reason: reason_static,
                    message,
                },
            );
        }
    }

    fn report(&mut self, key: &ObjectKey, object: &ScaledObject, problems: &[ResolveProblem]) {
        let Some(first) = problems.first() else {
            return;
        };
        let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
        if problems.iter().all(|p| p.transient) {
            tracing::warn!(object = %key, problem = %message.join("; "), "resolving failed; retrying");
            self.retry.insert(key.clone());
            return;
        }
        self.fail(key, Some(object), first.reason, message.join("; "));
    }

    /// Decodes and validates at once; the rest runs as a preparation (see [`Preparer`]).
    fn reconcile(&mut self, raw: DynamicObject, resync: bool) {
        let key = key_of(&raw);
        if raw.metadata.deletion_timestamp.is_some() {
            self.objects.insert(key.clone(), raw.clone());
            self.deleting(&key, &raw);
            return;
        }
        if !resync && self.is_echo(&key, &raw) {
            // Our own status write coming back (or a label change): only the stored status
            // moved. Decoding the whole object for that would double the work per write.
            self.sink.observe_raw(&key, &raw);
            self.objects.insert(key, raw);
            return;
        }
        self.objects.insert(key.clone(), raw.clone());
        let decoded = decode(&raw);
        let object = match decoded {
            Ok(object) => object,
            Err(error) => {
                tracing::warn!(object = %key, %error, "skipping a ScaledObject that cannot be decoded");
                self.applied.remove(&key);
                // Keep what the status says (lastActiveTime...) when at least it decodes.
                let status = raw
                    .data
                    .get("status")
                    .cloned()
                    .and_then(|s| serde_json::from_value(s).ok());
                let generation = raw.metadata.generation;
                self.fail_with(
                    &key,
                    status,
                    generation,
                    REASON_UNDECODABLE,
                    format!("the object cannot be decoded: {error}"),
                );
                return;
            }
        };
        self.sink.observe(&object);
        let touched = self.conflicts.claim(claim_of(&key, &object));
        self.recheck(touched, Some(&key));
        let applied = Applied {
            generation: object.metadata.generation,
            annotations: object.metadata.annotations.clone().unwrap_or_default(),
        };
        if !resync && self.applied.get(&key) == Some(&applied) {
            // Our own status write coming back, or a label change: nothing to do.
            return;
        }
        self.applied.insert(key.clone(), applied);
        let problems = object.validate();
        if let Some(first) = problems.first() {
            let message: Vec<String> = problems.iter().map(ToString::to_string).collect();
            self.fail(&key, Some(&object), first.reason, message.join("; "));
            return;
        }
        if let Some(conflict) = self.conflicts.conflict(&key) {
            self.fail(&key, Some(&object), conflict.reason(), conflict.to_string());
            return;
        }
        self.next_preparation += 1;
        let number = self.next_preparation;
        self.latest.insert(key.clone(), number);
        let preparer = self.preparer.clone();
        self.preparing.push(Box::pin(async move {
            let outcome = preparer.prepare(&key, &object).await;
            Prepared {
                key,
                number,
                object: Box::new(object),
                outcome,
            }
        }));
    }

    /// Applies a finished preparation unless a newer one (or a removal) superseded it.
    fn finish(&mut self, prepared: Prepared) {
        if !(self.listed_objects && self.listed_hpas) {
            self.deferred.push(prepared);
            return;
        }
        let Prepared {
            key,
            number,
            object,
            outcome,
        } = prepared;
        if self.latest.get(&key) != Some(&number) {
            return;
        }
        self.latest.remove(&key);
        let ready = match outcome {
            Ok(ready) => ready,
            Err(Rejection::Failed(reason, message)) => {
                self.fail(&key, Some(&object), reason, message);
                return;
            }
            Err(Rejection::Problems(problems)) => {
                self.report(&key, &object, &problems);
                return;
            }
        };
        if let Some(conflict) = self.conflicts.conflict(&key) {
            self.fail(&key, Some(&object), conflict.reason(), conflict.to_string());
            return;
        }
        let pause = object.pause_state().unwrap_or_default();
        let target_ref = &object.spec.scale_target_ref;
        let identity: TargetIdentity = (
            target_ref.api_version().to_owned(),
            target_ref.kind().to_owned(),
            target_ref.name.clone(),
        );
        self.adopt(&key, &object, &ready.resource, &identity);
        let target = match self.target_handles.get(&key) {
            Some((known, handle)) if *known == identity => handle.clone(),
            _ => {
                let handle: Arc<dyn ScaleTarget> = Arc::new(
                    self.preparer
                        .targets
                        .target(&ready.resource, &key.namespace, &target_ref.name)
                        .owned_by(key.clone(), self.sink.direct_reads()),
                );
                self.target_handles
                    .insert(key.clone(), (identity, handle.clone()));
                handle
            }
        };
        let created = object
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or_else(SystemTime::now, from_time);
        let object = *object;
        self.supervisor.apply(ManagedObject {
            key: key.clone(),
            generation: object.metadata.generation.unwrap_or(0),
            spec: Arc::new(object.spec),
            pause,
            triggers: ready.triggers,
            target,
            last_status: object.status,
            created,
        });
        tracing::debug!(object = %key, "ScaledObject applied");
    }

    /// Applies the preparations held back until both first lists were done.
    fn start_deferred(&mut self) {
        if !(self.listed_objects && self.listed_hpas) {
            return;
        }
        for prepared in std::mem::take(&mut self.deferred) {
            self.finish(prepared);
        }
    }

    /// Reconciles again every stored object claiming one of `targets` (but `except`): its
    /// conflict may have appeared or gone.
    fn recheck(&mut self, targets: Vec<TargetKey>, except: Option<&ObjectKey>) {
        for target in targets {
            for other in self.conflicts.claimants(&target) {
                if Some(&other) == except {
                    continue;
                }
                if let Some(raw) = self.objects.get(&other).cloned()
                    && raw.metadata.deletion_timestamp.is_none()
                {
                    self.reconcile(raw, true);
                }
            }
        }
    }

    /// An HPA appeared, changed or went.
    fn hpa_changed(
        &mut self,
        hpa: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
        present: bool,
    ) {
        let (namespace, name) = hpa_id(hpa);
        let target = if present { hpa_target(hpa) } else { None };
        if target.is_some() {
            self.known_hpas.insert((namespace.clone(), name.clone()));
        } else {
            self.known_hpas.remove(&(namespace.clone(), name.clone()));
        }
        let touched = self.conflicts.set_hpa(&namespace, &name, target);
        self.recheck(touched, None);
    }

    /// Once per adoption (or change of target or of the restore flag): labels the target and
    /// adds or removes the restore finalizer, in the background.
    fn adopt(
        &mut self,
        key: &ObjectKey,
        object: &ScaledObject,
        resource: &ApiResource,
        identity: &TargetIdentity,
    ) {
        let restore = object.spec.restores_original_replicas();
        let wanted = (identity.clone(), restore);
        if self.adopted.get(key) == Some(&wanted) {
            return;
        }
        self.adopted.insert(key.clone(), wanted);
        let has_finalizer = object
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == RESTORE_FINALIZER));
        let client = self.preparer.client.clone();
        let objects = self.objects_api(&key.namespace);
        let resource = resource.clone();
        let key = key.clone();
        let target = identity.2.clone();
        self.tasks.spawn(async move {
            let labelled =
                adopt::label_target(client, &resource, &key.namespace, &target, &key.name).await;
            let finalizer = if restore == has_finalizer {
                Ok(())
            } else {
                adopt::set_finalizer(&objects, &key, restore).await
            };
            match labelled.and(finalizer) {
                Ok(()) => TaskDone::Done,
                Err(error) => {
                    tracing::warn!(object = %key, %error, "adopting the target failed; retrying");
                    TaskDone::AdoptFailed(key)
                }
            }
        });
    }

    /// The ScaledObjects of `namespace`.
    fn objects_api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.preparer.client.clone(),
            namespace,
            &scaled_object_resource(),
        )
    }

    /// An object being deleted: its loop stops; with the restore finalizer, the target gets
    /// its original count back (if this object owned it) and the finalizer goes.
    fn deleting(&mut self, key: &ObjectKey, raw: &DynamicObject) {
        let stopped = self.supervisor.remove_and_wait(key);
        self.latest.remove(key);
        let decoded = decode(raw).ok();
        if let Some(object) = &decoded {
            // It keeps its claim until it is gone: the next owner waits for the restore.
            let touched = self.conflicts.claim(claim_of(key, object));
            self.recheck(touched, Some(key));
        }
        let has_finalizer = raw
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == RESTORE_FINALIZER));
        if !has_finalizer || !self.finalizing.insert(key.clone()) {
            return;
        }
        let owner = self.conflicts.conflict(key).is_none();
        let restore = match &decoded {
            Some(object) => {
                let target = &object.spec.scale_target_ref;
                Restore {
                    api_version: target.api_version().to_owned(),
                    kind: target.kind().to_owned(),
                    name: target.name.clone(),
                    replicas: object
                        .status
                        .as_ref()
                        .and_then(|status| status.original_replica_count)
                        .filter(|_| owner && object.spec.restores_original_replicas()),
                }
            }
            None => Restore {
                api_version: String::new(),
                kind: String::new(),
                name: String::new(),
                replicas: None,
            },
        };
        let client = self.preparer.client.clone();
        let targets = self.preparer.targets.clone();
        let objects = self.objects_api(&key.namespace);
        let wait = self.settings.retry_interval;
        let key = key.clone();
        self.tasks.spawn(async move {
            stopped.await;
            adopt::finalize(client, targets, objects, key.clone(), restore, wait).await;
            TaskDone::Finalized(key)
        });
    }

    /// Follows up a finished background write.
    fn task_done(&mut self, done: Result<TaskDone, tokio::task::JoinError>) {
        match done {
            Ok(TaskDone::AdoptFailed(key)) => {
                self.adopted.remove(&key);
                if self.objects.contains_key(&key) {
                    self.retry.insert(key);
                }
            }
            Ok(TaskDone::Finalized(key)) => {
                self.finalizing.remove(&key);
                // Normally the Delete event follows; if the finalizer is still there, the
                // retry tick handles the object again.
                if self.objects.contains_key(&key) {
                    self.retry.insert(key);
                }
            }
            Ok(TaskDone::Done) => {}
            Err(error) => tracing::warn!(%error, "a background write panicked"),
        }
    }

    /// Whether `raw` is what was last applied for `key` (same generation and annotations),
    /// judged from its metadata alone.
    fn is_echo(&self, key: &ObjectKey, raw: &DynamicObject) -> bool {
        self.applied.get(key).is_some_and(|applied| {
            applied.generation == raw.metadata.generation
                && raw.metadata.annotations.as_ref().map_or_else(
                    || applied.annotations.is_empty(),
                    |annotations| *annotations == applied.annotations,
                )
        })
    }
}

impl Preparer {
    /// Resolves the object's target kind and triggers and checks trigger metadata against
    /// each scaler's schema.
    async fn prepare(&self, key: &ObjectKey, object: &ScaledObject) -> Result<Ready, Rejection> {
        // Closed only when the controller is dropped, and then nobody waits for this.
        let _permit = self.permits.acquire().await;
        let target_ref = &object.spec.scale_target_ref;
        let resource = self
            .targets
            .resource(target_ref.api_version(), target_ref.kind())
            .await
            .map_err(|error| {
                Rejection::Failed("TargetNotScalable", format!("spec.scaleTargetRef: {error}"))
            })?;
        let lookup = KubeLookup::new(self.client.clone(), self.targets.clone());
        let triggers = resolve_registered_triggers(
            &lookup,
            &self.registry,
            key,
            &object.spec,
            &self.controller_namespace,
        )
        .await
        .map_err(Rejection::Problems)?;
        let problems = check_schemas(&self.info, &triggers).await;
        if !problems.is_empty() {
            return Err(Rejection::Problems(problems));
        }
        Ok(Ready { resource, triggers })
    }
}
