//! [`KubeJobs`]: one ScaledJob's batch/v1 Jobs as a [`JobTarget`]. Counts come from the
//! controller's one watch of ebb's Jobs (a reflector store), plus Jobs this handle created
//! that the watch has not shown yet, so a poll right after a create never creates them twice.
//! Jobs carry the ScaledJob as owner and two labels: the ScaledJob's name and a hash of the
//! Job template they were made from (for `rollout.strategy: default`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::Store;

use crate::runtime::{JobCounts, JobTarget, TargetError};
use crate::spec::PropagationPolicy;

/// Label naming the ScaledJob a Job belongs to.
pub const SCALED_JOB_LABEL: &str = "ebb.dev/scaled-job";
/// Label holding the hash of the Job template a Job was made from.
pub const TEMPLATE_HASH_LABEL: &str = "ebb.dev/template-hash";

/// FNV-1a over the template's JSON: stable across ebb versions and restarts (unlike std's
/// hasher), so a restarted controller recognises its own Jobs' template.
pub fn template_hash(template: &JobSpec) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Where a Job stands, from its status conditions (there is no other source of truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Created, no ready pod yet.
    Pending,
    /// A pod is ready.
    Running,
    /// Condition `Complete=True`.
    Succeeded,
    /// Condition `Failed=True`.
    Failed,
}

/// The state of `job`.
pub fn job_state(job: &Job) -> JobState {
    let status = job.status.as_ref();
    let condition = |kind: &str| {
        status
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|condition| condition.type_ == kind && condition.status == "True")
            })
    };
    if condition("Complete") || condition("SuccessCriteriaMet") {
        JobState::Succeeded
    } else if condition("Failed") || condition("FailureTarget") {
        JobState::Failed
    } else if status.and_then(|status| status.ready).unwrap_or(0) > 0
        || status.and_then(|status| status.active).unwrap_or(0) > 0
            && status.and_then(|status| status.ready).is_none()
    {
        JobState::Running
    } else {
        JobState::Pending
    }
}

/// What a [`KubeJobs`] is made from: the ScaledJob's identity and its current template.
#[derive(Clone, Debug)]
pub struct JobsOf {
    /// Namespace of the ScaledJob and its Jobs.
    pub namespace: String,
    /// The ScaledJob's name.
    pub name: String,
    /// The ScaledJob's uid (owner reference).
    pub uid: String,
    /// The ScaledJob's own labels, copied onto its Jobs.
    pub labels: BTreeMap<String, String>,
    /// `jobTargetRef`.
    pub template: JobSpec,
    /// `rollout.propagationPolicy`.
    pub propagation: PropagationPolicy,
}

/// One ScaledJob's Jobs. Cheap to clone; clones share the not-yet-seen set.
#[derive(Clone)]
pub struct KubeJobs {
    client: kube::Client,
    store: Store<Job>,
    of: Arc<JobsOf>,
    hash: String,
    /// Names created by this controller that the watch has not shown yet.
    unseen: Arc<Mutex<HashSet<String>>>,
}

fn failed(what: &str, error: kube::Error) -> TargetError {
    TargetError::Failed(format!("{what}: {error}"))
}

impl KubeJobs {
    /// The Jobs of `of`, counted from `store` (the controller's watch of ebb's Jobs).
    pub fn new(client: kube::Client, store: Store<Job>, of: JobsOf) -> Self {
        let hash = template_hash(&of.template);
        Self {
            client,
            store,
            of: Arc::new(of),
            hash,
            unseen: Arc::default(),
        }
    }

    fn api(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.of.namespace)
    }

    /// This ScaledJob's Jobs in the watch cache.
    fn jobs(&self) -> Vec<Arc<Job>> {
        self.store
            .state()
            .into_iter()
            .filter(|job| {
                job.metadata.namespace.as_deref() == Some(self.of.namespace.as_str())
                    && job
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|labels| labels.get(SCALED_JOB_LABEL))
                        == Some(&self.of.name)
            })
            .collect()
    }

    fn new_job(&self) -> Job {
        let mut labels = self.of.labels.clone();
        labels.insert(SCALED_JOB_LABEL.to_owned(), self.of.name.clone());
        labels.insert(TEMPLATE_HASH_LABEL.to_owned(), self.hash.clone());
        Job {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", self.of.name)),
                namespace: Some(self.of.namespace.clone()),
                labels: Some(labels),
                owner_references: Some(vec![OwnerReference {
                    api_version: "ebb.dev/v1alpha1".to_owned(),
                    kind: "ScaledJob".to_owned(),
                    name: self.of.name.clone(),
                    uid: self.of.uid.clone(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(self.of.template.clone()),
            status: None,
        }
    }

    async fn delete(&self, jobs: &[Arc<Job>]) -> Result<u32, TargetError> {
        let params = match self.of.propagation {
            PropagationPolicy::Background => DeleteParams::background(),
            PropagationPolicy::Foreground => DeleteParams::foreground(),
        };
        let api = self.api();
        let mut deleted = 0;
        for job in jobs {
            let Some(name) = job.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(name, &params).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(failed(&format!("deleting Job {name}"), error)),
            }
        }
        Ok(deleted)
    }
}

impl JobTarget for KubeJobs {
    fn counts(&self) -> BoxFuture<'_, Result<JobCounts, TargetError>> {
        let jobs = self.jobs();
        let mut unseen = self.unseen.lock().unwrap_or_else(PoisonError::into_inner);
        for job in &jobs {
            if let Some(name) = &job.metadata.name {
                unseen.remove(name);
            }
        }
        let mut counts = JobCounts::default();
        for job in &jobs {
            match job_state(job) {
                JobState::Pending => {
                    counts.running += 1;
                    counts.pending += 1;
                }
                JobState::Running => counts.running += 1,
                JobState::Succeeded => counts.succeeded += 1,
                JobState::Failed => counts.failed += 1,
            }
        }
        // Created but not on the watch yet: pending.
        let unseen = u32::try_from(unseen.len()).unwrap_or(u32::MAX);
        counts.running += unseen;
        counts.pending += unseen;
        Box::pin(std::future::ready(Ok(counts)))
    }

    fn create(&self, count: u32) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(async move {
            let api = self.api();
            let body = self.new_job();
            let mut created = 0;
            for _ in 0..count {
                let job = api
                    .create(&PostParams::default(), &body)
                    .await
                    .map_err(|error| failed("creating a Job", error))?;
                if let Some(name) = job.metadata.name {
                    self.unseen
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(name);
                }
                created += 1;
            }
            Ok(created)
        })
    }

    fn clean_history(
        &self,
        successful_limit: u32,
        failed_limit: u32,
    ) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(async move {
            let jobs = self.jobs();
            let mut excess = Vec::new();
            for (state, limit) in [
                (JobState::Succeeded, successful_limit),
                (JobState::Failed, failed_limit),
            ] {
                let mut finished: Vec<Arc<Job>> = jobs
                    .iter()
                    .filter(|job| job_state(job) == state)
                    .cloned()
                    .collect();
                // Oldest first: by completion (or creation) time, then name.
                finished.sort_by_key(|job| {
                    let finished_at = job
                        .status
                        .as_ref()
                        .and_then(|status| status.completion_time.clone())
                        .or_else(|| job.metadata.creation_timestamp.clone())
                        .map(|time| time.0);
                    (finished_at, job.metadata.name.clone())
                });
                let over = finished.len().saturating_sub(limit as usize);
                excess.extend(finished.into_iter().take(over));
            }
            self.delete(&excess).await
        })
    }

    fn retire_outdated(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(async move {
            let outdated: Vec<Arc<Job>> = self
                .jobs()
                .into_iter()
                .filter(|job| matches!(job_state(job), JobState::Pending | JobState::Running))
                .filter(|job| {
                    job.metadata
                        .labels
                        .as_ref()
                        .and_then(|labels| labels.get(TEMPLATE_HASH_LABEL))
                        != Some(&self.hash)
                })
                .collect();
            self.delete(&outdated).await
        })
    }
}
