//! Watch streams: newline-delimited JSON watch events, replayed from the change history and
//! then live, with bookmarks, timeouts, and 410 Gone for compacted resourceVersions.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};

use crate::Shared;
use crate::select::Selectors;

/// What one watch request asked for.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    /// Index into the type table.
    pub type_index: usize,
    /// Namespace filter; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// `resourceVersion`: `None` or "0" starts with the current state as ADDED events.
    pub resource_version: Option<String>,
    /// Label and field selectors.
    pub selectors: Selectors,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true` (streaming list).
    pub send_initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

fn line(event_type: &str, object: &Value) -> Result<Bytes, std::io::Error> {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Ok(Bytes::from(text))
}

/// The streaming body of a watch response.
pub fn stream(shared: Arc<Shared>, request: WatchRequest) -> Body {
    let body = async_stream::stream! {
        let mut notified = shared.notify.subscribe();
        let (api_version, kind) = {
            let store = shared.lock();
            let ty = &store.types[request.type_index];
            (ty.api_version(), ty.kind.clone())
        };
        let matches = |object: &Value| {
            let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
            request.namespace.as_deref().is_none_or(|n| n == namespace) && request.selectors.matches(object)
        };
        let bookmark = |resource_version: u64, initial_end: bool| {
            let mut metadata = json!({"resourceVersion": resource_version.to_string()});
            if initial_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata})
        };
        let start = request.resource_version.as_deref().filter(|v| !v.is_empty() && *v != "0");
        let start_state = {
            let store = shared.lock();
            match start.map(str::parse::<u64>) {
                None => {
                    let objects: Vec<Value> = store.list(request.type_index, request.namespace.as_deref())
                        .into_iter().filter(|o| matches(o)).collect();
                    Some((store.resource_version, objects))
                }
                Some(Ok(version)) if version >= store.compacted_below => Some((version, Vec::new())),
                Some(_) => None,
            }
        };
        let Some((mut cursor, initial)) = start_state else {
            let gone = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version", "reason": "Expired", "code": 410
            });
            yield line("ERROR", &gone);
            return;
        };
        for object in &initial {
            yield line("ADDED", object);
        }
        if request.send_initial_events && request.bookmarks {
            yield line("BOOKMARK", &bookmark(cursor, true));
        }
        let deadline = tokio::time::Instant::now() + request.timeout.unwrap_or(Duration::from_secs(1800));
        let mut bookmark_timer = tokio::time::interval(shared.bookmark_interval);
        bookmark_timer.tick().await;
        loop {
            let batch: Vec<(&'static str, Value)> = {
                let store = shared.lock();
                let first = store.history.partition_point(|c| c.resource_version <= cursor);
                let batch = store.history[first..]
                    .iter()
                    .filter(|c| c.type_index == request.type_index && matches(&c.object))
                    .map(|c| (c.event_type, c.object.clone()))
                    .collect();
                cursor = cursor.max(store.resource_version);
                batch
            };
            for (event_type, object) in &batch {
                yield line(event_type, object);
            }
            tokio::select! {
                changed = notified.changed() => if changed.is_err() { break },
                _ = bookmark_timer.tick() => if request.bookmarks {
                    yield line("BOOKMARK", &bookmark(cursor, false));
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    };
    Body::from_stream(body)
}
