//! The Azure Queue demo's helper: `send` fills the queue, `depth` prints the queue lengths,
//! `report` watches `ebb run` and checks the outcome.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand};
use ebb_azure_queue_demo::handler::{is_failing, message_body, message_id};
use ebb_azure_queue_demo::queues::{Queues, poison_queue_name};
use ebb_azure_queue_demo::report::{Outcome, watch_peak};

/// Publish to, measure and report on the Azure Queue demo's queue.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    queue: QueueArgs,
    #[command(subcommand)]
    command: Command,
}

/// The queue the demo uses.
#[derive(Debug, ClapArgs)]
struct QueueArgs {
    /// Storage connection string.
    #[arg(
        long,
        env = "AzureWebJobsStorage",
        hide_env_values = true,
        global = true
    )]
    connection: Option<String>,
    /// The work queue; failed messages go to `<queue>-poison`.
    #[arg(long, env = "QUEUE", default_value = "orders", global = true)]
    queue: String,
    /// Message ids are `<prefix>-<n>`.
    #[arg(long, env = "ID_PREFIX", default_value = "msg", global = true)]
    id_prefix: String,
    /// Every N-th message always fails, to show the poison queue (0: none).
    #[arg(long, env = "FAIL_EVERY", default_value_t = 20, global = true)]
    fail_every: u64,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the queues and send `--count` messages.
    Send {
        /// Number of messages; 0 only creates the queues.
        #[arg(long, short = 'n', env = "COUNT", default_value_t = 100)]
        count: u64,
    },
    /// Print the approximate lengths of the queue and of its poison queue.
    Depth,
    /// Watch `ebb run` until it exits, then print the outcome; fails when a message was lost,
    /// repeated, or left behind.
    Report {
        /// `ebb run`'s status address.
        #[arg(long, env = "EBB_STATUS_ADDR")]
        status_addr: SocketAddr,
        /// How many messages were sent.
        #[arg(long, env = "COUNT", default_value_t = 100)]
        count: u64,
        /// The workers' PROCESSED_FILE.
        #[arg(long, env = "PROCESSED_FILE")]
        processed_file: PathBuf,
        /// The workers' POISONED_FILE.
        #[arg(long, env = "POISONED_FILE")]
        poisoned_file: PathBuf,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let args = cli.queue;
    let connection = args
        .connection
        .context("no connection string: set AzureWebJobsStorage or --connection")?;
    let queues = Queues::new(connection)?;
    let queue = queues.open(&args.queue)?;
    let poison = queues.open(&poison_queue_name(&args.queue))?;
    match cli.command {
        Command::Send { count } => {
            queue.create().await?;
            poison.create().await?;
            for n in 0..count {
                let id = message_id(&args.id_prefix, n);
                queue
                    .send(&message_body(&id, is_failing(n, args.fail_every)))
                    .await?;
            }
            println!("sent {count} messages to {}", args.queue);
        }
        Command::Depth => {
            let depth = queue.approximate_count().await?;
            let poisoned = poison.approximate_count().await?;
            println!("{depth} {poisoned}");
        }
        Command::Report {
            status_addr,
            count,
            processed_file,
            poisoned_file,
        } => {
            let peak_workers = watch_peak(status_addr, Duration::from_secs(120)).await?;
            let outcome = Outcome {
                prefix: args.id_prefix,
                published: count,
                fail_every: args.fail_every,
                processed: lines(&processed_file)?,
                poisoned: lines(&poisoned_file)?,
                left_in_queue: queue.approximate_count().await?,
                in_poison_queue: poison.approximate_count().await?,
                peak_workers,
            };
            println!("{}", outcome.summary());
            let problems = outcome.problems();
            if !problems.is_empty() {
                bail!("the demo went wrong:\n{}", problems.join("\n"));
            }
            println!(
                "every message was processed exactly once or moved to {}",
                poison.name()
            );
        }
    }
    Ok(())
}

/// The lines of a record file; a file never written means no line.
fn lines(path: &Path) -> Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error).with_context(|| format!("read {}", path.display())),
    }
}
