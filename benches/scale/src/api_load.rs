//! Part 4, the API server's load in steady state: the real controller against the in-process
//! fake API server, three populations of ScaledObjects side by side, and every request the
//! controller makes counted per object per hour, by verb and resource:
//!
//! 1. **idle**: value 0, at 0 replicas;
//! 2. **readings**: value 3 ± 0.2 at 3 replicas, a new reading on every poll that stays within
//!    the HPA tolerance, so the decision never changes;
//! 3. **scaling**: value 1 at 1 replica; every `scale_every` one tenth of them (a group) flips
//!    to 2 or back, so 10 % of these objects change their replica count each period.
//!
//! A request is charged to an object by the name in its path (a status patch, a `/scale`
//! read or write) or, for an Event, by the object it regards. Requests that name no object
//! (watches, lists, discovery) are the controller's fixed cost and are reported apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::BenchError;
use crate::child::Child;
use crate::fake_apiserver::{FakeApiServer, RecordedRequest};
use crate::objects::NAMESPACE;
use crate::ready::{deployment, http_status, request_kind};

/// The populations, in report order.
pub const CASES: [&str; 3] = ["idle", "readings", "scaling"];
/// Groups the scaling population is split into (each flip moves one tenth).
const GROUPS: usize = 10;

/// One population's cost to the API server.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiCase {
    /// `idle`, `readings` or `scaling`.
    pub name: String,
    /// Requests per object per hour, by `VERB resource[/subresource]`.
    pub per_object_per_hour: BTreeMap<String, f64>,
    /// All of them.
    pub total_per_object_per_hour: f64,
    /// Writes (anything but GET) per object per hour.
    pub writes_per_object_per_hour: f64,
    /// Successful replica writes (`PATCH …/scale`) in the window: the scale changes.
    pub scale_changes: usize,
    /// Writes per scale change (scaling only; 0 when nothing scaled).
    pub writes_per_scale_change: f64,
}

/// The API load figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ApiFigures {
    /// Objects in each population.
    pub objects_per_case: usize,
    /// pollingInterval of every object, seconds.
    pub polling_seconds: u32,
    /// `--status-readings-interval` of the controller, seconds.
    pub readings_interval_seconds: u64,
    /// How often a tenth of the scaling population flips, seconds.
    pub scale_every_seconds: u64,
    /// Measured window, seconds.
    pub window_seconds: f64,
    /// The populations.
    pub cases: Vec<ApiCase>,
    /// Requests per hour that name no object (watches, lists, discovery), by kind.
    pub shared_per_hour: BTreeMap<String, f64>,
    /// Heap bytes per Deployment held by a target watch like the controller's (computed
    /// from its tables' capacities and the names' lengths).
    pub watch_bytes_per_target: f64,
}

/// Sizes and timing of the part.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Objects in each population.
    pub objects: usize,
    /// pollingInterval, seconds.
    pub polling_seconds: u32,
    /// Measured window.
    pub window: Duration,
    /// How often a tenth of the scaling population flips.
    pub scale_every: Duration,
    /// The controller's `--status-readings-interval`.
    pub readings_interval: Duration,
}

fn scaled_object(name: &str, scaler: &str, polling: u32, metadata: Value) -> Value {
    json!({
        "apiVersion": "ebb.dev/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": polling,
            "minReplicaCount": 0, "maxReplicaCount": 10,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 0}
            }}},
            "triggers": [{
                "name": "load", "type": "bench", "metadata": metadata,
                "scaler": {"address": scaler, "push": false}
            }]
        }
    })
}

/// The object a request is about: the name after the resource in its path, or the object
/// an Event regards.
fn object_of(request: &RecordedRequest) -> Option<String> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let index = segments.iter().position(|s| *s == "namespaces")?;
    if let Some(name) = segments.get(index + 3) {
        return Some((*name).to_owned());
    }
    request
        .body
        .as_ref()?
        .pointer("/regarding/name")?
        .as_str()
        .map(str::to_owned)
}

fn case_of(object: &str) -> Option<&'static str> {
    CASES
        .iter()
        .copied()
        .find(|case| object.starts_with(&format!("{case}-")))
}

/// Counts `requests` made over `seconds` into per-object-per-hour figures.
pub fn tally(
    requests: &[RecordedRequest],
    objects: usize,
    seconds: f64,
) -> (Vec<ApiCase>, BTreeMap<String, f64>) {
    let per_hour = 3600.0 / seconds.max(f64::EPSILON);
    let per_object = per_hour / objects.max(1) as f64;
    let mut cases: Vec<ApiCase> = CASES
        .iter()
        .map(|name| ApiCase {
            name: (*name).to_owned(),
            ..ApiCase::default()
        })
        .collect();
    let mut shared = BTreeMap::new();
    let mut writes = [0usize; 3];
    for request in requests {
        let kind = request_kind(request);
        let case = object_of(request)
            .as_deref()
            .and_then(case_of)
            .and_then(|case| CASES.iter().position(|c| *c == case));
        let Some(index) = case else {
            *shared.entry(kind).or_insert(0.0) += per_hour;
            continue;
        };
        let entry = &mut cases[index];
        *entry.per_object_per_hour.entry(kind).or_insert(0.0) += per_object;
        entry.total_per_object_per_hour += per_object;
        if request.method != "GET" {
            entry.writes_per_object_per_hour += per_object;
            writes[index] += 1;
        }
        if request.method == "PATCH" && request.path.ends_with("/scale") && request.status < 300 {
            entry.scale_changes += 1;
        }
    }
    for (case, writes) in cases.iter_mut().zip(writes) {
        if case.scale_changes > 0 {
            case.writes_per_scale_change = writes as f64 / case.scale_changes as f64;
        }
    }
    (cases, shared)
}

/// Runs part 4 against the benchmark scaler (`scaler`, its process; `address`, where it
/// serves).
pub async fn run_api(
    scaler: &mut Child,
    address: &str,
    options: &ApiOptions,
) -> Result<ApiFigures, BenchError> {
    let n = options.objects;
    let polling = options.polling_seconds.max(1);
    let server = FakeApiServer::start().await;
    let api_error = |error| BenchError::Api(format!("{error:?}"));
    for index in 0..n {
        server
            .create(deployment(&format!("idle-{index}"), 0))
            .map_err(api_error)?;
        server
            .create(deployment(&format!("readings-{index}"), 3))
            .map_err(api_error)?;
        server
            .create(deployment(&format!("scaling-{index}"), 1))
            .map_err(api_error)?;
    }
    let args = ebb::kubernetes::ControllerArgs {
        identity: Some("ebb-bench".into()),
        namespace: "ebb-system".into(),
        leader_elect: false,
        resync_interval: Duration::from_secs(3600),
        status_readings_interval: options.readings_interval,
        ..ebb::kubernetes::ControllerArgs::default()
    };
    let readings_interval = args.status_readings_interval;
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
    for index in 0..n {
        let group = format!("api-{}", index % GROUPS);
        for (name, metadata) in [
            (
                format!("idle-{index}"),
                json!({"group": "api-idle", "idleValue": "0"}),
            ),
            (
                format!("readings-{index}"),
                json!({"group": "api-readings", "idleValue": "3", "jitter": "0.2"}),
            ),
            (
                format!("scaling-{index}"),
                json!({"group": group, "idleValue": "1"}),
            ),
        ] {
            server
                .create(scaled_object(&name, address, polling, metadata))
                .map_err(api_error)?;
        }
    }
    let limit = Duration::from_secs(120) + Duration::from_millis(30 * n as u64);
    let all_ready = || {
        server
            .list("ebb.dev/v1alpha1", "ScaledObject")
            .iter()
            .filter(|object| {
                object
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .count()
            >= 3 * n
    };
    let deadline = Instant::now() + limit;
    while !all_ready() {
        if Instant::now() >= deadline {
            return Err(BenchError::timeout(
                "every API-load object to be Ready",
                limit,
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Two polling intervals for the first writes to settle.
    tokio::time::sleep(Duration::from_secs(2 * u64::from(polling))).await;

    server.clear_requests();
    let started = Instant::now();
    let mut on = [false; GROUPS];
    let mut flip = 0usize;
    let mut next_flip = started + options.scale_every;
    let end = started + options.window;
    while Instant::now() < end {
        let wake = next_flip.min(end);
        tokio::time::sleep(wake.saturating_duration_since(Instant::now())).await;
        if Instant::now() >= next_flip && Instant::now() < end {
            let group = flip % GROUPS;
            on[group] = !on[group];
            let command = if on[group] { "on" } else { "off" };
            scaler.send(&format!("{command} api-{group}")).await?;
            let _ = scaler.line(Duration::from_secs(10)).await?;
            flip += 1;
            next_flip += options.scale_every;
        }
    }
    let window_seconds = started.elapsed().as_secs_f64();
    let requests = server.requests();
    for (group, on) in on.iter().enumerate() {
        if *on {
            scaler.send(&format!("off api-{group}")).await?;
            let _ = scaler.line(Duration::from_secs(10)).await?;
        }
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), controller).await;
    let (cases, shared_per_hour) = tally(&requests, n, window_seconds);
    // The memory of a target watch: one like the controller's, over the same Deployments.
    let watches = ebb::kubernetes::target_watch::TargetWatches::new(server.client(), None);
    let resource = kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let watch = watches.watch(&resource);
    crate::objects::wait_until("the measuring watch to list", limit, || {
        watch.len() >= 3 * n
    })
    .await?;
    let watch_bytes_per_target = watch.heap_bytes() as f64 / watch.len().max(1) as f64;
    Ok(ApiFigures {
        objects_per_case: n,
        polling_seconds: polling,
        readings_interval_seconds: readings_interval.as_secs(),
        scale_every_seconds: options.scale_every.as_secs(),
        window_seconds,
        cases,
        shared_per_hour,
        watch_bytes_per_target,
    })
}

impl ApiFigures {
    /// Issue 17's goals: idle and readings-only objects cost at most 2 requests per object per
    /// hour; scaling objects write only for their scale changes.
    pub fn goals(&self) -> Vec<crate::Goal> {
        let mut goals = Vec::new();
        for case in &self.cases {
            let name = format!(
                "API load, {} objects {} @{}s: requests/object/hour",
                self.objects_per_case, case.name, self.polling_seconds
            );
            if case.name == "scaling" {
                goals.push(crate::Goal {
                    name: format!(
                        "API load, {} objects scaling: writes per scale change",
                        self.objects_per_case
                    ),
                    goal: "<= 3".into(),
                    measured: format!(
                        "{:.2} ({} scale changes, {:.1} writes/object/hour)",
                        case.writes_per_scale_change,
                        case.scale_changes,
                        case.writes_per_object_per_hour
                    ),
                    pass: case.scale_changes > 0 && case.writes_per_scale_change <= 3.0,
                });
            } else {
                goals.push(crate::Goal {
                    name,
                    goal: "<= 2".into(),
                    measured: format!("{:.2}", case.total_per_object_per_hour),
                    pass: case.total_per_object_per_hour <= 2.0,
                });
            }
        }
        goals
    }

    /// The per-hour table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n[4] API load: {} objects per case @{}s, status readings interval {} s, a tenth of `scaling` flips every {} s, {:.0} s window",
            self.objects_per_case,
            self.polling_seconds,
            self.readings_interval_seconds,
            self.scale_every_seconds,
            self.window_seconds
        );
        for case in &self.cases {
            let _ = writeln!(
                out,
                "    {:<9} {:>8.2} requests/object/hour ({:.2} writes; {} scale changes)",
                case.name,
                case.total_per_object_per_hour,
                case.writes_per_object_per_hour,
                case.scale_changes
            );
            for (kind, rate) in &case.per_object_per_hour {
                let _ = writeln!(out, "      {rate:>10.2}  {kind}");
            }
        }
        let _ = writeln!(
            out,
            "    target watch memory: {:.0} bytes per target (heap)",
            self.watch_bytes_per_target
        );
        let _ = writeln!(out, "    shared (no object named), requests/hour:");
        for (kind, rate) in &self.shared_per_hour {
            let _ = writeln!(out, "      {rate:>10.1}  {kind}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(method: &str, path: &str, body: Option<Value>) -> RecordedRequest {
        RecordedRequest {
            method: method.parse().unwrap(),
            path: path.into(),
            query: Default::default(),
            content_type: None,
            body,
            status: 200,
            received: std::time::Instant::now(),
            answered: std::time::Instant::now(),
        }
    }

    #[test]
    fn requests_are_charged_to_their_object_per_hour() {
        let requests = vec![
            recorded(
                "PATCH",
                "/apis/ebb.dev/v1alpha1/namespaces/bench/scaledobjects/scaling-3/status",
                None,
            ),
            recorded(
                "PATCH",
                "/apis/apps/v1/namespaces/bench/deployments/scaling-3/scale",
                None,
            ),
            recorded(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/bench/events",
                Some(json!({"regarding": {"name": "scaling-3"}})),
            ),
            recorded(
                "GET",
                "/apis/apps/v1/namespaces/bench/deployments/readings-1/scale",
                None,
            ),
            recorded("GET", "/apis/apps/v1/deployments", None),
        ];
        // 2 objects per case over half an hour: each request is 1 per object per hour.
        let (cases, shared) = tally(&requests, 2, 1800.0);
        assert_eq!(cases[2].total_per_object_per_hour, 3.0);
        assert_eq!(cases[2].writes_per_object_per_hour, 3.0);
        assert_eq!(cases[2].scale_changes, 1);
        assert_eq!(cases[2].writes_per_scale_change, 3.0);
        assert_eq!(cases[1].per_object_per_hour["GET deployments/scale"], 1.0);
        assert_eq!(cases[0].total_per_object_per_hour, 0.0);
        assert_eq!(shared["LIST deployments"], 2.0);
    }
}
