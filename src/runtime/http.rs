//! The telemetry HTTP server: `/metrics` (OpenMetrics text), `/healthz` (the process runs),
//! `/readyz` (the host says it is ready), plus any routes the host adds (for example the
//! local runner's JSON status).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::RuntimeError;

/// Whether the host is ready to serve (`/readyz`), and why not when a person must act. Cheap
/// to clone; clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    why_not: Arc<Mutex<Option<String>>>,
}

impl Readiness {
    /// A flag starting as not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag (for example after the first object list, or when leadership is lost),
    /// forgetting any reason given to [`Readiness::set_not_ready`].
    pub fn set_ready(&self, ready: bool) {
        *self.why_not.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Not ready because of `reason`, which `/readyz` answers (say what to fix).
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.why_not.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.into());
        self.ready.store(false, Ordering::Relaxed);
    }

    /// The reason given to [`Readiness::set_not_ready`], while it holds.
    pub fn reason(&self) -> Option<String> {
        self.why_not
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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

async fn readyz(State(state): State<ServerState>) -> axum::response::Response {
    if state.readiness.is_ready() {
        return (StatusCode::OK, "ready").into_response();
    }
    match state.readiness.reason() {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response(),
    }
}
