//! The local kinds `ebb run` reads beside ScaledObjects, both in group `ebb.dev`:
//!
//! - `ProcessGroup`: the scale target, a command run as N identical processes;
//! - `Scaler`: a scaler process (sidecar) that `ebb run` starts, health-checks and restarts.
//!
//! Both take a command line (`command`, `args`, `env`, `workingDir`). Relative paths (`workingDir`, a `command` containing `/`) are
//! resolved against the directory of the file that declares them, so a manifest works from
//! any current directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::spec::parse_duration;

/// The API group of the local kinds.
pub const LOCAL_GROUP: &str = "ebb.dev";
/// Default time a stopping process gets between its stop signal and SIGKILL.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
/// Default time a scaler sidecar gets to report SERVING.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// `metadata` of a local object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalMetadata {
    /// The object's name.
    pub name: String,
    /// Accepted for symmetry with Kubernetes; ignored.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Accepted for symmetry with Kubernetes; ignored.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A `kind: ProcessGroup` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessGroupDocument {
    /// `ebb.dev/v1alpha1`.
    pub api_version: String,
    /// `ProcessGroup`.
    pub kind: String,
    /// Name and labels.
    pub metadata: LocalMetadata,
    /// What to run.
    pub spec: ProcessGroupSpec,
}

/// What each replica of a process group runs and how it is stopped.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessGroupSpec {
    /// Program: a name looked up in `PATH`, or a path (relative to the manifest's directory).
    pub command: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment, as a map or as a Kubernetes-style list of `{name, value}`.
    #[serde(default)]
    pub env: EnvSpec,
    /// Working directory, relative to the manifest's directory (default: that directory).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Signal asking a replica to finish its work and exit (default `SIGTERM`).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL, e.g. `30s` (default 30 s).
    #[serde(default)]
    pub grace_period: Option<String>,
}

/// A `kind: Scaler` document.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalerDocument {
    /// `ebb.dev/v1alpha1`.
    pub api_version: String,
    /// `Scaler`.
    pub kind: String,
    /// Name: triggers whose `type` equals it call this scaler.
    pub metadata: LocalMetadata,
    /// What to run and where it listens.
    pub spec: ScalerSpec,
}

/// A scaler process run by `ebb run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalerSpec {
    /// Program: a name looked up in `PATH`, or a path (relative to the manifest's directory).
    pub command: String,
    /// Arguments; `{address}` is replaced by the listen address.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment, as a map or as a Kubernetes-style list of `{name, value}`.
    #[serde(default)]
    pub env: EnvSpec,
    /// Working directory, relative to the manifest's directory (default: that directory).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `host:port` the scaler listens on (default: 127.0.0.1 and a free port).
    #[serde(default)]
    pub address: Option<String>,
    /// Time to wait for gRPC health SERVING after a start, e.g. `30s` (default 30 s).
    #[serde(default)]
    pub startup_timeout: Option<String>,
}

/// Environment variables in either of the two accepted shapes.
#[derive(Debug, Clone)]
pub enum EnvSpec {
    /// `env: {NAME: value}`.
    Map(BTreeMap<String, String>),
    /// `env: [{name: NAME, value: value}]`.
    List(Vec<EnvVar>),
}

impl<'de> Deserialize<'de> for EnvSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Tried shape by shape so the one error names the field and never quotes a value
        // (environment values are often credentials).
        let value = serde_json::Value::deserialize(deserializer)?;
        if let Ok(map) = serde_json::from_value::<BTreeMap<String, String>>(value.clone()) {
            return Ok(EnvSpec::Map(map));
        }
        if let Ok(list) = serde_json::from_value::<Vec<EnvVar>>(value) {
            return Ok(EnvSpec::List(list));
        }
        Err(serde::de::Error::custom(
            "spec.env: expected a map of NAME: \"value\" or a list of {name, value} entries \
             (values are text: quote numbers and booleans)",
        ))
    }
}

impl Default for EnvSpec {
    fn default() -> Self {
        EnvSpec::Map(BTreeMap::new())
    }
}

/// One `{name, value}` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

impl EnvSpec {
    /// The variables as a map (a later list entry wins).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        match self {
            EnvSpec::Map(map) => map.clone(),
            EnvSpec::List(list) => list
                .iter()
                .map(|var| (var.name.clone(), var.value.clone()))
                .collect(),
        }
    }
}

/// A signal a process may be asked to stop with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGHUP.
    Hup,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
}

impl StopSignal {
    /// Parses `SIGTERM`, `TERM` or `term` (and the others).
    pub fn parse(text: &str) -> Option<Self> {
        let upper = text.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Some(match name {
            "TERM" => StopSignal::Term,
            "INT" => StopSignal::Int,
            "QUIT" => StopSignal::Quit,
            "HUP" => StopSignal::Hup,
            "USR1" => StopSignal::Usr1,
            "USR2" => StopSignal::Usr2,
            _ => return None,
        })
    }

    /// The signal for `rustix`.
    pub fn to_signal(self) -> rustix::process::Signal {
        use rustix::process::Signal;
        match self {
            StopSignal::Term => Signal::TERM,
            StopSignal::Int => Signal::INT,
            StopSignal::Quit => Signal::QUIT,
            StopSignal::Hup => Signal::HUP,
            StopSignal::Usr1 => Signal::USR1,
            StopSignal::Usr2 => Signal::USR2,
        }
    }
}

/// A command ready to spawn: paths resolved, environment merged.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCommand {
    /// The program (a bare name is looked up in `PATH`).
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Variables added to ebb's own environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: PathBuf,
}

/// A process group ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessGroupConfig {
    /// Its name.
    pub name: String,
    /// What each replica runs.
    pub command: ResolvedCommand,
    /// Signal asking a replica to stop.
    pub stop_signal: StopSignal,
    /// Time between the stop signal and SIGKILL.
    pub grace_period: Duration,
}

/// A scaler sidecar ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerConfig {
    /// Its name (triggers of this `type` call it).
    pub name: String,
    /// What it runs, `{address}` already substituted.
    pub command: ResolvedCommand,
    /// Where it listens.
    pub address: SocketAddr,
    /// Time to wait for SERVING after a start.
    pub startup_timeout: Duration,
}

/// One problem of a local object: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field path, e.g. `spec.gracePeriod`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn problem(field: &str, message: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The one apiVersion of the local kinds.
pub const LOCAL_API_VERSION: &str = "ebb.dev/v1alpha1";

fn check_header(api_version: &str, problems: &mut Vec<FieldProblem>) {
    if api_version != LOCAL_API_VERSION {
        problems.push(problem(
            "apiVersion",
            format!("expected {LOCAL_API_VERSION}, got {api_version:?}"),
        ));
    }
}

fn check_name(name: &str, problems: &mut Vec<FieldProblem>) {
    if let Err(message) = crate::spec::check_object_name(name) {
        problems.push(problem("metadata.name", message));
    }
}

/// Whether `path` is a file this user may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Where a bare program name would be found in `PATH`, if anywhere.
fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    })
}

/// The command fields both kinds share.
pub(crate) struct CommandFields<'a> {
    pub(crate) command: &'a str,
    pub(crate) args: &'a [String],
    pub(crate) env: &'a EnvSpec,
    pub(crate) working_dir: Option<&'a str>,
}

pub(crate) fn resolve_command(
    spec: CommandFields<'_>,
    base_dir: &Path,
    problems: &mut Vec<FieldProblem>,
) -> ResolvedCommand {
    let working_dir = match spec.working_dir {
        Some(dir) => base_dir.join(dir),
        None => base_dir.to_owned(),
    };
    if !working_dir.is_dir() {
        problems.push(problem(
            "spec.workingDir",
            format!("directory {} does not exist", working_dir.display()),
        ));
    }
    // A path with a slash is relative to the manifest; a bare name is found in PATH at spawn.
    let program = if spec.command.contains('/') {
        base_dir.join(spec.command)
    } else {
        PathBuf::from(spec.command)
    };
    if spec.command.trim().is_empty() {
        problems.push(problem("spec.command", "required: the program to run"));
    } else if spec.command.contains('\0') {
        problems.push(problem("spec.command", "contains a NUL byte"));
    } else if spec.command.contains('/') {
        if !is_executable(&program) {
            problems.push(problem(
                "spec.command",
                format!("{} does not exist or is not executable", program.display()),
            ));
        }
    } else if find_in_path(spec.command).is_none() {
        problems.push(problem(
            "spec.command",
            format!("{:?} is not an executable found in PATH", spec.command),
        ));
    }
    for (index, arg) in spec.args.iter().enumerate() {
        if arg.contains('\0') {
            problems.push(problem(
                &format!("spec.args[{index}]"),
                "contains a NUL byte",
            ));
        }
    }
    let env = spec.env.to_map();
    for (name, value) in &env {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            problems.push(problem(
                "spec.env",
                format!("invalid variable name {name:?}"),
            ));
        } else if value.contains('\0') {
            problems.push(problem(
                &format!("spec.env.{name}"),
                "the value contains a NUL byte (the value is not shown)",
            ));
        }
    }
    ResolvedCommand {
        program,
        args: spec.args.to_vec(),
        env,
        working_dir,
    }
}

fn duration_field(
    field: &str,
    text: Option<&str>,
    default: Duration,
    problems: &mut Vec<FieldProblem>,
) -> Duration {
    match text.map(parse_duration) {
        None => default,
        Some(Ok(duration)) => duration,
        Some(Err(message)) => {
            problems.push(problem(field, message));
            default
        }
    }
}

impl ProcessGroupDocument {
    /// Checks the document and resolves it against `base_dir` (its file's directory).
    pub fn resolve(&self, base_dir: &Path) -> Result<ProcessGroupConfig, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        check_header(&self.api_version, &mut problems);
        check_name(&self.metadata.name, &mut problems);
        let command = resolve_command(
            CommandFields {
                command: &self.spec.command,
                args: &self.spec.args,
                env: &self.spec.env,
                working_dir: self.spec.working_dir.as_deref(),
            },
            base_dir,
            &mut problems,
        );
        let stop_signal = match &self.spec.stop_signal {
            None => StopSignal::Term,
            Some(text) => StopSignal::parse(text).unwrap_or_else(|| {
                problems.push(problem(
                    "spec.stopSignal",
                    format!("unknown signal {text:?}; use SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1 or SIGUSR2"),
                ));
                StopSignal::Term
            }),
        };
        let grace_period = duration_field(
            "spec.gracePeriod",
            self.spec.grace_period.as_deref(),
            DEFAULT_GRACE_PERIOD,
            &mut problems,
        );
        if problems.is_empty() {
            Ok(ProcessGroupConfig {
                name: self.metadata.name.clone(),
                command,
                stop_signal,
                grace_period,
            })
        } else {
            Err(problems)
        }
    }
}

impl ScalerDocument {
    /// Checks the document and resolves it against `base_dir`; `free_port` supplies an
    /// address when none is written.
    pub fn resolve(
        &self,
        base_dir: &Path,
        free_port: impl FnOnce() -> std::io::Result<SocketAddr>,
    ) -> Result<ScalerConfig, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        check_header(&self.api_version, &mut problems);
        check_name(&self.metadata.name, &mut problems);
        let mut command = resolve_command(
            CommandFields {
                command: &self.spec.command,
                args: &self.spec.args,
                env: &self.spec.env,
                working_dir: self.spec.working_dir.as_deref(),
            },
            base_dir,
            &mut problems,
        );
        let address = match &self.spec.address {
            Some(text) => text.parse::<SocketAddr>().map_err(|_| {
                problem(
                    "spec.address",
                    format!("expected ip:port such as 127.0.0.1:9090, got {text:?}"),
                )
            }),
            None => free_port().map_err(|error| {
                problem(
                    "spec.address",
                    format!("no free port to listen on: {error}"),
                )
            }),
        };
        let startup_timeout = duration_field(
            "spec.startupTimeout",
            self.spec.startup_timeout.as_deref(),
            DEFAULT_STARTUP_TIMEOUT,
            &mut problems,
        );
        if startup_timeout.is_zero() {
            problems.push(problem(
                "spec.startupTimeout",
                "must be greater than zero: the scaler needs time to report SERVING",
            ));
        }
        let address = match address {
            Ok(address) => Some(address),
            Err(error) => {
                problems.push(error);
                None
            }
        };
        match address {
            Some(address) if problems.is_empty() => {
                let text = address.to_string();
                for arg in &mut command.args {
                    *arg = arg.replace("{address}", &text);
                }
                Ok(ScalerConfig {
                    name: self.metadata.name.clone(),
                    command,
                    address,
                    startup_timeout,
                })
            }
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest directory with an executable `bin/worker` and a `run/` directory.
    fn base() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        let worker = dir.path().join("bin/worker");
        std::fs::write(&worker, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn group_in(base: &Path, yaml: &str) -> Result<ProcessGroupConfig, Vec<FieldProblem>> {
        let document: ProcessGroupDocument = serde_norway::from_str(yaml).unwrap();
        document.resolve(base)
    }

    fn group(yaml: &str) -> Result<ProcessGroupConfig, Vec<FieldProblem>> {
        group_in(base().path(), yaml)
    }

    #[test]
    fn process_group_defaults_and_relative_paths() {
        let base = base();
        let config = group_in(
            base.path(),
            "apiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata: {name: workers}\n\
             spec:\n  command: ./bin/worker\n  args: [-v]\n  env: {QUEUE: orders}\n  workingDir: run\n",
        )
        .unwrap();
        assert_eq!(config.command.program, base.path().join("./bin/worker"));
        assert_eq!(config.command.working_dir, base.path().join("run"));
        assert_eq!(config.command.env["QUEUE"], "orders");
        assert_eq!(config.stop_signal, StopSignal::Term);
        assert_eq!(config.grace_period, DEFAULT_GRACE_PERIOD);
    }

    #[test]
    fn env_list_form_and_signal_names() {
        let config = group(
            "apiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata: {name: w}\n\
             spec:\n  command: sh\n  env: [{name: A, value: '1'}]\n  stopSignal: int\n  gracePeriod: 1500\n",
        )
        .unwrap();
        assert_eq!(config.command.program, PathBuf::from("sh"));
        assert_eq!(config.command.env["A"], "1");
        assert_eq!(config.stop_signal, StopSignal::Int);
        assert_eq!(config.grace_period, Duration::from_millis(1500));
    }

    #[test]
    fn every_problem_names_its_field() {
        let problems = group(
            "apiVersion: apps/v1\nkind: ProcessGroup\nmetadata: {name: Bad_Name}\n\
             spec:\n  command: ''\n  workingDir: missing\n  stopSignal: SIGFOO\n  gracePeriod: soon\n",
        )
        .unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "apiVersion",
                "metadata.name",
                "spec.workingDir",
                "spec.command",
                "spec.stopSignal",
                "spec.gracePeriod"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let result: Result<ProcessGroupDocument, _> = serde_norway::from_str(
            "apiVersion: ebb.dev/v1alpha1\nkind: ProcessGroup\nmetadata: {name: w}\nspec:\n  command: w\n  replicas: 3\n",
        );
        assert!(result.unwrap_err().to_string().contains("replicas"));
    }

    #[test]
    fn scaler_address_is_substituted_into_args() {
        let document: ScalerDocument = serde_norway::from_str(
            "apiVersion: ebb.dev/v1alpha1\nkind: Scaler\nmetadata: {name: rabbitmq}\n\
             spec:\n  command: sh\n  args: [--listen, '{address}']\n",
        )
        .unwrap();
        let base = base();
        let config = document
            .resolve(base.path(), || Ok("127.0.0.1:4567".parse().unwrap()))
            .unwrap();
        assert_eq!(config.command.args, ["--listen", "127.0.0.1:4567"]);
        assert_eq!(config.address.port(), 4567);
        let bad: ScalerDocument = serde_norway::from_str(
            "apiVersion: ebb.dev/v1alpha1\nkind: Scaler\nmetadata: {name: s}\nspec:\n  command: sh\n  address: nowhere\n",
        )
        .unwrap();
        let problems = bad.resolve(base.path(), || unreachable!()).unwrap_err();
        assert_eq!(problems[0].field, "spec.address");
    }
}
