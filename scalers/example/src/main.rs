//! `ebb-example-scaler`: serves the example scaler (value from a file or a constant) over ebb
//! v1 and KEDA's external protocol.

use std::time::Duration;

use clap::Parser;
use ebb_example_scaler::ExampleScaler;

/// Example ebb scaler: its value comes from a file (`valueFile`) or a constant (`value`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    serve: ebb_scaler_sdk::ServeArgs,
    /// How often StreamIsActive re-reads each distinct value file (milliseconds or e.g. `100ms`).
    #[arg(long, env = "EBB_EXAMPLE_PUSH_INTERVAL", default_value = "100ms", value_parser = ebb_scaler_sdk::parse_positive_duration)]
    push_interval: Duration,
    /// Do not offer StreamIsActive (GetInfo then advertises no push).
    #[arg(long, env = "EBB_EXAMPLE_NO_PUSH")]
    no_push: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let push_interval = (!args.no_push).then_some(args.push_interval);
    ebb_scaler_sdk::run(ExampleScaler::new(push_interval), args.serve).await?;
    Ok(())
}
