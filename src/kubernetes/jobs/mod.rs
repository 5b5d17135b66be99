//! The ScaledJob half of the controller: watch ScaledJobs, prepare their triggers through the
//! one preparation path, and run one job loop each (the runtime's [`JobSupervisor`]) whose
//! target is [`KubeJobs`]: batch/v1 Jobs made from `jobTargetRef`, counted from one watch of
//! the Jobs ebb owns (label [`SCALED_JOB_LABEL`]), never by listing per poll.
//!
//! Job loops start only after that watch has listed every Job once, so a restarted
//! controller counts the Jobs its predecessor created and starts no duplicates.

mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

pub use target::{
    JobState, JobsOf, KubeJobs, SCALED_JOB_LABEL, TEMPLATE_HASH_LABEL, job_state, template_hash,
};

use super::controller::ControllerSettings;
use super::lookup::KubeLookup;
use super::resolve::resolve_job_triggers;
use super::target::TargetResolver;
use crate::runtime::{
    EventKind, JobSink, JobSupervisor, ManagedJob, ObjectEvent, ObjectKey, ScalerPool,
};
use crate::spec::{Condition, ConditionStatus, ConditionType, ScaledJob, ScaledJobStatus};

/// `metadata.generation` and annotations last acted on: status writes coming back on the
/// watch change neither.
type Applied = (
    Option<i64>,
    Option<std::collections::BTreeMap<String, String>>,
);

/// Writes ScaledJob status (a merge patch of `/status`) and logs events.
struct KubeJobSink {
    client: kube::Client,
}

impl KubeJobSink {
    async fn patch(&self, key: &ObjectKey, status: &ScaledJobStatus) {
        let api: Api<ScaledJob> = Api::namespaced(self.client.clone(), &key.namespace);
        let patch = json!({ "status": status });
        if let Err(error) = api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(object = %key, %error, "writing ScaledJob status failed");
        }
    }
}

impl JobSink for KubeJobSink {
    fn publish_job_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a ScaledJobStatus,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.patch(key, status))
    }

    fn record_job_event<'a>(
        &'a self,
        key: &'a ObjectKey,
        event: &'a ObjectEvent,
    ) -> BoxFuture<'a, ()> {
        match event.kind {
            EventKind::Normal => {
                tracing::info!(scaled_job = %key, reason = event.reason, "{}", event.message);
            }
            EventKind::Warning => {
                tracing::warn!(scaled_job = %key, reason = event.reason, "{}", event.message);
            }
        }
        Box::pin(std::future::ready(()))
    }
}

/// Runs the ScaledJob controller until `stop` turns true, then stops every job loop.
pub async fn lead_jobs(
    client: kube::Client,
    pool: ScalerPool,
    settings: ControllerSettings,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (store, writer) = reflector::store::<Job>();
    let jobs_api: Api<Job> = match &settings.watch_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let job_watch = watcher(
        jobs_api,
        watcher::Config::default().labels(SCALED_JOB_LABEL),
    )
    .default_backoff()
    .reflect(writer)
    .for_each(|event| async move {
        if let Err(error) = event {
            tracing::warn!(%error, "Job watch failed; retrying");
        }
    });
    let job_watch = tokio::spawn(job_watch);
    // Counting before the first full list would create duplicates after a restart.
    tokio::select! {
        ready = store.wait_until_ready() => if ready.is_err() { return; },
        () = stopped(&mut stop) => { job_watch.abort(); return; }
    }
    let sink = Arc::new(KubeJobSink {
        client: client.clone(),
    });
    let supervisor = JobSupervisor::new(pool, sink.clone());
    let lookup = KubeLookup::new(client.clone(), TargetResolver::new(client.clone()));
    let api: Api<ScaledJob> = match &settings.watch_namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut applied: HashMap<ObjectKey, Applied> = HashMap::new();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::InitApply(job) | watcher::Event::Apply(job))) => {
                    let key = ObjectKey::new(
                        job.metadata.namespace.clone().unwrap_or_default(),
                        job.metadata.name.clone().unwrap_or_default(),
                    );
                    // Our own status writes come back on the watch: only act on spec or
                    // annotation changes.
                    let version = (job.metadata.generation, job.metadata.annotations.clone());
                    if applied.get(&key) == Some(&version) {
                        continue;
                    }
                    applied.insert(key.clone(), version);
                    reconcile(&supervisor, &sink, &lookup, &client, &store, &settings, key, job).await;
                }
                Some(Ok(watcher::Event::Delete(job))) => {
                    let key = ObjectKey::new(
                        job.metadata.namespace.clone().unwrap_or_default(),
                        job.metadata.name.clone().unwrap_or_default(),
                    );
                    applied.remove(&key);
                    supervisor.remove(&key);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => tracing::warn!(%error, "ScaledJob watch failed; retrying"),
                None => break,
            },
            () = stopped(&mut stop) => break,
        }
    }
    supervisor.shutdown().await;
    job_watch.abort();
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

#[allow(clippy::too_many_arguments)]
async fn reconcile(
    supervisor: &JobSupervisor,
    sink: &KubeJobSink,
    lookup: &KubeLookup,
    client: &kube::Client,
    store: &reflector::Store<Job>,
    settings: &ControllerSettings,
    key: ObjectKey,
    job: ScaledJob,
) {
    let mut problems: Vec<String> = job.validate().iter().map(ToString::to_string).collect();
    let triggers = if problems.is_empty() {
        let registry = &settings.registry;
        match resolve_job_triggers(
            lookup,
            registry,
            &key,
            &job.spec,
            &settings.controller_namespace,
        )
        .await
        {
            Ok(triggers) => triggers,
            Err(list) => {
                problems.extend(list.iter().map(ToString::to_string));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if !problems.is_empty() {
        supervisor.remove(&key);
        let message = problems.join("; ");
        tracing::warn!(scaled_job = %key, %message, "ScaledJob cannot run");
        let mut status = job.status.clone().unwrap_or_default();
        status.set_condition(Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            "InvalidScaledJob",
            message,
            SystemTime::now(),
        ));
        sink.patch(&key, &status).await;
        return;
    }
    let of = JobsOf {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        labels: job.metadata.labels.clone().unwrap_or_default(),
        template: job.spec.job_target_ref.clone(),
        propagation: job.spec.propagation_policy(),
    };
    let paused = job.pause_state().unwrap_or_default().is_paused();
    supervisor.apply(ManagedJob {
        key,
        generation: job.metadata.generation.unwrap_or(0),
        target: Arc::new(KubeJobs::new(client.clone(), store.clone(), of)),
        spec: Arc::new(job.spec),
        paused,
        triggers,
        last_status: job.status,
    });
}
