//! Starting and signalling one local process. Each process leads its own process group, so
//! a stop signal or SIGKILL reaches the children it started too, and a Ctrl-C in the
//! terminal reaches only `ebb run`, which then stops everything in order.

use std::path::PathBuf;
use std::process::Stdio;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::manifest::ResolvedCommand;

/// Where the output of started processes goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputMode {
    /// Each line to ebb's stderr, prefixed with `[<name>] `.
    Prefixed,
    /// Appended to `<dir>/<name>.log` (the name with `/` replaced by `-`).
    Directory(PathBuf),
    /// Discarded.
    Discard,
}

/// Starts `command` as the leader of a new process group, with `extra_env` added. `label`
/// names the process in its output (e.g. `workers/3`).
pub fn spawn(
    command: &ResolvedCommand,
    extra_env: &[(&str, String)],
    label: &str,
    output: &OutputMode,
) -> std::io::Result<Child> {
    let mut process = Command::new(&command.program);
    process
        .args(&command.args)
        .envs(&command.env)
        .envs(
            extra_env
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .current_dir(&command.working_dir)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    match output {
        OutputMode::Prefixed => {
            process.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        OutputMode::Directory(dir) => {
            std::fs::create_dir_all(dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}.log", label.replace('/', "-"))))?;
            process.stdout(file.try_clone()?).stderr(file);
        }
        OutputMode::Discard => {
            process.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
    let mut child = process.spawn()?;
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, label.to_owned()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, label.to_owned()));
    }
    Ok(child)
}

async fn forward_lines(stream: impl AsyncRead + Unpin, label: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{label}] {line}");
    }
}

/// Sends `signal` to the process group led by `pid`. A group that is already gone is not an
/// error: the process exited on its own in the meantime.
pub fn signal_group(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = kill_process_group(pid, signal)
        && error != rustix::io::Errno::SRCH
    {
        tracing::warn!(pid = pid.as_raw_nonzero().get(), %error, "could not signal process group");
    }
}

/// True while any process of the group led by `pid` is alive.
pub fn group_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
}
