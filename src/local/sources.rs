//! `ebb run`'s side of preparation: the cluster's secret objects read from the files
//! (`kind: Secret`, `ConfigMap`, `ScalerAuthentication` and KEDA's `TriggerAuthentication`
//! spelling, and their cluster-wide kinds), the target ProcessGroup's `env` then ebb's own
//! environment, and files relative to the manifest. The rules are the shared preparation
//! step's ([`crate::runtime::prepare`]), so a directory made for `kubectl apply` resolves here
//! exactly as the controller resolves it. Namespaces are ignored: one machine, one namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::Value;

use crate::runtime::prepare::{LookupError, Lookups, SecretData};
use crate::spec::load::Document;
use crate::spec::{AuthenticationKind, AuthenticationSource, ScalerAuthenticationSpec, ScalerRef};

/// The environment `xFromEnv` falls back to (ebb's own, or a fixed map in tests).
pub type EnvLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// The keys an authentication object may have in ebb; KEDA's other providers are refused.
const AUTH_SOURCES: [&str; 3] = ["secretTargetRef", "configMapTargetRef", "env"];

/// Secrets, ConfigMaps and authentication objects found in the files.
#[derive(Debug, Default, Clone)]
pub struct LocalObjects {
    secrets: BTreeMap<String, SecretData>,
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    authentications: BTreeMap<(AuthenticationKind, String), AuthenticationSource>,
}

/// Whether `kind` is one [`LocalObjects::add`] reads.
pub fn is_source_kind(kind: &str) -> bool {
    auth_kind(kind).is_some() || kind == "Secret" || kind == "ConfigMap"
}

fn auth_kind(kind: &str) -> Option<AuthenticationKind> {
    match kind {
        "ScalerAuthentication" | "TriggerAuthentication" => {
            Some(AuthenticationKind::ScalerAuthentication)
        }
        "ClusterScalerAuthentication" | "ClusterTriggerAuthentication" => {
            Some(AuthenticationKind::ClusterScalerAuthentication)
        }
        _ => None,
    }
}

/// A `field: message` problem of one document. Messages never quote a Secret's values.
type FieldProblems = Vec<String>;

impl LocalObjects {
    /// Reads one document of a kind [`is_source_kind`] accepts.
    pub fn add(&mut self, document: &Document) -> Result<(), FieldProblems> {
        // Parsed as plain JSON so no typed parse error can quote a value it did not expect.
        let value: Value = document
            .parse()
            .map_err(|_| vec!["the document is not a YAML mapping".to_owned()])?;
        if document.name.is_empty() {
            return Err(vec!["metadata.name: required".to_owned()]);
        }
        match document.kind.as_str() {
            "Secret" => {
                let mut problems = secret_fields(&value);
                match secret_data(&value) {
                    Ok(data) if problems.is_empty() => {
                        self.secrets.insert(document.name.clone(), data);
                    }
                    Ok(_) => {}
                    Err(list) => problems.extend(list),
                }
                if !problems.is_empty() {
                    return Err(problems);
                }
            }
            "ConfigMap" => {
                let data = string_map(value.get("data"), "data")?;
                self.config_maps.insert(document.name.clone(), data);
            }
            kind => {
                let Some(auth) = auth_kind(kind) else {
                    return Err(vec![format!("kind: {kind} is not a credential source")]);
                };
                let source = authentication(value.get("spec"))?;
                self.authentications
                    .insert((auth, document.name.clone()), source);
            }
        }
        Ok(())
    }
}

fn string_map(
    value: Option<&Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, FieldProblems> {
    let Some(value) = value.filter(|value| !value.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = value.as_object() else {
        return Err(vec![format!("{field}: must be a map of keys to text")]);
    };
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in map {
        match value.as_str() {
            Some(text) => {
                out.insert(key.clone(), text.to_owned());
            }
            None => problems.push(format!(
                "{field}.{key}: must be text (quote it); the value is not shown"
            )),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// A v1 Secret's `type` and `immutable`, checked as the API server reads them: `type` is
/// text naming a type (Kubernetes' own, or a custom one such as `example.com/token`),
/// `immutable` a boolean. A value of the wrong shape is a mistake, not something to ignore.
fn secret_fields(value: &Value) -> FieldProblems {
    let mut problems = Vec::new();
    let type_name = |text: &str| {
        !text.is_empty()
            && text.len() <= 253
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    match value.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if type_name(text) => {}
        Some(_) => problems.push(
            "type: must name a Secret type, such as Opaque or kubernetes.io/basic-auth \
             (letters, digits, '-', '_', '.' and '/'); the value is not shown"
                .to_owned(),
        ),
    }
    match value.get("immutable") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => problems
            .push("immutable: must be true or false (unquoted); the value is not shown".to_owned()),
    }
    problems
}

/// A v1 Secret's keys: `data` (base64) with `stringData` written over it, as the API server
/// does.
fn secret_data(value: &Value) -> Result<SecretData, FieldProblems> {
    let encoded = string_map(value.get("data"), "data")?;
    let mut data = SecretData::new();
    let mut problems = Vec::new();
    for (key, text) in encoded {
        match serde_json::from_value::<k8s_openapi::ByteString>(Value::String(text)) {
            Ok(bytes) => {
                data.insert(key, bytes.0);
            }
            Err(_) => problems.push(format!(
                "data.{key}: not valid base64 (use stringData for plain text); the value is not shown"
            )),
        }
    }
    for (key, text) in string_map(value.get("stringData"), "stringData")? {
        data.insert(key, text.into_bytes());
    }
    if problems.is_empty() {
        Ok(data)
    } else {
        Err(problems)
    }
}

fn authentication(spec: Option<&Value>) -> Result<AuthenticationSource, FieldProblems> {
    let spec = spec.cloned().unwrap_or(Value::Object(Default::default()));
    let Some(map) = spec.as_object() else {
        return Err(vec!["spec: must be a mapping".to_owned()]);
    };
    let unsupported: Vec<String> = map
        .keys()
        .filter(|key| !AUTH_SOURCES.contains(&key.as_str()))
        .map(|key| {
            format!(
                "spec.{key}: not supported by ebb (supported: {})",
                AUTH_SOURCES.join(", ")
            )
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(unsupported);
    }
    serde_json::from_value::<ScalerAuthenticationSpec>(spec)
        .map(AuthenticationSource::from)
        .map_err(|error| vec![format!("spec: {error}")])
}

/// The lookups of one ScaledObject under `ebb run`.
pub struct LocalSources<'a> {
    /// Objects from the files.
    pub objects: &'a LocalObjects,
    /// The target ProcessGroup's `env`, searched first.
    pub group_env: Option<&'a BTreeMap<String, String>>,
    /// ebb's own environment, searched second.
    pub env: EnvLookup<'a>,
    /// Directory relative file names start from (the manifest's).
    pub base: &'a Path,
    /// The `kind: Scaler` sidecars by name: triggers whose `type` is one of them call it.
    pub scalers: &'a BTreeMap<String, String>,
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Lookups for LocalSources<'_> {
    fn secret<'b>(
        &'b self,
        _namespace: &'b str,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<SecretData>, LookupError>> {
        ready(Ok(self.objects.secrets.get(name).cloned()))
    }

    fn config_map<'b>(
        &'b self,
        _namespace: &'b str,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<BTreeMap<String, String>>, LookupError>> {
        ready(Ok(self.objects.config_maps.get(name).cloned()))
    }

    fn authentication<'b>(
        &'b self,
        _namespace: &'b str,
        kind: AuthenticationKind,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<AuthenticationSource>, LookupError>> {
        ready(Ok(self
            .objects
            .authentications
            .get(&(kind, name.to_owned()))
            .cloned()))
    }

    fn env<'b>(
        &'b self,
        _container: Option<&'b str>,
        var: &'b str,
    ) -> BoxFuture<'b, Result<Option<String>, LookupError>> {
        let value = self
            .group_env
            .and_then(|vars| vars.get(var).cloned())
            .or_else(|| (self.env)(var));
        ready(Ok(value))
    }

    fn scaler_for_type(&self, trigger_type: &str) -> Option<ScalerRef> {
        self.scalers.get(trigger_type).map(|address| ScalerRef {
            address: address.clone(),
            ..ScalerRef::default()
        })
    }

    fn file<'b>(&'b self, path: &'b str) -> BoxFuture<'b, Result<String, LookupError>> {
        let full: PathBuf = self.base.join(path);
        ready(
            std::fs::read_to_string(&full).map_err(|error| LookupError::Refused {
                reason: "FileUnreadable",
                message: format!("cannot read {}: {error}", full.display()),
            }),
        )
    }
}
