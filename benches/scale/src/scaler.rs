//! The benchmark's scaler: an in-memory scaler built on the SDK, served in its own process so
//! its CPU is not charged to the controller. It answers at once from memory; a trigger's value
//! is `idleValue`, plus 1 while the trigger's `group` is switched on (push fan-out flips a
//! whole group). It counts RPCs per method (the SDK's own server metrics) and the TCP
//! connections it has accepted (sampled from `/proc/net/tcp`).
//!
//! Control is line-based on stdin, one JSON answer per line on stdout:
//! `stats`, `reset` (restart connection counting), `on <group>`, `off <group>`, `quit`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ebb_scaler_sdk::proto::v1::MetricTargetType;
use ebb_scaler_sdk::{
    Measurement, MetricSpec, Scaler, ScalerError, ScalerIdentity, ServeOptions, ServerMetrics,
    Trigger, schemars,
};
use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::proc_stats;

/// The metadata of a benchmark trigger.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(crate = "ebb_scaler_sdk::schemars")]
pub struct BenchConfig {
    /// Group of triggers switched on and off together; also the push source.
    pub group: String,
    /// The value while the group is off; 1 more while it is on.
    #[serde(default)]
    pub idle_value: f64,
    /// How far the value wobbles around its level, up and down, from one answer to the next
    /// (readings that change on every poll without changing the decision).
    #[serde(default)]
    pub jitter: f64,
}

/// Answers so far; drives the wobble of triggers with a `jitter`.
static ANSWERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Which groups are on. Shared by every request.
#[derive(Debug, Default)]
pub struct Groups {
    on: RwLock<HashSet<String>>,
}

impl Groups {
    /// Switches `group` on or off.
    pub fn set(&self, group: &str, on: bool) {
        let mut groups = self.on.write().unwrap_or_else(|p| p.into_inner());
        if on {
            groups.insert(group.to_owned());
        } else {
            groups.remove(group);
        }
    }

    fn is_on(&self, group: &str) -> bool {
        self.on
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(group)
    }
}

/// The in-memory scaler.
#[derive(Debug, Clone)]
pub struct BenchScaler {
    groups: Arc<Groups>,
    push_interval: Duration,
}

impl BenchScaler {
    /// A scaler reading `groups`, sampling push subscribers every `push_interval`.
    pub fn new(groups: Arc<Groups>, push_interval: Duration) -> Self {
        Self {
            groups,
            push_interval,
        }
    }
}

/// Metric name of every benchmark trigger.
pub const METRIC: &str = "bench-value";

impl Scaler for BenchScaler {
    type Config = BenchConfig;

    fn identity(&self) -> ScalerIdentity {
        ScalerIdentity {
            name: "bench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "In-memory scaler of the ebb scale benchmark".into(),
        }
    }

    fn metric_specs(&self, _trigger: &Trigger<BenchConfig>) -> Vec<MetricSpec> {
        vec![MetricSpec {
            name: METRIC.into(),
            target: 1.0,
            activation_target: 0.0,
            target_type: MetricTargetType::AverageValue,
        }]
    }

    async fn measure(&self, trigger: &Trigger<BenchConfig>) -> Result<Measurement, ScalerError> {
        let on = self.groups.is_on(&trigger.config.group);
        let mut value = trigger.config.idle_value + if on { 1.0 } else { 0.0 };
        if trigger.config.jitter != 0.0 {
            let step = ANSWERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 5;
            // -1, -0.5, 0, 0.5, 1 times the jitter.
            value += trigger.config.jitter * (step as f64 - 2.0) / 2.0;
        }
        Ok(Measurement::single(METRIC, value))
    }

    fn source_key(&self, trigger: &Trigger<BenchConfig>) -> String {
        trigger.config.group.clone()
    }

    fn push_interval(&self) -> Option<Duration> {
        Some(self.push_interval)
    }
}

/// What the scaler process reports on `stats`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ScalerStats {
    /// RPCs answered so far, by `protocol/method` (all status codes).
    pub rpcs: BTreeMap<String, u64>,
    /// Connections established now.
    pub connections_now: usize,
    /// Most connections established at once since the last `reset`.
    pub connections_max: usize,
    /// Distinct connections seen since the last `reset`.
    pub connections_seen: usize,
    /// CPU seconds the scaler process used so far.
    pub cpu_seconds: f64,
}

impl ScalerStats {
    /// RPCs of every method answered between `earlier` and `self`.
    pub fn rpcs_since(&self, earlier: &ScalerStats) -> BTreeMap<String, u64> {
        self.rpcs
            .iter()
            .map(|(method, count)| {
                let before = earlier.rpcs.get(method).copied().unwrap_or(0);
                (method.clone(), count.saturating_sub(before))
            })
            .filter(|(_, count)| *count > 0)
            .collect()
    }
}

/// Sums `ebb_scaler_requests_total` by protocol and method from the SDK's text metrics.
fn rpc_counts(text: &str) -> BTreeMap<String, u64> {
    let label = |labels: &str, name: &str| -> Option<String> {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        let end = labels[start..].find('"')? + start;
        Some(labels[start..end].to_owned())
    };
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("ebb_scaler_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let (Some(protocol), Some(method)) = (label(labels, "protocol"), label(labels, "method"))
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        *counts.entry(format!("{protocol}/{method}")).or_insert(0) += value;
    }
    counts
}

#[derive(Debug, Default)]
struct ConnectionTracker {
    now: BTreeSet<String>,
    max: usize,
    seen: BTreeSet<String>,
}

impl ConnectionTracker {
    fn observe(&mut self, peers: BTreeSet<String>) {
        self.max = self.max.max(peers.len());
        self.seen.extend(peers.iter().cloned());
        self.now = peers;
    }

    fn reset(&mut self) {
        self.max = self.now.len();
        self.seen = self.now.clone();
    }
}

/// Options of the scaler process.
#[derive(Debug, Clone)]
pub struct ScalerProcessOptions {
    /// How often push subscribers' sources are sampled.
    pub push_interval: Duration,
    /// How often `/proc/net/tcp` is sampled for connections.
    pub connection_sample_interval: Duration,
}

fn say(line: &str) -> Result<(), BenchError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| BenchError::io("write to stdout", source))
}

/// Runs the scaler process: serves on 127.0.0.1:0, prints `{"port": N}`, then answers
/// control lines from stdin until `quit` or end of input.
pub async fn run_scaler_process(options: ScalerProcessOptions) -> Result<(), BenchError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| BenchError::io("bind the scaler", source))?;
    let port = listener
        .local_addr()
        .map_err(|source| BenchError::io("scaler address", source))?
        .port();
    let metrics = ServerMetrics::new();
    let groups = Arc::new(Groups::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ebb_scaler_sdk::serve(
        BenchScaler::new(groups.clone(), options.push_interval),
        listener,
        ServeOptions {
            metrics: Some(metrics.clone()),
            ..ServeOptions::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    let tracker = Arc::new(Mutex::new(ConnectionTracker::default()));
    let sampler = {
        let tracker = tracker.clone();
        let every = options.connection_sample_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            loop {
                ticker.tick().await;
                if let Ok(peers) = proc_stats::established_peers(port) {
                    tracker
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .observe(peers);
                }
            }
        })
    };
    say(&serde_json::json!({ "port": port }).to_string())?;
    // Blocking stdin on a thread of its own (tokio's stdin would need the `io-std` feature,
    // which would split the workspace's tokio build in two).
    let (line_sender, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_sender.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("stats"), _) => {
                let tracker = tracker.lock().unwrap_or_else(|p| p.into_inner());
                let stats = ScalerStats {
                    rpcs: rpc_counts(&metrics.encode()),
                    connections_now: tracker.now.len(),
                    connections_max: tracker.max,
                    connections_seen: tracker.seen.len(),
                    cpu_seconds: proc_stats::process_cpu_seconds()?,
                };
                drop(tracker);
                let text = serde_json::to_string(&stats)
                    .map_err(|source| BenchError::json("scaler stats", source))?;
                say(&text)?;
            }
            (Some("reset"), _) => {
                if let Ok(peers) = proc_stats::established_peers(port) {
                    let mut tracker = tracker.lock().unwrap_or_else(|p| p.into_inner());
                    tracker.observe(peers);
                    tracker.reset();
                }
                say(r#"{"ok":true}"#)?;
            }
            (Some(switch @ ("on" | "off")), Some(group)) => {
                groups.set(group, switch == "on");
                say(r#"{"ok":true}"#)?;
            }
            (Some("quit"), _) => break,
            _ => say(r#"{"ok":false}"#)?,
        }
    }
    sampler.abort();
    let _ = stop.send(());
    match server.await {
        Ok(result) => Ok(result?),
        Err(error) => Err(BenchError::Child {
            child: "scaler".into(),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_counts_sum_status_codes_per_method() {
        let text = "# TYPE ebb_scaler_requests counter\n\
            ebb_scaler_requests_total{protocol=\"v1\",method=\"GetMetrics\",code=\"Ok\"} 10\n\
            ebb_scaler_requests_total{protocol=\"v1\",method=\"GetMetrics\",code=\"Unavailable\"} 2\n\
            ebb_scaler_requests_total{protocol=\"v1\",method=\"GetInfo\",code=\"Ok\"} 1\n\
            ebb_scaler_request_duration_seconds_count{protocol=\"v1\",method=\"GetInfo\"} 1\n";
        let counts = rpc_counts(text);
        assert_eq!(counts.get("v1/GetMetrics"), Some(&12));
        assert_eq!(counts.get("v1/GetInfo"), Some(&1));
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn reset_keeps_only_live_connections() {
        let mut tracker = ConnectionTracker::default();
        tracker.observe(["a".to_owned(), "b".to_owned()].into());
        tracker.observe(["b".to_owned()].into());
        assert_eq!((tracker.max, tracker.seen.len()), (2, 2));
        tracker.reset();
        assert_eq!((tracker.max, tracker.seen.len()), (1, 1));
    }

    #[tokio::test]
    async fn groups_switch_the_value() {
        let groups = Arc::new(Groups::default());
        let scaler = BenchScaler::new(groups.clone(), Duration::from_millis(10));
        let trigger = Trigger {
            namespace: "n".into(),
            name: "o".into(),
            trigger_name: "t".into(),
            config: BenchConfig {
                group: "g".into(),
                idle_value: 2.0,
                jitter: 0.0,
            },
        };
        assert_eq!(
            scaler.measure(&trigger).await.unwrap(),
            Measurement::single(METRIC, 2.0)
        );
        groups.set("g", true);
        assert_eq!(
            scaler.measure(&trigger).await.unwrap(),
            Measurement::single(METRIC, 3.0)
        );
    }
}
