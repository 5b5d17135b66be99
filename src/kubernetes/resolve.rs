//! The cluster's side of preparation: [`ClusterSources`] answers the shared preparation
//! step's [`Lookups`] from the API server: Secrets, ConfigMaps, authentication objects, and the
//! environment of the scale target's container (`envFrom` and `valueFrom` included). Files are
//! refused: a ScaledObject's author must not read the controller's own files. The rules
//! themselves live once in [`crate::runtime::prepare`]. Cluster reads go through
//! [`ClusterLookup`], so this is tested without an API server.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, EnvVar};
use tokio::sync::OnceCell;

pub use crate::runtime::prepare::{
    LookupError, Problem as ResolveProblem, SecretData, check_address,
};
use crate::runtime::prepare::{Lookups, ScalerRegistry, prepare_trigger_list, prepare_triggers};
use crate::runtime::{ObjectKey, ResolvedTrigger};
use crate::spec::{
    AuthenticationKind, AuthenticationSource, ScaleTargetRef, ScaledJobSpec, ScaledObjectSpec,
};

/// The cluster reads preparation needs. Implemented over the API by the controller and in
/// memory by tests. A missing object is `Ok(None)`; [`LookupError::Unavailable`] means the
/// API could not be read.
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

/// The cluster's answers to preparation's lookups for one object: reads in the object's
/// namespace, the environment from its scale target's pod template (read once).
pub struct ClusterSources<'a> {
    lookup: &'a dyn ClusterLookup,
    namespace: &'a str,
    target: &'a ScaleTargetRef,
    containers: OnceCell<Option<Vec<Container>>>,
    registry: Option<&'a ScalerRegistry>,
}

fn refused(reason: &'static str, message: String) -> LookupError {
    LookupError::Refused { reason, message }
}

impl<'a> ClusterSources<'a> {
    /// Lookups for an object in `namespace` that scales `target`.
    pub fn new(
        lookup: &'a dyn ClusterLookup,
        namespace: &'a str,
        target: &'a ScaleTargetRef,
    ) -> Self {
        Self {
            lookup,
            namespace,
            target,
            containers: OnceCell::new(),
            registry: None,
        }
    }

    /// The same lookups, with the controller's scaler registry for typed triggers.
    #[must_use]
    pub fn with_registry(mut self, registry: &'a ScalerRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Lookups whose environment comes from `containers` as given (a ScaledJob's Job
    /// template) instead of a scale target read from the cluster.
    #[must_use]
    pub fn with_containers(mut self, containers: Vec<Container>) -> Self {
        self.containers = OnceCell::new_with(Some(Some(containers)));
        self
    }

    fn target_name(&self) -> String {
        format!(
            "{} {}/{}",
            self.target.kind(),
            self.namespace,
            self.target.name
        )
    }

    async fn container(&self, name: Option<&str>) -> Result<Container, LookupError> {
        let containers = self
            .containers
            .get_or_try_init(|| {
                self.lookup.target_containers(
                    self.namespace,
                    self.target.api_version(),
                    self.target.kind(),
                    &self.target.name,
                )
            })
            .await?;
        let target = self.target_name();
        let Some(containers) = containers else {
            return Err(refused(
                "TargetNotFound",
                format!("{target} not found; its environment is needed"),
            ));
        };
        let preferred = name
            .map(str::to_owned)
            .or_else(|| self.target.env_source_container_name.clone());
        match &preferred {
            Some(name) => containers.iter().find(|c| &c.name == name).ok_or_else(|| {
                refused(
                    "ContainerNotFound",
                    format!("{target} has no container {name:?}"),
                )
            }),
            None => containers
                .first()
                .ok_or_else(|| refused("ContainerNotFound", format!("{target} has no containers"))),
        }
        .cloned()
    }

    /// The value of `key` in Secret or ConfigMap data; a missing object or key is an error
    /// unless `optional`.
    fn pick(
        data: Option<BTreeMap<String, String>>,
        what: &str,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, LookupError> {
        match data.map(|data| data.get(key).cloned()) {
            Some(Some(value)) => Ok(Some(value)),
            _ if optional => Ok(None),
            Some(None) => Err(refused(
                "KeyNotFound",
                format!("{what} {name} has no key {key:?}"),
            )),
            None => Err(refused("NotFound", format!("{what} {name} not found"))),
        }
    }

    async fn secret_text(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, LookupError> {
        // Keys that are not text cannot be environment values; they are left out.
        Ok(self.lookup.secret(self.namespace, name).await?.map(|data| {
            data.into_iter()
                .filter_map(|(key, bytes)| String::from_utf8(bytes).ok().map(|text| (key, text)))
                .collect()
        }))
    }

    async fn env_entry_value(&self, entry: &EnvVar) -> Result<Option<String>, LookupError> {
        if let Some(value) = &entry.value {
            return Ok(Some(value.clone()));
        }
        let Some(source) = &entry.value_from else {
            return Ok(None);
        };
        if let Some(secret) = &source.secret_key_ref {
            let data = self.secret_text(&secret.name).await?;
            let optional = secret.optional == Some(true);
            return Self::pick(data, "Secret", &secret.name, &secret.key, optional);
        }
        if let Some(config_map) = &source.config_map_key_ref {
            let data = self
                .lookup
                .config_map(self.namespace, &config_map.name)
                .await?;
            let optional = config_map.optional == Some(true);
            return Self::pick(
                data,
                "ConfigMap",
                &config_map.name,
                &config_map.key,
                optional,
            );
        }
        // fieldRef / resourceFieldRef depend on the pod; they cannot be resolved here.
        Ok(None)
    }

    async fn env_value(
        &self,
        container: Option<&str>,
        var: &str,
    ) -> Result<Option<String>, LookupError> {
        let container = self.container(container).await?;
        // Explicit env entries win over envFrom, and later entries over earlier ones.
        if let Some(entry) = container.env.iter().flatten().rev().find(|e| e.name == var) {
            return self.env_entry_value(entry).await;
        }
        for source in container.env_from.iter().flatten().rev() {
            let prefix = source.prefix.as_deref().unwrap_or("");
            let Some(key) = var.strip_prefix(prefix) else {
                continue;
            };
            if let Some(secret) = &source.secret_ref {
                let data = self.secret_text(&secret.name).await?;
                if let Some(value) = data.and_then(|d| d.get(key).cloned()) {
                    return Ok(Some(value));
                }
            }
            if let Some(config_map) = &source.config_map_ref {
                let data = self
                    .lookup
                    .config_map(self.namespace, &config_map.name)
                    .await?;
                if let Some(value) = data.and_then(|d| d.get(key).cloned()) {
                    return Ok(Some(value));
                }
            }
        }
        Ok(None)
    }
}

impl Lookups for ClusterSources<'_> {
    fn secret<'b>(
        &'b self,
        namespace: &'b str,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<SecretData>, LookupError>> {
        self.lookup.secret(namespace, name)
    }

    fn config_map<'b>(
        &'b self,
        namespace: &'b str,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<BTreeMap<String, String>>, LookupError>> {
        self.lookup.config_map(namespace, name)
    }

    fn authentication<'b>(
        &'b self,
        namespace: &'b str,
        kind: AuthenticationKind,
        name: &'b str,
    ) -> BoxFuture<'b, Result<Option<AuthenticationSource>, LookupError>> {
        self.lookup.authentication(namespace, kind, name)
    }

    fn env<'b>(
        &'b self,
        container: Option<&'b str>,
        var: &'b str,
    ) -> BoxFuture<'b, Result<Option<String>, LookupError>> {
        Box::pin(self.env_value(container, var))
    }

    fn scaler_for_type(&self, trigger_type: &str) -> Option<crate::spec::ScalerRef> {
        self.registry?.get(trigger_type).cloned()
    }

    fn file<'b>(&'b self, _path: &'b str) -> BoxFuture<'b, Result<String, LookupError>> {
        Box::pin(std::future::ready(Err(refused(
            "FileNotAllowed",
            "files are read only by `ebb run`; in a cluster, put the value in a Secret and use \
             authenticationRef (or scaler.tls.caSecretRef / clientCertSecretRef)"
                .to_owned(),
        ))))
    }
}

/// Prepares every trigger of a ScaledJob in the cluster: the same path as ScaledObjects',
/// with `xFromEnv` read from the Job template's containers and a trigger without an address
/// calling the scaler `registry` names for its type.
pub async fn resolve_job_triggers(
    lookup: &dyn ClusterLookup,
    registry: &ScalerRegistry,
    key: &ObjectKey,
    spec: &ScaledJobSpec,
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<ResolveProblem>> {
    let target = ScaleTargetRef {
        api_version: Some("batch/v1".to_owned()),
        kind: Some("Job".to_owned()),
        name: format!("{} (template)", key.name),
        env_source_container_name: spec.env_source_container_name.clone(),
    };
    let containers = spec
        .job_target_ref
        .template
        .spec
        .as_ref()
        .map(|pod| pod.containers.clone())
        .unwrap_or_default();
    let sources = ClusterSources::new(lookup, &key.namespace, &target)
        .with_containers(containers)
        .with_registry(registry);
    prepare_trigger_list(&sources, key, &spec.triggers, controller_namespace).await
}

/// Prepares every trigger of an object in the cluster (see [`prepare_triggers`]), with no
/// scaler registry.
pub async fn resolve_triggers(
    lookup: &dyn ClusterLookup,
    key: &ObjectKey,
    spec: &ScaledObjectSpec,
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<ResolveProblem>> {
    let empty = ScalerRegistry::new();
    resolve_registered_triggers(lookup, &empty, key, spec, controller_namespace).await
}

/// [`resolve_triggers`] with the controller's registry: a trigger with a `type` and no
/// address calls the scaler registered for that type.
pub async fn resolve_registered_triggers(
    lookup: &dyn ClusterLookup,
    registry: &ScalerRegistry,
    key: &ObjectKey,
    spec: &ScaledObjectSpec,
    controller_namespace: &str,
) -> Result<Vec<ResolvedTrigger>, Vec<ResolveProblem>> {
    let sources =
        ClusterSources::new(lookup, &key.namespace, &spec.scale_target_ref).with_registry(registry);
    prepare_triggers(&sources, key, spec, controller_namespace).await
}
