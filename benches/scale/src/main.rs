//! `ebb-bench`: see the library for what it measures and `docs/benchmarks.md` for figures.

use clap::Parser as _;

/// The `ebb` binary's allocator, so the controller side allocates as a deployed one does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ebb_bench::Cli::parse();
    // The `ebb` binary's subscriber, so the controller side pays what a deployed controller
    // pays for its spans and events (without one, every span would take tracing's `log`
    // fallback). Warn by default keeps the children's output readable; the per-poll spans are
    // debug level, off under either filter.
    let filter = std::env::var("EBB_LOG").unwrap_or_else(|_| "warn".to_owned());
    ebb::runtime::telemetry::init_logging(&filter, false);
    ebb_bench::run(cli).await?;
    Ok(())
}
