//! Test support: an in-process scaler server on `127.0.0.1:0` with connected clients, and the
//! rule for tests whose service is missing, and a scaler binary run as a real process.

pub mod leaks;

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

/// Fails the test unless `address` accepts TCP connections. A test never passes without the
/// service it needs: the panic names the service and how to start it.
pub fn require_service(name: &str, address: &str) {
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "{name} is not reachable at {address}: run scripts/services.sh to install and start it"
    );
}

/// Fails the test unless the program `path` exists (a binary, an interpreter, a service's
/// launcher), naming `what` it is and how to install it.
pub fn require_program(what: &str, path: &std::path::Path) {
    assert!(
        path.exists(),
        "{what} is not installed at {}: run scripts/services.sh to install it",
        path.display()
    );
}

/// A scaler binary run as a real process on free loopback ports, with its stderr captured
/// (to see exactly what it logs). Killed on drop.
pub struct ScalerProcess {
    /// Where it serves gRPC.
    pub address: SocketAddr,
    /// Where it serves `/metrics`.
    pub metrics_address: SocketAddr,
    child: tokio::process::Child,
    /// Reads stderr all along: a full pipe would block the scaler's logging.
    stderr: JoinHandle<String>,
}

impl ScalerProcess {
    /// Starts `binary` with `--listen`, `--metrics-addr`, the log filter `log` (as text or
    /// JSON lines) and `extra` arguments, and waits until it accepts gRPC connections.
    pub async fn start(
        binary: &str,
        log: &str,
        json: bool,
        extra: &[&str],
    ) -> std::io::Result<Self> {
        require_program(
            "the scaler binary (cargo build --workspace --bins)",
            binary.as_ref(),
        );
        let address = free_port()?;
        let metrics_address = free_port()?;
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("--listen")
            .arg(address.to_string())
            .arg("--metrics-addr")
            .arg(metrics_address.to_string())
            .arg("--log")
            .arg(log)
            .args(extra)
            .env_remove("EBB_SCALER_LOG_JSON")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        if json {
            command.arg("--log-json");
        }
        let mut child = command.spawn()?;
        let mut pipe = child.stderr.take();
        let stderr = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut logs = Vec::new();
            if let Some(pipe) = pipe.as_mut() {
                let _ = pipe.read_to_end(&mut logs).await;
            }
            String::from_utf8_lossy(&logs).into_owned()
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{binary} did not listen on {address} within 30 s"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            address,
            metrics_address,
            child,
            stderr,
        })
    }

    /// The process id, for sending it signals (SIGSTOP, SIGKILL) in chaos tests.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would, and waits until it is gone.
    pub async fn crash(mut self) -> std::io::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// A connected `ebb.scaler.v1` client.
    pub async fn v1(&self) -> Result<v1::scaler_client::ScalerClient<Channel>, ServeError> {
        Ok(v1::scaler_client::ScalerClient::new(self.channel().await?))
    }

    /// A connected KEDA client.
    pub async fn keda(
        &self,
    ) -> Result<keda::external_scaler_client::ExternalScalerClient<Channel>, ServeError> {
        Ok(keda::external_scaler_client::ExternalScalerClient::new(
            self.channel().await?,
        ))
    }

    async fn channel(&self) -> Result<Channel, ServeError> {
        Ok(Channel::from_shared(format!("http://{}", self.address))
            .map_err(|error| ServeError::Tls(error.to_string()))?
            .connect()
            .await?)
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_address).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut page = String::new();
        stream.read_to_string(&mut page).await?;
        Ok(page)
    }

    /// Kills the process and returns everything it wrote to stderr.
    pub async fn stop(mut self) -> std::io::Result<String> {
        self.child.start_kill()?;
        self.child.wait().await?;
        self.stderr.await.map_err(std::io::Error::other)
    }
}

fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
