//! Serving a scaler: both protocols, health and reflection on one port, with TLS.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::Scaler;
use crate::core::Core;
use crate::deadline::DeadlineLayer;
use crate::health::BrokerHealth;
use crate::metrics::ServerMetrics;
use crate::proto::{keda, v1};
use crate::push::PushHub;
use crate::service_keda::KedaService;
use crate::service_v1::V1Service;

/// Calls a client may cancel before the server accepted them, per connection.
const MAX_PENDING_RESETS: usize = 4096;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}: {source}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS material was rejected.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// The listener could not be bound or read.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    /// The reflection service could not be built from the descriptor set.
    #[error("cannot build the reflection service: {0}")]
    Reflection(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Server-side TLS, as PEM text. With `client_ca`, clients must present a certificate signed
/// by it (mutual TLS).
#[derive(Clone)]
pub struct TlsPem {
    /// The server certificate chain.
    pub cert: String,
    /// The server private key.
    pub key: String,
    /// CA that client certificates must chain to; `None` disables client authentication.
    pub client_ca: Option<String>,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("client_auth", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsPem {
    /// Reads the PEM files.
    pub fn from_files(
        cert: &PathBuf,
        key: &PathBuf,
        client_ca: Option<&PathBuf>,
    ) -> Result<Self, ServeError> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|source| ServeError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        Ok(Self {
            cert: read(cert)?,
            key: read(key)?,
            client_ca: client_ca.map(read).transpose()?,
        })
    }

    fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

/// How to serve a scaler.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// TLS for the gRPC port; plaintext when `None` (fine on loopback inside a pod).
    pub tls: Option<TlsPem>,
    /// Where to serve `/metrics`; not served when `None`.
    pub metrics_listener: Option<TcpListener>,
    /// The metrics registry to fill; a new one when `None`.
    pub metrics: Option<Arc<ServerMetrics>>,
}

/// Serves `scaler` on `listener` (ebb v1, KEDA's ExternalScaler, gRPC health and reflection)
/// until `shutdown` completes, then drains in-flight requests.
pub async fn serve<S: Scaler>(
    scaler: S,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = options.metrics.unwrap_or_else(ServerMetrics::new);
    let (health, health_service) = tonic_health::server::health_reporter();
    let health = BrokerHealth::new(health).await;
    let scaler = Arc::new(scaler);
    let core = Arc::new(Core::new(scaler.clone(), metrics.clone(), health));
    let push = scaler
        .push_interval()
        .map(|_| Arc::new(PushHub::new(core.clone())));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(ebb::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| ServeError::Reflection(error.to_string()))?;

    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let metrics_task = options.metrics_listener.map(|listener| {
        tokio::spawn(crate::metrics::serve_metrics(
            metrics.clone(),
            listener,
            shutdown.clone(),
        ))
    });

    // One host multiplexes every trigger over one HTTP/2 connection, and under load many of
    // its calls reach their deadline before the server accepts them. hyper's default allows
    // only 20 such resets before closing the connection, which turns one overloaded moment
    // into a reconnect storm; the bound stays, just sized for a busy host.
    let mut builder =
        Server::builder().http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS));
    if let Some(tls) = &options.tls {
        builder = builder.tls_config(tls.config())?;
    }
    let address = listener.local_addr().map_err(ServeError::Listen)?;
    tracing::info!(%address, name = %core.identity.name, tls = options.tls.is_some(), "scaler serving ebb.scaler.v1 and externalscaler");
    let result = builder
        .trace_fn(|request| tracing::debug_span!("rpc", method = %request.uri().path()))
        .layer(DeadlineLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(v1::scaler_server::ScalerServer::from_arc(Arc::new(
            V1Service {
                core: core.clone(),
                push: push.clone(),
            },
        )))
        .add_service(
            keda::external_scaler_server::ExternalScalerServer::from_arc(Arc::new(KedaService {
                core,
                push,
            })),
        )
        // Without TCP_NODELAY small answers wait on Nagle + delayed ACK (~40 ms on Linux).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    tracing::info!("scaler stopped");
    Ok(result?)
}
