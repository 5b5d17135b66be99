//! `ebb run`'s lookups for the conflict rule ([`crate::runtime::conflict`]): every
//! ScaledObject claims its ProcessGroup (a Deployment stands for the ProcessGroup of the same
//! name), creation order is the order of the documents, and `kind: HorizontalPodAutoscaler`
//! documents in the files name the targets an HPA would scale. ebb run does not run HPAs;
//! they are read only so that a manifest set which would fight in the cluster is told so
//! locally too.

use serde::Deserialize;

use super::manifest::{LOCAL_GROUP, ProcessGroupConfig};
use super::plan::PlannedObject;
use crate::runtime::conflict::{Claim, ConflictIndex, TargetKey};
use crate::spec::load::Document;

/// The apiVersions of an HPA document.
const HPA_API_VERSIONS: [&str; 2] = ["autoscaling/v2", "autoscaling/v1"];

/// A `kind: HorizontalPodAutoscaler` document, the fields read.
#[derive(Debug, Deserialize)]
struct HpaDocument {
    spec: HpaSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HpaSpec {
    scale_target_ref: HpaTargetRef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HpaTargetRef {
    #[serde(default)]
    api_version: Option<String>,
    kind: String,
    name: String,
}

/// An HPA in the files: its name and what it scales.
#[derive(Debug, Clone)]
pub(super) struct LocalHpa {
    name: String,
    api_version: String,
    kind: String,
    target: String,
}

/// Reads an HPA document; the error is one problem line.
pub(super) fn parse_hpa(document: &Document) -> Result<LocalHpa, String> {
    let prefix = format!(
        "{}: HorizontalPodAutoscaler {:?}",
        document.path.display(),
        document.name
    );
    if !HPA_API_VERSIONS.contains(&document.api_version.as_str()) {
        return Err(format!(
            "{prefix}: apiVersion: expected {}, got {:?}",
            HPA_API_VERSIONS[0], document.api_version
        ));
    }
    let parsed: HpaDocument = document.parse().map_err(|error| error.to_string())?;
    let target = parsed.spec.scale_target_ref;
    Ok(LocalHpa {
        name: document.name.clone(),
        api_version: target.api_version.unwrap_or_default(),
        kind: target.kind,
        target: target.name,
    })
}

/// The one key of a ProcessGroup target.
fn group_key(name: &str) -> TargetKey {
    TargetKey::new("", &format!("{LOCAL_GROUP}/v1alpha1"), "ProcessGroup", name)
}

/// The ProcessGroup an HPA's target stands for, as for a ScaledObject's scaleTargetRef.
fn hpa_group(hpa: &LocalHpa, groups: &[ProcessGroupConfig]) -> Option<TargetKey> {
    let group = hpa.api_version.split('/').next().unwrap_or_default();
    let local = hpa.kind == "ProcessGroup" && group == LOCAL_GROUP;
    let deployment = hpa.kind == "Deployment" && group == "apps";
    (local || deployment)
        .then(|| groups.iter().find(|g| g.name == hpa.target))
        .flatten()
        .map(|g| group_key(&g.name))
}

/// Sets each object's conflict. `order[i]` is the position of `objects[i]`'s document and
/// `takes_over[i]` whether it carries a take-over-HPA annotation.
pub(super) fn assign(
    objects: &mut [PlannedObject],
    order: &[usize],
    takes_over: &[bool],
    hpas: &[LocalHpa],
    groups: &[ProcessGroupConfig],
) {
    let mut index = ConflictIndex::new();
    for (position, object) in objects.iter().enumerate() {
        index.claim(Claim {
            object: object.key.clone(),
            target: group_key(&object.group),
            created: order
                .get(position)
                .and_then(|p| i64::try_from(*p).ok())
                .unwrap_or(i64::MAX),
            takes_over_hpa: takes_over.get(position).copied().unwrap_or(false),
        });
    }
    for hpa in hpas {
        index.set_hpa("", &hpa.name, hpa_group(hpa, groups));
    }
    for object in objects {
        object.conflict = index.conflict(&object.key);
    }
}
