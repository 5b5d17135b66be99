//! Load figures, not a pass/fail test: N objects (default 10,000) polling every second
//! through one in-process scaler (a minimal tonic v1 server, so the figures are mostly the
//! runtime's). Prints polls per second, lag, CPU and RSS of the whole process (runtime AND
//! scaler, so the runtime's own share is lower). Run in release:
//!
//! ```text
//! EBB_LOAD_OBJECTS=10000 EBB_LOAD_SECONDS=20 \
//!   cargo test --release -p ebb --test runtime_load -- --ignored --nocapture
//! ```

mod runtime_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ebb::proto::v1;
use tonic::{Request, Response, Status};

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use runtime_support::*;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// (user + system CPU seconds, RSS in MiB) of this process.
fn cpu_and_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // Fields after the command: state is [0]; utime is field 14 overall, i.e. [11] here.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kib: f64 = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap();
    (ticks / 100.0, rss_kib / 1024.0)
}

/// The smallest conforming v1 scaler: every trigger reads 3 against a target of 1.
#[derive(Default)]
struct Minimal {
    metrics_calls: AtomicU64,
}

#[tonic::async_trait]
impl v1::scaler_server::Scaler for Minimal {
    async fn get_info(
        &self,
        _: Request<v1::GetInfoRequest>,
    ) -> Result<Response<v1::GetInfoResponse>, Status> {
        Ok(Response::new(v1::GetInfoResponse {
            protocol_version: 1,
            name: "minimal".into(),
            ..Default::default()
        }))
    }

    async fn get_metric_spec(
        &self,
        _: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricSpecResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn get_metrics(
        &self,
        _: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricsResponse>, Status> {
        self.metrics_calls.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(v1::GetMetricsResponse {
            metric_values: vec![v1::MetricValue {
                metric_name: "m".into(),
                value: 3.0,
                target: 1.0,
                activation_target: 0.0,
            }],
            active: true,
            in_flight: None,
        }))
    }

    async fn is_active(
        &self,
        _: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::IsActiveResponse>, Status> {
        Ok(Response::new(v1::IsActiveResponse { active: true }))
    }

    type StreamIsActiveStream = futures::stream::Empty<Result<v1::IsActiveResponse, Status>>;

    async fn stream_is_active(
        &self,
        _: Request<v1::TriggerRequest>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        Err(Status::unimplemented("no push"))
    }
}

async fn start_minimal(scaler: Arc<Minimal>) -> SocketAddr {
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .with_nodelay(Some(true));
    let address = incoming.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(v1::scaler_server::ScalerServer::from_arc(scaler))
            .serve_with_incoming(incoming),
    );
    address
}

/// Sequential and concurrent RPC rates of one plain client on one connection, for scale.
async fn baseline(address: SocketAddr) {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    let request = v1::TriggerRequest::default();
    let mut client = v1::scaler_client::ScalerClient::new(channel.clone());
    let started = Instant::now();
    for _ in 0..2000 {
        client.get_metrics(request.clone()).await.unwrap();
    }
    let sequential = 2000.0 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let mut client = v1::scaler_client::ScalerClient::new(channel.clone());
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                client.get_metrics(request.clone()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = 32_000.0 / started.elapsed().as_secs_f64();
    let second = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true)
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..64 {
        let channel = if index % 2 == 0 {
            channel.clone()
        } else {
            second.clone()
        };
        let mut client = v1::scaler_client::ScalerClient::new(channel);
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..500 {
                client.get_metrics(request.clone()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let two = 32_000.0 / started.elapsed().as_secs_f64();
    println!("baseline: 64 concurrent over two connections {two:.0} rpc/s");
    println!(
        "baseline: plain tonic client, one connection: sequential {sequential:.0} rpc/s, 64 concurrent {concurrent:.0} rpc/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load figures; run explicitly in release"]
async fn load_figures() {
    let objects = env_number("EBB_LOAD_OBJECTS", 10_000) as usize;
    let seconds = env_number("EBB_LOAD_SECONDS", 20);
    let scaler = Arc::new(Minimal::default());
    let address = start_minimal(scaler.clone()).await;
    let harness = Harness::new();
    baseline(address).await;
    let (_, rss_before) = cpu_and_rss();
    let mut targets = Vec::with_capacity(objects);
    for index in 0..objects {
        let key = ObjectKey::new("load", format!("object-{index}"));
        let target = InMemoryTarget::new(0);
        let triggers = vec![trigger(&key, "q", 0, address, "load", PushMode::Never)];
        harness
            .supervisor
            .apply(object(&key, spec(&["q"], 0, 10, 1), triggers, &target));
        targets.push(target);
    }
    // Warm up: every object scaled once.
    wait_until("all objects scaled", Duration::from_secs(120), || {
        targets.iter().all(|target| target.replicas() == 3)
    })
    .await;
    let (cpu_start, _) = cpu_and_rss();
    let polls_start = harness.trigger_polls();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let wall = started.elapsed().as_secs_f64();
    let (cpu_end, rss) = cpu_and_rss();
    let polls = harness.trigger_polls() - polls_start;
    let skipped = harness.metrics.skipped_polls.get();
    println!(
        "objects={objects} seconds={wall:.1} polls_per_second={:.0} (ideal {objects}) \
         cpu_cores={:.3} (runtime + in-process scaler) rss_mib={rss:.1} (before objects {rss_before:.1}) \
         skipped_polls={skipped}",
        polls as f64 / wall,
        (cpu_end - cpu_start) / wall,
    );
    let text = harness.metrics_text();
    for line in text.lines().filter(|line| {
        (line.starts_with("ebb_scale_loop_lag_seconds")
            || (line.starts_with("ebb_scaler_rpc_duration_seconds") && line.contains("GetMetrics")))
            && !line.contains("_created")
    }) {
        println!("{line}");
    }
    println!(
        "scaler answered {} GetMetrics",
        scaler.metrics_calls.load(Ordering::Relaxed)
    );
    harness.supervisor.shutdown().await;
}
