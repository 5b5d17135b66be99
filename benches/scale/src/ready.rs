//! Part 2, create → Ready: the real Kubernetes controller against the in-process fake API
//! server (real HTTP/JSON, real watch), N ScaledObjects created at once, each timed from its
//! creation until the controller has written Ready=True into its status. The API requests
//! the controller made meanwhile are counted by kind. Runs in the parent process; the scaler
//! is the child process.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::BenchError;
use crate::fake_apiserver::{FakeApiServer, RecordedRequest};
use crate::objects::NAMESPACE;
use crate::quantiles;

/// Label on every benchmark ScaledObject; the benchmark's own watch selects on it, which
/// also tells its requests apart from the controller's.
const LABEL: &str = "ebb-bench";

/// The create → Ready figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReadyFigures {
    /// Objects created.
    pub objects: usize,
    /// Objects that reached Ready=True.
    pub ready: usize,
    /// From the first create to the last, seconds.
    #[serde(default)]
    pub creating_seconds: f64,
    /// From the first create to the last object Ready, seconds.
    pub all_ready_seconds: f64,
    /// Create → Ready per object, p50, ms.
    pub p50_ms: f64,
    /// Create → Ready per object, p99, ms.
    pub p99_ms: f64,
    /// Create → Ready, slowest object, ms.
    pub max_ms: f64,
    /// Create → the API server answering the controller's status write that says Ready=True,
    /// p50, ms: the controller's part, without the watch that reports it back.
    #[serde(default)]
    pub written_p50_ms: f64,
    /// The same, p99, ms.
    #[serde(default)]
    pub written_p99_ms: f64,
    /// Create → the controller's label PATCH of the object's Deployment arriving at the API
    /// server, p50, ms: the watch event handled and the preparation done (the loop starts
    /// right after).
    #[serde(default)]
    pub prepared_p50_ms: f64,
    /// The same, p99, ms.
    #[serde(default)]
    pub prepared_p99_ms: f64,
    /// Create → the Ready=True status write arriving at the API server, p50, ms (the loop's
    /// first poll and the status writer's queue come before it).
    #[serde(default)]
    pub write_sent_p50_ms: f64,
    /// The same, p99, ms.
    #[serde(default)]
    pub write_sent_p99_ms: f64,
    /// API requests the controller made from the first create until all were Ready.
    pub api_requests: usize,
    /// The same, by verb and resource (`PATCH scaledobjects/status`...).
    pub api_requests_by_kind: BTreeMap<String, usize>,
    /// API requests the controller made per object.
    pub api_requests_per_object: f64,
    /// After every object was Ready: API requests per second by kind over the next 31 s
    /// (one whole polling interval: the objects poll every 30 s, KEDA's default).
    pub steady_requests_per_second: BTreeMap<String, f64>,
    /// Whether the controller's API client limits its own request rate. kube's client has no
    /// such limiter and ebb adds none, so this is false by construction; the request counts
    /// and `all_ready_seconds` show what the API server was asked for instead.
    pub client_side_throttling: bool,
}

pub(crate) fn deployment(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}
            }
        }
    })
}

fn scaled_object(name: &str, scaler: &str) -> Value {
    json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {LABEL: "ready"}},
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 0, "maxReplicaCount": 10,
            "triggers": [{
                "name": "load",
                "type": "bench",
                "metadata": {"group": "ready", "idleValue": "1"},
                "scaler": {"address": scaler, "push": false}
            }]
        }
    })
}

pub(crate) fn is_ready(object: &DynamicObject) -> bool {
    object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
        })
}

/// `VERB resource[/subresource]` of a request, e.g. `PATCH scaledobjects/status`.
pub(crate) fn request_kind(request: &RecordedRequest) -> String {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let (resource, name, subresource) = match segments.iter().position(|s| *s == "namespaces") {
        Some(index) if segments.len() > index + 2 => (
            segments.get(index + 2),
            segments.get(index + 3),
            segments.get(index + 4),
        ),
        _ => {
            // /api/v1/<plural>... or /apis/<group>/<version>/<plural>...
            let start = if segments.first() == Some(&"api") {
                2
            } else {
                3
            };
            (
                segments.get(start),
                segments.get(start + 1),
                segments.get(start + 2),
            )
        }
    };
    let Some(resource) = resource else {
        return format!("{} discovery", request.method);
    };
    let watch = request
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1");
    let verb = match (request.method.as_str(), name, watch) {
        (_, _, true) => "WATCH".to_owned(),
        ("GET", None, false) => "LIST".to_owned(),
        (method, _, _) => method.to_owned(),
    };
    match subresource {
        Some(sub) => format!("{verb} {resource}/{sub}"),
        None => format!("{verb} {resource}"),
    }
}

fn is_benchmark_request(request: &RecordedRequest) -> bool {
    request
        .query
        .get("labelSelector")
        .is_some_and(|selector| selector.contains(LABEL))
}

pub(crate) async fn http_status(address: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.split(' ').nth(1)?.parse().ok()
}

/// Runs part 2 with `count` objects calling the scaler at `scaler`.
pub async fn run_ready(
    scaler: &str,
    count: usize,
    limit: Duration,
    observe: Duration,
) -> Result<ReadyFigures, BenchError> {
    let server = FakeApiServer::start().await;
    for index in 0..count {
        server
            .create(deployment(&format!("ready-{index}"), 1))
            .map_err(|error| BenchError::Api(format!("{error:?}")))?;
    }
    let args = ebb::kubernetes::ControllerArgs {
        identity: Some("ebb-bench".into()),
        namespace: "ebb-system".into(),
        leader_elect: false,
        resync_interval: Duration::from_secs(3600),
        ..ebb::kubernetes::ControllerArgs::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| BenchError::io("bind the controller's telemetry", source))?;
    let telemetry = listener
        .local_addr()
        .map_err(|source| BenchError::io("telemetry address", source))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(ebb::kubernetes::run_with_client(
        server.client(),
        args,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(telemetry, "/readyz").await != Some(200) {
        if Instant::now() >= deadline || controller.is_finished() {
            return Err(BenchError::Controller("did not become ready".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The benchmark's own watch: when each object turns Ready, as any client would see it.
    let ready_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (listed, listed_wait) = tokio::sync::oneshot::channel::<()>();
    let observer = {
        let ready_at = ready_at.clone();
        let resource = ebb::kubernetes::controller::scaled_object_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(server.client(), NAMESPACE, &resource);
        let config = watcher::Config::default().labels(&format!("{LABEL}=ready"));
        tokio::spawn(async move {
            let mut listed = Some(listed);
            let mut events = watcher(api, config).boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                    }
                    Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object))
                        if is_ready(&object) =>
                    {
                        let now = Instant::now();
                        let name = object.metadata.name.clone().unwrap_or_default();
                        ready_at
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(name)
                            .or_insert(now);
                    }
                    _ => {}
                }
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(30), listed_wait)
        .await
        .map_err(|_| BenchError::timeout("the benchmark's watch to list", Duration::from_secs(30)))?
        .map_err(|_| BenchError::Api("the benchmark's watch ended".into()))?;

    server.clear_requests();
    let first_create = Instant::now();
    let mut created = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("ready-{index}");
        server
            .create(scaled_object(&name, scaler))
            .map_err(|error| BenchError::Api(format!("{error:?}")))?;
        created.push((name, Instant::now()));
        // A client creates one object per request and waits for the answer; without this
        // the loop would hold one of the runtime's two threads for the whole burst, and the
        // controller (on the same runtime here, unlike in a cluster) would wait for it.
        tokio::task::yield_now().await;
    }
    let creating_seconds = first_create.elapsed().as_secs_f64();
    let all_ready = crate::objects::wait_until("every ScaledObject to be Ready", limit, || {
        ready_at.lock().unwrap_or_else(|p| p.into_inner()).len() >= count
    })
    .await;
    let requests: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .filter(|request| !is_benchmark_request(request))
        .collect();
    let ready_at = ready_at.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Steady state afterwards: what the API server is asked for per second.
    server.clear_requests();
    let observed_from = Instant::now();
    tokio::time::sleep(observe).await;
    let observed: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .filter(|request| !is_benchmark_request(request))
        .collect();
    let observed_seconds = observed_from.elapsed().as_secs_f64();
    let mut steady_requests_per_second = BTreeMap::new();
    for request in &observed {
        *steady_requests_per_second
            .entry(request_kind(request))
            .or_insert(0.0) += 1.0 / observed_seconds;
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), controller).await;
    observer.abort();
    all_ready.ok();

    let mut latencies: Vec<f64> = created
        .iter()
        .filter_map(|(name, at)| {
            ready_at
                .get(name)
                .map(|ready| ready.saturating_duration_since(*at))
        })
        .map(|latency| latency.as_secs_f64() * 1000.0)
        .collect();
    let mut written_at: HashMap<&str, Instant> = HashMap::new();
    let mut write_sent_at: HashMap<&str, Instant> = HashMap::new();
    let mut prepared_at: HashMap<&str, Instant> = HashMap::new();
    for request in &requests {
        if let Some(name) = ready_status_write(request) {
            written_at.entry(name).or_insert(request.answered);
            write_sent_at.entry(name).or_insert(request.received);
        } else if let Some(name) = target_label_patch(request) {
            prepared_at.entry(name).or_insert(request.received);
        }
    }
    let since_created = |at: &HashMap<&str, Instant>| -> Vec<f64> {
        created
            .iter()
            .filter_map(|(name, created)| {
                at.get(name.as_str())
                    .map(|at| at.saturating_duration_since(*created).as_secs_f64() * 1000.0)
            })
            .collect()
    };
    let mut written = since_created(&written_at);
    let mut write_sent = since_created(&write_sent_at);
    let mut prepared = since_created(&prepared_at);
    let last_ready = ready_at.values().max().copied().unwrap_or(first_create);
    let mut by_kind = BTreeMap::new();
    for request in &requests {
        *by_kind.entry(request_kind(request)).or_insert(0) += 1;
    }
    Ok(ReadyFigures {
        objects: count,
        creating_seconds,
        ready: latencies.len(),
        all_ready_seconds: last_ready
            .saturating_duration_since(first_create)
            .as_secs_f64(),
        p50_ms: quantiles::exact(&mut latencies, 0.5).unwrap_or(0.0),
        p99_ms: quantiles::exact(&mut latencies, 0.99).unwrap_or(0.0),
        max_ms: quantiles::exact(&mut latencies, 1.0).unwrap_or(0.0),
        written_p50_ms: quantiles::exact(&mut written, 0.5).unwrap_or(0.0),
        written_p99_ms: quantiles::exact(&mut written, 0.99).unwrap_or(0.0),
        prepared_p50_ms: quantiles::exact(&mut prepared, 0.5).unwrap_or(0.0),
        prepared_p99_ms: quantiles::exact(&mut prepared, 0.99).unwrap_or(0.0),
        write_sent_p50_ms: quantiles::exact(&mut write_sent, 0.5).unwrap_or(0.0),
        write_sent_p99_ms: quantiles::exact(&mut write_sent, 0.99).unwrap_or(0.0),
        api_requests: requests.len(),
        api_requests_per_object: requests.len() as f64 / count.max(1) as f64,
        api_requests_by_kind: by_kind,
        steady_requests_per_second,
        client_side_throttling: false,
    })
}

/// The Deployment this request labelled (the controller adopting an object's target; the
/// benchmark names each object after its Deployment).
fn target_label_patch(request: &RecordedRequest) -> Option<&str> {
    let name = request.path.rsplit_once("/deployments/")?.1;
    (request.method == "PATCH" && !name.contains('/')).then_some(name)
}

/// The object whose status this request wrote with Ready=True, if it is such a write and
/// the API server accepted it.
fn ready_status_write(request: &RecordedRequest) -> Option<&str> {
    let name = request
        .path
        .strip_suffix("/status")?
        .rsplit_once("/scaledobjects/")?
        .1;
    let ready = request.method == "PATCH"
        && request.status < 300
        && request
            .body
            .as_ref()
            .and_then(|body| body.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
    ready.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accepted_status_patch_saying_ready_true_counts_as_the_ready_write() {
        let path = "/apis/ebb.dev/v1alpha1/namespaces/bench/scaledobjects/ready-7/status";
        let with = |method: &str, path: &str, ready: &str, status: u16| {
            let mut request = recorded(method, path, &[]);
            request.body = Some(json!({"status": {"conditions": [
                {"type": "Active", "status": "True"},
                {"type": "Ready", "status": ready},
            ]}}));
            request.status = status;
            request
        };
        assert_eq!(
            ready_status_write(&with("PATCH", path, "True", 200)),
            Some("ready-7")
        );
        assert_eq!(ready_status_write(&with("PATCH", path, "False", 200)), None);
        assert_eq!(ready_status_write(&with("PATCH", path, "True", 409)), None);
        assert_eq!(ready_status_write(&with("PUT", path, "True", 200)), None);
        let not_status = path.trim_end_matches("/status");
        assert_eq!(
            ready_status_write(&with("PATCH", not_status, "True", 200)),
            None
        );
    }

    fn recorded(method: &str, path: &str, query: &[(&str, &str)]) -> RecordedRequest {
        RecordedRequest {
            method: method.parse().unwrap(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            content_type: None,
            body: None,
            status: 200,
            received: std::time::Instant::now(),
            answered: std::time::Instant::now(),
        }
    }

    #[test]
    fn a_patch_of_a_deployment_itself_is_the_target_label_patch() {
        let deployment = "/apis/apps/v1/namespaces/bench/deployments/ready-3";
        assert_eq!(
            target_label_patch(&recorded("PATCH", deployment, &[])),
            Some("ready-3")
        );
        assert_eq!(target_label_patch(&recorded("GET", deployment, &[])), None);
        let scale = format!("{deployment}/scale");
        assert_eq!(target_label_patch(&recorded("PATCH", &scale, &[])), None);
    }

    #[test]
    fn requests_are_grouped_by_verb_and_resource() {
        let kind =
            |method, path, query: &[(&str, &str)]| request_kind(&recorded(method, path, query));
        assert_eq!(
            kind(
                "PATCH",
                "/apis/ebb.dev/v1alpha1/namespaces/bench/scaledobjects/a/status",
                &[]
            ),
            "PATCH scaledobjects/status"
        );
        assert_eq!(
            kind(
                "GET",
                "/apis/apps/v1/namespaces/bench/deployments/a/scale",
                &[]
            ),
            "GET deployments/scale"
        );
        assert_eq!(
            kind(
                "GET",
                "/apis/ebb.dev/v1alpha1/scaledobjects",
                &[("watch", "true")]
            ),
            "WATCH scaledobjects"
        );
        assert_eq!(
            kind("GET", "/apis/ebb.dev/v1alpha1/scaledobjects", &[]),
            "LIST scaledobjects"
        );
        assert_eq!(
            kind(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/bench/events",
                &[]
            ),
            "POST events"
        );
        assert_eq!(kind("GET", "/apis/apps/v1", &[]), "GET discovery");
        assert!(is_benchmark_request(&recorded(
            "GET",
            "/x",
            &[("labelSelector", "ebb-bench=ready")]
        )));
    }
}
