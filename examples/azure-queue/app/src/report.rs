//! The demo's closing report: the peak number of workers seen on `ebb run`'s status endpoint,
//! and the check that every message was processed exactly once or poisoned.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::handler::{is_failing, message_id};

/// Why watching `ebb run` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The status endpoint never answered.
    #[error("ebb run's status endpoint {0} did not answer within {1:?}")]
    NeverUp(SocketAddr, Duration),
}

/// Reads `GET /status` once; None when nothing answers or the answer is not status JSON.
pub async fn status(address: SocketAddr) -> Option<serde_json::Value> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET /status HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8(response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.split_whitespace()
        .nth(1)
        .filter(|code| *code == "200")?;
    serde_json::from_str(body).ok()
}

/// Running workers over every process group of a status document.
pub fn running_workers(status: &serde_json::Value) -> u64 {
    status["processGroups"]
        .as_array()
        .map(|groups| {
            groups
                .iter()
                .filter_map(|group| group["running"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

/// Polls the status endpoint until it has answered and then stopped answering (ebb run
/// exited), and returns the most workers seen running at once.
pub async fn watch_peak(
    address: SocketAddr,
    first_answer_within: Duration,
) -> Result<u64, ReportError> {
    let start = Instant::now();
    let mut seen = false;
    let mut peak = 0;
    loop {
        match status(address).await {
            Some(status) => {
                seen = true;
                peak = peak.max(running_workers(&status));
            }
            None if seen => return Ok(peak),
            None if start.elapsed() > first_answer_within => {
                return Err(ReportError::NeverUp(address, first_answer_within));
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the demo published and what became of it.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Id prefix of the published messages.
    pub prefix: String,
    /// How many were published.
    pub published: u64,
    /// Every `fail_every`-th message always fails (0: none).
    pub fail_every: u64,
    /// Ids the workers recorded as processed, one per processing.
    pub processed: Vec<String>,
    /// Ids the workers recorded as moved to the poison queue.
    pub poisoned: Vec<String>,
    /// Messages left in the work queue.
    pub left_in_queue: u64,
    /// Messages in the poison queue.
    pub in_poison_queue: u64,
    /// The most workers running at once.
    pub peak_workers: u64,
}

impl Outcome {
    /// Everything that went wrong; empty when every message was processed exactly once or,
    /// if it always fails, poisoned exactly once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let processed = count(&self.processed);
        let poisoned = count(&self.poisoned);
        for (label, seen) in [("processed", &processed), ("poisoned", &poisoned)] {
            let repeated: Vec<&str> = seen
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(id, _)| *id)
                .collect();
            if !repeated.is_empty() {
                problems.push(format!("{label} more than once: {repeated:?}"));
            }
        }
        let mut expected = BTreeSet::new();
        for n in 0..self.published {
            let id = message_id(&self.prefix, n);
            let (should, other, label) = if is_failing(n, self.fail_every) {
                (&poisoned, &processed, "poisoned")
            } else {
                (&processed, &poisoned, "processed")
            };
            if !should.contains_key(id.as_str()) || other.contains_key(id.as_str()) {
                problems.push(format!("{id} was not {label} (and only that)"));
            }
            expected.insert(id);
        }
        let strangers: Vec<&str> = processed
            .keys()
            .chain(poisoned.keys())
            .filter(|id| !expected.contains(**id))
            .copied()
            .collect();
        if !strangers.is_empty() {
            problems.push(format!("unknown ids recorded: {strangers:?}"));
        }
        if self.left_in_queue != 0 {
            problems.push(format!("{} messages left in the queue", self.left_in_queue));
        }
        if self.in_poison_queue != poisoned.len() as u64 {
            problems.push(format!(
                "the poison queue holds {} messages, the workers poisoned {}",
                self.in_poison_queue,
                poisoned.len()
            ));
        }
        if self.peak_workers == 0 {
            problems.push("no worker ever ran".to_owned());
        }
        problems
    }

    /// The closing lines of the demo.
    pub fn summary(&self) -> String {
        format!(
            "published:       {}\nprocessed:       {}\npoisoned:        {} (in the poison queue: {})\nleft in queue:   {}\npeak workers:    {}",
            self.published,
            self.processed.len(),
            self.poisoned.len(),
            self.in_poison_queue,
            self.left_in_queue,
            self.peak_workers
        )
    }
}

/// How often each id occurs.
fn count(ids: &[String]) -> BTreeMap<&str, usize> {
    let mut seen = BTreeMap::new();
    for id in ids {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Outcome {
        Outcome {
            prefix: "m".into(),
            published: 4,
            fail_every: 2,
            processed: vec!["m-0".into(), "m-2".into()],
            poisoned: vec!["m-1".into(), "m-3".into()],
            left_in_queue: 0,
            in_poison_queue: 2,
            peak_workers: 2,
        }
    }

    #[test]
    fn a_clean_run_has_no_problem() {
        assert_eq!(good().problems(), Vec::<String>::new());
    }

    #[test]
    fn duplicates_losses_and_leftovers_are_named() {
        let mut outcome = good();
        outcome.processed.push("m-0".into());
        outcome.poisoned.retain(|id| id != "m-3");
        outcome.left_in_queue = 1;
        let problems = outcome.problems().join("\n");
        assert!(
            problems.contains("processed more than once: [\"m-0\"]"),
            "{problems}"
        );
        assert!(problems.contains("m-3 was not poisoned"), "{problems}");
        assert!(problems.contains("1 messages left"), "{problems}");
        assert!(problems.contains("poison queue holds 2"), "{problems}");
    }

    #[test]
    fn running_workers_sum_over_groups() {
        let status = serde_json::json!({"processGroups": [{"running": 3}, {"running": 4}]});
        assert_eq!(running_workers(&status), 7);
        assert_eq!(running_workers(&serde_json::json!({})), 0);
    }
}
