//! From YAML to a plan: every object of the file(s) parsed, checked and resolved before
//! anything starts. All problems are collected, each naming file, object and field.
//!
//! A trigger whose `type` is the name of a `kind: Scaler` (and has no `scaler:` block) calls
//! that sidecar; `scaler.address` (or KEDA's `metadata.scalerAddress`) may also name one.
//! Everything else about triggers (secrets, `xFromEnv`, `xFromFile`, `authenticationRef`, TLS
//! material) is the shared preparation step's ([`crate::runtime::prepare`]), fed by the
//! lookups of [`super::sources`]: the same rules as in the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::{
    FieldProblem, LOCAL_GROUP, ProcessGroupConfig, ProcessGroupDocument, ScalerConfig,
    ScalerDocument,
};
pub use super::sources::EnvLookup;
use super::sources::{LocalObjects, LocalSources, is_source_kind};
use crate::runtime::prepare::prepare_triggers;
use crate::runtime::{ObjectKey, ResolvedTrigger};
use crate::spec::load::{Document, load_path};
use crate::spec::{PauseState, ScaledObject, ScaledObjectSpec};

/// The apiVersions a ScaledObject may have: ebb's, and KEDA's so its manifests run as they are.
const SCALED_OBJECT_API_VERSIONS: [&str; 2] = ["ebb.dev/v1alpha1", "keda.sh/v1alpha1"];

/// Everything `ebb run` will start.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Process groups, by name.
    pub groups: Vec<ProcessGroupConfig>,
    /// Scaler sidecars, by name.
    pub scalers: Vec<ScalerConfig>,
    /// Scaled objects, by name.
    pub objects: Vec<PlannedObject>,
    /// ScaledJobs, by name.
    pub jobs: Vec<super::jobs::PlannedJob>,
}

/// One scaled object, ready for the runtime.
#[derive(Debug, Clone)]
pub struct PlannedObject {
    /// Its key (namespace "").
    pub key: ObjectKey,
    /// The validated spec, local scaler names replaced by their addresses.
    pub spec: Arc<ScaledObjectSpec>,
    /// Pause annotations.
    pub pause: PauseState,
    /// The process group it scales.
    pub group: String,
    /// Triggers with secrets resolved, in spec order.
    pub triggers: Vec<ResolvedTrigger>,
    /// What `--check` should tell about how the cluster form was read locally.
    pub notes: Vec<String>,
    /// Why it does not scale its group: an elder ScaledObject owns the group, or an HPA in
    /// the files targets it ([`crate::runtime::conflict`]). It runs no loop then.
    pub conflict: Option<crate::runtime::conflict::Conflict>,
}

/// Why the files cannot be run: every problem, each naming file, object and field.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct PlanError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Loads and checks `path` (a file or a directory of YAML files).
pub fn plan(path: &Path, env: EnvLookup<'_>) -> Result<Plan, PlanError> {
    let documents = load_path(path).map_err(|error| PlanError {
        problems: vec![error.to_string()],
    })?;
    let mut problems = Vec::new();
    let mut groups = Vec::new();
    let mut scalers = Vec::new();
    let mut objects = Vec::new();
    let mut scaled_jobs = Vec::new();
    let mut sources = LocalObjects::default();
    let known_fields = crate::spec::scaled_object_field_names();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut hpas = Vec::new();
    // ProcessGroups already reported as refused: a ScaledObject naming one is not told again
    // that no such group exists.
    let mut refused_groups = BTreeSet::new();
    for (position, document) in documents.iter().enumerate() {
        if !seen.insert((document.kind.clone(), document.name.clone())) {
            problems.push(format!(
                "{}: {} {:?}: metadata.name: declared twice",
                document.path.display(),
                document.kind,
                document.name
            ));
            continue;
        }
        let base = base_dir(&document.path);
        let report = |problems: &mut Vec<String>, list: Vec<FieldProblem>| {
            for problem in list {
                problems.push(format!(
                    "{}: {} {:?}: {problem}",
                    document.path.display(),
                    document.kind,
                    document.name
                ));
            }
        };
        match document.kind.as_str() {
            "ProcessGroup" => match document.parse::<ProcessGroupDocument>() {
                Ok(parsed) => match parsed.resolve(&base) {
                    Ok(config) => groups.push(config),
                    Err(list) => {
                        refused_groups.insert(document.name.clone());
                        report(&mut problems, list);
                    }
                },
                Err(error) => {
                    refused_groups.insert(document.name.clone());
                    problems.push(error.to_string());
                }
            },
            "Scaler" => match document.parse::<ScalerDocument>() {
                Ok(parsed) => match parsed.resolve(&base, free_port) {
                    Ok(config) => {
                        if let Some(first) = scalers
                            .iter()
                            .find(|other: &&ScalerConfig| other.address == config.address)
                        {
                            report(
                                &mut problems,
                                vec![FieldProblem {
                                    field: "spec.address".to_owned(),
                                    message: format!(
                                        "{} is also the address of Scaler {:?}; give each its own",
                                        config.address, first.name
                                    ),
                                }],
                            );
                        }
                        scalers.push(config);
                    }
                    Err(list) => report(&mut problems, list),
                },
                Err(error) => problems.push(error.to_string()),
            },
            "ScaledObject" => match document.parse_strict::<ScaledObject>(&known_fields) {
                Ok(parsed) => objects.push((position, document, parsed)),
                Err(error) => problems.push(error.to_string()),
            },
            "HorizontalPodAutoscaler" => match super::conflicts::parse_hpa(document) {
                Ok(hpa) => hpas.push(hpa),
                Err(problem) => problems.push(problem),
            },
            "ScaledJob" => match document.parse::<crate::spec::ScaledJob>() {
                Ok(parsed) => scaled_jobs.push((document, parsed)),
                Err(error) => problems.push(error.to_string()),
            },
            kind if is_source_kind(kind) => {
                if let Err(list) = sources.add(document) {
                    for problem in list {
                        problems.push(format!(
                            "{}: {kind} {:?}: {problem}",
                            document.path.display(),
                            document.name
                        ));
                    }
                }
            }
            other => problems.push(format!(
                "{}: {other:?} {:?}: kind: ebb run reads ScaledObject, ScaledJob, ProcessGroup and Scaler ({LOCAL_GROUP}) objects, and Secret, ConfigMap and ScalerAuthentication (or KEDA's TriggerAuthentication) for credentials, and HorizontalPodAutoscaler (only to report conflicts)",
                document.path.display(),
                document.name
            )),
        }
    }
    let mut planned = Vec::new();
    let (mut order, mut takes_over) = (Vec::new(), Vec::new());
    for (position, document, object) in objects {
        let annotations = object.metadata.annotations.clone().unwrap_or_default();
        let targets = Targets {
            groups: &groups,
            refused: &refused_groups,
        };
        match plan_object(document, object, targets, &scalers, &sources, env) {
            Ok(object) => {
                planned.push(object);
                order.push(position);
                takes_over.push(crate::runtime::conflict::takes_over_hpa(|name| {
                    annotations.get(name).map(String::as_str)
                }));
            }
            Err(list) => problems.extend(list),
        }
    }
    super::conflicts::assign(&mut planned, &order, &takes_over, &hpas, &groups);
    let mut jobs = Vec::new();
    for (document, job) in scaled_jobs {
        match super::jobs::plan_job(document, job, &scalers, &sources, env) {
            Ok(job) => jobs.push(job),
            Err(list) => problems.extend(list),
        }
    }
    if documents.is_empty() {
        problems.push(format!("{}: no objects found", path.display()));
    } else if planned.is_empty() && jobs.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{}: no ScaledObject or ScaledJob found",
            path.display()
        ));
    }
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    scalers.sort_by(|a, b| a.name.cmp(&b.name));
    planned.sort_by(|a, b| a.key.cmp(&b.key));
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Plan {
        groups,
        scalers,
        objects: planned,
        jobs,
    })
}

pub(super) fn base_dir(path: &Path) -> PathBuf {
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// The ProcessGroups a ScaledObject may scale, and the names of those refused.
#[derive(Clone, Copy)]
struct Targets<'a> {
    groups: &'a [ProcessGroupConfig],
    refused: &'a BTreeSet<String>,
}

fn plan_object(
    document: &Document,
    mut object: ScaledObject,
    targets: Targets<'_>,
    scalers: &[ScalerConfig],
    sources: &LocalObjects,
    env: EnvLookup<'_>,
) -> Result<PlannedObject, Vec<String>> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let prefix = format!("{}: ScaledObject {name:?}", document.path.display());
    let mut problems = Vec::new();
    if !SCALED_OBJECT_API_VERSIONS.contains(&document.api_version.as_str()) {
        problems.push(format!(
            "{prefix}: apiVersion: expected {} (or KEDA's {}), got {:?}",
            SCALED_OBJECT_API_VERSIONS[0], SCALED_OBJECT_API_VERSIONS[1], document.api_version
        ));
    }
    for trigger in &mut object.spec.triggers {
        attach_local_scaler(trigger, scalers);
    }
    let validation = object.validate();
    // A trigger that failed validation would only be reported again, in other words.
    let triggers_valid = !validation
        .iter()
        .any(|problem| problem.field.starts_with("spec.triggers"));
    for problem in validation {
        problems.push(format!("{prefix}: {problem}"));
    }
    let target = &object.spec.scale_target_ref;
    let target_group = target.api_version().split('/').next().unwrap_or_default();
    let group = targets
        .groups
        .iter()
        .find(|group| group.name == target.name);
    // Its group was refused, and that problem is reported already: one error, not two.
    let group_refused = group.is_none() && targets.refused.contains(&target.name);
    let mut notes = Vec::new();
    let local_kind = target.kind() == "ProcessGroup" && target_group == LOCAL_GROUP;
    // KEDA's manifests leave scaleTargetRef at its default, a Deployment: locally that is the
    // ProcessGroup of the same name, so the documents need no edit.
    let stands_in =
        target.kind() == "Deployment" && target.api_version() == "apps/v1" && group.is_some();
    if stands_in {
        notes.push(format!(
            "spec.scaleTargetRef: Deployment {:?} runs as the ProcessGroup of the same name",
            target.name
        ));
    } else if !local_kind && !group_refused {
        problems.push(format!(
            "{prefix}: spec.scaleTargetRef: ebb run scales `apiVersion: {LOCAL_GROUP}/v1alpha1, kind: ProcessGroup` targets (or a Deployment with a ProcessGroup of the same name), got {} {}",
            target.api_version(),
            target.kind()
        ));
    }
    if group.is_none() && !group_refused && !target.name.is_empty() {
        problems.push(format!(
            "{prefix}: spec.scaleTargetRef.name: no ProcessGroup named {:?} in the files",
            target.name
        ));
    }
    if !triggers_valid {
        return Err(problems);
    }
    // Triggers are prepared even when the object has other problems, so one run reports them all.
    let key = ObjectKey::new("", name);
    let base = base_dir(&document.path);
    let sidecars = sidecar_addresses(scalers);
    let lookups = LocalSources {
        objects: sources,
        group_env: group.map(|group| &group.command.env),
        env,
        base: &base,
        scalers: &sidecars,
    };
    // Local lookups answer at once (no I/O waits on a reactor), so blocking here is safe
    // even when called from inside the runtime.
    let prepared = futures::executor::block_on(prepare_triggers(&lookups, &key, &object.spec, ""));
    let triggers = match prepared {
        Ok(triggers) if problems.is_empty() => triggers,
        Ok(_) => return Err(problems),
        Err(list) => {
            problems.extend(
                list.into_iter()
                    .map(|problem| format!("{prefix}: {problem}")),
            );
            return Err(problems);
        }
    };
    let pause = object.pause_state().unwrap_or_default();
    Ok(PlannedObject {
        key,
        group: object.spec.scale_target_ref.name.clone(),
        spec: Arc::new(object.spec),
        pause,
        triggers,
        notes,
        conflict: None,
    })
}

/// The `kind: Scaler` sidecars' addresses by name: a trigger whose `type` is one of them
/// calls it (the local scaler registry).
pub(super) fn sidecar_addresses(scalers: &[ScalerConfig]) -> BTreeMap<String, String> {
    scalers
        .iter()
        .map(|scaler| (scaler.name.clone(), scaler.address.to_string()))
        .collect()
}

/// Points a trigger at a local sidecar when it names one (see the module docs).
pub(super) fn attach_local_scaler(trigger: &mut crate::spec::Trigger, scalers: &[ScalerConfig]) {
    let by_name = |name: &str| {
        scalers
            .iter()
            .find(|scaler| scaler.name == name.trim())
            .map(|scaler| scaler.address.to_string())
    };
    if let Some(scaler) = &mut trigger.scaler {
        if let Some(address) = by_name(&scaler.address) {
            scaler.address = address;
        }
        return;
    }
    if trigger.is_keda_external()
        && let Some(address) = trigger
            .metadata
            .get("scalerAddress")
            .and_then(|a| by_name(a))
    {
        trigger.metadata.insert("scalerAddress".to_owned(), address);
    }
}
