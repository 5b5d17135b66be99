//! Test support: an in-process scaler server on `127.0.0.1:0` with connected clients, and the
//! rule for tests whose service is missing.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::Scaler;
use crate::proto::{keda, v1};
use crate::server::{ServeError, ServeOptions, serve};

/// A scaler served in-process on a loopback port, stopped on drop.
pub struct TestServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// A connected `ebb.scaler.v1` client.
    pub v1: v1::scaler_client::ScalerClient<Channel>,
    /// A connected KEDA client.
    pub keda: keda::external_scaler_client::ExternalScalerClient<Channel>,
    /// A connected gRPC health client.
    pub health: tonic_health::pb::health_client::HealthClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// Serves `scaler` on `127.0.0.1:0` and connects clients to it.
    pub async fn start<S: Scaler>(scaler: S) -> Result<Self, ServeError> {
        Self::start_with(scaler, ServeOptions::default()).await
    }

    /// Like [`TestServer::start`] with explicit options (TLS, metrics).
    pub async fn start_with<S: Scaler>(
        scaler: S,
        options: ServeOptions,
    ) -> Result<Self, ServeError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ServeError::Listen)?;
        let address = listener.local_addr().map_err(ServeError::Listen)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(scaler, listener, options, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{address}"))
            .map_err(|error| ServeError::Tls(error.to_string()))?
            .connect()
            .await?;
        Ok(Self {
            address,
            v1: v1::scaler_client::ScalerClient::new(channel.clone()),
            keda: keda::external_scaler_client::ExternalScalerClient::new(channel.clone()),
            health: tonic_health::pb::health_client::HealthClient::new(channel),
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address as a `http://` URI.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// True when `address` accepts TCP connections. When it does not: under CI (`CI=true`) this
/// panics, because CI must provide every service; locally it prints a loud notice and returns
/// false so the caller can skip.
pub fn require_service(name: &str, address: &str) -> bool {
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if reachable {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|value| value == "true"),
        "{name} is not reachable at {address}, and CI must provide it"
    );
    eprintln!(
        "\n!!! SKIPPING: {name} is not reachable at {address}; run scripts/services.sh to start it !!!\n"
    );
    false
}
