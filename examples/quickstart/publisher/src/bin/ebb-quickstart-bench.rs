//! Reaction-latency benchmark of `ebb run` with the real RabbitMQ scaler: the time from
//! publishing the first message to an empty queue to the first worker process starting.
//!
//! Two runs of `ebb run`, each with one ScaledObject + ProcessGroup per trial (own queue, own
//! worker): push on (StreamIsActive) and push off with `pollingInterval: 30` (KEDA's default)
//! as the baseline. Trials start 1.3 s apart so the polling baseline samples every phase of
//! its poll schedule. The worker writes its start time (unix nanos) to a file as its first
//! act; the benchmark takes the publish time just before `basic.publish`. Both clocks are the
//! same machine's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Measure ebb run's reaction latency with push and with polling.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Trials per mode (at least 20 for a p99 worth the name).
    #[arg(long, env = "BENCH_TRIALS", default_value_t = 20)]
    trials: usize,
    /// AMQP URL of the broker.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Directory holding `ebb`, `ebb-rabbitmq-scaler` and `ebb-quickstart-worker` (default:
    /// this program's directory).
    #[arg(long, env = "BENCH_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    /// Polling interval of the push-disabled baseline, in seconds (KEDA's default is 30).
    #[arg(long, env = "BENCH_POLLING_INTERVAL", default_value_t = 30)]
    polling_interval: u32,
    /// Time between the starts of two trials.
    #[arg(long, env = "BENCH_STAGGER", default_value = "1300ms", value_parser = humantime::parse_duration)]
    stagger: Duration,
    /// Run only the push mode (skip the slow polling baseline).
    #[arg(long, env = "BENCH_PUSH_ONLY")]
    push_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Push,
    Poll,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.trials >= 1, "--trials must be at least 1");
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .to_owned(),
    };
    for binary in ["ebb", "ebb-rabbitmq-scaler", "ebb-quickstart-worker"] {
        ensure!(
            bin_dir.join(binary).exists(),
            "{} not found; build it first (cargo build -p ebb -p ebb-rabbitmq-scaler -p ebb-quickstart-worker)",
            bin_dir.join(binary).display()
        );
    }
    println!(
        "ebb run reaction latency: first message published to an empty queue -> first worker process started"
    );
    println!(
        "{} trials per mode, started {:?} apart, real RabbitMQ scaler, binaries from {}",
        args.trials,
        args.stagger,
        bin_dir.display()
    );
    let push = run_mode(&args, &bin_dir, Mode::Push).await?;
    report("push (StreamIsActive), pollingInterval 30 s", &push);
    if !args.push_only {
        let poll = run_mode(&args, &bin_dir, Mode::Poll).await?;
        report(
            &format!("push disabled, pollingInterval {} s", args.polling_interval),
            &poll,
        );
        println!(
            "ratio (polling / push): p50 {:.0}x, p99 {:.0}x",
            percentile(&poll, 0.50) / percentile(&push, 0.50),
            percentile(&poll, 0.99) / percentile(&push, 0.99)
        );
    }
    let p99 = percentile(&push, 0.99);
    println!(
        "goal p99 < 500 ms with push: {} ({p99:.0} ms)",
        if p99 < 500.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// Latencies in milliseconds, one per trial.
async fn run_mode(args: &Args, bin_dir: &Path, mode: Mode) -> Result<Vec<f64>> {
    let dir = std::env::temp_dir().join(format!(
        "ebb-bench-{}-{}",
        std::process::id(),
        if mode == Mode::Push { "push" } else { "poll" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let queues: Vec<String> = (0..args.trials)
        .map(|trial| format!("ebb-bench-{}-{:?}-{trial}", std::process::id(), mode).to_lowercase())
        .collect();
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .context("connect to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    for queue in &queues {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let manifest = manifest(args, bin_dir, mode, &queues, &dir);
    std::fs::write(dir.join("bench.yaml"), manifest)?;

    let status_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.join("ebb.log"))?;
    let mut ebb = tokio::process::Command::new(bin_dir.join("ebb"))
        .args(["run", "--output", "lines", "--status-addr"])
        .arg(format!("127.0.0.1:{status_port}"))
        .arg("-f")
        .arg(dir.join("bench.yaml"))
        .env("EBB_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .context("start ebb run")?;
    let result = async {
        wait_all_polled(status_port, args.trials).await?;
        // Let every push subscription open after the first polls.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut trials = Vec::new();
        for (index, queue) in queues.iter().enumerate() {
            let channel = connection.create_channel().await?;
            let queue = queue.clone();
            let started_file = dir.join(format!("started-{index}"));
            let delay = args.stagger * u32::try_from(index)?;
            trials.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                trial(&channel, &queue, &started_file).await
            }));
        }
        let mut latencies = Vec::new();
        for trial in trials {
            latencies.push(trial.await??);
        }
        anyhow::Ok(latencies)
    }
    .await;
    // Stop ebb run (SIGINT, as Ctrl-C) and clean up, whatever happened.
    if let Some(pid) = ebb.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), ebb.wait()).await;
    let _ = ebb.kill().await;
    for queue in &queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
    let latencies = result?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(latencies)
}

fn manifest(args: &Args, bin_dir: &Path, mode: Mode, queues: &[String], dir: &Path) -> String {
    let (polling, push) = match mode {
        Mode::Push => (30, "true"),
        Mode::Poll => (args.polling_interval, "false"),
    };
    let mut yaml = format!(
        "apiVersion: ebb.dev/v1alpha1\nkind: Scaler\nmetadata: {{name: rabbitmq}}\nspec:\n  command: {}\n  args: [--listen, '{{address}}']\n",
        bin_dir.join("ebb-rabbitmq-scaler").display()
    );
    for (index, queue) in queues.iter().enumerate() {
        yaml.push_str(&format!(
            r#"---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: worker-{index}}}
spec:
  command: {worker}
  env: {{QUEUE: {queue}, WORK_TIME: 10ms, STARTED_FILE: {started}, AMQP_URL: {amqp:?}}}
  gracePeriod: 5s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: bench-{index}}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: worker-{index}}}
  pollingInterval: {polling}
  cooldownPeriod: 300
  maxReplicaCount: 1
  triggers:
    - type: rabbitmq
      name: queue
      scaler: {{address: rabbitmq, push: {push}}}
      metadata: {{queueName: {queue}, value: "5", hostFromEnv: AMQP_URL}}
"#,
            worker = bin_dir.join("ebb-quickstart-worker").display(),
            started = dir.join(format!("started-{index}")).display(),
            amqp = args.amqp_url,
        ));
    }
    yaml
}

/// Publishes one message and returns the milliseconds until the worker's start stamp.
async fn trial(channel: &lapin::Channel, queue: &str, started_file: &Path) -> Result<f64> {
    let published = unix_nanos()?;
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"bench",
            BasicProperties::default(),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(started_file)
            && let Some(stamp) = text.split_whitespace().next()
        {
            let started: u128 = stamp.parse().context("bad start stamp")?;
            return Ok(started.saturating_sub(published) as f64 / 1e6);
        }
        if Instant::now() > deadline {
            bail!("no worker started for {queue} within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn unix_nanos() -> Result<u128> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos())
}

/// Waits until every object reports a first status (its first poll answered).
async fn wait_all_polled(port: u16, objects: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(body) = http_get(port, "/status").await {
            let status: serde_json::Value = serde_json::from_str(&body)?;
            let polled = status["objects"]
                .as_array()
                .map(|objects| {
                    objects
                        .iter()
                        .filter(|object| !object["status"]["triggers"].is_null())
                        .count()
                })
                .unwrap_or(0);
            if polled == objects {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("ebb run did not poll every object within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("bad HTTP response")?;
    Ok(body.to_owned())
}

/// Nearest-rank percentile of `values` (milliseconds).
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(label: &str, latencies: &[f64]) {
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    let min = latencies.iter().copied().fold(f64::INFINITY, f64::min);
    let max = latencies.iter().copied().fold(0.0, f64::max);
    println!(
        "{label}: n={} p50 {:.0} ms, p99 {:.0} ms (min {min:.0}, mean {mean:.0}, max {max:.0})",
        latencies.len(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
    );
}
