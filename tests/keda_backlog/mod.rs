//! A third-party scaler that speaks only KEDA's `externalscaler` protocol, reporting a
//! backlog: the number of files in a directory (each file is one waiting item; a job takes
//! one by renaming it away). It counts its GetMetrics calls so tests can wait for polls
//! instead of sleeping.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ebb::proto::keda;
use ebb::proto::keda::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

/// The scaler's handle: where it listens and how often it was asked for metrics.
#[derive(Clone)]
pub struct BacklogScaler {
    /// Its address.
    pub address: SocketAddr,
    calls: Arc<AtomicU64>,
}

impl BacklogScaler {
    /// GetMetrics calls received so far (answered or failed).
    pub fn polls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

struct Service {
    dir: PathBuf,
    target: i64,
    calls: Arc<AtomicU64>,
}

impl Service {
    fn backlog(&self) -> Result<i64, Status> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|error| Status::unavailable(format!("cannot read the queue: {error}")))?;
        Ok(entries.filter_map(Result::ok).count() as i64)
    }
}

#[tonic::async_trait]
impl ExternalScaler for Service {
    type StreamIsActiveStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<keda::IsActiveResponse, Status>> + Send>,
    >;

    async fn is_active(
        &self,
        _request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::IsActiveResponse>, Status> {
        Ok(Response::new(keda::IsActiveResponse {
            result: self.backlog()? > 0,
        }))
    }

    async fn stream_is_active(
        &self,
        _request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        Err(Status::unimplemented("no push"))
    }

    async fn get_metric_spec(
        &self,
        _request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::GetMetricSpecResponse>, Status> {
        Ok(Response::new(keda::GetMetricSpecResponse {
            metric_specs: vec![keda::MetricSpec {
                metric_name: "backlog".into(),
                target_size: self.target,
                target_size_float: 0.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        _request: Request<keda::GetMetricsRequest>,
    ) -> Result<Response<keda::GetMetricsResponse>, Status> {
        // Counted before answering, so a test can wait for polls that fail too.
        self.calls.fetch_add(1, Ordering::SeqCst);
        let backlog = self.backlog()?;
        Ok(Response::new(keda::GetMetricsResponse {
            metric_values: vec![keda::MetricValue {
                metric_name: "backlog".into(),
                metric_value: backlog,
                metric_value_float: 0.0,
            }],
        }))
    }
}

/// Starts the scaler on a thread of its own, reporting the files in `dir` at `target` per
/// job.
pub fn start(dir: PathBuf, target: i64) -> BacklogScaler {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    let calls = Arc::new(AtomicU64::new(0));
    let service = Service {
        dir,
        target,
        calls: calls.clone(),
    };
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            Server::builder()
                .add_service(ExternalScalerServer::new(service))
                .serve_with_incoming(incoming)
                .await
                .expect("serve");
        });
    });
    BacklogScaler { address, calls }
}
