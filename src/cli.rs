//! The `ebb` command line: one subcommand per job, each defined by the module that runs it.

use clap::{Parser, Subcommand};

/// ebb: event-driven autoscaling, from 0 to N and back, on the events waiting.
#[derive(Debug, Parser)]
#[command(name = "ebb", version, about)]
pub struct Cli {
    /// Log filter in `tracing` syntax, e.g. `info` or `ebb=debug`. Default: `info`, or `warn`
    /// for `ebb run` logging to a terminal (see `ebb run --verbose`).
    #[arg(long, env = "EBB_LOG", global = true)]
    pub log: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "EBB_LOG_JSON", global = true)]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scale local processes from ScaledObject and ProcessGroup YAML (no cluster needed).
    Run(crate::local::RunArgs),
    /// Run the Kubernetes controller.
    Controller(crate::kubernetes::ControllerArgs),
    /// Write the CustomResourceDefinitions as YAML.
    Crd(crate::kubernetes::CrdArgs),
    /// Show every object's live values, activity, replicas and last reason, read from a
    /// running controller's or `ebb run`'s own status endpoint.
    Status(crate::status_cli::StatusArgs),
    /// Replay a metric series through the scaling engine and show what it would do.
    Simulate(crate::simulate::SimulateArgs),
    /// Tools for scaler authors: inspect a scaler, or check it against the protocol.
    #[command(subcommand)]
    Scaler(crate::client::ScalerCommand),
    /// Rewrite KEDA manifests (ScaledObject, ScaledJob, TriggerAuthentication,
    /// ClusterTriggerAuthentication) as ebb's, reporting each change and what cannot be
    /// converted.
    Convert(crate::convert::ConvertArgs),
    /// Internal: how `ebb run` starts a process so that it stops when ebb dies.
    #[command(name = "exec-child", hide = true)]
    ExecChild(crate::local::process::ExecChildArgs),
}

impl Cli {
    /// The log filter: `--log` (or `EBB_LOG`) when given; else `warn` for `ebb run` without
    /// `--verbose` when its logs go to a terminal (`stderr_is_terminal`), where the table and
    /// the workers' output are what a person watches; else `info`.
    pub fn log_filter(&self, stderr_is_terminal: bool) -> &str {
        match (&self.log, &self.command) {
            (Some(filter), _) => filter,
            (None, Command::Run(run)) if stderr_is_terminal && !run.verbose => "warn",
            (None, _) => "info",
        }
    }
}

/// The text of a failed command for the terminal: the error, then each cause whose text the
/// message does not already carry (so a list of problems is printed once), with control
/// characters escaped so nothing in a file or a scaler's answer can act on the terminal.
pub fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str("\ncaused by: ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    crate::spec::terminal_safe(&text, true).into_owned()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    fn filter(args: &[&str], stderr_is_terminal: bool) -> String {
        let cli = super::Cli::try_parse_from(args).expect("arguments parse");
        cli.log_filter(stderr_is_terminal).to_owned()
    }

    #[test]
    fn run_on_a_terminal_logs_warnings_unless_verbose_or_told() {
        assert_eq!(filter(&["ebb", "run", "-f", "x"], true), "warn");
        assert_eq!(filter(&["ebb", "run", "-f", "x"], false), "info");
        assert_eq!(
            filter(&["ebb", "run", "-f", "x", "--verbose"], true),
            "info"
        );
        assert_eq!(filter(&["ebb", "run", "-f", "x", "-v"], true), "info");
        assert_eq!(
            filter(&["ebb", "--log", "debug", "run", "-f", "x"], true),
            "debug"
        );
        assert_eq!(filter(&["ebb", "crd"], true), "info");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot run these files:\n{0}")]
    struct Outer(#[from] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("a.yaml: ScaledObject \"x\u{1b}[2J\": spec.triggers: at least one trigger is required")]
    struct Inner;

    #[test]
    fn each_problem_is_printed_once_and_escaped() {
        let report = super::error_report(&Outer(Inner));
        assert_eq!(
            report.matches("at least one trigger").count(),
            1,
            "{report}"
        );
        assert!(!report.contains('\u{1b}'), "{report}");
        assert!(!report.contains("caused by"), "{report}");
    }
}
