//! The cluster's lookups for the conflict rule ([`crate::runtime::conflict`]): a ScaledObject's
//! claim on its target, and the HorizontalPodAutoscalers (autoscaling/v2) that scale a target,
//! from a watch. The rule itself is the runtime's.

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::runtime::ObjectKey;
use crate::runtime::conflict::{Claim, TargetKey, takes_over_hpa};
use crate::spec::ScaledObject;

/// The claim of `object` (stored as `key`) on its target. Creation order is the
/// creationTimestamp in seconds; an object without one (never from a real server) ranks last.
pub fn claim_of(key: &ObjectKey, object: &ScaledObject) -> Claim {
    let target = &object.spec.scale_target_ref;
    let annotations = object.metadata.annotations.as_ref();
    Claim {
        object: key.clone(),
        target: TargetKey::new(
            &key.namespace,
            target.api_version(),
            target.kind(),
            &target.name,
        ),
        created: object
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(i64::MAX, |time| time.0.as_second()),
        takes_over_hpa: takes_over_hpa(|name| {
            annotations.and_then(|a| a.get(name)).map(String::as_str)
        }),
    }
}

/// The target an HPA scales.
pub fn hpa_target(hpa: &HorizontalPodAutoscaler) -> Option<TargetKey> {
    let namespace = hpa.metadata.namespace.as_deref()?;
    let target = &hpa.spec.as_ref()?.scale_target_ref;
    Some(TargetKey::new(
        namespace,
        target.api_version.as_deref().unwrap_or(""),
        &target.kind,
        &target.name,
    ))
}

/// `namespace` and `name` of an HPA.
pub fn hpa_id(hpa: &HorizontalPodAutoscaler) -> (String, String) {
    (
        hpa.metadata.namespace.clone().unwrap_or_default(),
        hpa.metadata.name.clone().unwrap_or_default(),
    )
}

/// The HPA watch: in `namespace`, or everywhere.
pub fn watch_hpas(
    client: kube::Client,
    namespace: Option<&str>,
) -> BoxStream<'static, Result<watcher::Event<HorizontalPodAutoscaler>, watcher::Error>> {
    let api: Api<HorizontalPodAutoscaler> = match namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed()
}

/// Whether a watch error means HPAs cannot be listed at all (the API is not served, or RBAC
/// forbids it): then conflicts with HPAs are not checked, rather than holding every object.
pub fn hpas_unavailable(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status)) => {
            status.code == 403 || status.code == 404
        }
        _ => false,
    }
}
