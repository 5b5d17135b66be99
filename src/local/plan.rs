//! From YAML to a plan: every object of the file(s) parsed, checked and resolved before
//! anything starts. All problems are collected, each naming file, object and field.
//!
//! Trigger resolution for local runs:
//! - a trigger whose `type` is the name of a `kind: Scaler` (and has no `scaler:` block) calls
//!   that sidecar; `scaler.address` (or KEDA's `metadata.scalerAddress`) may also name one;
//! - `metadata.<key>FromEnv: VAR` becomes the secret `<key>`, read from the target
//!   ProcessGroup's `env`, else from ebb's own environment;
//! - `metadata.<key>FromFile: path` becomes the secret `<key>`, read from the file (relative
//!   to the manifest, trailing newline removed).
//!
//! Secrets travel to the scaler in `TriggerRequest.secrets` and are never printed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::{
    FieldProblem, LOCAL_GROUP, ProcessGroupConfig, ProcessGroupDocument, ScalerConfig,
    ScalerDocument,
};
use crate::client::TlsSettings as ClientTls;
use crate::runtime::{ObjectKey, ResolvedTrigger};
use crate::spec::load::{Document, load_path};
use crate::spec::{PauseState, PemSource, ScaledObject, ScaledObjectSpec, ScalerRef, TlsSettings};

/// Everything `ebb run` will start.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Process groups, by name.
    pub groups: Vec<ProcessGroupConfig>,
    /// Scaler sidecars, by name.
    pub scalers: Vec<ScalerConfig>,
    /// Scaled objects, by name.
    pub objects: Vec<PlannedObject>,
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
}

/// Why the files cannot be run: every problem, each naming file, object and field.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct PlanError {
    /// One line per problem.
    pub problems: Vec<String>,
}

/// The environment `xFromEnv` falls back to (ebb's own, or a fixed map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Loads and checks `path` (a file or a directory of YAML files).
pub fn plan(path: &Path, env: EnvLookup<'_>) -> Result<Plan, PlanError> {
    let documents = load_path(path).map_err(|error| PlanError {
        problems: vec![error.to_string()],
    })?;
    let mut problems = Vec::new();
    let mut groups = Vec::new();
    let mut scalers = Vec::new();
    let mut objects = Vec::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for document in &documents {
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
                    Err(list) => report(&mut problems, list),
                },
                Err(error) => problems.push(error.to_string()),
            },
            "Scaler" => match document.parse::<ScalerDocument>() {
                Ok(parsed) => match parsed.resolve(&base, free_port) {
                    Ok(config) => scalers.push(config),
                    Err(list) => report(&mut problems, list),
                },
                Err(error) => problems.push(error.to_string()),
            },
            "ScaledObject" => match document.parse::<ScaledObject>() {
                Ok(parsed) => objects.push((document, parsed)),
                Err(error) => problems.push(error.to_string()),
            },
            other => problems.push(format!(
                "{}: {other} {:?}: kind: ebb run reads ScaledObject, ProcessGroup and Scaler ({LOCAL_GROUP}) objects",
                document.path.display(),
                document.name
            )),
        }
    }
    let mut planned = Vec::new();
    let mut targeted: BTreeMap<String, String> = BTreeMap::new();
    for (document, object) in objects {
        match plan_object(document, object, &groups, &scalers, env) {
            Ok(object) => {
                if let Some(other) = targeted.insert(object.group.clone(), object.key.name.clone())
                {
                    problems.push(format!(
                        "{}: ScaledObject {:?}: spec.scaleTargetRef.name: ProcessGroup {:?} is already scaled by ScaledObject {other:?}",
                        document.path.display(),
                        object.key.name,
                        object.group
                    ));
                }
                planned.push(object);
            }
            Err(list) => problems.extend(list),
        }
    }
    if documents.is_empty() {
        problems.push(format!("{}: no objects found", path.display()));
    } else if planned.is_empty() && problems.is_empty() {
        problems.push(format!("{}: no ScaledObject found", path.display()));
    }
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    scalers.sort_by(|a, b| a.name.cmp(&b.name));
    planned.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Plan {
        groups,
        scalers,
        objects: planned,
    })
}

fn base_dir(path: &Path) -> PathBuf {
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

fn plan_object(
    document: &Document,
    mut object: ScaledObject,
    groups: &[ProcessGroupConfig],
    scalers: &[ScalerConfig],
    env: EnvLookup<'_>,
) -> Result<PlannedObject, Vec<String>> {
    let name = object.metadata.name.clone().unwrap_or_default();
    let prefix = format!("{}: ScaledObject {name:?}", document.path.display());
    let mut problems = Vec::new();
    let group_of = document.api_version.split('/').next().unwrap_or_default();
    if group_of != LOCAL_GROUP && group_of != "keda.sh" {
        problems.push(format!(
            "{prefix}: apiVersion: expected {LOCAL_GROUP}/v1alpha1 (or keda.sh/v1alpha1), got {:?}",
            document.api_version
        ));
    }
    for trigger in &mut object.spec.triggers {
        attach_local_scaler(trigger, scalers);
    }
    for problem in object.validate() {
        let hint = if problem.reason == "MissingScalerAddress" {
            " (or declare a `kind: Scaler` whose name is the trigger's type)"
        } else {
            ""
        };
        problems.push(format!("{prefix}: {problem}{hint}"));
    }
    let target = &object.spec.scale_target_ref;
    let target_group = target.api_version().split('/').next().unwrap_or_default();
    if target.kind() != "ProcessGroup" || target_group != LOCAL_GROUP {
        problems.push(format!(
            "{prefix}: spec.scaleTargetRef: ebb run scales `apiVersion: {LOCAL_GROUP}/v1alpha1, kind: ProcessGroup` targets, got {} {}",
            target.api_version(),
            target.kind()
        ));
    }
    let group = groups.iter().find(|group| group.name == target.name);
    if group.is_none() && !target.name.is_empty() {
        problems.push(format!(
            "{prefix}: spec.scaleTargetRef.name: no ProcessGroup named {:?} in the files",
            target.name
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let key = ObjectKey::new("", name);
    let base = base_dir(&document.path);
    let group_env = group.map(|group| &group.command.env);
    let mut triggers = Vec::new();
    for (index, trigger) in object.spec.triggers.iter().enumerate() {
        let trigger_name = trigger.effective_name(index);
        let field = |key: &str| format!("{prefix}: spec.triggers[{index}].{key}");
        let endpoint = match trigger.endpoint(&trigger_name) {
            Ok(endpoint) => endpoint,
            Err(error) => {
                problems.push(format!("{prefix}: {error}"));
                continue;
            }
        };
        let tls = match endpoint.tls.as_ref().map(|tls| local_tls(tls, &base)) {
            None => None,
            Some(Ok(tls)) => Some(tls),
            Some(Err(message)) => {
                problems.push(format!("{}: {message}", field("scaler.tls")));
                continue;
            }
        };
        let mut metadata = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (key, value) in &trigger.metadata {
            if let Some(secret_key) = key.strip_suffix("FromEnv").filter(|k| !k.is_empty()) {
                let resolved = group_env
                    .and_then(|vars| vars.get(value.as_str()).cloned())
                    .or_else(|| env(value))
                    .filter(|value| !value.is_empty());
                match resolved {
                    Some(resolved) => {
                        secrets.insert(secret_key.to_owned(), resolved);
                    }
                    None => problems.push(format!(
                        "{}: environment variable {value:?} is not set (neither in the ProcessGroup's env nor in ebb's)",
                        field(&format!("metadata.{key}"))
                    )),
                }
            } else if let Some(secret_key) = key.strip_suffix("FromFile").filter(|k| !k.is_empty())
            {
                let path = base.join(value);
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        let text = text.strip_suffix('\r').unwrap_or(text);
                        secrets.insert(secret_key.to_owned(), text.to_owned());
                    }
                    Err(error) => problems.push(format!(
                        "{}: cannot read {}: {error}",
                        field(&format!("metadata.{key}")),
                        path.display()
                    )),
                }
            } else {
                metadata.insert(key.clone(), value.clone());
            }
        }
        triggers.push(ResolvedTrigger::from_endpoint(
            &key,
            &trigger_name,
            u32::try_from(index).unwrap_or(u32::MAX),
            &endpoint,
            tls,
            metadata,
            secrets,
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let pause = object.pause_state().unwrap_or_default();
    Ok(PlannedObject {
        key,
        group: object.spec.scale_target_ref.name.clone(),
        spec: Arc::new(object.spec),
        pause,
        triggers,
    })
}

/// Points a trigger at a local sidecar when it names one (see the module docs).
fn attach_local_scaler(trigger: &mut crate::spec::Trigger, scalers: &[ScalerConfig]) {
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
    if trigger.is_keda_external() {
        if let Some(address) = trigger
            .metadata
            .get("scalerAddress")
            .and_then(|a| by_name(a))
        {
            trigger.metadata.insert("scalerAddress".to_owned(), address);
        }
        return;
    }
    if let Some(address) = trigger.trigger_type.as_deref().and_then(by_name) {
        trigger.scaler = Some(ScalerRef {
            address,
            ..ScalerRef::default()
        });
    }
}

fn local_tls(tls: &TlsSettings, base: &Path) -> Result<ClientTls, String> {
    let read = |source: &Option<PemSource>| -> Result<Option<String>, String> {
        match source {
            None => Ok(None),
            Some(PemSource::Inline(text)) => Ok(Some(text.clone())),
            Some(PemSource::File(file)) => {
                let path = base.join(file);
                std::fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))
            }
            Some(PemSource::Secret(secret)) => Err(format!(
                "Kubernetes Secret {:?} is not available to ebb run; use caFile/certFile/keyFile",
                secret.name
            )),
        }
    };
    Ok(ClientTls {
        ca_pem: read(&tls.ca)?,
        client_cert_pem: read(&tls.client_cert)?,
        client_key_pem: read(&tls.client_key)?,
        server_name: tls.server_name.clone(),
        insecure_skip_verify: tls.insecure_skip_verify,
    })
}
