//! Scale targets in the cluster: any apiVersion/kind with a `/scale` subresource, read and
//! written through that subresource with the dynamic API, as the HPA does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::json;

use crate::runtime::{ScaleTarget, TargetError};

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
}

impl TargetResolver {
    /// A resolver using `client`.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            cache: Arc::default(),
            discovering: Arc::default(),
        }
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

    /// A handle on one target object.
    pub fn target(&self, resource: &ApiResource, namespace: &str, name: &str) -> KubeScaleTarget {
        KubeScaleTarget {
            api: Api::namespaced_with(self.client.clone(), namespace, resource),
            name: name.to_owned(),
            description: format!("{} {namespace}/{name}", resource.kind),
            known: Mutex::new(None),
        }
    }
}

/// How long a replica count read or written is trusted before the next GET. ebb is the only
/// writer of the count, so reading `/scale` on every poll (10,000 GETs per second at 10,000
/// objects polled each second) buys nothing; a change made by someone else is still seen
/// within this period.
pub const REPLICAS_REFRESH: Duration = Duration::from_secs(15);

/// One workload, scaled through its `/scale` subresource.
pub struct KubeScaleTarget {
    api: Api<DynamicObject>,
    name: String,
    description: String,
    /// The count last read or written, and when.
    known: Mutex<Option<(u32, Instant)>>,
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
    fn remembered(&self) -> Option<u32> {
        let known = *self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .filter(|(_, at)| at.elapsed() < REPLICAS_REFRESH)
            .map(|(replicas, _)| replicas)
    }

    fn remember(&self, replicas: Option<u32>) {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) =
            replicas.map(|replicas| (replicas, Instant::now()));
    }
}

impl ScaleTarget for KubeScaleTarget {
    fn current_replicas(&self) -> BoxFuture<'_, Result<u32, TargetError>> {
        Box::pin(async move {
            if let Some(replicas) = self.remembered() {
                return Ok(replicas);
            }
            let scale = self.api.get_scale(&self.name).await.map_err(|e| {
                self.remember(None);
                target_error(&self.description, e)
            })?;
            let replicas = scale.spec.and_then(|spec| spec.replicas).unwrap_or(0);
            let replicas = u32::try_from(replicas).unwrap_or(0);
            self.remember(Some(replicas));
            Ok(replicas)
        })
    }

    fn set_replicas(&self, replicas: u32) -> BoxFuture<'_, Result<(), TargetError>> {
        Box::pin(async move {
            let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            let written = self.api.patch_scale(&self.name, &params, &patch).await;
            // After a failed write the count is unknown: read it again next time.
            self.remember(written.is_ok().then_some(replicas));
            written.map_err(|e| target_error(&self.description, e))?;
            Ok(())
        })
    }
}
