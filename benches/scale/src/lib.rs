//! `ebb-bench`: the scale benchmark of issue 8. It measures what KEDA is weakest at:
//!
//! 1. **Steady-state polling capacity**: N objects polled every second by the real runtime in
//!    one process, a fast in-memory SDK scaler in another, and, in the same run, the floor: a
//!    bare tonic client issuing the same unary calls at the same rate. CPU and peak RSS come
//!    from `/proc/self` of each side's own process.
//! 2. **Create → Ready**: the real Kubernetes controller against the in-process fake API
//!    server, thousands of ScaledObjects created at once.
//! 3. **Push fan-out**: objects subscribed to StreamIsActive, all flipped active at once.
//!
//! Goals are printed with PASS/FAIL beside them; a miss is a finding, not an error.
//! See `docs/benchmarks.md` for the figures and how to run it.

mod api_load;
mod child;
mod cli;
mod error;
// The same fake API server the root crate's tests use (test support, not copied). Its lint
// findings belong to its owner; they are not silenced in its file.
#[allow(unused_imports, clippy::collapsible_if)]
#[rustfmt::skip]
#[path = "../../../tests/fake_apiserver/mod.rs"]
mod fake_apiserver;
mod floor;
mod objects;
mod proc_stats;
mod push;
mod quantiles;
mod ready;
mod report;
mod run;
mod scaler;
mod steady;

pub use cli::{ChildArgs, Cli, Command, Part, RunArgs, ScalerArgs};
pub use error::BenchError;
pub use report::{Goal, Report, SteadyResult};

use std::time::Duration;

/// Runs what the command line asks: the benchmark, or one of its child roles.
pub async fn run(cli: Cli) -> Result<(), BenchError> {
    match cli.command {
        None => run::run(&cli.run).await.map(|_| ()),
        Some(Command::Scaler(args)) => {
            scaler::run_scaler_process(scaler::ScalerProcessOptions {
                push_interval: Duration::from_millis(args.push_interval_ms.max(1)),
                connection_sample_interval: Duration::from_millis(100),
            })
            .await
        }
        Some(Command::Steady(args)) => {
            steady::run_steady(steady::SteadyOptions {
                address: args.address,
                objects: args.objects,
                polling_seconds: args.polling_interval.max(1),
                warmup: Duration::from_secs(args.warmup),
                window: Duration::from_secs(args.seconds),
                dashboard: args.dashboard,
            })
            .await
        }
        Some(Command::Floor(args)) => {
            floor::run_floor(floor::FloorOptions {
                address: args.address,
                objects: args.objects,
                rate: args.objects as f64 / f64::from(args.polling_interval.max(1)),
                warmup: Duration::from_secs(args.warmup),
                window: Duration::from_secs(args.seconds),
            })
            .await
        }
    }
}
