//! An in-process, stateful fake of the Kubernetes API server, for tests. No real API server
//! can run on the test machines, so this one speaks the real HTTP/JSON API for everything
//! ebb's controller touches: discovery, list (with pagination) and watch (with
//! resourceVersion, bookmarks and 410 Gone), get/create/update/patch/delete, the `/status`
//! and `/scale` subresources with the real bodies and content types, and 409 on conflicts.
//! `kube::Client` reaches it over plain HTTP exactly as it would reach a real cluster.
//!
//! Deliberate simplifications: no admission or CRD schema validation, no field ownership for
//! server-side apply, no finalizers, strategic merge only for the list fields ebb's objects
//! have (see `patch`). Workload types simulate their own controller: when desired replicas
//! change, a second write makes the observed replicas follow, as the Deployment controller
//! would.

#![allow(dead_code)]

mod patch;
mod resources;
mod select;
mod store;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use patch::PatchKind;
use resources::Route;
#[allow(unused_imports)]
pub use resources::{ResourceType, ScalePaths};
use select::Selectors;
pub use store::ApiError;
use store::{Key, Store};

/// One request as the fake received it, for tests that assert exact API calls.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// The query parameters.
    pub query: HashMap<String, String>,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The body parsed as JSON, if it was JSON.
    pub body: Option<Value>,
    /// HTTP status of the answer.
    pub status: u16,
}

/// A failure to inject: the next `times` requests matching method and path suffix fail.
#[derive(Debug, Clone)]
pub struct InjectedFailure {
    /// Method to match.
    pub method: Method,
    /// Path suffix to match, e.g. `/scale`.
    pub path_suffix: String,
    /// HTTP status to answer with.
    pub code: u16,
    /// How many requests to fail.
    pub times: usize,
}

/// State shared by the server task and the test.
pub struct Shared {
    store: Mutex<Store>,
    notify: tokio::sync::watch::Sender<u64>,
    requests: Mutex<Vec<RecordedRequest>>,
    failures: Mutex<Vec<InjectedFailure>>,
    bookmark_interval: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self, resource_version: u64) {
        self.notify.send_replace(resource_version);
    }
}

/// A running fake API server; it stops when dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Starts a server with the default types on 127.0.0.1, on a free port.
    pub async fn start() -> Self {
        Self::start_with(ResourceType::defaults(), Duration::from_secs(1)).await
    }

    /// Starts a server serving `types`, sending watch bookmarks every `bookmark_interval`.
    pub async fn start_with(types: Vec<ResourceType>, bookmark_interval: Duration) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(types)),
            notify,
            requests: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            bookmark_interval,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let address = listener.local_addr().expect("local address");
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            shared,
            address,
            task,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A `kube::Client` talking to this server over HTTP.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().expect("fake URL parses"));
        kube::Client::try_from(config).expect("kube client for the fake API server")
    }

    fn type_index(store: &Store, api_version: &str, kind: &str) -> usize {
        store
            .types
            .iter()
            .position(|t| t.api_version() == api_version && t.kind == kind)
            .unwrap_or_else(|| panic!("the fake API server does not serve {api_version} {kind}"))
    }

    fn key(store: &Store, api_version: &str, kind: &str, namespace: &str, name: &str) -> Key {
        let index = Self::type_index(store, api_version, kind);
        let namespace = if store.types[index].namespaced {
            namespace
        } else {
            ""
        };
        (index, namespace.to_string(), name.to_string())
    }

    /// Creates an object directly (test setup), as a POST would; `object` names its
    /// apiVersion, kind and namespace. Schemas are not checked, so undecodable objects can
    /// be stored, as with an older CRD version or a schema that preserves unknown fields.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut store = self.shared.lock();
        let index = Self::type_index(&store, &api_version, &kind);
        let namespace =
            namespace.or_else(|| store.types[index].namespaced.then(|| "default".to_string()));
        let created = store.create(index, namespace.as_deref(), object);
        let version = store.resource_version;
        drop(store);
        self.shared.notify(version);
        created
    }

    /// Applies a merge patch to an object or (with `status_only`) its status, as a client would.
    pub fn merge_patch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        patch: &Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let mut store = self.shared.lock();
        let key = Self::key(&store, api_version, kind, namespace, name);
        let result = store.patch(&key, PatchKind::Merge, patch, status_only);
        let version = store.resource_version;
        drop(store);
        self.shared.notify(version);
        result
    }

    /// Deletes an object.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut store = self.shared.lock();
        let key = Self::key(&store, api_version, kind, namespace, name);
        let result = store.delete(&key);
        let version = store.resource_version;
        drop(store);
        self.shared.notify(version);
        result
    }

    /// The stored object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let store = self.shared.lock();
        let key = Self::key(&store, api_version, kind, namespace, name);
        store.objects.get(&key).cloned()
    }

    /// Every stored object of a type.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let store = self.shared.lock();
        let index = Self::type_index(&store, api_version, kind);
        store.list(index, None)
    }

    /// `spec.replicas` of an apps/v1 Deployment.
    pub fn deployment_replicas(&self, namespace: &str, name: &str) -> Option<i64> {
        self.get("apps/v1", "Deployment", namespace, name)?
            .pointer("/spec/replicas")?
            .as_i64()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().resource_version
    }

    /// Forgets history before now: watches from any older resourceVersion get 410 Gone.
    pub fn compact(&self) {
        let mut store = self.shared.lock();
        store.compacted_below = store.resource_version;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Makes matching requests fail.
    pub fn inject_failure(&self, failure: InjectedFailure) {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }
}

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let path = uri.path().to_string();
    let injected = {
        let mut failures = shared.failures.lock().unwrap_or_else(|p| p.into_inner());
        let hit = failures
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.ends_with(&f.path_suffix));
        hit.map(|f| {
            f.times -= 1;
            f.code
        })
    };
    let response = match injected {
        Some(code) => error_response(&ApiError {
            code,
            reason: "InternalError",
            message: "injected failure".into(),
        }),
        None => dispatch(
            &shared,
            &method,
            &path,
            &query,
            content_type.as_deref(),
            &body,
            parsed_body.as_ref(),
        ),
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(RecordedRequest {
            method,
            path,
            query,
            content_type,
            body: parsed_body,
            status: response.status().as_u16(),
        });
    response
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    content_type: Option<&str>,
    raw_body: &Bytes,
    body: Option<&Value>,
) -> Response {
    let not_found = || {
        error_response(&ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
        })
    };
    let route = {
        let store = shared.lock();
        resources::route(&store.types, path)
    };
    let Some(route) = route else {
        return not_found();
    };
    let (type_index, namespace, name, subresource) = match route {
        Route::Discovery(discovery) if method == Method::GET => {
            let store = shared.lock();
            return json_response(
                200,
                &resources::discovery_document(&store.types, &discovery),
            );
        }
        Route::Discovery(_) => return not_found(),
        Route::Resource {
            type_index,
            namespace,
            name,
            subresource,
        } => (type_index, namespace, name, subresource),
    };
    let need_body = || -> Result<Value, ApiError> {
        if !raw_body.is_empty()
            && body.is_none()
            && content_type.is_some_and(|c| c.contains("yaml"))
        {
            return serde_norway::from_slice(raw_body)
                .map_err(|e| ApiError::bad_request(e.to_string()));
        }
        body.cloned()
            .ok_or_else(|| ApiError::bad_request("the request body is not valid JSON"))
    };
    let result: Result<(u16, Value), ApiError> = (|| {
        let Some(name) = name else {
            return match *method {
                Method::GET if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                    Err(ApiError {
                        code: 0,
                        reason: "Watch",
                        message: String::new(),
                    })
                }
                Method::GET => {
                    list(shared, type_index, namespace.as_deref(), query).map(|v| (200, v))
                }
                Method::POST => {
                    let mut store = shared.lock();
                    store
                        .create(type_index, namespace.as_deref(), need_body()?)
                        .map(|v| (201, v))
                }
                _ => Err(ApiError {
                    code: 405,
                    reason: "MethodNotAllowed",
                    message: format!("{method} is not supported on a collection"),
                }),
            };
        };
        let key: Key = (type_index, namespace.clone().unwrap_or_default(), name);
        let mut store = shared.lock();
        let patch_kind = || {
            content_type.and_then(PatchKind::from_content_type).ok_or(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"),
            })
        };
        let apply_needs_manager = |kind: PatchKind| {
            if kind == PatchKind::Apply && !query.contains_key("fieldManager") {
                Err(ApiError::bad_request(
                    "PATCH requests with apply patches require a fieldManager",
                ))
            } else {
                Ok(kind)
            }
        };
        match (method.clone(), subresource.as_deref()) {
            (Method::GET, Some("scale")) => store.get_scale(&key).map(|v| (200, v)),
            (Method::GET, _) => store.get(&key).map(|v| (200, v)),
            (Method::PUT, Some("scale")) => store
                .write_scale(&key, None, &need_body()?)
                .map(|v| (200, v)),
            (Method::PUT, sub) => store
                .update(&key, need_body()?, sub == Some("status"))
                .map(|v| (200, v)),
            (Method::PATCH, Some("scale")) => {
                let kind = apply_needs_manager(patch_kind()?)?;
                store
                    .write_scale(&key, Some(kind), &need_body()?)
                    .map(|v| (200, v))
            }
            (Method::PATCH, sub) => {
                let kind = apply_needs_manager(patch_kind()?)?;
                let created = kind == PatchKind::Apply && !store.objects.contains_key(&key);
                store
                    .patch(&key, kind, &need_body()?, sub == Some("status"))
                    .map(|v| (if created { 201 } else { 200 }, v))
            }
            (Method::DELETE, None) => store.delete(&key).map(|v| (200, v)),
            _ => Err(ApiError {
                code: 405,
                reason: "MethodNotAllowed",
                message: format!("{method} is not supported here"),
            }),
        }
    })();
    let version = shared.lock().resource_version;
    shared.notify(version);
    match result {
        Ok((code, value)) => json_response(code, &value),
        Err(error) if error.code == 0 => match watch_request(type_index, namespace, query) {
            Ok(request) => Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::TRANSFER_ENCODING, "chunked")
                .body(watch::stream(shared.clone(), request))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            Err(error) => error_response(&error),
        },
        Err(error) => error_response(&error),
    }
}

fn watch_request(
    type_index: usize,
    namespace: Option<String>,
    query: &HashMap<String, String>,
) -> Result<watch::WatchRequest, ApiError> {
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true" || v == "1");
    let timeout = match query.get("timeoutSeconds") {
        Some(text) => {
            Some(Duration::from_secs(text.parse().map_err(|_| {
                ApiError::bad_request("timeoutSeconds must be a number")
            })?))
        }
        None => None,
    };
    Ok(watch::WatchRequest {
        type_index,
        namespace,
        resource_version: query.get("resourceVersion").cloned(),
        selectors: Selectors::parse(
            query.get("labelSelector").map(String::as_str),
            query.get("fieldSelector").map(String::as_str),
        )?,
        bookmarks: flag("allowWatchBookmarks"),
        send_initial_events: flag("sendInitialEvents"),
        timeout,
    })
}

fn list(
    shared: &Arc<Shared>,
    type_index: usize,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let selectors = Selectors::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )?;
    let store = shared.lock();
    let ty = &store.types[type_index];
    let items: Vec<Value> = store
        .list(type_index, namespace)
        .into_iter()
        .filter(|o| selectors.matches(o))
        .collect();
    // A continue token is "offset:resourceVersion"; the list answers at the version of its
    // first page, as the real server does.
    let (offset, version) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (offset, version) = token
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let offset = offset
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request("invalid continue token"))?;
            (offset, version.to_string())
        }
        None => (0, store.resource_version.to_string()),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let end = limit.map_or(items.len(), |l| (offset + l).min(items.len()));
    let page: Vec<Value> = items
        .get(offset.min(items.len())..end)
        .unwrap_or_default()
        .to_vec();
    let mut metadata = json!({"resourceVersion": version});
    if end < items.len() {
        metadata["continue"] = json!(format!("{end}:{version}"));
        metadata["remainingItemCount"] = json!(items.len() - end);
    }
    Ok(json!({
        "kind": format!("{}List", ty.kind), "apiVersion": ty.api_version(),
        "metadata": metadata, "items": page
    }))
}
