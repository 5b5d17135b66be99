//! `ebb-fake-apiserver`: the fake Kubernetes API server as a process, for tests that drive it
//! with real clients (kubectl, Helm, the Python client, `ebb controller`). Test-only.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Serves a fake Kubernetes API over plain HTTP until SIGTERM or Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "ebb-fake-apiserver", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (the kubeconfig names the real one).
    #[arg(long, env = "EBB_FAKE_APISERVER_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig pointing at this server; it is written once listening.
    #[arg(long, env = "EBB_FAKE_APISERVER_KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Print one line per request on stderr, for seeing what a client asks.
    #[arg(long, env = "EBB_FAKE_APISERVER_LOG_REQUESTS")]
    log_requests: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    ebb_fake_apiserver::write_kubeconfig(&args.kubeconfig, &format!("http://{address}"))
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    eprintln!("ebb-fake-apiserver listening on http://{address}");
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let options = ebb_fake_apiserver::Options {
        log_requests: args.log_requests,
        ..ebb_fake_apiserver::Options::standalone()
    };
    ebb_fake_apiserver::serve(listener, options, shutdown)
        .await
        .context("serving")
}
