//! The quickstart worker: consumes one RabbitMQ queue, one message at a time, spends a fixed
//! time on each, records its id, and only then acknowledges it. With `--one-message` it is a
//! ScaledJob's job instead: one message, then exit.
//!
//! On SIGTERM or SIGINT it stops taking messages, finishes the one in hand, and exits; a
//! message it had received but not started is returned to the queue when the connection
//! closes. That is what lets `ebb run` scale in without losing or repeating work.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Event};
use tokio::signal::unix::{SignalKind, signal};

/// How long any one call to the broker may take before the worker gives up and exits.
const BROKER_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle worker checks that its connection is still open.
const CONNECTION_CHECK: Duration = Duration::from_secs(1);

/// Consume a RabbitMQ queue slowly, to show ebb scaling workers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// AMQP URL of the broker.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// Queue to consume (declared durable if missing).
    #[arg(long, env = "QUEUE", default_value = "orders")]
    queue: String,
    /// Time spent on each message, e.g. `1s` or `50ms`.
    #[arg(long, env = "WORK_TIME", default_value = "1s", value_parser = humantime::parse_duration)]
    work_time: Duration,
    /// File to append each processed message id to (one line each, synced before the ack).
    #[arg(long, env = "PROCESSED_FILE")]
    processed_file: Option<PathBuf>,
    /// File to append `<unix-nanos> <pid>` to as the very first thing the process does.
    #[arg(long, env = "STARTED_FILE")]
    started_file: Option<PathBuf>,
    /// Job mode (a ScaledJob's job): take exactly one message, process and ack it, exit.
    #[arg(long, env = "ONE_MESSAGE")]
    one_message: bool,
    /// Job mode: how long to wait for a message before exiting without one.
    #[arg(long, env = "WAIT_FOR_MESSAGE", default_value = "10s", value_parser = humantime::parse_duration)]
    wait_for_message: Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.started_file {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("clock before 1970")?
            .as_nanos();
        append_line(path, &format!("{nanos} {}", std::process::id()))?;
    }
    let mut terminate = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install SIGINT handler")?;

    // A broker that is still starting can accept the TCP connection and never finish the
    // handshake, or never answer a declare: give up after a while, so the supervisor restarts
    // the worker.
    let (connection, channel) = tokio::time::timeout(BROKER_CALL_TIMEOUT, open(&args))
        .await
        .context("connect to RabbitMQ: no answer within 10 s")??;
    if args.one_message {
        return one_message(&args, &connection, &channel).await;
    }
    let mut deliveries = tokio::time::timeout(BROKER_CALL_TIMEOUT, async {
        // One message at a time: the broker keeps the rest for other workers.
        channel.basic_qos(1, BasicQosOptions::default()).await?;
        channel
            .basic_consume(
                args.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
    })
    .await
    .context("consume: no answer from RabbitMQ within 10 s")??;
    println!("worker {} consuming {}", std::process::id(), args.queue);

    // lapin does not always end the consumer stream, or answer an ack, once the broker has
    // dropped the connection (amqp-rs/lapin#409): a worker waiting on either would sit idle
    // forever while its queue grows. Watch the connection itself, and bound every broker call,
    // so a lost connection ends the process and the supervisor starts a fresh one.
    let mut events = connection.events_listener();
    let mut health_check = tokio::time::interval(CONNECTION_CHECK);
    let mut processed = 0u64;
    loop {
        let delivery = tokio::select! {
            biased;
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            Some(event) = events.next() => match event {
                Event::Error(error) => bail!("connection to RabbitMQ lost: {error}"),
                _ => continue,
            },
            _ = health_check.tick() => {
                ensure!(connection.status().connected(), "connection to RabbitMQ lost");
                continue;
            },
            next = deliveries.next() => match next {
                Some(delivery) => delivery.context("receive")?,
                None => break,
            },
        };
        // Signals arriving now wait until this message is done.
        tokio::time::sleep(args.work_time).await;
        let id = message_id(&delivery);
        if let Some(path) = &args.processed_file {
            append_line(path, &id)?;
        }
        tokio::time::timeout(
            BROKER_CALL_TIMEOUT,
            delivery.ack(BasicAckOptions::default()),
        )
        .await
        .context("ack: no answer from RabbitMQ within 10 s")??;
        processed += 1;
    }
    // Closing returns any message received but not started to the queue.
    let _ = connection.close(200, "worker stopping".into()).await;
    println!(
        "worker {} stopped after {processed} messages",
        std::process::id()
    );
    Ok(())
}

/// Connects, opens a channel and declares the queue (durable).
async fn open(args: &Args) -> Result<(Connection, lapin::Channel)> {
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .context("connect to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            args.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declare queue {}", args.queue))?;
    Ok((connection, channel))
}

/// Job mode: `basic.get` (not a consumer, so the broker hands this process exactly one
/// message), process, ack, exit. A job that finds the queue empty for `--wait-for-message`
/// exits successfully without work.
async fn one_message(args: &Args, connection: &Connection, channel: &lapin::Channel) -> Result<()> {
    let deadline = tokio::time::Instant::now() + args.wait_for_message;
    let message = loop {
        let got = tokio::time::timeout(
            BROKER_CALL_TIMEOUT,
            channel.basic_get(args.queue.as_str().into(), BasicGetOptions::default()),
        )
        .await
        .context("basic.get: no answer from RabbitMQ within 10 s")?
        .context("basic.get")?;
        if let Some(message) = got {
            break Some(message);
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(message) = message else {
        println!(
            "job {}: no message within {:?}",
            std::process::id(),
            args.wait_for_message
        );
        let _ = connection.close(200, "job done".into()).await;
        return Ok(());
    };
    let delivery = message.delivery;
    tokio::time::sleep(args.work_time).await;
    let id = message_id(&delivery);
    if let Some(path) = &args.processed_file {
        append_line(path, &id)?;
    }
    tokio::time::timeout(
        BROKER_CALL_TIMEOUT,
        delivery.ack(BasicAckOptions::default()),
    )
    .await
    .context("ack: no answer from RabbitMQ within 10 s")??;
    println!("job {}: processed {id}", std::process::id());
    let _ = connection.close(200, "job done".into()).await;
    Ok(())
}

/// The message id property, else the body as text.
fn message_id(delivery: &lapin::message::Delivery) -> String {
    match delivery.properties.message_id() {
        Some(id) => id.to_string(),
        None => String::from_utf8_lossy(&delivery.data).into_owned(),
    }
}

/// Appends one line with a single write and syncs it, so lines from several workers never mix.
fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()?;
    Ok(())
}
