//! Starting and signalling one local process. Each process leads its own process group, so
//! a stop signal or SIGKILL reaches the children it started too, and a Ctrl-C in the
//! terminal reaches only `ebb run`, which then stops everything in order.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

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

/// The program that starts local processes on ebb's behalf (see [`use_launcher`]).
static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();

/// Name of the hidden `ebb` subcommand that [`exec_child`] serves.
pub const EXEC_CHILD: &str = "exec-child";

/// Starts every later process through `launcher` (the `ebb` binary itself), which arranges
/// for the process to get its stop signal if ebb dies without stopping it (SIGKILL, OOM
/// kill), and then becomes the process. Without it, processes are started directly and
/// outlive an ebb that is killed. The `ebb` binary calls this for `ebb run`; a library user
/// whose executable has no `exec-child` subcommand must not.
///
/// Linux sends the parent-death signal when the *thread* that started the process ends, not
/// only the process. Processes are started from tokio worker threads, which live as long as
/// the runtime; never call [`spawn`] from a blocking-pool thread, which ends when idle.
pub fn use_launcher(launcher: PathBuf) {
    let _ = LAUNCHER.set(launcher);
}

/// Arguments of `ebb exec-child` (internal: `ebb run` starts its processes this way).
#[derive(Debug, Clone, clap::Args)]
pub struct ExecChildArgs {
    /// PID of the ebb that started this process; if it is already gone, do not start.
    #[arg(long, env = "EBB_EXEC_CHILD_PARENT")]
    pub parent: i32,
    /// Signal number the process gets when that ebb dies.
    #[arg(long, env = "EBB_EXEC_CHILD_SIGNAL")]
    pub signal: i32,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Why `ebb exec-child` could not become the program.
#[derive(Debug, thiserror::Error)]
pub enum ExecChildError {
    /// The signal number is not a signal.
    #[error("{0} is not a signal number")]
    BadSignal(i32),
    /// The parent-death signal could not be set.
    #[error("cannot arrange the parent-death signal: {0}")]
    DeathSignal(std::io::Error),
    /// ebb died before the process started; nobody would stop it.
    #[error("ebb (pid {0}) is gone; not starting")]
    ParentGone(i32),
    /// No program was given.
    #[error("no program given")]
    NoProgram,
    /// exec failed (program missing or not executable).
    #[error("cannot start {program}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// What exec said.
        source: std::io::Error,
    },
}

/// Serves `ebb exec-child`: sets the parent-death signal, checks the parent still lives (it
/// may have died before the signal was set), then replaces this process with the program,
/// keeping the pid, process group, environment, directory and output ebb gave it. Returns only
/// on failure.
pub fn exec_child(args: ExecChildArgs) -> ExecChildError {
    use std::os::unix::process::CommandExt as _;
    let Some(signal) = Signal::from_named_raw(args.signal) else {
        return ExecChildError::BadSignal(args.signal);
    };
    if let Err(error) = rustix::process::set_parent_process_death_signal(Some(signal)) {
        return ExecChildError::DeathSignal(error.into());
    }
    if rustix::process::getppid()
        .map(Pid::as_raw_nonzero)
        .map(i32::from)
        != Some(args.parent)
    {
        return ExecChildError::ParentGone(args.parent);
    }
    let Some((program, rest)) = args.command.split_first() else {
        return ExecChildError::NoProgram;
    };
    let source = std::process::Command::new(program).args(rest).exec();
    ExecChildError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}

/// Whether `program` can be started with `path` as `PATH`: the launcher can only report a
/// missing program after it started, so it is looked up first to keep the error immediate.
fn find_program(program: &Path, path: Option<&std::ffi::OsStr>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    let found = if program.components().count() > 1 || program.is_absolute() {
        runnable(program)
    } else {
        path.is_some_and(|path| std::env::split_paths(path).any(|dir| runnable(&dir.join(program))))
    };
    if found {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such executable (looked up in PATH for a bare name)",
        ))
    }
}

/// Starts `command` as the leader of a new process group, with `extra_env` added. `label`
/// names the process in its output (e.g. `workers/3`). With a launcher set (see
/// [`use_launcher`]), the process gets `death_signal` if ebb dies.
pub fn spawn(
    command: &ResolvedCommand,
    extra_env: &[(&str, String)],
    label: &str,
    output: &OutputMode,
    death_signal: Signal,
) -> std::io::Result<Child> {
    let mut process = match LAUNCHER.get() {
        Some(launcher) => {
            let path = command
                .env
                .get("PATH")
                .map(std::ffi::OsString::from)
                .or_else(|| std::env::var_os("PATH"));
            let program =
                if command.program.is_relative() && command.program.components().count() > 1 {
                    command.working_dir.join(&command.program)
                } else {
                    command.program.clone()
                };
            find_program(&program, path.as_deref())?;
            let mut process = Command::new(launcher);
            process
                .arg(EXEC_CHILD)
                .arg("--parent")
                .arg(std::process::id().to_string())
                .arg("--signal")
                .arg(death_signal.as_raw().to_string())
                .arg("--")
                .arg(&command.program);
            process
        }
        None => Command::new(&command.program),
    };
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
    let mut child = super::orphans::starting(|| process.spawn())?;
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
