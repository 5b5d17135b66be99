//! What ebb writes besides `/scale` when it adopts a target, and undoes when a ScaledObject
//! goes:
//! - the [`TARGET_LABEL`] label on the target (one merge patch per adoption, not per poll);
//! - the [`RESTORE_FINALIZER`] on ScaledObjects with `advanced.restoreToOriginalReplicaCount`,
//!   and on their deletion the target's count set back to `status.originalReplicaCount`.
//!
//! The original count lives in the status (the engine records it at its first decision, from
//! the count it read before any write): one writer, kept across controller restarts, shown by
//! `kubectl get -o yaml`, and gone with the object. A finalizer never blocks a deletion for
//! long: a target that is gone (404) counts as restored, and after [`RESTORE_ATTEMPTS`] failed
//! writes (a namespace being torn down, RBAC) the finalizer is removed anyway.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::target::{FIELD_MANAGER, TargetResolver};
use crate::runtime::ObjectKey;

/// Label put on every target ebb scales; its value is the ScaledObject's name.
pub const TARGET_LABEL: &str = "ebb.dev/scaledobject-name";
/// Finalizer of ScaledObjects that restore their target's replica count on deletion.
pub const RESTORE_FINALIZER: &str = "ebb.dev/restore-replicas";
/// Writes of the original count tried before the finalizer is removed regardless.
pub const RESTORE_ATTEMPTS: u32 = 3;
/// Tries of a finalizer write that lost an update race (409).
const FINALIZER_TRIES: u32 = 5;

/// Why an adoption write failed (logged; the next reconcile tries again).
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The API server refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// What was being written.
        what: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Every try lost an update race (409): the object kept changing.
    #[error("{0}: the object kept changing")]
    Contended(String),
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Labels the target `name` with the ScaledObject's name.
pub async fn label_target(
    client: kube::Client,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    object: &str,
) -> Result<(), AdoptError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, resource);
    let patch = Patch::Merge(json!({"metadata": {"labels": {TARGET_LABEL: object}}}));
    api.patch(name, &params(), &patch)
        .await
        .map(|_| ())
        .map_err(|source| AdoptError::Api {
            what: format!("labelling {} {namespace}/{name}", resource.kind),
            source,
        })
}

/// Removes the label from the target, only if it still names `object` (the resourceVersion
/// read is the precondition, so a new owner's label is never removed). Best effort.
pub async fn unlabel_target(
    client: kube::Client,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
    object: &str,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(client, namespace, resource);
    let Ok(current) = api.get(name).await else {
        return;
    };
    let labelled = current
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(TARGET_LABEL))
        .is_some_and(|value| value == object);
    if !labelled {
        return;
    }
    let patch = Patch::Merge(json!({"metadata": {
        "labels": {TARGET_LABEL: null},
        "resourceVersion": current.metadata.resource_version,
    }}));
    if let Err(error) = api.patch(name, &params(), &patch).await {
        tracing::debug!(%error, target = %name, "target label not removed");
    }
}

/// Adds (`present`) or removes the restore finalizer on a ScaledObject, with the
/// resourceVersion as a precondition so no other finalizer is lost; a 404 is success.
pub async fn set_finalizer(
    api: &Api<DynamicObject>,
    key: &ObjectKey,
    present: bool,
) -> Result<(), AdoptError> {
    let failed = |source| AdoptError::Api {
        what: format!("updating the finalizers of ScaledObject {key}"),
        source,
    };
    for _ in 0..FINALIZER_TRIES {
        let object = match api.get(&key.name).await {
            Ok(object) => object,
            Err(error) if is_status(&error, 404) => return Ok(()),
            Err(error) => return Err(failed(error)),
        };
        let mut finalizers = object.metadata.finalizers.clone().unwrap_or_default();
        let has = finalizers.iter().any(|f| f == RESTORE_FINALIZER);
        if has == present {
            return Ok(());
        }
        if present {
            finalizers.push(RESTORE_FINALIZER.to_owned());
        } else {
            finalizers.retain(|f| f != RESTORE_FINALIZER);
        }
        let patch = Patch::Merge(json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.metadata.resource_version,
        }}));
        match api.patch(&key.name, &params(), &patch).await {
            Ok(_) => return Ok(()),
            Err(error) if is_status(&error, 404) => return Ok(()),
            Err(error) if is_status(&error, 409) => continue,
            Err(error) => return Err(failed(error)),
        }
    }
    Err(AdoptError::Contended(format!(
        "the finalizers of ScaledObject {key}"
    )))
}

/// What a deleted ScaledObject with the finalizer restores.
#[derive(Debug, Clone)]
pub struct Restore {
    /// apiVersion of the target.
    pub api_version: String,
    /// Kind of the target.
    pub kind: String,
    /// Name of the target (in the object's namespace).
    pub name: String,
    /// The count to write back; `None` when the object never scaled it (a conflict, or no
    /// decision yet): nothing is written.
    pub replicas: Option<u32>,
}

/// Restores the target (best effort, see the module docs), then removes the finalizer.
/// `wait` is how long between failed restore attempts.
pub async fn finalize(
    client: kube::Client,
    targets: TargetResolver,
    objects: Api<DynamicObject>,
    key: ObjectKey,
    restore: Restore,
    wait: Duration,
) {
    if let Some(replicas) = restore.replicas {
        for attempt in 1..=RESTORE_ATTEMPTS {
            match write_back(&client, &targets, &key, &restore, replicas).await {
                Ok(()) => {
                    tracing::info!(object = %key, replicas, target = %restore.name, "restored the original replica count");
                    break;
                }
                Err(error) if attempt == RESTORE_ATTEMPTS => {
                    tracing::warn!(object = %key, %error, "could not restore the original replica count; removing the finalizer anyway");
                }
                Err(error) => {
                    tracing::warn!(object = %key, %error, attempt, "restoring the original replica count failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    if let Err(error) = set_finalizer(&objects, &key, false).await {
        tracing::warn!(object = %key, %error, "could not remove the finalizer; retrying on the next event");
    }
}

/// One restore write; a target that is gone, or a kind no longer served, is done.
async fn write_back(
    client: &kube::Client,
    targets: &TargetResolver,
    key: &ObjectKey,
    restore: &Restore,
    replicas: u32,
) -> Result<(), String> {
    let resource = match targets.resource(&restore.api_version, &restore.kind).await {
        Ok(resource) => resource,
        Err(super::target::TargetKindError::Unknown { .. }) => return Ok(()),
        Err(error) => return Err(error.to_string()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &key.namespace, &resource);
    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    match api.patch_scale(&restore.name, &params(), &patch).await {
        Ok(_) => Ok(()),
        Err(error) if is_status(&error, 404) => Ok(()),
        Err(error) => Err(error.to_string()),
    }
}
