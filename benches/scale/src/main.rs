//! `ebb-bench`: see the library for what it measures and `docs/benchmarks.md` for figures.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ebb_bench::Cli::parse();
    ebb_bench::run(cli).await?;
    Ok(())
}
