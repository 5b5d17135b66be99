//! Shared pieces of the runtime tests: a scaler whose values the test controls (served by the
//! SDK's in-process server over real gRPC on loopback), a TCP proxy that counts connections
//! and can cut them, a listener that never answers, and condition waits with deadlines.

#![allow(dead_code)]

pub mod hostile;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb::runtime::{
    InMemoryTarget, ManagedObject, MemorySink, ObjectKey, PoolConfig, PushMode, ResolvedTrigger,
    RuntimeConfig, RuntimeMetrics, ScalerPool, Supervisor,
};
use ebb::spec::{PauseState, ScaleTargetRef, ScaledObjectSpec, Trigger};
use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::testing::TestServer;
use ebb_scaler_sdk::{Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The values a [`ControlledScaler`] reports, and how often it measured, per `key` metadata.
#[derive(Default)]
pub struct Values {
    values: Mutex<HashMap<String, f64>>,
    failing: Mutex<HashMap<String, bool>>,
    measures: Mutex<HashMap<String, u64>>,
    total_measures: AtomicU64,
}

impl Values {
    /// Sets the value reported for `key`.
    pub fn set(&self, key: &str, value: f64) {
        self.values.lock().unwrap().insert(key.to_owned(), value);
    }

    /// Makes measurements of `key` fail with UNAVAILABLE (or succeed again).
    pub fn set_failing(&self, key: &str, failing: bool) {
        self.failing.lock().unwrap().insert(key.to_owned(), failing);
    }

    /// How many times `key` was measured.
    pub fn measures(&self, key: &str) -> u64 {
        self.measures.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// How many measurements in total.
    pub fn total_measures(&self) -> u64 {
        self.total_measures.load(Ordering::SeqCst)
    }
}

/// Trigger metadata of the controlled scaler.
#[derive(Clone, Debug, serde::Deserialize, ebb_scaler_sdk::schemars::JsonSchema)]
#[schemars(crate = "ebb_scaler_sdk::schemars")]
pub struct ControlledConfig {
    /// Which value slot this trigger reads.
    pub key: String,
}

/// A scaler reporting whatever the test put in [`Values`]: one metric per trigger, target 1 per
/// replica, activation above 0.
#[derive(Clone)]
pub struct ControlledScaler {
    pub values: Arc<Values>,
    pub push_interval: Option<Duration>,
}

impl Scaler for ControlledScaler {
    type Config = ControlledConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "controlled".into(),
            version: "0.0.0".into(),
            description: "test scaler with values set by the test".into(),
        }
    }

    fn metric_specs(&self, trigger: &ebb_scaler_sdk::Trigger<Self::Config>) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: format!("controlled-{}", trigger.config.key),
            target: 1.0,
            activation_target: 0.0,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(
        &self,
        trigger: &ebb_scaler_sdk::Trigger<Self::Config>,
    ) -> Result<Measurement, ScalerError> {
        let key = &trigger.config.key;
        *self
            .values
            .measures
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default() += 1;
        self.values.total_measures.fetch_add(1, Ordering::SeqCst);
        if self
            .values
            .failing
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(false)
        {
            return Err(ScalerError::Unavailable(format!("{key} is set to fail")));
        }
        let value = self
            .values
            .values
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0.0);
        Ok(Measurement::single(format!("controlled-{key}"), value))
    }

    fn source_key(&self, trigger: &ebb_scaler_sdk::Trigger<Self::Config>) -> String {
        trigger.config.key.clone()
    }

    fn push_interval(&self) -> Option<Duration> {
        self.push_interval
    }
}

/// Starts a controlled scaler (push sampled every 20 ms when `push`).
pub async fn start_scaler(values: &Arc<Values>, push: bool) -> TestServer {
    TestServer::start(ControlledScaler {
        values: values.clone(),
        push_interval: push.then_some(Duration::from_millis(20)),
    })
    .await
    .expect("start test scaler")
}

/// A TCP proxy in front of a scaler: counts accepted connections, can switch to another
/// backend and cut every open connection (a scaler restart, as the client sees it).
pub struct Proxy {
    pub address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    backend: Arc<Mutex<SocketAddr>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept_task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(backend: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let backend = Arc::new(Mutex::new(backend));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept_task = {
            let accepted = accepted.clone();
            let backend = backend.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let target = *backend.lock().unwrap();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task);
                }
            })
        };
        Self {
            address,
            accepted,
            backend,
            connections,
            accept_task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Sends new connections to `backend`.
    pub fn set_backend(&self, backend: SocketAddr) {
        *self.backend.lock().unwrap() = backend;
    }

    /// Cuts every open connection.
    pub fn cut_connections(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut_connections();
    }
}

/// A listener that accepts connections and never answers: a hung scaler.
pub async fn black_hole() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (address, task)
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Waits until `condition` holds, failing the test with `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits in real time, a paused clock standing still, until `condition` holds: loopback
/// traffic (a pushed message, an RPC) arrives without the clock jumping ahead meanwhile (a
/// blocking task holds tokio's auto-advance). Fails the test with `what` after 10 real seconds.
pub async fn settle_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for: {what}"
        );
        settle_for(Duration::from_millis(2)).await;
    }
}

/// Lets loopback traffic in flight arrive for `real` time while a paused clock stands still.
pub async fn settle_for(real: Duration) {
    tokio::task::spawn_blocking(move || std::thread::sleep(real))
        .await
        .expect("settling");
}

/// A runtime for tests: metrics, pool, an in-memory sink and a supervisor.
pub struct Harness {
    pub registry: prometheus_client::registry::Registry,
    pub metrics: RuntimeMetrics,
    pub pool: ScalerPool,
    pub sink: MemorySink,
    pub supervisor: Supervisor,
}

impl Harness {
    pub fn new() -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = RuntimeMetrics::register(&mut registry);
        let pool = ScalerPool::new(PoolConfig::default(), metrics.clone());
        let sink = MemorySink::new();
        let config = RuntimeConfig {
            first_poll_spread: Duration::from_millis(200),
            push_backoff: ebb::runtime::PushBackoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(400),
            },
            ..RuntimeConfig::default()
        };
        let supervisor = Supervisor::new(pool.clone(), Arc::new(sink.clone()), config);
        Self {
            registry,
            metrics,
            pool,
            sink,
            supervisor,
        }
    }

    /// The metrics as OpenMetrics text.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }

    /// Trigger polls run so far.
    pub fn trigger_polls(&self) -> u64 {
        self.metrics.trigger_polls.get()
    }
}

/// A spec with `triggers` (names only; the runtime reads their resolved form), immediate
/// scaling behavior and no cooldown unless the test changes it.
pub fn spec(triggers: &[&str], min: u32, max: u32, polling_seconds: u32) -> ScaledObjectSpec {
    let immediate = ebb::spec::ScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: None,
        policies: Some(vec![ebb::spec::ScalingPolicy {
            policy_type: ebb::spec::PolicyType::Pods,
            value: 1000,
            period_seconds: 1,
        }]),
    };
    ScaledObjectSpec {
        scale_target_ref: ScaleTargetRef {
            name: "worker".into(),
            ..ScaleTargetRef::default()
        },
        polling_interval: Some(polling_seconds),
        cooldown_period: Some(0),
        min_replica_count: Some(min),
        max_replica_count: Some(max),
        advanced: Some(ebb::spec::AdvancedConfig {
            horizontal_pod_autoscaler_config: Some(ebb::spec::HorizontalPodAutoscalerConfig {
                behavior: Some(ebb::spec::HpaBehavior {
                    scale_up: Some(immediate.clone()),
                    scale_down: Some(immediate),
                }),
            }),
            ..ebb::spec::AdvancedConfig::default()
        }),
        triggers: triggers
            .iter()
            .map(|name| Trigger {
                name: Some((*name).to_owned()),
                trigger_type: Some("controlled".into()),
                ..Trigger::default()
            })
            .collect(),
        ..ScaledObjectSpec::default()
    }
}

/// A trigger named `name` on the scaler at `address` reading value slot `key`.
pub fn trigger(
    object: &ObjectKey,
    name: &str,
    index: u32,
    address: SocketAddr,
    key: &str,
    push: PushMode,
) -> ResolvedTrigger {
    let mut trigger =
        ResolvedTrigger::new(object, name, index, &address.to_string()).with_metadata("key", key);
    trigger.push = push;
    trigger
}

/// An object with its triggers and an in-memory target.
pub fn object(
    key: &ObjectKey,
    spec: ScaledObjectSpec,
    triggers: Vec<ResolvedTrigger>,
    target: &InMemoryTarget,
) -> ManagedObject {
    ManagedObject {
        key: key.clone(),
        generation: 1,
        spec: Arc::new(spec),
        pause: PauseState::default(),
        triggers,
        target: Arc::new(target.clone()),
        last_status: None,
        created: std::time::SystemTime::now(),
    }
}
