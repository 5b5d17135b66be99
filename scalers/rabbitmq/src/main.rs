//! `ebb-rabbitmq-scaler`: serves the RabbitMQ scaler over ebb v1 and KEDA's external protocol.

use std::time::Duration;

use clap::Parser;
use ebb_rabbitmq_scaler::amqp::PoolOptions;
use ebb_rabbitmq_scaler::{ScalerOptions, run};

/// RabbitMQ scaler for ebb and KEDA (`external` / `external-push` triggers).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    serve: ebb_scaler_sdk::ServeArgs,
    /// How often StreamIsActive samples each distinct queue (milliseconds or e.g. `250ms`).
    #[arg(long, env = "EBB_RABBITMQ_PUSH_INTERVAL", default_value = "250ms", value_parser = ebb::process::parse_positive_duration)]
    push_interval: Duration,
    /// Connection name the broker shows for this scaler's AMQP connections.
    #[arg(
        long,
        env = "EBB_RABBITMQ_CONNECTION_NAME",
        default_value = "ebb-rabbitmq-scaler"
    )]
    connection_name: String,
    /// Most AMQP channels open at once per connection; further requests wait for one.
    #[arg(long, env = "EBB_RABBITMQ_MAX_CHANNELS", default_value_t = 32)]
    max_channels: usize,
    /// Longest delay between reconnect attempts to an unreachable broker.
    #[arg(long, env = "EBB_RABBITMQ_RECONNECT_MAX", default_value = "5s", value_parser = ebb::process::parse_positive_duration)]
    reconnect_max: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = ScalerOptions {
        push_interval: args.push_interval,
        pool: PoolOptions {
            connection_name: args.connection_name,
            max_channels: args.max_channels,
            backoff_max: args.reconnect_max,
            ..PoolOptions::default()
        },
    };
    run(options, args.serve).await?;
    Ok(())
}
