//! Part 1, the floor (a child process): a bare tonic client issuing the same unary
//! `GetMetrics` calls at the same rate against the same scaler: N calls per second, spread
//! evenly, each carrying the request the runtime sends for that object. What the controller
//! spends beyond this is the price of being a controller.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ebb::proto::v1;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tonic::transport::Endpoint;

use crate::BenchError;
use crate::child::ChildMessage;
use crate::objects::{NAMESPACE, TRIGGER};
use crate::proc_stats;

/// What the floor child is asked to do.
#[derive(Clone, Debug)]
pub struct FloorOptions {
    /// Scaler address (`127.0.0.1:port`).
    pub address: String,
    /// Distinct objects (requests) cycled through.
    pub objects: usize,
    /// Calls per second.
    pub rate: f64,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured window.
    pub window: Duration,
}

/// The floor's figures over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FloorFigures {
    /// Measured window in seconds.
    pub window_seconds: f64,
    /// CPU seconds used in the window.
    pub cpu_seconds: f64,
    /// CPU cores used on average.
    pub cpu_cores: f64,
    /// Peak RSS of the floor process, MiB.
    pub peak_rss_mib: f64,
    /// Calls answered OK in the window.
    pub calls_ok: u64,
    /// Calls failed in the window.
    pub calls_failed: u64,
    /// Answered calls per second.
    pub calls_per_second: f64,
}

/// The request the runtime sends for object `index` (same names, metadata and deadline).
fn request(index: usize) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: NAMESPACE.into(),
            name: format!("steady-{index}"),
            trigger_name: TRIGGER.into(),
            trigger_index: 0,
        }),
        metadata: HashMap::from([
            ("group".to_owned(), "steady".to_owned()),
            ("idleValue".to_owned(), "1".to_owned()),
        ]),
        secrets: HashMap::new(),
    }
}

/// Runs the floor and prints its figures.
pub async fn run_floor(options: FloorOptions) -> Result<(), BenchError> {
    let channel = Endpoint::from_shared(format!("http://{}", options.address))?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect()
        .await?;
    let client = v1::scaler_client::ScalerClient::new(channel);
    let requests: Vec<v1::TriggerRequest> = (0..options.objects.max(1)).map(request).collect();
    let timeout = ebb::runtime::DEFAULT_RPC_TIMEOUT;
    let mut in_flight = FuturesUnordered::new();
    let started = Instant::now();
    let window_start_at = started + options.warmup;
    let window_end_at = window_start_at + options.window;
    let mut sent: u64 = 0;
    let mut window: Option<(Instant, f64)> = None;
    let (mut ok, mut failed) = (0u64, 0u64);
    loop {
        // Sleep exactly until the next call is due (no fixed tick: a floor must not pay for
        // wake-ups it does not need), then send every call that is due.
        let next_due = started + Duration::from_secs_f64((sent + 1) as f64 / options.rate);
        let wake_at = next_due.min(if window.is_none() {
            window_start_at
        } else {
            window_end_at
        });
        tokio::select! {
            () = tokio::time::sleep_until(wake_at.into()) => {
                let now = Instant::now();
                let due = (now.duration_since(started).as_secs_f64() * options.rate) as u64;
                while sent < due {
                    let message = requests[(sent % requests.len() as u64) as usize].clone();
                    let mut client = client.clone();
                    in_flight.push(async move {
                        let mut request = tonic::Request::new(message);
                        request.set_timeout(timeout);
                        client.get_metrics(request).await.is_ok()
                    });
                    sent += 1;
                }
                if window.is_none() && now >= window_start_at {
                    window = Some((Instant::now(), proc_stats::process_cpu_seconds()?));
                    ChildMessage::WindowStart.emit()?;
                }
                if now >= window_end_at {
                    break;
                }
            }
            Some(answered) = in_flight.next(), if !in_flight.is_empty() => {
                if window.is_some() {
                    if answered { ok += 1 } else { failed += 1 }
                }
            }
        }
    }
    let cpu_end = proc_stats::process_cpu_seconds()?;
    let end = Instant::now();
    ChildMessage::WindowEnd.emit()?;
    let (start, cpu_start) = window.unwrap_or((end, cpu_end));
    let window_seconds = end.duration_since(start).as_secs_f64().max(f64::EPSILON);
    let figures = FloorFigures {
        window_seconds,
        cpu_seconds: cpu_end - cpu_start,
        cpu_cores: (cpu_end - cpu_start) / window_seconds,
        peak_rss_mib: proc_stats::peak_rss_mib()?,
        calls_ok: ok,
        calls_failed: failed,
        calls_per_second: ok as f64 / window_seconds,
    };
    let figures = serde_json::to_value(&figures)
        .map_err(|source| BenchError::json("floor figures", source))?;
    ChildMessage::Result { figures }.emit()
}
