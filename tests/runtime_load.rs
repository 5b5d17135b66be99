//! Load figures, not a pass/fail test: N objects (default 10,000) polling every second
//! through one in-process scaler. Prints polls per second, CPU and RSS of the whole process
//! (runtime AND scaler, so the runtime's own share is lower). Run in release:
//!
//! ```text
//! EBB_LOAD_OBJECTS=10000 EBB_LOAD_SECONDS=20 \
//!   cargo test --release -p ebb --test runtime_load -- --ignored --nocapture
//! ```

mod runtime_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb::runtime::{InMemoryTarget, ObjectKey, PushMode};
use runtime_support::*;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// (user + system CPU seconds, RSS in MiB) of this process.
fn cpu_and_rss() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // Fields after the command: state is [0]; utime is field 14 overall, i.e. [11] here.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let rss_kib: f64 = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap();
    (ticks / 100.0, rss_kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load figures; run explicitly in release"]
async fn load_figures() {
    let objects = env_number("EBB_LOAD_OBJECTS", 10_000) as usize;
    let seconds = env_number("EBB_LOAD_SECONDS", 20);
    let values = Arc::new(Values::default());
    values.set("load", 3.0);
    let scaler = start_scaler(&values, false).await;
    let harness = Harness::new();
    let (_, rss_before) = cpu_and_rss();
    let mut targets = Vec::with_capacity(objects);
    for index in 0..objects {
        let key = ObjectKey::new("load", format!("object-{index}"));
        let target = InMemoryTarget::new(0);
        let triggers = vec![trigger(
            &key,
            "q",
            0,
            scaler.address,
            "load",
            PushMode::Never,
        )];
        harness
            .supervisor
            .apply(object(&key, spec(&["q"], 0, 10, 1), triggers, &target));
        targets.push(target);
    }
    // Warm up: every object scaled once.
    wait_until("all objects scaled", Duration::from_secs(120), || {
        targets.iter().all(|target| target.replicas() == 3)
    })
    .await;
    let (cpu_start, _) = cpu_and_rss();
    let polls_start = harness.trigger_polls();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let wall = started.elapsed().as_secs_f64();
    let (cpu_end, rss) = cpu_and_rss();
    let polls = harness.trigger_polls() - polls_start;
    let skipped = harness.metrics.skipped_polls.get();
    println!(
        "objects={objects} seconds={wall:.1} polls_per_second={:.0} (ideal {objects}) \
         cpu_cores={:.3} (runtime + in-process scaler) rss_mib={rss:.1} (before objects {rss_before:.1}) \
         skipped_polls={skipped}",
        polls as f64 / wall,
        (cpu_end - cpu_start) / wall,
    );
    harness.supervisor.shutdown().await;
}
