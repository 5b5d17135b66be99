//! The telemetry HTTP server: `/metrics` (OpenMetrics text), `/healthz` (the process runs),
//! `/readyz` (the host says it is ready), plus any routes the host adds (for example the
//! local runner's JSON status).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::RuntimeError;

/// Whether the host is ready to serve (`/readyz`). Cheap to clone; clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
}

impl Readiness {
    /// A flag starting as not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag (for example after the first object list, or when leadership is lost).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The current value.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct ServerState {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// The telemetry routes, merged with `extra` (routes of the host; they take precedence on no
/// path the runtime uses).
pub fn router(registry: Arc<Registry>, readiness: Readiness, extra: Router) -> Router {
    let own = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(ServerState {
            registry,
            readiness,
        });
    own.merge(extra)
}

/// Serves the telemetry routes (and `extra`) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    readiness: Readiness,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    let app = router(registry, readiness, extra);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(RuntimeError::Serve)
}

async fn metrics(State(state): State<ServerState>) -> axum::response::Response {
    crate::process::metrics_response(&state.registry)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
