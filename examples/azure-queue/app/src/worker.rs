//! The Functions-style worker loop: receive one message, run the function, then delete it,
//! retry it, or move it to the poison queue. Once told to stop it takes no new message; the
//! one in hand is finished first.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::watch;

use crate::handler::{AfterFailure, after_failure, handle};
use crate::queues::{Queue, QueueError, Received};

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A queue call failed where retrying could lose or repeat work.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A record file could not be written.
    #[error("cannot write {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time the function spends on each message.
    pub work_time: Duration,
    /// How long a received message stays hidden from other workers.
    pub visibility_timeout: Duration,
    /// The try that reaches this count moves a failing message to the poison queue.
    pub max_dequeue_count: u64,
    /// The longest wait between two receives on an empty queue (waits double from 100 ms).
    pub max_polling_interval: Duration,
    /// Append each processed message id here (synced before the message is deleted).
    pub processed_file: Option<PathBuf>,
    /// Append each poisoned message id here (synced before the message is deleted).
    pub poisoned_file: Option<PathBuf>,
}

/// What one worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages handled and deleted.
    pub processed: u64,
    /// Failed tries returned to the queue.
    pub retried: u64,
    /// Messages moved to the poison queue.
    pub poisoned: u64,
}

/// Runs until `stop` turns true (or its sender is gone), then returns what was done.
pub async fn run(
    queue: &Queue,
    poison: &Queue,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) -> Result<Tally, WorkerError> {
    let visibility = i32::try_from(settings.visibility_timeout.as_secs().max(1)).unwrap_or(30);
    let first_wait = Duration::from_millis(100).min(settings.max_polling_interval);
    let mut wait = first_wait;
    let mut tally = Tally::default();
    while !*stop.borrow() {
        let message = match queue.receive_one(visibility).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                // Functions-style polling: back off on an empty queue, wake up on stop.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                wait = (wait * 2).min(settings.max_polling_interval);
                continue;
            }
            Err(error) => {
                // Nothing was received, so nothing is lost by trying again later.
                eprintln!("worker {}: {error}; retrying", std::process::id());
                tokio::select! {
                    _ = tokio::time::sleep(settings.max_polling_interval) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        wait = first_wait;
        // A stop signal arriving now waits until this message is done.
        tokio::time::sleep(settings.work_time).await;
        settle(queue, poison, settings, &message, &mut tally).await?;
    }
    Ok(tally)
}

/// Deletes, retries or poisons one message after running the function on it.
async fn settle(
    queue: &Queue,
    poison: &Queue,
    settings: &Settings,
    message: &Received,
    tally: &mut Tally,
) -> Result<(), WorkerError> {
    match handle(&message.body) {
        Ok(id) => {
            record(settings.processed_file.as_deref(), &id)?;
            queue.delete(message).await?;
            tally.processed += 1;
        }
        Err(failure) => match after_failure(message.dequeue_count, settings.max_dequeue_count) {
            AfterFailure::Retry => {
                eprintln!(
                    "worker {}: try {} failed: {failure}",
                    std::process::id(),
                    message.dequeue_count
                );
                queue.release(message).await?;
                tally.retried += 1;
            }
            AfterFailure::Poison => {
                eprintln!(
                    "worker {}: try {} failed: {failure}; moving it to {}",
                    std::process::id(),
                    message.dequeue_count,
                    poison.name()
                );
                poison.send(&message.body).await?;
                let id = crate::handler::body_id(&message.body).unwrap_or(&message.message_id);
                record(settings.poisoned_file.as_deref(), id)?;
                queue.delete(message).await?;
                tally.poisoned += 1;
            }
        },
    }
    Ok(())
}

/// Appends one line with a single write and syncs it, so lines from several workers never mix.
fn record(path: Option<&Path>, line: &str) -> Result<(), WorkerError> {
    let Some(path) = path else {
        return Ok(());
    };
    let failed = |source| WorkerError::Record {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(failed)?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(failed)?;
    file.sync_data().map_err(failed)
}
