//! Turning a ScaledObject's triggers into [`ResolvedTrigger`]s: credentials from
//! ScalerAuthentication (Secret and ConfigMap keys, container env), KEDA's `xFromEnv` keys from
//! the target's container env, and TLS material from Secrets. All cluster reads go through
//! [`ClusterLookup`], so this logic is tested without an API server.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::auth::AuthenticationSource;
use crate::client::TlsSettings as ClientTls;
use crate::runtime::{ObjectKey, ResolvedTrigger};
use crate::spec::{AuthenticationKind, PemSource, ScaledObjectSpec, TlsSettings, Trigger};

/// Why a read from the cluster failed (a missing object is `Ok(None)`, not an error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// The keys of a Secret with their raw values.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// The cluster reads resolution needs. Implemented over the API by the controller and in
/// memory by tests.
pub trait ClusterLookup: Send + Sync {
    /// The decoded data of a Secret, `None` when it does not exist.
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<SecretData>, LookupError>>;

    /// The data of a ConfigMap, `None` when it does not exist.
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

    /// The containers of the scale target's pod template (`spec.template.spec.containers`),
    /// `None` when the target does not exist.
    fn target_containers<'a>(
        &'a self,
        namespace: &'a str,
        api_version: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<Container>>, LookupError>>;
}

/// Why a trigger cannot be resolved. `field` names the ScaledObject field; messages never
/// contain secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveProblem {
    /// The field, e.g. `spec.triggers[0].authenticationRef`.
    pub field: String,
    /// CamelCase reason for the Ready condition.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
    /// The cluster could not be read: try again later rather than blame the object.
    pub transient: bool,
}

impl std::fmt::Display for ResolveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Keys of KEDA's external trigger metadata that carry private material and are never sent.
const PRIVATE_METADATA: [&str; 1] = ["tlsClientKey"];

struct Context<'a> {
    lookup: &'a dyn ClusterLookup,
    namespace: &'a str,
    spec: &'a ScaledObjectSpec,
    containers: Option<Option<Vec<Container>>>,
}

fn problem(field: String, reason: &'static str, message: String) -> ResolveProblem {
    ResolveProblem {
        field,
        reason,
        message,
        transient: false,
    }
}

fn transient(field: String, error: LookupError) -> ResolveProblem {
    ResolveProblem {
        field,
        reason: "LookupFailed",
        message: format!("reading the cluster failed: {error}"),
        transient: true,
    }
}

impl Context<'_> {
    async fn containers(&mut self, field: &str) -> Result<Option<&Vec<Container>>, ResolveProblem> {
        if self.containers.is_none() {
            let target = &self.spec.scale_target_ref;
            let containers = self
                .lookup
                .target_containers(
                    self.namespace,
                    target.api_version(),
                    target.kind(),
                    &target.name,
                )
                .await
                .map_err(|error| transient(field.to_owned(), error))?;
            self.containers = Some(containers);
        }
        Ok(self.containers.as_ref().and_then(Option::as_ref))
    }

    async fn secret_text(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        field: &str,
    ) -> Result<String, ResolveProblem> {
        let data = self
            .lookup
            .secret(namespace, name)
            .await
            .map_err(|error| transient(field.to_owned(), error))?
            .ok_or_else(|| {
                problem(
                    field.to_owned(),
                    "SecretNotFound",
                    format!("Secret {namespace}/{name} not found"),
                )
            })?;
        let bytes = data.get(key).ok_or_else(|| {
            problem(
                field.to_owned(),
                "SecretKeyNotFound",
                format!("Secret {namespace}/{name} has no key {key:?}"),
            )
        })?;
        String::from_utf8(bytes.clone()).map_err(|_| {
            problem(
                field.to_owned(),
                "SecretNotText",
                format!("key {key:?} of Secret {namespace}/{name} is not UTF-8 text"),
            )
        })
    }

    async fn config_map_text(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
        field: &str,
    ) -> Result<String, ResolveProblem> {
        let data = self
            .lookup
            .config_map(namespace, name)
            .await
            .map_err(|error| transient(field.to_owned(), error))?
            .ok_or_else(|| {
                problem(
                    field.to_owned(),
                    "ConfigMapNotFound",
                    format!("ConfigMap {namespace}/{name} not found"),
                )
            })?;
        data.get(key).cloned().ok_or_else(|| {
            problem(
                field.to_owned(),
                "ConfigMapKeyNotFound",
                format!("ConfigMap {namespace}/{name} has no key {key:?}"),
            )
        })
    }

    /// The value of environment variable `var` in the chosen container; `None` when unset.
    async fn env_value(
        &mut self,
        container_name: Option<&str>,
        var: &str,
        field: &str,
    ) -> Result<Option<String>, ResolveProblem> {
        let preferred = container_name
            .map(str::to_owned)
            .or_else(|| self.spec.scale_target_ref.env_source_container_name.clone());
        let target = format!(
            "{} {}/{}",
            self.spec.scale_target_ref.kind(),
            self.namespace,
            self.spec.scale_target_ref.name
        );
        let Some(containers) = self.containers(field).await? else {
            return Err(problem(
                field.to_owned(),
                "TargetNotFound",
                format!("{target} not found; its env resolves {field}"),
            ));
        };
        let container = match &preferred {
            Some(name) => containers.iter().find(|c| &c.name == name).ok_or_else(|| {
                problem(
                    field.to_owned(),
                    "ContainerNotFound",
                    format!("{target} has no container {name:?}"),
                )
            })?,
            None => containers.first().ok_or_else(|| {
                problem(
                    field.to_owned(),
                    "ContainerNotFound",
                    format!("{target} has no containers"),
                )
            })?,
        }
        .clone();
        // Explicit env entries win over envFrom, and later entries over earlier ones.
        if let Some(entry) = container.env.iter().flatten().rev().find(|e| e.name == var) {
            return self.env_entry_value(entry, field).await;
        }
        for source in container.env_from.iter().flatten().rev() {
            let prefix = source.prefix.as_deref().unwrap_or("");
            let Some(key) = var.strip_prefix(prefix) else {
                continue;
            };
            if let Some(secret) = &source.secret_ref {
                let data = self
                    .lookup
                    .secret(self.namespace, &secret.name)
                    .await
                    .map_err(|error| transient(field.to_owned(), error))?;
                if let Some(bytes) = data.and_then(|d| d.get(key).cloned()) {
                    return Ok(String::from_utf8(bytes).ok());
                }
            }
            if let Some(config_map) = &source.config_map_ref {
                let data = self
                    .lookup
                    .config_map(self.namespace, &config_map.name)
                    .await
                    .map_err(|error| transient(field.to_owned(), error))?;
                if let Some(value) = data.and_then(|d| d.get(key).cloned()) {
                    return Ok(Some(value));
                }
            }
        }
        Ok(None)
    }

    async fn env_entry_value(
        &self,
        entry: &EnvVar,
        field: &str,
    ) -> Result<Option<String>, ResolveProblem> {
        if let Some(value) = &entry.value {
            return Ok(Some(value.clone()));
        }
        let Some(source) = &entry.value_from else {
            return Ok(None);
        };
        if let Some(secret) = &source.secret_key_ref {
            return match self
                .secret_text(self.namespace, &secret.name, &secret.key, field)
                .await
            {
                Ok(value) => Ok(Some(value)),
                Err(error) if error.transient => Err(error),
                Err(_) if secret.optional == Some(true) => Ok(None),
                Err(error) => Err(error),
            };
        }
        if let Some(config_map) = &source.config_map_key_ref {
            return match self
                .config_map_text(self.namespace, &config_map.name, &config_map.key, field)
                .await
            {
                Ok(value) => Ok(Some(value)),
                Err(error) if error.transient => Err(error),
                Err(_) if config_map.optional == Some(true) => Ok(None),
                Err(error) => Err(error),
            };
        }
        // fieldRef / resourceFieldRef depend on the pod; they cannot be resolved here.
        Ok(None)
    }

    async fn pem(
        &self,
        source: &Option<PemSource>,
        field: &str,
    ) -> Result<Option<String>, ResolveProblem> {
        match source {
            None => Ok(None),
            Some(PemSource::Inline(text)) => Ok(Some(text.clone())),
            Some(PemSource::Secret(secret)) => {
                let key = secret.key.as_deref().unwrap_or("ca.crt");
                self.secret_text(self.namespace, &secret.name, key, field)
                    .await
                    .map(Some)
            }
            Some(PemSource::File(_)) => Err(problem(
                field.to_owned(),
                "InvalidTriggerField",
                "file paths are for `ebb run`; in Kubernetes use a Secret reference".to_owned(),
            )),
        }
    }

    async fn tls(&self, tls: &TlsSettings, field: &str) -> Result<ClientTls, ResolveProblem> {
        Ok(ClientTls {
            ca_pem: self.pem(&tls.ca, &format!("{field}.caSecretRef")).await?,
            client_cert_pem: self
                .pem(&tls.client_cert, &format!("{field}.clientCertSecretRef"))
                .await?,
            client_key_pem: self
                .pem(&tls.client_key, &format!("{field}.clientCertSecretRef"))
                .await?,
            server_name: tls.server_name.clone(),
            insecure_skip_verify: tls.insecure_skip_verify,
        })
    }

    async fn trigger(
        &mut self,
        key: &ObjectKey,
        index: usize,
        trigger: &Trigger,
        controller_namespace: &str,
    ) -> Result<ResolvedTrigger, ResolveProblem> {
        let base = format!("spec.triggers[{index}]");
        let name = trigger.effective_name(index);
        let endpoint = trigger
            .endpoint(&name)
            .map_err(|error| problem(base.clone(), "InvalidTriggerField", error.to_string()))?;
        check_address(&endpoint.uri()).map_err(|message| {
            problem(
                format!("{base}.scaler.address"),
                "InvalidScalerAddress",
                message,
            )
        })?;
        let tls = match &endpoint.tls {
            Some(tls) => Some(self.tls(tls, &format!("{base}.scaler.tls")).await?),
            None => None,
        };
        let keda_form = trigger.is_keda_external();
        let mut metadata = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (meta_key, value) in &trigger.metadata {
            if PRIVATE_METADATA.contains(&meta_key.as_str()) {
                continue;
            }
            let Some(parameter) = meta_key.strip_suffix("FromEnv").filter(|p| !p.is_empty()) else {
                metadata.insert(meta_key.clone(), value.clone());
                continue;
            };
            let field = format!("{base}.metadata.{meta_key}");
            // Unset or empty: the key is dropped, as KEDA does.
            let Some(resolved) = self
                .env_value(None, value, &field)
                .await?
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            if keda_form {
                // KEDA's rule: the key keeps its name and carries the value.
                metadata.insert(meta_key.clone(), resolved);
            } else {
                secrets.insert(parameter.to_owned(), resolved);
            }
        }
        if let Some(reference) = &trigger.authentication_ref {
            let field = format!("{base}.authenticationRef");
            let kind = reference.kind.unwrap_or_default();
            let source = self
                .lookup
                .authentication(self.namespace, kind, &reference.name)
                .await
                .map_err(|error| transient(field.clone(), error))?
                .ok_or_else(|| {
                    problem(
                        field.clone(),
                        "AuthenticationNotFound",
                        format!("{kind:?} {:?} not found", reference.name),
                    )
                })?;
            let auth_namespace = if kind == AuthenticationKind::ClusterScalerAuthentication {
                controller_namespace
            } else {
                self.namespace
            };
            for entry in &source.secrets {
                let value = self
                    .secret_text(auth_namespace, &entry.name, &entry.key, &field)
                    .await?;
                secrets.insert(entry.parameter.clone(), value);
            }
            for entry in &source.config_maps {
                let value = self
                    .config_map_text(auth_namespace, &entry.name, &entry.key, &field)
                    .await?;
                secrets.insert(entry.parameter.clone(), value);
            }
            for entry in &source.env {
                let value = self
                    .env_value(entry.container_name.as_deref(), &entry.name, &field)
                    .await?;
                let value = value.filter(|v| !v.is_empty()).ok_or_else(|| {
                    problem(
                        field.clone(),
                        "EnvNotSet",
                        format!(
                            "environment variable {:?} (parameter {:?}) is not set on the target",
                            entry.name, entry.parameter
                        ),
                    )
                })?;
                secrets.insert(entry.parameter.clone(), value);
            }
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        Ok(ResolvedTrigger::from_endpoint(
            key, &name, index, &endpoint, tls, metadata, secrets,
        ))
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

/// Resolves every trigger of an object. The first problem of each trigger is reported; a
/// transient problem (the cluster could not be read) means "try again later".
pub async fn resolve_triggers(
    lookup: &dyn ClusterLookup,
    key: &ObjectKey,
    spec: &ScaledObjectSpec,
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<ResolveProblem>> {
    let mut context = Context {
        lookup,
        namespace: &key.namespace,
        spec,
        containers: None,
    };
    let mut triggers = Vec::new();
    let mut problems = Vec::new();
    for (index, trigger) in spec.triggers.iter().enumerate() {
        match context
            .trigger(key, index, trigger, controller_namespace)
            .await
        {
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
