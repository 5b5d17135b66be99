//! `ebb-azure-queue-bench`: GetMetrics latency through the scaler (gRPC on loopback) against a
//! direct SDK `get_properties` call on the same queue, measured in one run, interleaved.
//!
//! Needs an Azurite (or storage account) reachable with the given connection string.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions};
use azure_storage_queue::models::QueueMessage;
use azure_storage_queue::{QueueClient, QueueClientOptions};
use clap::Parser;
use ebb_azure_queue_scaler::clients::http_transport;
use ebb_azure_queue_scaler::connection::StorageCredential;
use ebb_azure_queue_scaler::connection::{DEV_QUEUE_ENDPOINT, parse_connection};
use ebb_azure_queue_scaler::shared_key::SharedKeyPolicy;
use ebb_azure_queue_scaler::{AzureQueueScaler, ScalerOptions};
use ebb_scaler_sdk::proto::v1;
use ebb_scaler_sdk::{MetadataSchema, Scaler, Trigger, TriggerMetadata};
use tokio::net::TcpListener;

/// Compares GetMetrics through the scaler with a direct get_properties call.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Shared-key connection string of the storage account to measure.
    #[arg(
        long,
        env = "EBB_BENCH_AZURE_CONNECTION",
        default_value = "UseDevelopmentStorage=true",
        hide_env_values = true
    )]
    connection: String,
    /// Measured calls per side.
    #[arg(long, env = "EBB_BENCH_ITERATIONS", default_value_t = 2000)]
    iterations: usize,
    /// Unmeasured calls per side first (connections, caches).
    #[arg(long, env = "EBB_BENCH_WARMUP", default_value_t = 200)]
    warmup: usize,
    /// Messages put in the queue before measuring.
    #[arg(long, env = "EBB_BENCH_MESSAGES", default_value_t = 10)]
    messages: usize,
    /// queueLengthStrategy of the trigger (`all` is one request per poll, like the baseline).
    #[arg(long, env = "EBB_BENCH_STRATEGY", default_value = "all")]
    strategy: String,
    /// Set TCP_NODELAY on the in-process server's listening socket (inherited by accepted
    /// connections); without it the SDK's server answers GetInfo ~40 ms late (Nagle).
    #[arg(long, env = "EBB_BENCH_NODELAY")]
    nodelay: bool,
    /// Measure a scaler already running there (e.g. the `ebb-azure-queue-scaler` binary)
    /// instead of serving one in-process.
    #[arg(long, env = "EBB_BENCH_SCALER_ADDRESS")]
    scaler_address: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.iterations > 0, "--iterations must be > 0");
    let dev = azure_core::http::Url::parse(DEV_QUEUE_ENDPOINT)?;
    let access = parse_connection(&args.connection, Some("core.windows.net"), &dev)
        .context("--connection")?;
    let StorageCredential::SharedKey { account, key } = access.credential.clone() else {
        anyhow::bail!("--connection must hold an account key (the baseline signs with it)");
    };
    let queue = format!("bench-{}", std::process::id());
    let transport = http_transport(Duration::from_secs(5))?;
    let signing: Arc<dyn Policy> = Arc::new(SharedKeyPolicy::new(account, key));
    let direct = QueueClient::new(
        access.queue_url(&queue),
        None,
        Some(QueueClientOptions {
            client_options: ClientOptions {
                per_try_policies: vec![signing],
                retry: RetryOptions::none(),
                transport: Some(transport),
                ..ClientOptions::default()
            },
            ..QueueClientOptions::default()
        }),
    )?;
    direct
        .create(None)
        .await
        .context("creating the benchmark queue")?;
    for index in 0..args.messages {
        let message = QueueMessage {
            message_text: Some(format!("bench {index}")),
        };
        direct.send_message(message.try_into()?, None).await?;
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, server) = match args.scaler_address {
        Some(address) => (address, None),
        None => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            if args.nodelay {
                // Linux hands TCP_NODELAY on to accepted connections.
                socket.set_nodelay(true)?;
            }
            socket.bind("127.0.0.1:0".parse()?)?;
            let listener: TcpListener = socket.listen(128)?;
            let address = listener.local_addr()?;
            let scaler = AzureQueueScaler::new(ScalerOptions::default())?;
            let server = tokio::spawn(ebb_scaler_sdk::serve(
                scaler,
                listener,
                ebb_scaler_sdk::ServeOptions::default(),
                async {
                    let _ = stopped.await;
                },
            ));
            (address, Some(server))
        }
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?
        .connect()
        .await?;
    let mut client = v1::scaler_client::ScalerClient::new(channel);
    let request = v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "bench".into(),
            name: "bench".into(),
            trigger_name: "queue".into(),
            trigger_index: 0,
        }),
        metadata: [
            ("queueName".to_owned(), queue.clone()),
            ("queueLengthStrategy".to_owned(), args.strategy.clone()),
        ]
        .into(),
        secrets: [("connection".to_owned(), args.connection.clone())].into(),
    };

    // The same scaler called in-process splits the gRPC hop from the scaler's own work.
    let in_process = AzureQueueScaler::new(ScalerOptions::default())?;
    let trigger = Trigger {
        namespace: "bench".into(),
        name: "bench".into(),
        trigger_name: "queue".into(),
        config: TriggerMetadata::from_v1(&request.metadata, &request.secrets).parse(
            &MetadataSchema::of::<ebb_azure_queue_scaler::AzureQueueConfig>(),
        )?,
    };
    let mut direct_times = Vec::with_capacity(args.iterations);
    let mut scaler_times = Vec::with_capacity(args.iterations);
    let mut in_process_times = Vec::with_capacity(args.iterations);
    let mut info_times = Vec::with_capacity(args.iterations);
    for round in 0..args.warmup + args.iterations {
        let started = Instant::now();
        direct.get_properties(None).await?;
        let direct_elapsed = started.elapsed();
        let started = Instant::now();
        let reading = client.get_metrics(request.clone()).await?.into_inner();
        let scaler_elapsed = started.elapsed();
        anyhow::ensure!(
            reading.metric_values.first().map(|value| value.value) == Some(args.messages as f64),
            "the scaler measured {:?}, expected {}",
            reading.metric_values.first().map(|value| value.value),
            args.messages
        );
        let started = Instant::now();
        in_process.measure(&trigger).await?;
        let in_process_elapsed = started.elapsed();
        if round >= args.warmup {
            direct_times.push(direct_elapsed);
            scaler_times.push(scaler_elapsed);
            in_process_times.push(in_process_elapsed);
        }
    }

    // Apart from the loop above: a slow GetInfo must not disturb the interleaved timings.
    for _ in 0..args.iterations.min(200) {
        let started = Instant::now();
        client.get_info(v1::GetInfoRequest {}).await?;
        info_times.push(started.elapsed());
    }

    let _ = stop.send(());
    if let Some(server) = server {
        server.await??;
    }
    direct.delete(None).await?;

    let (direct_p50, direct_p99) = percentiles(&mut direct_times);
    let (scaler_p50, scaler_p99) = percentiles(&mut scaler_times);
    let (in_process_p50, in_process_p99) = percentiles(&mut in_process_times);
    let (info_p50, info_p99) = percentiles(&mut info_times);
    println!(
        "azure-queue GetMetrics benchmark: {} interleaved calls per side after {} warm-up, \
         strategy {}, queue at {}, scaler {}",
        args.iterations,
        args.warmup,
        args.strategy,
        access.service_url,
        match args.scaler_address {
            Some(address) => format!("at {address}"),
            None if args.nodelay => "in-process (TCP_NODELAY)".to_owned(),
            None => "in-process".to_owned(),
        }
    );
    println!(
        "direct get_properties      p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(direct_p50),
        ms(direct_p99)
    );
    println!(
        "scaler GetMetrics (gRPC)   p50 {:>8.3} ms   p99 {:>8.3} ms",
        ms(scaler_p50),
        ms(scaler_p99)
    );
    println!(
        "scaler measure() in-process p50 {:>6.3} ms   p99 {:>8.3} ms   (no gRPC hop; for reference)",
        ms(in_process_p50),
        ms(in_process_p99)
    );
    println!(
        "GetInfo (gRPC hop only)    p50 {:>8.3} ms   p99 {:>8.3} ms   (for reference)",
        ms(info_p50),
        ms(info_p99)
    );
    println!(
        "ratio scaler/direct        p50 {:>8.2}      p99 {:>8.2}      (goal p50 <= 1.30)",
        ms(scaler_p50) / ms(direct_p50),
        ms(scaler_p99) / ms(direct_p99)
    );
    Ok(())
}

fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let at = |fraction: f64| {
        let index = ((times.len() as f64 - 1.0) * fraction).round() as usize;
        times[index.min(times.len() - 1)]
    };
    (at(0.50), at(0.99))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
