//! Preparation: turning a ScaledObject's triggers into [`ResolvedTrigger`]s, the one path both
//! hosts take. The Kubernetes controller and `ebb run` differ only in their [`Lookups`]
//! (Secrets, ConfigMaps and container env from the API server; `kind: Secret` documents,
//! process env and files on one machine), so every rule below holds in both by construction:
//!
//! - **Metadata and secrets.** A plain `metadata.x` is sent as metadata. `xFromEnv: VAR`,
//!   `xFromFile: PATH` and every `authenticationRef` parameter become the secret `x`, sent in
//!   the v1 `secrets` map (merged into `scalerMetadata` for KEDA-only scalers, which have no
//!   other place for it). An unset or empty variable is a problem, never a silently dropped key.
//! - **TLS material is for the connection.** `caCert`, `tlsClientCert` (or KEDA's older
//!   `tlsCertFile`) and `tlsClientKey`, in any of those forms, and the `scaler.tls` block
//!   configure the channel to the scaler and are never sent to it.
//! - **Addresses** are checked before anything connects ([`check_address`]), and trigger
//!   metadata against the scaler's GetInfo schema ([`check_schemas`]).
//!
//! Every [`Problem`] names its field and never quotes a secret value.

mod material;
mod schema;

use std::collections::BTreeMap;

use futures::future::BoxFuture;

pub use schema::{InfoSource, PoolInfo, check_metadata, check_schemas};

use crate::runtime::{ObjectKey, ResolvedTrigger};
use crate::spec::{AuthenticationKind, AuthenticationSource, ScaledObjectSpec, ScalerRef, Trigger};
use material::{Material, TlsPart};

/// The keys of a Secret with their raw values.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// Why a lookup gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The source could not be read now (API server down, timeout): try again later rather
    /// than blame the object.
    #[error("reading failed: {0}")]
    Unavailable(String),
    /// The reference itself is wrong or not allowed in this host.
    #[error("{message}")]
    Refused {
        /// CamelCase reason for a status condition.
        reason: &'static str,
        /// What is wrong; never a secret value.
        message: String,
    },
}

/// The reads preparation needs from its host. The controller implements them over the API
/// server, `ebb run` over the files it was given and its own environment; tests in memory.
pub trait Lookups: Send + Sync {
    /// The data of Secret `name`, `None` when it does not exist.
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, LookupError>>;

    /// The data of ConfigMap `name`, `None` when it does not exist.
    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>>;

    /// A ScalerAuthentication (namespaced) or ClusterScalerAuthentication.
    fn authentication<'a>(
        &'a self,
        namespace: &'a str,
        kind: AuthenticationKind,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<AuthenticationSource>, LookupError>>;

    /// Environment variable `var` as the scale target sees it (in `container` when given);
    /// `None` when unset.
    fn env<'a>(
        &'a self,
        container: Option<&'a str>,
        var: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, LookupError>>;

    /// The text of the file an object names (`xFromFile`, `scaler.tls.caFile`).
    fn file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<String, LookupError>>;

    /// The scaler registered for a trigger `type` (KEDA's `type: rabbitmq` with no address):
    /// the controller's `--scaler` registry, or a `kind: Scaler` of that name under `ebb run`.
    fn scaler_for_type(&self, trigger_type: &str) -> Option<ScalerRef> {
        let _ = trigger_type;
        None
    }
}

/// Trigger types and the scaler each one calls, as the controller's `--scaler TYPE=ADDRESS`
/// flags and `--scaler-registry` file give them.
pub type ScalerRegistry = std::collections::BTreeMap<String, ScalerRef>;

/// Why a trigger cannot be prepared. `field` names the ScaledObject field; the message never
/// contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, e.g. `spec.triggers[0].authenticationRef`.
    pub field: String,
    /// CamelCase reason for the Ready condition.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
    /// A source could not be read: try again later rather than blame the object.
    pub transient: bool,
}

impl Problem {
    /// A problem with the object itself.
    pub fn new(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason,
            message: message.into(),
            transient: false,
        }
    }

    fn from_lookup(field: &str, error: LookupError) -> Self {
        match error {
            LookupError::Unavailable(message) => Self {
                field: field.to_owned(),
                reason: "LookupFailed",
                message: format!("reading failed: {message}"),
                transient: true,
            },
            LookupError::Refused { reason, message } => Self::new(field, reason, message),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Checks that a scaler address is a URI with a host and a port.
pub fn check_address(uri: &str) -> Result<(), String> {
    let parsed: http::Uri = uri
        .parse()
        .map_err(|error| format!("{uri:?} is not a valid address: {error}"))?;
    match (parsed.host(), parsed.port_u16()) {
        (Some(host), Some(_)) if !host.is_empty() => Ok(()),
        (Some(_), None) => Err(format!("{uri:?} has no port; write host:port")),
        _ => Err(format!("{uri:?} has no host; write host:port")),
    }
}

/// Prepares every trigger of object `key`, in spec order. Each trigger reports its first
/// problem; all triggers are looked at. `controller_namespace` holds the Secrets and
/// ConfigMaps of ClusterScalerAuthentications ("" outside Kubernetes).
pub async fn prepare_triggers(
    lookups: &dyn Lookups,
    key: &ObjectKey,
    spec: &ScaledObjectSpec,
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<Problem>> {
    prepare_trigger_list(lookups, key, &spec.triggers, controller_namespace).await
}

/// [`prepare_triggers`] for any object's trigger list: a ScaledJob's triggers take this same
/// path, so they follow every rule above.
pub async fn prepare_trigger_list(
    lookups: &dyn Lookups,
    key: &ObjectKey,
    trigger_list: &[Trigger],
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<Problem>> {
    let context = Context {
        lookups,
        namespace: &key.namespace,
        controller_namespace,
    };
    let mut triggers = Vec::new();
    let mut problems = Vec::new();
    for (index, trigger) in trigger_list.iter().enumerate() {
        match context.trigger(key, index, trigger).await {
            Ok(resolved) => triggers.push(resolved),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(triggers)
    } else {
        Err(problems)
    }
}

struct Context<'a> {
    lookups: &'a dyn Lookups,
    namespace: &'a str,
    controller_namespace: &'a str,
}

/// How a metadata key gives its value.
enum Form {
    Inline,
    Env,
    File,
}

fn split_key(key: &str) -> (&str, Form) {
    if let Some(parameter) = key.strip_suffix("FromEnv").filter(|p| !p.is_empty()) {
        (parameter, Form::Env)
    } else if let Some(parameter) = key.strip_suffix("FromFile").filter(|p| !p.is_empty()) {
        (parameter, Form::File)
    } else {
        (key, Form::Inline)
    }
}

/// The value of `key` in a looked-up Secret or ConfigMap, or the problem naming what is
/// missing. `kind` is the kind's name and its reasons for a missing object and a missing key.
fn pick<T: Clone>(
    data: Result<Option<BTreeMap<String, T>>, LookupError>,
    (kind, not_found, key_not_found): (&str, &'static str, &'static str),
    name: &str,
    key: &str,
    field: &str,
) -> Result<T, Problem> {
    let data = data
        .map_err(|error| Problem::from_lookup(field, error))?
        .ok_or_else(|| Problem::new(field, not_found, format!("{kind} {name} not found")))?;
    data.get(key).cloned().ok_or_else(|| {
        Problem::new(
            field,
            key_not_found,
            format!("{kind} {name} has no key {key:?}"),
        )
    })
}

/// A file's text without the one trailing newline editors add.
pub(crate) fn trim_file_text(text: &str) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text).to_owned()
}

impl Context<'_> {
    async fn secret_text(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        field: &str,
    ) -> Result<String, Problem> {
        let data = self.lookups.secret(namespace, name).await;
        let bytes = pick(
            data,
            ("Secret", "SecretNotFound", "SecretKeyNotFound"),
            name,
            key,
            field,
        )?;
        String::from_utf8(bytes).map_err(|_| {
            Problem::new(
                field,
                "SecretNotText",
                format!("key {key:?} of Secret {name} is not UTF-8 text"),
            )
        })
    }

    async fn config_map_text(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        field: &str,
    ) -> Result<String, Problem> {
        let data = self.lookups.config_map(namespace, name).await;
        let kind = ("ConfigMap", "ConfigMapNotFound", "ConfigMapKeyNotFound");
        pick(data, kind, name, key, field)
    }

    async fn env_text(
        &self,
        container: Option<&str>,
        var: &str,
        field: &str,
    ) -> Result<String, Problem> {
        self.lookups
            .env(container, var)
            .await
            .map_err(|error| Problem::from_lookup(field, error))?
            .filter(|value| !value.is_empty())
            .ok_or_else(|| {
                Problem::new(
                    field,
                    "EnvNotSet",
                    format!("environment variable {var:?} is not set (or empty) for the target"),
                )
            })
    }

    async fn file_text(&self, path: &str, field: &str) -> Result<String, Problem> {
        self.lookups
            .file(path)
            .await
            .map(|text| trim_file_text(&text))
            .map_err(|error| Problem::from_lookup(field, error))
    }

    async fn trigger(
        &self,
        key: &ObjectKey,
        index: usize,
        trigger: &Trigger,
    ) -> Result<ResolvedTrigger, Problem> {
        let base = format!("spec.triggers[{index}]");
        let name = trigger.effective_name(index);
        let registered;
        let trigger = match (&trigger.scaler, trigger.trigger_type.as_deref()) {
            (None, Some(kind)) if !kind.is_empty() && !trigger.is_keda_external() => {
                let scaler = self.lookups.scaler_for_type(kind).ok_or_else(|| {
                    Problem::new(
                        format!("{base}.type"),
                        "UnregisteredScalerType",
                        format!(
                            "no scaler is registered for type {kind:?}: run one and register it \
                             (controller: --scaler {kind}=HOST:PORT or --scaler-registry FILE; \
                             ebb run: a `kind: Scaler` named {kind:?}), or set scaler.address"
                        ),
                    )
                })?;
                registered = Trigger {
                    scaler: Some(scaler),
                    ..trigger.clone()
                };
                &registered
            }
            _ => trigger,
        };
        let endpoint = trigger.endpoint(&name).map_err(|error| {
            Problem::new(base.clone(), "InvalidTriggerField", error.to_string())
        })?;
        let address_field = if trigger.scaler.is_some() {
            format!("{base}.scaler.address")
        } else {
            format!("{base}.metadata.scalerAddress")
        };
        check_address(&endpoint.uri())
            .map_err(|message| Problem::new(&address_field, "InvalidScalerAddress", message))?;

        let mut material = Material::default();
        if let Some(tls) = &endpoint.tls {
            material
                .add_pem_sources(self, tls, &format!("{base}.scaler.tls"))
                .await?;
        }
        let mut metadata = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (meta_key, value) in &trigger.metadata {
            let field = format!("{base}.metadata.{meta_key}");
            let (parameter, form) = split_key(meta_key);
            let tls_part = TlsPart::of_parameter(parameter);
            let resolved = match form {
                Form::Inline if tls_part.is_none() => {
                    metadata.insert(meta_key.clone(), value.clone());
                    continue;
                }
                Form::Inline => value.clone(),
                Form::Env => self.env_text(None, value, &field).await?,
                Form::File => self.file_text(value, &field).await?,
            };
            match tls_part {
                Some(part) => material.set(part, resolved, &field)?,
                None => {
                    secrets.insert(parameter.to_owned(), resolved);
                }
            }
        }
        if let Some(reference) = &trigger.authentication_ref {
            let field = format!("{base}.authenticationRef");
            for (parameter, value) in self.authentication(reference, &field).await? {
                match TlsPart::of_parameter(&parameter) {
                    Some(part) => material.set(part, value, &field)?,
                    None => {
                        secrets.insert(parameter, value);
                    }
                }
            }
        }
        let tls = material.into_settings(endpoint.tls.as_ref(), trigger.keda_unsafe_ssl())?;
        if tls.is_some() && endpoint.address.starts_with("http://") {
            return Err(Problem::new(
                address_field,
                "InvalidScalerAddress",
                "TLS is configured but the address is http://; use https:// or host:port",
            ));
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        Ok(ResolvedTrigger::from_endpoint(
            key, &name, index, &endpoint, tls, metadata, secrets,
        ))
    }

    /// Every parameter of the referenced authentication object, resolved.
    async fn authentication(
        &self,
        reference: &crate::spec::AuthenticationRef,
        field: &str,
    ) -> Result<Vec<(String, String)>, Problem> {
        let kind = reference.kind.unwrap_or_default();
        let source = self
            .lookups
            .authentication(self.namespace, kind, &reference.name)
            .await
            .map_err(|error| Problem::from_lookup(field, error))?
            .ok_or_else(|| {
                Problem::new(
                    field,
                    "AuthenticationNotFound",
                    format!("{kind:?} {:?} not found", reference.name),
                )
            })?;
        let namespace = if kind == AuthenticationKind::ClusterScalerAuthentication {
            self.controller_namespace
        } else {
            self.namespace
        };
        let mut values = Vec::new();
        for entry in &source.secrets {
            let value = self
                .secret_text(namespace, &entry.name, &entry.key, field)
                .await?;
            values.push((entry.parameter.clone(), value));
        }
        for entry in &source.config_maps {
            let value = self
                .config_map_text(namespace, &entry.name, &entry.key, field)
                .await?;
            values.push((entry.parameter.clone(), value));
        }
        for entry in &source.env {
            let value = self
                .env_text(entry.container_name.as_deref(), &entry.name, field)
                .await?;
            values.push((entry.parameter.clone(), value));
        }
        Ok(values)
    }
}
