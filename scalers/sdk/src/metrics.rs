//! Prometheus metrics of a served scaler, in one registry, and the `/metrics` endpoint.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ScalerError;

/// Labels of a finished RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    protocol: &'static str,
    method: &'static str,
    code: String,
}

/// Labels of an RPC's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    protocol: &'static str,
    method: &'static str,
}

/// Labels of a source error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    code: String,
}

/// The scaler's metrics.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    measurement: Histogram,
    source_errors: Family<ErrorLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~6.5 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl ServerMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("ebb_scaler");
        let requests = Family::<RpcLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let measurement = latency_histogram();
        let source_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "requests",
            "RPCs answered, by protocol, method and status code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "RPC latency, by protocol and method",
            latency.clone(),
        );
        registry.register(
            "measurement_duration_seconds",
            "Latency of one measurement of the event source",
            measurement.clone(),
        );
        registry.register(
            "source_errors",
            "Failed measurements of the event source, by status code",
            source_errors.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            latency,
            measurement,
            source_errors,
        })
    }

    /// Records a finished RPC.
    pub(crate) fn observe_rpc(
        &self,
        protocol: &'static str,
        method: &'static str,
        code: tonic::Code,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RpcLabels {
                protocol,
                method,
                code: format!("{code:?}"),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels { protocol, method })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one measurement of the source.
    pub(crate) fn observe_measurement(&self, elapsed: Duration, error: Option<&ScalerError>) {
        self.measurement.observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.source_errors
                .get_or_create(&ErrorLabels {
                    code: format!("{:?}", error.code()),
                })
                .inc();
        }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes.
pub async fn serve_metrics(
    metrics: Arc<ServerMetrics>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ebb::process::metrics_response(&metrics.registry) }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
