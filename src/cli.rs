//! The `ebb` command line: one subcommand per job, each defined by the module that runs it.

use clap::{Parser, Subcommand};

/// ebb: event-driven autoscaling, from 0 to N and back, on the events waiting.
#[derive(Debug, Parser)]
#[command(name = "ebb", version, about)]
pub struct Cli {
    /// Log filter in `tracing` syntax, e.g. `info` or `ebb=debug`.
    #[arg(long, env = "EBB_LOG", default_value = "info", global = true)]
    pub log: String,
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
    /// Replay a metric series through the scaling engine and show what it would do.
    Simulate(crate::simulate::SimulateArgs),
    /// Tools for scaler authors: inspect a scaler, or check it against the protocol.
    #[command(subcommand)]
    Scaler(crate::client::ScalerCommand),
    /// Internal: how `ebb run` starts a process so that it stops when ebb dies.
    #[command(name = "exec-child", hide = true)]
    ExecChild(crate::local::process::ExecChildArgs),
}
