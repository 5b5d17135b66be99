//! The live dashboard: one embedded page (no build step, no CDN: the machines running ebb
//! may have no internet) served by the host's telemetry server, the recorded
//! [`History`], charts drawn by the server with `ebb simulate`'s own chart code
//! ([`crate::simulate::chart::render`]), and server-sent events naming each object as it
//! changes, so the page reloads only what changed. Read-only; it shows statuses and event
//! texts, which never hold secrets.
//!
//! Routes: `/` (the page), `/dashboard/objects` (JSON: objects plus what the host adds),
//! `/dashboard/chart?namespace=&name=&window=300|3600` (SVG), `/dashboard/events` (SSE),
//! `/dashboard/scalers` (JSON: scaler RPC latency p50/p99 per address, push subscriptions).

mod history;
mod rpc;

pub use history::{
    History, HistorySink, KEPT, MAX_EVENT_TEXT, MAX_EVENTS, MAX_SAMPLES, MAX_TRIGGERS, ObjectEntry,
};
pub use rpc::{RpcSummary, ScalerRpc};

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;

use crate::runtime::ObjectKey;

/// The page, with its script and style inline.
const PAGE: &str = include_str!("page.html");

/// Chart windows the page offers, in seconds.
pub const WINDOWS: [u64; 2] = [300, 3600];

/// What the host adds to the object list (for `ebb run`: process groups and scalers), as
/// JSON. Called on every list request.
pub type HostView = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

#[derive(Clone)]
struct DashboardState {
    history: History,
    host: HostView,
    registry: Arc<Registry>,
}

/// The dashboard's routes over `history`, with `host` adding the host's own view and
/// `registry` (the host's metrics, with the runtime's) giving the scaler RPC figures.
pub fn routes(history: History, host: HostView, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/dashboard/objects", get(objects))
        .route("/dashboard/chart", get(chart))
        .route("/dashboard/events", get(events))
        .route("/dashboard/scalers", get(scalers))
        .with_state(DashboardState {
            history,
            host,
            registry,
        })
}

async fn scalers(State(state): State<DashboardState>) -> axum::Json<RpcSummary> {
    axum::Json(rpc::summary(&state.registry))
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn objects(State(state): State<DashboardState>) -> Response {
    let host = (state.host)();
    axum::Json(serde_json::json!({
        "objects": state.history.objects(),
        "host": host,
    }))
    .into_response()
}

/// Query of `/dashboard/chart`.
#[derive(Debug, Deserialize)]
struct ChartQuery {
    #[serde(default)]
    namespace: String,
    name: String,
    window: Option<u64>,
}

async fn chart(
    State(state): State<DashboardState>,
    query: Result<Query<ChartQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return (
            StatusCode::BAD_REQUEST,
            "expected ?name=<object>[&namespace=<ns>][&window=300|3600]",
        )
            .into_response();
    };
    let window = query.window.unwrap_or(WINDOWS[0]);
    if !WINDOWS.contains(&window) {
        return (
            StatusCode::BAD_REQUEST,
            format!("window must be one of {WINDOWS:?} seconds, got {window}"),
        )
            .into_response();
    }
    let key = ObjectKey::new(query.namespace, query.name);
    let Some(data) = state
        .history
        .chart(&key, SystemTime::now(), Duration::from_secs(window))
    else {
        return (StatusCode::NOT_FOUND, "no such object (or no status yet)").into_response();
    };
    match crate::simulate::chart::render(&data, &key.to_string()) {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn events(
    State(state): State<DashboardState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(state.history.changes()).map(|change| {
        // A lagging reader missed some keys: "*" tells the page to reload everything.
        let data = match change {
            Ok(key) => serde_json::json!({"namespace": key.namespace, "name": key.name}),
            Err(_) => serde_json::json!("*"),
        };
        Ok(Event::default().event("changed").data(data.to_string()))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
