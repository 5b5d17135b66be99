//! Scale targets in the cluster: any apiVersion/kind with a `/scale` subresource. The count is
//! read from the kind's shared watch ([`super::target_watch`]) and written through `/scale`
//! with the resourceVersion it was read at, so a change by another writer is detected (409)
//! and read again rather than overwritten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::json;

use super::target_watch::{DirectReads, KindWatch, Lookup, TargetWatches};
use crate::runtime::{ObjectKey, ScaleTarget, TargetError};

/// The field manager ebb writes with.
pub const FIELD_MANAGER: &str = "ebb";

/// Why a target kind cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetKindError {
    /// apiVersion is not `group/version` or `version`.
    #[error("apiVersion {0:?} is not valid")]
    BadApiVersion(String),
    /// Discovery does not know the kind, or the request failed.
    #[error("{kind} in {api_version} is not served by the cluster: {message}")]
    Unknown {
        /// apiVersion asked for.
        api_version: String,
        /// Kind asked for.
        kind: String,
        /// Discovery's answer.
        message: String,
    },
    /// The kind has no `/scale` subresource or is cluster-scoped.
    #[error("{kind} in {api_version} has no namespaced /scale subresource")]
    NotScalable {
        /// apiVersion asked for.
        api_version: String,
        /// Kind asked for.
        kind: String,
    },
}

/// Finds the resource of a kind through discovery, once per kind.
#[derive(Clone)]
pub struct TargetResolver {
    client: kube::Client,
    cache: Arc<Mutex<HashMap<(String, String), ApiResource>>>,
    /// Held while discovering, so objects prepared concurrently do not all ask the API
    /// server about the same kind at once: one asks, the others find the answer cached.
    discovering: Arc<tokio::sync::Mutex<()>>,
    /// One watch per target kind, started by the first target of that kind.
    watches: TargetWatches,
}

impl TargetResolver {
    /// A resolver using `client`, whose target watches cover every namespace.
    pub fn new(client: kube::Client) -> Self {
        Self::in_namespace(client, None)
    }

    /// A resolver whose target watches cover `namespace` only (all when `None`).
    pub fn in_namespace(client: kube::Client, namespace: Option<String>) -> Self {
        Self {
            watches: TargetWatches::new(client.clone(), namespace),
            client,
            cache: Arc::default(),
            discovering: Arc::default(),
        }
    }

    /// The target watches started so far.
    pub fn watches(&self) -> &TargetWatches {
        &self.watches
    }

    /// The resource of `kind` in `api_version`, checked to have a namespaced `/scale`.
    pub async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, TargetKindError> {
        let cache_key = (api_version.to_owned(), kind.to_owned());
        let cached = || {
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&cache_key)
                .cloned()
        };
        if let Some(found) = cached() {
            return Ok(found);
        }
        let _discovering = self.discovering.lock().await;
        if let Some(found) = cached() {
            return Ok(found);
        }
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        if version.is_empty() || api_version.matches('/').count() > 1 {
            return Err(TargetKindError::BadApiVersion(api_version.to_owned()));
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities): (ApiResource, ApiCapabilities) =
            kube::discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|error| TargetKindError::Unknown {
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                    message: error.to_string(),
                })?;
        let has_scale = capabilities
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural.ends_with("scale"));
        if !has_scale || capabilities.scope != Scope::Namespaced {
            return Err(TargetKindError::NotScalable {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            });
        }
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, resource.clone());
        Ok(resource)
    }

    /// A handle on one target object, read from its kind's watch.
    pub fn target(&self, resource: &ApiResource, namespace: &str, name: &str) -> KubeScaleTarget {
        KubeScaleTarget {
            api: Api::namespaced_with(self.client.clone(), namespace, resource),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            description: format!("{} {namespace}/{name}", resource.kind),
            watch: self.watches.watch(resource),
            owner: None,
        }
    }
}

/// One workload, scaled through its `/scale` subresource.
pub struct KubeScaleTarget {
    api: Api<DynamicObject>,
    namespace: String,
    name: String,
    description: String,
    watch: Arc<KindWatch>,
    /// The ScaledObject, marked in the set while its count is read from `/scale` each poll.
    owner: Option<(ObjectKey, DirectReads)>,
}

fn target_error(description: &str, error: kube::Error) -> TargetError {
    match error {
        kube::Error::Api(status) if status.code == 404 => {
            TargetError::NotFound(description.to_owned())
        }
        kube::Error::Api(status) if status.code == 405 => {
            TargetError::NotScalable(format!("{description}: {}", status.message))
        }
        other => TargetError::Failed(format!("{description}: {other}")),
    }
}

impl KubeScaleTarget {
    /// Reports through `direct` whether `owner`'s count is read from `/scale` on every poll.
    pub fn owned_by(mut self, owner: ObjectKey, direct: DirectReads) -> Self {
        self.owner = Some((owner, direct));
        self
    }

    fn mark_direct(&self, direct: bool) {
        if let Some((owner, set)) = &self.owner {
            set.set(owner, direct);
        }
    }

    /// `GET …/scale`, remembered in the watch so the write that follows carries its version.
    async fn read_scale(&self) -> Result<u32, TargetError> {
        let scale = self
            .api
            .get_scale(&self.name)
            .await
            .map_err(|e| target_error(&self.description, e))?;
        let replicas = scale.spec.and_then(|spec| spec.replicas).unwrap_or(0);
        let replicas = u32::try_from(replicas).unwrap_or(0);
        self.watch.record(
            &self.namespace,
            &self.name,
            replicas,
            scale.metadata.resource_version.as_deref(),
        );
        Ok(replicas)
    }
}

impl ScaleTarget for KubeScaleTarget {
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(async move {
            match self.watch.lookup(&self.namespace, &self.name) {
                Lookup::Known(entry) => {
                    self.mark_direct(false);
                    Ok(entry.replicas)
                }
                // Not listed yet, or created after the list and its event not here yet: one
                // read answers (404 if it really is missing).
                Lookup::Pending | Lookup::Missing => self.read_scale().await,
                Lookup::Unwatchable => {
                    self.mark_direct(true);
                    self.read_scale().await
                }
            }
        })
    }

    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(async move {
            let version = match self.watch.lookup(&self.namespace, &self.name) {
                Lookup::Known(entry) if entry.version != 0 => Some(entry.version.to_string()),
                _ => None,
            };
            // With the version the count was read at, the write fails (409) if someone else
            // changed the target since, instead of silently overwriting their change.
            let patch = match &version {
                Some(version) => json!({
                    "metadata": {"resourceVersion": version},
                    "spec": {"replicas": replicas},
                }),
                None => json!({"spec": {"replicas": replicas}}),
            };
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            match self
                .api
                .patch_scale(&self.name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(scale) => {
                    let written = scale
                        .spec
                        .and_then(|spec| spec.replicas)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(replicas);
                    self.watch.record(
                        &self.namespace,
                        &self.name,
                        written,
                        scale.metadata.resource_version.as_deref(),
                    );
                    Ok(())
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let conflicts = self.watch.count_conflict();
                    let now = self.read_scale().await;
                    tracing::warn!(target = %self.description, wanted = replicas, now = ?now, conflicts, "another writer changed the target first; read it again instead of overwriting");
                    Err(TargetError::Failed(format!(
                        "{}: changed since its count was read (409 Conflict); \
                         its count was read again and the next poll decides on it",
                        self.description
                    )))
                }
                Err(error) => Err(target_error(&self.description, error)),
            }
        })
    }
}
