//! A stateful fake of the Kubernetes API server, for tests. No real API server can run on the
//! test machines, so this one speaks the real HTTP/JSON API closely enough that kubectl, Helm,
//! the official Python client and kube-rs accept it: discovery, OpenAPI v2/v3, CRDs served
//! dynamically with structural-schema pruning, defaulting and validation, field validation
//! (`Strict`/`Warn`/`Ignore`), the Table format with printer columns, list (with pagination
//! and selectors) and watch (with resourceVersion, bookmarks and 410 Gone),
//! get/create/update/patch/delete with finalizers and ownerReference garbage collection, the
//! `/status` and `/scale` subresources, and 409 on conflicts.
//!
//! It runs in-process for Rust tests ([`FakeApiServer`]) or as the `ebb-fake-apiserver`
//! binary ([`serve`]) for real clients in other processes. `tests/fake-apiserver/README.md`
//! lists what it deliberately leaves out. Workload types simulate their own controller: when
//! desired replicas change, a second write makes the observed replicas follow, as the
//! Deployment controller would.

mod crd;
mod events;
mod http;
mod kubeconfig;
mod openapi;
mod patch;
mod protobuf;
mod resources;
mod schema;
mod select;
mod ssa;
mod store;
mod table;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

pub use kubeconfig::{kubeconfig, write_kubeconfig};
pub use patch::PatchKind;
pub use resources::{PrinterColumn, ResourceType, ScalePaths};
pub use store::{ApiError, FieldValidation};
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
    /// When the request (its whole body) had arrived.
    pub received: std::time::Instant,
    /// When the answer was ready (benchmarks time writes by it).
    pub answered: std::time::Instant,
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
    log_requests: bool,
}

impl Shared {
    fn new(options: Options) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        let mut store = Store::new(options.types);
        store.namespaces_must_exist = options.namespaces_must_exist;
        if options.namespaces_must_exist {
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name}, "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"}});
                let index = store
                    .types
                    .iter()
                    .position(|t| t.group.is_empty() && t.plural == "namespaces");
                if let Some(index) = index {
                    let _ = store.create(index, None, namespace);
                }
            }
        }
        Self {
            store: Mutex::new(store),
            notify,
            requests: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            bookmark_interval: options.bookmark_interval,
            log_requests: options.log_requests,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self, resource_version: u64) {
        self.notify.send_replace(resource_version);
    }
}

/// How a fake API server starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The types served at start; CRDs created later add theirs.
    pub types: Vec<ResourceType>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// Namespaced objects need their Namespace, and `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease` exist from the start, as on a real cluster.
    pub namespaces_must_exist: bool,
    /// Print one line per request on stderr (method, path, content type, status).
    pub log_requests: bool,
}

impl Options {
    /// A cluster as kubectl and Helm meet it: the built-in types, no CRDs yet, and the
    /// standard namespaces.
    pub fn standalone() -> Self {
        Self {
            types: ResourceType::builtins(),
            bookmark_interval: Duration::from_secs(1),
            namespaces_must_exist: true,
            log_requests: false,
        }
    }
}

fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .fallback(http::handle)
        .with_state(shared)
}

/// The listener with Nagle's algorithm off on every accepted connection, as Go's net/http (the
/// real API server's) does: otherwise a response written in two parts waits for the client's
/// delayed ACK, tens of milliseconds per request.
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
    axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        let _ = stream.set_nodelay(true);
    })
}

/// Serves the fake API on `listener` until `shutdown` completes (the binary's entry point).
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared::new(options));
    let stopping = Arc::new(tokio::sync::Notify::new());
    let fired = stopping.clone();
    let server =
        axum::serve(without_nagle(listener), router(shared)).with_graceful_shutdown(async move {
            shutdown.await;
            fired.notify_one();
        });
    // Open watches would hold a graceful shutdown for up to their timeout; a second is
    // enough for requests in flight.
    tokio::select! {
        result = server => result,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => Ok(()),
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
        Self::start_options(Options {
            types,
            bookmark_interval,
            namespaces_must_exist: false,
            log_requests: false,
        })
        .await
    }

    /// Starts a server as the binary runs it (see [`Options::standalone`]), on a free port.
    pub async fn start_options(options: Options) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let address = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::new(options));
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(without_nagle(listener), app).await;
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
    /// be stored, as with an older CRD version; unknown fields are pruned and defaults filled
    /// in, as a client would read them from a real server.
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
