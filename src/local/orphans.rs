//! Processes that leave their process group and session (`setsid cmd &`, a double fork) are
//! out of reach of the group signals `ebb run` stops its processes with. `ebb run` makes itself
//! a child subreaper (Linux, [`adopt_orphans`]): such a process, once its parent exits,
//! becomes ebb's child rather than init's, so ebb finds it in `/proc`, stops it when the job
//! it came from ends ([`stop_job_leftovers`]) or when ebb exits ([`stop_all_leftovers`]),
//! and reaps it ([`start_reaper`]).
//!
//! A job's leftovers are told apart by the `EBB_JOB_NAME=<job>` they inherited (read from
//! `/proc/<pid>/environ`). One that dropped it, changed user, or escaped while ebb was not a
//! subreaper is stopped only when ebb exits; one that outlives an ebb killed with SIGKILL is
//! not stopped at all (docs/scaled-jobs.md).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions};

/// Whether this process is a child subreaper (set once by [`adopt_orphans`]).
static ADOPTING: AtomicBool = AtomicBool::new(false);

/// PIDs of the processes [`super::process::spawn`] started and tokio waits for: never reaped
/// here, or tokio would lose their exit status. Held while spawning, so a scan never sees a
/// started child that is not listed yet.
static STARTED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// How long stopping leftovers waits for them to be gone after SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(5);
const STOP_POLL: Duration = Duration::from_millis(10);

/// Makes this process a child subreaper, so that processes its children leave behind become
/// its children. The `ebb` binary calls this for `ebb run`; a library user must also run
/// [`start_reaper`], or adopted processes stay zombies until it exits.
pub fn adopt_orphans() {
    match rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        Ok(()) => ADOPTING.store(true, Ordering::Relaxed),
        Err(error) => tracing::warn!(
            %error,
            "cannot become a child subreaper: processes that leave their process group \
             (setsid, double fork) are not stopped with their job or when ebb exits"
        ),
    }
}

fn started() -> MutexGuard<'static, BTreeSet<u32>> {
    STARTED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `start` (which starts one process) with the started list locked, and lists the
/// process it started.
pub(super) fn starting(
    start: impl FnOnce() -> std::io::Result<tokio::process::Child>,
) -> std::io::Result<tokio::process::Child> {
    let mut list = started();
    let child = start()?;
    if let Some(pid) = child.id() {
        list.insert(pid);
    }
    Ok(child)
}

/// One line of `/proc/<pid>/stat`: what the scans need.
#[derive(Debug, Clone, Copy)]
struct Entry {
    pid: u32,
    parent: u32,
    zombie: bool,
}

fn read_entry(pid: u32) -> Option<Entry> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command, which may hold spaces and parentheses: state, then the parent.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    Some(Entry {
        pid,
        parent,
        zombie: state == "Z",
    })
}

/// Every process now, by PID.
fn process_table() -> HashMap<u32, Entry> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_entry)
        .map(|entry| (entry.pid, entry))
        .collect()
}

/// The processes below `roots` in `table` (the roots included), parents before children.
fn with_descendants(table: &HashMap<u32, Entry>, roots: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in table.values() {
        children.entry(entry.parent).or_default().push(entry.pid);
    }
    let mut found: Vec<u32> = roots.into_iter().collect();
    let mut seen: BTreeSet<u32> = found.iter().copied().collect();
    let mut next = 0;
    while next < found.len() {
        let pid = found[next];
        next += 1;
        for child in children.get(&pid).into_iter().flatten() {
            if seen.insert(*child) {
                found.push(*child);
            }
        }
    }
    found
}

/// Whether `pid` carries `EBB_JOB_NAME=<job>` in the environment it started with.
fn belongs_to(pid: u32, job: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let marker = format!("EBB_JOB_NAME={job}");
    environ
        .split(|byte| *byte == 0)
        .any(|variable| variable == marker.as_bytes())
}

/// Reaps the zombies among ebb's children that it adopted (not the ones tokio waits for).
/// Returns how many.
fn reap_adopted() -> usize {
    if !ADOPTING.load(Ordering::Relaxed) {
        return 0;
    }
    let me = std::process::id();
    let mut list = started();
    let table = process_table();
    // A started process missing from /proc has been reaped by tokio: its PID may be reused.
    list.retain(|pid| table.contains_key(pid));
    let mut reaped = 0;
    for entry in table.values() {
        if entry.parent == me && entry.zombie && !list.contains(&entry.pid) {
            let pid = i32::try_from(entry.pid).ok().and_then(Pid::from_raw);
            if rustix::process::waitpid(pid, WaitOptions::NOHANG).is_ok_and(|s| s.is_some()) {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Reaps adopted processes as they exit (on SIGCHLD) until the task is aborted; `None` when
/// ebb adopts nothing.
pub fn start_reaper() -> Option<tokio::task::JoinHandle<()>> {
    if !ADOPTING.load(Ordering::Relaxed) {
        return None;
    }
    let mut child_signals = match tokio::signal::unix::signal(
        tokio::signal::unix::SignalKind::child(),
    ) {
        Ok(signals) => signals,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGCHLD: adopted processes are reaped only when ebb stops them");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        while child_signals.recv().await.is_some() {
            reap_adopted();
        }
    }))
}

/// SIGKILLs what `select` picks among the live processes below ebb (its started processes
/// excluded unless `include_started`), again until none is left or [`STOP_WAIT`] passed, and
/// reaps them. Returns the PIDs it signalled.
async fn stop_below_ebb(include_started: bool, select: impl Fn(u32) -> bool) -> BTreeSet<u32> {
    let me = std::process::id();
    let mut signalled = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    loop {
        let table = process_table();
        let exclude = if include_started {
            BTreeSet::new()
        } else {
            started().clone()
        };
        let roots: Vec<u32> = table
            .values()
            .filter(|entry| entry.parent == me && !exclude.contains(&entry.pid))
            .map(|entry| entry.pid)
            .collect();
        let picked: Vec<u32> = with_descendants(&table, roots)
            .into_iter()
            .filter(|pid| table.get(pid).is_some_and(|entry| !entry.zombie) && select(*pid))
            .collect();
        // Their children would be picked too: the environment is inherited.
        let targets = with_descendants(&table, picked);
        let live: Vec<u32> = targets
            .into_iter()
            .filter(|pid| table.get(pid).is_some_and(|entry| !entry.zombie))
            .collect();
        reap_adopted();
        if live.is_empty() {
            return signalled;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(pids = ?live, "processes still running after SIGKILL");
            return signalled;
        }
        for pid in live {
            if let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = rustix::process::kill_process(target, Signal::KILL);
                signalled.insert(pid);
            }
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// Stops what the job `job` left running after its process ended: the processes ebb
/// adopted (or their descendants) that carry `EBB_JOB_NAME=<job>`, as Kubernetes stops a
/// pod's processes when its container ends. Nothing without [`adopt_orphans`].
pub async fn stop_job_leftovers(job: &str) {
    if !ADOPTING.load(Ordering::Relaxed) {
        return;
    }
    let stopped = stop_below_ebb(false, |pid| belongs_to(pid, job)).await;
    if !stopped.is_empty() {
        tracing::warn!(
            job,
            pids = ?stopped,
            "the job left processes running outside its process group (setsid?); killed them"
        );
    }
}

/// Stops every process still below ebb, the ones it adopted included, as its last act.
pub async fn stop_all_leftovers() {
    if !ADOPTING.load(Ordering::Relaxed) {
        return;
    }
    let stopped = stop_below_ebb(true, |_| true).await;
    if !stopped.is_empty() {
        tracing::warn!(
            pids = ?stopped,
            "processes that left their process group were still running; killed them"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, parent: u32) -> (u32, Entry) {
        (
            pid,
            Entry {
                pid,
                parent,
                zombie: false,
            },
        )
    }

    #[test]
    fn descendants_follow_parents_down_and_stop_at_the_roots_tree() {
        let table: HashMap<u32, Entry> = [
            entry(10, 1),
            entry(11, 10),
            entry(12, 11),
            entry(20, 1),
            entry(21, 20),
        ]
        .into_iter()
        .collect();
        let mut found = with_descendants(&table, [10]);
        found.sort_unstable();
        assert_eq!(found, vec![10, 11, 12]);
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let me = read_entry(std::process::id()).expect("own stat");
        assert!(!me.zombie);
        assert_eq!(
            me.parent,
            rustix::process::getppid().map_or(0, |pid| pid.as_raw_nonzero().get().unsigned_abs())
        );
    }
}
