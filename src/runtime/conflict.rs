//! Who may scale a target when several things claim it: the one rule shared by the Kubernetes
//! controller and `ebb run`. Hosts feed a [`ConflictIndex`] with claims (ScaledObjects and
//! their targets) and HorizontalPodAutoscalers; it answers, per object, whether it may scale.
//!
//! The rule:
//! - Among the ScaledObjects on one target (same namespace, API group, kind and name) the
//!   **owner** is the one created first: the smallest `(creation order, namespace, name)`.
//!   Creation order is `metadata.creationTimestamp` (seconds) in the cluster and the order of
//!   the documents under `ebb run`; the name breaks ties, so every replica and every restart
//!   picks the same owner. Every other object on the target gets [`REASON_TARGET_CONFLICT`]
//!   naming the owner, and never writes the target.
//! - An object keeps its claim until it is gone, including while it is being deleted (a
//!   restore on deletion must not race the next owner).
//! - The owner itself gets [`REASON_HPA_CONFLICT`] when a HorizontalPodAutoscaler scales the
//!   same target, unless it carries one of [`TAKE_OVER_HPA_ANNOTATIONS`] set to `"true"`.
//!   Taking over means ebb scales anyway: the HPA is left in place (it is the user's object,
//!   maybe managed by GitOps), and the user is expected to delete it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::ObjectKey;

/// Ready=False reason of a ScaledObject whose target another ScaledObject owns.
pub const REASON_TARGET_CONFLICT: &str = "TargetConflict";
/// Ready=False reason of a ScaledObject whose target a HorizontalPodAutoscaler scales.
pub const REASON_HPA_CONFLICT: &str = "HPAConflict";
/// Annotations that let a ScaledObject scale a target an HPA also scales (value `"true"`):
/// ebb's own, and KEDA's, so KEDA manifests keep their meaning.
pub const TAKE_OVER_HPA_ANNOTATIONS: [&str; 2] = [
    "ebb.dev/take-over-hpa",
    "scaledobject.keda.sh/transfer-hpa-ownership",
];

/// Whether annotations ask to take over an HPA on the target.
pub fn takes_over_hpa<'a>(mut annotation: impl FnMut(&str) -> Option<&'a str>) -> bool {
    TAKE_OVER_HPA_ANNOTATIONS
        .iter()
        .any(|name| annotation(name).is_some_and(|value| value.trim().eq_ignore_ascii_case("true")))
}

/// One scale target: namespace, API group (not version: `apps/v1` and `apps/v1beta1` name the
/// same object), kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// Namespace ("" under `ebb run`).
    pub namespace: String,
    /// API group ("" for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
}

impl TargetKey {
    /// The target `kind`/`name` of `api_version` in `namespace`.
    pub fn new(namespace: &str, api_version: &str, kind: &str, name: &str) -> Self {
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        Self {
            namespace: namespace.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)
    }
}

/// A ScaledObject's claim on its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The object.
    pub object: ObjectKey,
    /// What it scales.
    pub target: TargetKey,
    /// Creation order: creationTimestamp in seconds, or the document's position.
    pub created: i64,
    /// Whether it may scale a target an HPA also scales ([`takes_over_hpa`]).
    pub takes_over_hpa: bool,
}

impl Claim {
    fn rank(&self) -> (i64, &ObjectKey) {
        (self.created, &self.object)
    }
}

/// Why an object may not scale its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Another ScaledObject owns the target.
    Target {
        /// The target.
        target: TargetKey,
        /// The owner.
        owner: ObjectKey,
    },
    /// HorizontalPodAutoscalers scale the target.
    Hpa {
        /// The target.
        target: TargetKey,
        /// Their names (same namespace).
        hpas: Vec<String>,
    },
}

impl Conflict {
    /// The Ready=False reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Conflict::Target { .. } => REASON_TARGET_CONFLICT,
            Conflict::Hpa { .. } => REASON_HPA_CONFLICT,
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Target { target, owner } => write!(
                f,
                "spec.scaleTargetRef: {target} is already scaled by ScaledObject {:?} (the first created owns a target); this object does not scale it",
                owner.name
            ),
            Conflict::Hpa { target, hpas } => write!(
                f,
                "spec.scaleTargetRef: {target} is also scaled by HorizontalPodAutoscaler {}; delete it, or annotate this object {}: \"true\" to scale anyway",
                hpas.iter()
                    .map(|name| format!("{name:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                TAKE_OVER_HPA_ANNOTATIONS[0]
            ),
        }
    }
}

/// Claims and HPAs by target; answers [`ConflictIndex::conflict`] per object.
#[derive(Debug, Default, Clone)]
pub struct ConflictIndex {
    claims: HashMap<ObjectKey, Claim>,
    by_target: HashMap<TargetKey, BTreeSet<ObjectKey>>,
    /// HPA (namespace, name) to its target.
    hpas: HashMap<(String, String), TargetKey>,
    hpas_by_target: HashMap<TargetKey, BTreeSet<String>>,
}

impl ConflictIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or updates) a claim; returns the targets whose claimants may have changed
    /// (the old and the new target), empty when nothing changed.
    pub fn claim(&mut self, claim: Claim) -> Vec<TargetKey> {
        if self.claims.get(&claim.object) == Some(&claim) {
            return Vec::new();
        }
        let mut touched = self.release(&claim.object).into_iter().collect::<Vec<_>>();
        self.by_target
            .entry(claim.target.clone())
            .or_default()
            .insert(claim.object.clone());
        if !touched.contains(&claim.target) {
            touched.push(claim.target.clone());
        }
        self.claims.insert(claim.object.clone(), claim);
        touched
    }

    /// Forgets an object's claim; returns the target it claimed.
    pub fn release(&mut self, object: &ObjectKey) -> Option<TargetKey> {
        let claim = self.claims.remove(object)?;
        if let Some(set) = self.by_target.get_mut(&claim.target) {
            set.remove(object);
            if set.is_empty() {
                self.by_target.remove(&claim.target);
            }
        }
        Some(claim.target)
    }

    /// Records an HPA `namespace/name` scaling `target` (`None`: the HPA is gone); returns
    /// the targets affected.
    pub fn set_hpa(
        &mut self,
        namespace: &str,
        name: &str,
        target: Option<TargetKey>,
    ) -> Vec<TargetKey> {
        let id = (namespace.to_owned(), name.to_owned());
        if self.hpas.get(&id) == target.as_ref() {
            return Vec::new();
        }
        let mut touched = Vec::new();
        if let Some(old) = self.hpas.remove(&id) {
            if let Some(set) = self.hpas_by_target.get_mut(&old) {
                set.remove(name);
                if set.is_empty() {
                    self.hpas_by_target.remove(&old);
                }
            }
            touched.push(old);
        }
        if let Some(target) = target {
            self.hpas_by_target
                .entry(target.clone())
                .or_default()
                .insert(name.to_owned());
            self.hpas.insert(id, target.clone());
            if !touched.contains(&target) {
                touched.push(target);
            }
        }
        touched
    }

    /// The objects claiming `target`.
    pub fn claimants(&self, target: &TargetKey) -> Vec<ObjectKey> {
        self.by_target
            .get(target)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The owner of `target`: the first created claimant.
    pub fn owner(&self, target: &TargetKey) -> Option<&ObjectKey> {
        self.by_target
            .get(target)?
            .iter()
            .filter_map(|key| self.claims.get(key))
            .min_by(|a, b| a.rank().cmp(&b.rank()))
            .map(|claim| &claim.object)
    }

    /// Why `object` may not scale its target, or `None` when it may (or has no claim).
    pub fn conflict(&self, object: &ObjectKey) -> Option<Conflict> {
        let claim = self.claims.get(object)?;
        let target = &claim.target;
        match self.owner(target) {
            Some(owner) if owner != object => {
                return Some(Conflict::Target {
                    target: target.clone(),
                    owner: owner.clone(),
                });
            }
            _ => {}
        }
        let hpas = self.hpas_by_target.get(target)?;
        (!hpas.is_empty() && !claim.takes_over_hpa).then(|| Conflict::Hpa {
            target: target.clone(),
            hpas: hpas.iter().cloned().collect(),
        })
    }

    /// Every object's conflict (objects without one are left out).
    pub fn conflicts(&self) -> BTreeMap<ObjectKey, Conflict> {
        self.claims
            .keys()
            .filter_map(|key| self.conflict(key).map(|c| (key.clone(), c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> TargetKey {
        TargetKey::new("default", "apps/v1", "Deployment", name)
    }

    fn claim(name: &str, on: &str, created: i64) -> Claim {
        Claim {
            object: ObjectKey::new("default", name),
            target: target(on),
            created,
            takes_over_hpa: false,
        }
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("default", name)
    }

    #[test]
    fn the_first_created_owns_the_target_whatever_the_order_seen() {
        for order in [["b", "a"], ["a", "b"]] {
            let mut index = ConflictIndex::new();
            for name in order {
                let created = if name == "b" { 10 } else { 20 };
                index.claim(claim(name, "web", created));
            }
            assert_eq!(index.conflict(&key("b")), None);
            let conflict = index.conflict(&key("a")).expect("a conflicts");
            assert_eq!(conflict.reason(), REASON_TARGET_CONFLICT);
            assert_eq!(
                conflict,
                Conflict::Target {
                    target: target("web"),
                    owner: key("b")
                }
            );
            assert!(conflict.to_string().contains("\"b\""), "{conflict}");
        }
    }

    #[test]
    fn same_second_ties_go_to_the_smaller_name() {
        let mut index = ConflictIndex::new();
        index.claim(claim("zeta", "web", 5));
        index.claim(claim("alpha", "web", 5));
        assert_eq!(index.owner(&target("web")), Some(&key("alpha")));
        assert!(index.conflict(&key("zeta")).is_some());
    }

    #[test]
    fn the_next_takes_over_when_the_owner_goes() {
        let mut index = ConflictIndex::new();
        index.claim(claim("first", "web", 1));
        index.claim(claim("second", "web", 2));
        assert!(index.conflict(&key("second")).is_some());
        assert_eq!(index.release(&key("first")), Some(target("web")));
        assert_eq!(index.conflict(&key("second")), None);
    }

    #[test]
    fn group_not_version_identifies_a_target() {
        let a = TargetKey::new("ns", "apps/v1", "Deployment", "web");
        let b = TargetKey::new("ns", "apps/v1beta2", "Deployment", "web");
        let c = TargetKey::new("ns", "other.io/v1", "Deployment", "web");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(TargetKey::new("", "v1", "X", "y").group, "");
    }

    #[test]
    fn different_targets_or_namespaces_do_not_conflict() {
        let mut index = ConflictIndex::new();
        index.claim(claim("a", "web", 1));
        index.claim(claim("b", "api", 1));
        let mut other = claim("c", "web", 0);
        other.object = ObjectKey::new("other", "c");
        other.target.namespace = "other".into();
        index.claim(other);
        assert!(index.conflicts().is_empty());
    }

    #[test]
    fn retargeting_moves_the_claim() {
        let mut index = ConflictIndex::new();
        index.claim(claim("a", "web", 1));
        index.claim(claim("b", "web", 2));
        let touched = index.claim(claim("a", "api", 1));
        assert_eq!(touched, vec![target("web"), target("api")]);
        assert!(index.conflicts().is_empty());
        assert!(index.claim(claim("a", "api", 1)).is_empty(), "no change");
    }

    #[test]
    fn an_hpa_blocks_the_owner_unless_it_takes_over() {
        let mut index = ConflictIndex::new();
        index.claim(claim("a", "web", 1));
        index.claim(claim("b", "web", 2));
        assert_eq!(
            index.set_hpa("default", "web-hpa", Some(target("web"))),
            vec![target("web")]
        );
        let conflict = index.conflict(&key("a")).expect("HPA conflict");
        assert_eq!(conflict.reason(), REASON_HPA_CONFLICT);
        assert!(conflict.to_string().contains("web-hpa"), "{conflict}");
        // The second still waits for the first, not for the HPA.
        assert_eq!(
            index.conflict(&key("b")).map(|c| c.reason()),
            Some(REASON_TARGET_CONFLICT)
        );
        let mut taking = claim("a", "web", 1);
        taking.takes_over_hpa = true;
        index.claim(taking);
        assert_eq!(index.conflict(&key("a")), None);
        index.set_hpa("default", "web-hpa", None);
        let mut plain = claim("a", "web", 1);
        plain.takes_over_hpa = false;
        index.claim(plain);
        assert_eq!(index.conflict(&key("a")), None, "HPA gone");
    }

    #[test]
    fn an_hpa_elsewhere_does_not_matter() {
        let mut index = ConflictIndex::new();
        index.claim(claim("a", "web", 1));
        index.set_hpa("default", "h", Some(target("api")));
        assert_eq!(index.conflict(&key("a")), None);
        assert_eq!(
            index.set_hpa("default", "h", Some(target("web"))),
            vec![target("api"), target("web")]
        );
        assert!(index.conflict(&key("a")).is_some());
    }

    #[test]
    fn take_over_annotations_are_read() {
        let yes =
            |name: &str| (name == "scaledobject.keda.sh/transfer-hpa-ownership").then_some("true");
        assert!(takes_over_hpa(yes));
        assert!(takes_over_hpa(
            |n| (n == "ebb.dev/take-over-hpa").then_some("True")
        ));
        assert!(!takes_over_hpa(
            |n| (n == "ebb.dev/take-over-hpa").then_some("false")
        ));
        assert!(!takes_over_hpa(|_| None));
    }
}
