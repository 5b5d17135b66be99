//! `ebb-azure-queue-scaler`: the Azure Storage queue scaler sidecar.

use std::path::PathBuf;
use std::time::Duration;

use azure_core::http::Url;
use clap::Parser;
use ebb_azure_queue_scaler::{ScalerOptions, connection::DEV_QUEUE_ENDPOINT};

/// Serves the azure-queue scaler (ebb v1 and KEDA external protocols) on one port.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    serve: ebb_scaler_sdk::ServeArgs,
    /// How often StreamIsActive samples each distinct queue (Azure bills every request).
    #[arg(long, env = "EBB_AZURE_QUEUE_PUSH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    push_interval: Duration,
    /// Timeout of one HTTP request to the storage service.
    #[arg(long, env = "EBB_AZURE_QUEUE_REQUEST_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Queue endpoint that `UseDevelopmentStorage=true` stands for.
    #[arg(long, env = "EBB_AZURE_QUEUE_DEV_ENDPOINT", default_value = DEV_QUEUE_ENDPOINT)]
    dev_queue_endpoint: Url,
    /// Federated service account token for Entra workload identity (set by the AKS webhook).
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE")]
    federated_token_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.push_interval.is_zero(),
        "--push-interval must be greater than 0"
    );
    anyhow::ensure!(
        !args.request_timeout.is_zero(),
        "--request-timeout must be greater than 0"
    );
    let options = ScalerOptions {
        push_interval: args.push_interval,
        request_timeout: args.request_timeout,
        dev_queue_endpoint: args.dev_queue_endpoint,
        federated_token_file: args
            .federated_token_file
            .filter(|path| !path.as_os_str().is_empty()),
    };
    ebb_azure_queue_scaler::run(options, args.serve).await?;
    Ok(())
}
