//! The command-line flags every scaler binary shares, and the `run` entry point.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::Scaler;
use crate::server::{ServeError, ServeOptions, TlsPem, serve};

/// Flags shared by every scaler binary; `#[command(flatten)]` them into the binary's own.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to serve gRPC on. Sidecars listen on loopback; the default port is the
    /// scaler's own (see its README).
    #[arg(long, env = "EBB_SCALER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address to serve Prometheus `/metrics` on; off when not given.
    #[arg(long, env = "EBB_SCALER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// PEM certificate chain for TLS on the gRPC port (with --tls-key).
    #[arg(long, env = "EBB_SCALER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the gRPC port (with --tls-cert).
    #[arg(long, env = "EBB_SCALER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: when given, clients must present a certificate it signed (mutual TLS).
    #[arg(long, env = "EBB_SCALER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Log filter in `tracing` syntax.
    #[arg(long, env = "EBB_SCALER_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines.
    #[arg(long, env = "EBB_SCALER_LOG_JSON")]
    pub log_json: bool,
}

pub use ebb::process::{init_logging, shutdown_signal};

/// Runs a scaler binary: logging, listeners and TLS from `args`, serving until SIGTERM/SIGINT.
pub async fn run<S: Scaler>(scaler: S, args: ServeArgs) -> Result<(), ServeError> {
    init_logging(&args.log, args.log_json);
    let address = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], scaler.default_port())));
    let listener = TcpListener::bind(address)
        .await
        .map_err(ServeError::Listen)?;
    let metrics_listener = match args.metrics_addr {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(ServeError::Listen)?,
        ),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(TlsPem::from_files(cert, key, args.tls_client_ca.as_ref())?)
        }
        _ => None,
    };
    let options = ServeOptions {
        tls,
        metrics_listener,
        metrics: None,
    };
    serve(scaler, listener, options, shutdown_signal()).await
}
