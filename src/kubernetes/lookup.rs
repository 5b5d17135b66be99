//! [`ClusterLookup`] over the Kubernetes API, with a cache that lives for one resolution pass
//! (so a thousand objects sharing one Secret cost one GET).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use kube::api::{Api, DynamicObject};

use super::resolve::{ClusterLookup, LookupError};
use super::target::TargetResolver;
use crate::spec::AuthenticationKind;
use crate::spec::{AuthenticationSource, ClusterScalerAuthentication, ScalerAuthentication};

type Cache<T> = Mutex<HashMap<(String, String), Option<T>>>;

/// Reads Secrets, ConfigMaps, authentication objects and targets through the API.
pub struct KubeLookup {
    client: kube::Client,
    targets: TargetResolver,
    secrets: Cache<BTreeMap<String, Vec<u8>>>,
    config_maps: Cache<BTreeMap<String, String>>,
    containers: Cache<Vec<Container>>,
}

fn lookup_error(error: kube::Error) -> LookupError {
    LookupError::Unavailable(error.to_string())
}

async fn get_opt<K>(api: Api<K>, name: &str) -> Result<Option<K>, LookupError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(lookup_error)
}

impl KubeLookup {
    /// A lookup with an empty cache.
    pub fn new(client: kube::Client, targets: TargetResolver) -> Self {
        Self {
            client,
            targets,
            secrets: Mutex::default(),
            config_maps: Mutex::default(),
            containers: Mutex::default(),
        }
    }

    fn cached<T: Clone>(cache: &Cache<T>, namespace: &str, name: &str) -> Option<Option<T>> {
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn remember<T: Clone>(cache: &Cache<T>, namespace: &str, name: &str, value: &Option<T>) {
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((namespace.to_owned(), name.to_owned()), value.clone());
    }
}

impl ClusterLookup for KubeLookup {
    fn secret<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, Vec<u8>>>, LookupError>> {
        Box::pin(async move {
            if let Some(hit) = Self::cached(&self.secrets, namespace, name) {
                return Ok(hit);
            }
            let secret: Option<Secret> =
                get_opt(Api::namespaced(self.client.clone(), namespace), name).await?;
            let data = secret.map(|secret| {
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(key, bytes)| (key, bytes.0))
                    .collect()
            });
            Self::remember(&self.secrets, namespace, name, &data);
            Ok(data)
        })
    }

    fn config_map<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<BTreeMap<String, String>>, LookupError>> {
        Box::pin(async move {
            if let Some(hit) = Self::cached(&self.config_maps, namespace, name) {
                return Ok(hit);
            }
            let map: Option<ConfigMap> =
                get_opt(Api::namespaced(self.client.clone(), namespace), name).await?;
            let data = map.map(|map| map.data.unwrap_or_default());
            Self::remember(&self.config_maps, namespace, name, &data);
            Ok(data)
        })
    }

    fn authentication<'a>(
        &'a self,
        namespace: &'a str,
        kind: AuthenticationKind,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<AuthenticationSource>, LookupError>> {
        Box::pin(async move {
            match kind {
                AuthenticationKind::ScalerAuthentication => {
                    let found: Option<ScalerAuthentication> =
                        get_opt(Api::namespaced(self.client.clone(), namespace), name).await?;
                    Ok(found.map(|auth| auth.spec.into()))
                }
                AuthenticationKind::ClusterScalerAuthentication => {
                    let found: Option<ClusterScalerAuthentication> =
                        get_opt(Api::all(self.client.clone()), name).await?;
                    Ok(found.map(|auth| auth.spec.into()))
                }
            }
        })
    }

    fn target_containers<'a>(
        &'a self,
        namespace: &'a str,
        api_version: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<Container>>, LookupError>> {
        Box::pin(async move {
            let cache_name = format!("{api_version}/{kind}/{name}");
            if let Some(hit) = Self::cached(&self.containers, namespace, &cache_name) {
                return Ok(hit);
            }
            let resource = self
                .targets
                .resource(api_version, kind)
                .await
                .map_err(|e| LookupError::Unavailable(e.to_string()))?;
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), namespace, &resource);
            let object = get_opt(api, name).await?;
            let containers = match object {
                None => None,
                Some(object) => {
                    let containers = object
                        .data
                        .pointer("/spec/template/spec/containers")
                        .cloned();
                    Some(
                        containers
                            .map(serde_json::from_value::<Vec<Container>>)
                            .transpose()
                            .map_err(|e| {
                                LookupError::Unavailable(format!(
                                    "{kind} {namespace}/{name}: bad pod template: {e}"
                                ))
                            })?
                            .unwrap_or_default(),
                    )
                }
            };
            Self::remember(&self.containers, namespace, &cache_name, &containers);
            Ok(containers)
        })
    }
}
