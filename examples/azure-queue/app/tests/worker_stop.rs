//! The worker binary against the shared real Azurite: told to stop (SIGTERM, as `ebb run`
//! scales in) while it holds a message, it finishes that message, takes no new one, and exits.

#[rustfmt::skip]
#[path = "../../../../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use ebb_azure_queue_demo::queues::{Queue, Queues};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn visible(queue: &Queue) -> u32 {
    block_on(queue.visible_count()).unwrap()
}

#[test]
fn sigterm_finishes_the_message_in_hand_and_takes_no_new_one() {
    support::require_service("Azurite", "127.0.0.1:10001");
    let name = format!(
        "stop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let connection = "UseDevelopmentStorage=true";
    let queues = Queues::new(connection).unwrap();
    let queue = queues.open(&name).unwrap();
    block_on(async {
        queue.create().await.unwrap();
        for n in 0..5 {
            queue.send(&format!("s-{n}")).await.unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let processed = dir.path().join("processed");
    let worker = Command::new(support::binary(
        "ebb-azure-queue-demo",
        "ebb-azure-queue-worker",
    ))
    .env("AzureWebJobsStorage", connection)
    .env("QUEUE", &name)
    .env("WORK_TIME", "2s")
    .env("PROCESSED_FILE", &processed)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = worker.id();
    let mut worker = support::KillOnDrop(worker);

    // One message taken (invisible), the function still running on it.
    support::wait_for(
        "the worker holds one message",
        Duration::from_secs(30),
        || visible(&queue) == 4,
    );
    assert!(!processed.exists(), "the first message finished too early");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut exited = None;
    support::wait_for("the worker exits", Duration::from_secs(15), || {
        exited = worker.0.try_wait().unwrap();
        exited.is_some()
    });
    assert!(exited.unwrap().success(), "{exited:?}");
    let mut stdout = String::new();
    worker
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(stdout.contains("stopped: 1 processed"), "{stdout}");

    // The message in hand was finished and deleted; the other four were never taken.
    assert_eq!(std::fs::read_to_string(&processed).unwrap(), "s-0\n");
    assert_eq!(visible(&queue), 4);
    assert_eq!(block_on(queue.approximate_count()).unwrap(), 4);
}
