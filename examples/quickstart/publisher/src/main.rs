//! The quickstart publisher: declares the queue and sends N messages with unique ids, waiting
//! for the broker's confirms so every message is safely queued when it exits.

use anyhow::{Context, Result, ensure};
use clap::Parser;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

/// Send messages to a RabbitMQ queue for the ebb quickstart.
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
    /// Queue to publish to (declared durable if missing).
    #[arg(long, env = "QUEUE", default_value = "orders")]
    queue: String,
    /// Number of messages to send; 0 only declares the queue.
    #[arg(long, short = 'n', env = "COUNT", default_value_t = 100)]
    count: u64,
    /// Message ids are `<prefix>-<n>`; defaults to the current time in milliseconds.
    #[arg(long, env = "ID_PREFIX")]
    id_prefix: Option<String>,
    /// Delete the queue instead of publishing (for cleaning up after tests).
    #[arg(long, env = "DELETE_QUEUE")]
    delete_queue: bool,
    /// Print the number of ready messages in the queue instead of publishing.
    #[arg(long, env = "PRINT_DEPTH")]
    print_depth: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let connection = Connection::connect(&args.amqp_url, ConnectionProperties::default())
        .await
        .context("connect to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    if args.delete_queue {
        channel
            .queue_delete(args.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .with_context(|| format!("delete queue {}", args.queue))?;
        let _ = connection.close(200, "done".into()).await;
        return Ok(());
    }
    let queue = channel
        .queue_declare(
            args.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                passive: args.print_depth,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declare queue {}", args.queue))?;
    if args.print_depth {
        println!("{}", queue.message_count());
        let _ = connection.close(200, "done".into()).await;
        return Ok(());
    }
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let prefix = match args.id_prefix {
        Some(prefix) => prefix,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("clock before 1970")?
            .as_millis()
            .to_string(),
    };
    let mut confirms = Vec::with_capacity(args.count as usize);
    for n in 0..args.count {
        let id = format!("{prefix}-{n}");
        let properties = BasicProperties::default()
            .with_message_id(id.as_str().into())
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                "".into(),
                args.queue.as_str().into(),
                BasicPublishOptions::default(),
                id.as_bytes(),
                properties,
            )
            .await?;
        confirms.push(confirm);
    }
    for confirm in confirms {
        let confirmation = confirm.await?;
        ensure!(confirmation.is_ack(), "the broker refused a message");
    }
    println!("published {} messages to {}", args.count, args.queue);
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}
