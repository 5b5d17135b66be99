//! The `ebb` binary: parses arguments and hands over to the library.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use ebb::cli::{Cli, Command, error_report};

/// mimalloc rather than the system allocator: a controller with 100,000 objects allocates a
/// few small blocks per poll, 10,000 polls a second, and holds millions of small blocks. With
/// glibc's malloc a quarter of its CPU went to malloc and free and its heap fragmented;
/// mimalloc cut its CPU by a fifth and its memory by a tenth (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("Error: {}", error_report(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    let stderr_is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    ebb::runtime::telemetry::init_logging(cli.log_filter(stderr_is_terminal), cli.log_json);
    match cli.command {
        Command::Run(args) => {
            // Processes are started through this same binary so they stop if ebb is killed.
            if let Ok(this) = std::env::current_exe() {
                ebb::local::process::use_launcher(this);
            }
            // Processes that leave their process group come back to ebb to be stopped.
            ebb::local::orphans::adopt_orphans();
            ebb::local::run(args).await?
        }
        Command::ExecChild(args) => {
            let error = ebb::local::process::exec_child(args);
            eprintln!("ebb exec-child: {error}");
            std::process::exit(127);
        }
        Command::Controller(args) => ebb::kubernetes::run(args).await?,
        Command::Crd(args) => ebb::kubernetes::write_crds(args)?,
        Command::Simulate(args) => ebb::simulate::run(args)?,
        Command::Convert(args) => {
            if !ebb::convert::run(args)? {
                std::process::exit(1);
            }
        }
        Command::Status(args) => ebb::status_cli::run(args).await?,
        Command::Scaler(command) => {
            let passed = ebb::client::run_scaler_command(command).await?;
            if !passed {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
