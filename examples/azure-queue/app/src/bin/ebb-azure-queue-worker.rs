//! A queue worker in the style of an Azure Functions queue trigger: receives one message at a
//! time, spends `WORK_TIME` on it, then deletes it; a message that fails `MAX_DEQUEUE_COUNT`
//! times goes to `<queue>-poison`. On SIGTERM or SIGINT it takes no new message, finishes the
//! one in hand and exits.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use ebb_azure_queue_demo::handler::DEFAULT_MAX_DEQUEUE_COUNT;
use ebb_azure_queue_demo::queues::{Queues, poison_queue_name};
use ebb_azure_queue_demo::worker::{Settings, run};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Handle an Azure Storage queue one message at a time, Azure Functions style.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Storage connection string (the name Azure Functions uses for its storage setting).
    #[arg(long, env = "AzureWebJobsStorage", hide_env_values = true)]
    connection: String,
    /// Queue to handle.
    #[arg(long, env = "QUEUE", default_value = "orders")]
    queue: String,
    /// Time spent on each message, e.g. `1s` or `50ms`.
    #[arg(long, env = "WORK_TIME", default_value = "1s", value_parser = humantime::parse_duration)]
    work_time: Duration,
    /// How long a received message stays invisible to other workers.
    #[arg(long, env = "VISIBILITY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    visibility_timeout: Duration,
    /// The failed try that reaches this dequeue count moves the message to `<queue>-poison`.
    #[arg(long, env = "MAX_DEQUEUE_COUNT", default_value_t = DEFAULT_MAX_DEQUEUE_COUNT)]
    max_dequeue_count: u64,
    /// Longest wait between receives on an empty queue.
    #[arg(long, env = "MAX_POLLING_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    max_polling_interval: Duration,
    /// File to append each processed message id to.
    #[arg(long, env = "PROCESSED_FILE")]
    processed_file: Option<PathBuf>,
    /// File to append each poisoned message id to.
    #[arg(long, env = "POISONED_FILE")]
    poisoned_file: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut terminate = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = stop_tx.send(true);
        // Keep the sender alive so the worker sees the flag, not a closed channel.
        std::future::pending::<()>().await;
    });

    let queues = Queues::new(args.connection)?;
    let queue = queues.open(&args.queue)?;
    let poison = queues.open(&poison_queue_name(&args.queue))?;
    queue.create().await?;
    poison.create().await?;
    println!("worker {} handling {}", std::process::id(), args.queue);
    let settings = Settings {
        work_time: args.work_time,
        visibility_timeout: args.visibility_timeout,
        max_dequeue_count: args.max_dequeue_count,
        max_polling_interval: args.max_polling_interval,
        processed_file: args.processed_file,
        poisoned_file: args.poisoned_file,
    };
    let tally = run(&queue, &poison, &settings, stop_rx).await?;
    println!(
        "worker {} stopped: {} processed, {} retried, {} poisoned",
        std::process::id(),
        tally.processed,
        tally.retried,
        tally.poisoned
    );
    Ok(())
}
