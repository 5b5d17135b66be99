//! `ebb-rabbitmq-bench`: GetMetrics latency through the scaler (gRPC on loopback) against the
//! floor, the same passive `queue.declare` issued directly with lapin, measured in one run and
//! interleaved; then GetMetrics for many triggers in parallel (throughput, AMQP connections).
//!
//! Needs a RabbitMQ with the management plugin; creates and deletes its own queues.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use ebb_rabbitmq_scaler::address::BrokerAddress;
use ebb_rabbitmq_scaler::amqp::PoolOptions;
use ebb_rabbitmq_scaler::{RabbitMqScaler, ScalerOptions};
use ebb_scaler_sdk::proto::v1;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::net::TcpListener;

/// Compares GetMetrics through the scaler with a direct passive queue.declare.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// AMQP URL of the broker (vhost included).
    #[arg(
        long,
        env = "EBB_BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2F",
        hide_env_values = true
    )]
    amqp_url: String,
    /// Management API base URL of the same broker, to count connections.
    #[arg(
        long,
        env = "EBB_BENCH_MANAGEMENT_URL",
        default_value = "http://guest:guest@127.0.0.1:15672",
        hide_env_values = true
    )]
    management_url: String,
    /// Measured calls per side in the latency comparison.
    #[arg(long, env = "EBB_BENCH_ITERATIONS", default_value_t = 5000)]
    iterations: usize,
    /// Unmeasured calls per side first.
    #[arg(long, env = "EBB_BENCH_WARMUP", default_value_t = 500)]
    warmup: usize,
    /// Triggers in the parallel phase.
    #[arg(long, env = "EBB_BENCH_TRIGGERS", default_value_t = 500)]
    triggers: usize,
    /// Queues the parallel triggers are spread over.
    #[arg(long, env = "EBB_BENCH_QUEUES", default_value_t = 50)]
    queues: usize,
    /// Set TCP_NODELAY on the server's listening socket (inherited by accepted connections on
    /// Linux), to show the latency without Nagle's algorithm on the server side.
    #[arg(long, env = "EBB_BENCH_LISTENER_NODELAY")]
    listener_nodelay: bool,
    /// Rounds of the parallel phase (each round: every trigger once, all at the same time).
    #[arg(long, env = "EBB_BENCH_ROUNDS", default_value_t = 10)]
    rounds: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.iterations > 0 && args.queues > 0,
        "--iterations and --queues must be > 0"
    );
    let address = BrokerAddress::parse(&args.amqp_url).context("--amqp-url")?;
    let prefix = format!("ebb-bench-{}", std::process::id());
    let queues: Vec<String> = (0..args.queues)
        .map(|i| format!("{prefix}-{i:03}"))
        .collect();

    let setup = Connection::connect(&address.with_credentials(), ConnectionProperties::default())
        .await
        .context("connecting to the broker")?;
    let channel = setup.create_channel().await?;
    for (index, queue) in queues.iter().enumerate() {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for _ in 0..(index % 10) + 1 {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    b"bench",
                    BasicProperties::default(),
                )
                .await?;
        }
    }

    let result = run(&args, &address, &queues, &prefix).await;

    for queue in &queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = setup.close(200, "bench done".into()).await;
    result
}

async fn run(
    args: &Args,
    address: &BrokerAddress,
    queues: &[String],
    prefix: &str,
) -> anyhow::Result<()> {
    let connection_name = format!("{prefix}-scaler");
    let scaler = RabbitMqScaler::new(ScalerOptions {
        pool: PoolOptions {
            connection_name: connection_name.clone(),
            ..PoolOptions::default()
        },
        ..ScalerOptions::default()
    });
    let pool = scaler.amqp_pool();
    let listener = if args.listener_nodelay {
        // Linux copies TCP_NODELAY from a listening socket to the sockets it accepts.
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_nodelay(true)?;
        socket.bind("127.0.0.1:0".parse()?)?;
        socket.listen(1024)?
    } else {
        TcpListener::bind("127.0.0.1:0").await?
    };
    let endpoint = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ebb_scaler_sdk::serve(
        scaler,
        listener,
        ebb_scaler_sdk::ServeOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Channel::from_shared(endpoint)?
        .connect()
        .await?;
    let client = v1::scaler_client::ScalerClient::new(channel);

    // The floor: passive declare on one channel of a direct lapin connection.
    let direct =
        Connection::connect(&address.with_credentials(), ConnectionProperties::default()).await?;
    let direct_channel = direct.create_channel().await?;
    let queue = &queues[0];
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let request = trigger_request(address, queue, "latency");

    // For the breakdown: the scaler's measure() in-process (its own pool, no gRPC), and
    // GetInfo over the same gRPC channel (transport and server, no source access).
    let in_process = RabbitMqScaler::new(ScalerOptions {
        pool: PoolOptions {
            connection_name: format!("{prefix}-in-process"),
            ..PoolOptions::default()
        },
        ..ScalerOptions::default()
    });
    let schema = ebb_scaler_sdk::MetadataSchema::of::<ebb_rabbitmq_scaler::RabbitMqConfig>();
    let trigger = ebb_scaler_sdk::Trigger {
        namespace: "bench".into(),
        name: "latency".into(),
        trigger_name: "rabbitmq".into(),
        config: ebb_scaler_sdk::TriggerMetadata::from_v1(&request.metadata, &request.secrets)
            .parse(&schema)?,
    };

    const SIDES: usize = 4;
    let mut samples: [Vec<Duration>; SIDES] = Default::default();
    for iteration in 0..args.warmup + args.iterations {
        // Rotate the order so no path always runs first (on a warmer cache).
        for offset in 0..SIDES {
            let side = (iteration + offset) % SIDES;
            let started = Instant::now();
            match side {
                0 => {
                    direct_channel
                        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                        .await?;
                }
                1 => {
                    client.clone().get_metrics(request.clone()).await?;
                }
                2 => {
                    ebb_scaler_sdk::Scaler::measure(&in_process, &trigger).await?;
                }
                _ => {
                    client.clone().get_info(v1::GetInfoRequest {}).await?;
                }
            }
            if iteration >= args.warmup {
                samples[side].push(started.elapsed());
            }
        }
    }
    let _ = direct.close(200, "bench done".into()).await;
    let [mut floor, mut through, mut measure, mut info] = samples;
    let (floor_p50, floor_p99) = percentiles(&mut floor);
    let (scaler_p50, scaler_p99) = percentiles(&mut through);
    let (measure_p50, measure_p99) = percentiles(&mut measure);
    let (info_p50, info_p99) = percentiles(&mut info);
    println!(
        "GetMetrics latency, {} calls per path after {} warm-up, interleaved",
        args.iterations, args.warmup
    );
    println!("| path | p50 | p99 | p50 / floor |");
    println!("|---|---|---|---|");
    let row = |name: &str, p50: Duration, p99: Duration| {
        println!(
            "| {name} | {} | {} | {:.2} |",
            micros(p50),
            micros(p99),
            ratio(p50, floor_p50)
        );
    };
    row(
        "floor: direct lapin passive queue.declare",
        floor_p50,
        floor_p99,
    );
    row(
        "GetMetrics through the scaler, gRPC on loopback",
        scaler_p50,
        scaler_p99,
    );
    row(
        "breakdown: scaler measure() in-process, no gRPC",
        measure_p50,
        measure_p99,
    );
    row(
        "breakdown: GetInfo over gRPC (transport only, no broker)",
        info_p50,
        info_p99,
    );
    println!(
        "ratio GetMetrics / floor: p50 {:.2}, p99 {:.2}",
        ratio(scaler_p50, floor_p50),
        ratio(scaler_p99, floor_p99)
    );

    // Many triggers at once over one gRPC channel.
    let requests: Vec<v1::TriggerRequest> = (0..args.triggers)
        .map(|i| trigger_request(address, &queues[i % queues.len()], &format!("t{i}")))
        .collect();
    let mut calls = 0usize;
    let started = Instant::now();
    for _ in 0..args.rounds {
        let round = requests.iter().cloned().map(|request| {
            let mut client = client.clone();
            tokio::spawn(async move { client.get_metrics(request).await })
        });
        for outcome in futures::future::join_all(round).await {
            outcome??;
            calls += 1;
        }
    }
    let elapsed = started.elapsed();
    let on_broker = broker_connections(&args.management_url, &connection_name).await?;
    println!();
    println!(
        "Parallel GetMetrics: {} triggers over {} queues, {} rounds",
        args.triggers,
        queues.len(),
        args.rounds
    );
    println!(
        "| calls | seconds | calls/s | AMQP connections (scaler's pool) | AMQP connections (management API) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {calls} | {:.2} | {:.0} | {} | {} |",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        pool.open_connections(),
        on_broker
    );
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

fn trigger_request(address: &BrokerAddress, queue: &str, name: &str) -> v1::TriggerRequest {
    let mut metadata = HashMap::new();
    metadata.insert("host".to_owned(), address.with_credentials());
    metadata.insert("queueName".to_owned(), queue.to_owned());
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: "bench".into(),
            name: name.into(),
            trigger_name: "rabbitmq".into(),
            trigger_index: 0,
        }),
        metadata,
        secrets: HashMap::new(),
    }
}

/// Connections the broker lists under `name`; the management API's list lags, so it is polled
/// for up to 15 s until the scaler's connection shows.
async fn broker_connections(management_url: &str, name: &str) -> anyhow::Result<usize> {
    let management = BrokerAddress::parse(management_url).context("--management-url")?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(ebb_rabbitmq_scaler::tls::client_config(&Default::default())?)
        .build()?;
    let url = format!(
        "{}/api/connections?columns=client_properties",
        management.http_base()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = http
            .get(&url)
            .basic_auth(
                management.username.as_deref().unwrap_or(""),
                management.password.as_deref(),
            )
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
        let count = listed
            .iter()
            .filter(|c| c["client_properties"]["connection_name"].as_str() == Some(name))
            .count();
        if count > 0 || Instant::now() > deadline {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn micros(duration: Duration) -> String {
    format!("{} µs", duration.as_micros())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}
