//! The HTTP side: routing a request to discovery, OpenAPI, a collection, an object or a
//! subresource, with the query parameters and content types real clients send.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::patch::PatchKind;
use crate::resources::{self, Route};
use crate::select::Selectors;
use crate::store::{ApiError, FieldValidation, Key, Store};
use crate::{RecordedRequest, Shared, events, openapi, table, watch};

/// What a handler needs to know about one request.
struct Request<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a HashMap<String, String>,
    content_type: Option<&'a str>,
    accept: Option<&'a str>,
    raw_body: &'a Bytes,
    body: Option<&'a Value>,
}

impl Request<'_> {
    fn flag(&self, name: &str) -> bool {
        self.query
            .get(name)
            .is_some_and(|v| v == "true" || v == "1")
    }

    /// The body as JSON, or as YAML for the YAML content types (server-side apply).
    fn body(&self) -> Result<Value, ApiError> {
        if self.content_type.is_some_and(|c| c.contains("protobuf")) {
            return crate::protobuf::decode(self.raw_body).map_err(|message| ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message,
                details: None,
            });
        }
        if !self.raw_body.is_empty()
            && self.body.is_none()
            && self.content_type.is_some_and(|c| c.contains("yaml"))
        {
            return serde_norway::from_slice(self.raw_body)
                .map_err(|e| ApiError::bad_request(e.to_string()));
        }
        self.body
            .cloned()
            .ok_or_else(|| ApiError::bad_request("the request body is not valid JSON"))
    }
}

pub(crate) fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

fn not_found() -> Response {
    error_response(&ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
        details: None,
    })
}

/// The axum handler for every path.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = std::time::Instant::now();
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let accept = header_text(header::ACCEPT);
    let parsed_body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let path = uri.path().to_string();
    let injected = {
        let mut failures = shared.failures.lock().unwrap_or_else(|p| p.into_inner());
        let hit = failures
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method && path.ends_with(&f.path_suffix));
        hit.map(|f| {
            f.times -= 1;
            f.code
        })
    };
    let response = match injected {
        Some(code) => error_response(&ApiError {
            code,
            reason: "InternalError",
            message: "injected failure".into(),
            details: None,
        }),
        None => {
            let request = Request {
                method: &method,
                path: &path,
                query: &query,
                content_type: content_type.as_deref(),
                accept: accept.as_deref(),
                raw_body: &body,
                body: parsed_body.as_ref(),
            };
            dispatch(&shared, &request)
        }
    };
    if shared.log_requests {
        let warnings: Vec<&str> = response
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        eprintln!(
            "{method} {} {} accept={} -> {} {}",
            uri,
            content_type.as_deref().unwrap_or("-"),
            accept.as_deref().unwrap_or("-"),
            response.status().as_u16(),
            warnings.join("; ")
        );
    }
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(RecordedRequest {
            method,
            path,
            query,
            content_type,
            body: parsed_body,
            status: response.status().as_u16(),
            received,
            answered: std::time::Instant::now(),
        });
    response
}

/// Answers the paths outside the resource tree: health, OpenAPI.
fn fixed_paths(shared: &Arc<Shared>, request: &Request) -> Option<Response> {
    let path = request.path.trim_end_matches('/');
    match path {
        "/healthz" | "/readyz" | "/livez" => {
            return Some((StatusCode::OK, "ok").into_response());
        }
        // Test control, outside the Kubernetes API: forget history as etcd compaction does,
        // so watches from older resourceVersions get 410 Gone.
        "/ebb-fake/compact" if *request.method == Method::POST => {
            let mut store = shared.lock();
            store.compacted_below = store.resource_version;
            return Some(json_response(
                200,
                &json!({"compactedBelow": store.compacted_below}),
            ));
        }
        "/openapi/v2" => {
            // Only JSON is offered; a client asking for protobuf alone is told so.
            let json_ok = request
                .accept
                .is_none_or(|a| a.contains("json") || a.contains("*/*"));
            if !json_ok {
                return Some(error_response(&ApiError {
                    code: 406,
                    reason: "NotAcceptable",
                    message: "only application/json is offered".into(),
                    details: None,
                }));
            }
            let store = shared.lock();
            return Some(json_response(200, &openapi::v2_document(&store.types)));
        }
        "/openapi/v3" => {
            let store = shared.lock();
            let index = openapi::v3_index(&store.types, store.resource_version);
            return Some(json_response(200, &index));
        }
        _ => {}
    }
    let gv = path.strip_prefix("/openapi/v3/")?;
    let store = shared.lock();
    Some(match openapi::v3_document(&store.types, gv) {
        Some(document) => json_response(200, &document),
        None => not_found(),
    })
}

fn dispatch(shared: &Arc<Shared>, request: &Request) -> Response {
    if let Some(response) = fixed_paths(shared, request) {
        return response;
    }
    let route = {
        let store = shared.lock();
        resources::route(&store.types, request.path)
    };
    let Some(route) = route else {
        return not_found();
    };
    let (type_index, namespace, name, subresource) = match route {
        Route::Discovery(discovery) if *request.method == Method::GET => {
            let store = shared.lock();
            return json_response(
                200,
                &resources::discovery_document(&store.types, &discovery),
            );
        }
        Route::Discovery(_) => return not_found(),
        Route::Resource {
            type_index,
            namespace,
            name,
            subresource,
        } => (type_index, namespace, name, subresource),
    };
    let is_watch = *request.method == Method::GET && request.flag("watch");
    if is_watch {
        return match watch_request(type_index, namespace, request.query) {
            Ok(watch) => Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::TRANSFER_ENCODING, "chunked")
                .body(watch::stream(shared.clone(), watch))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            Err(error) => error_response(&error),
        };
    }
    let mut warnings = Vec::new();
    let result = {
        let mut store = shared.lock();
        let dry_run = request.query.get("dryRun").is_some_and(|d| d == "All");
        let validation =
            FieldValidation::parse(request.query.get("fieldValidation").map(String::as_str));
        let result = match validation {
            Err(error) => Err(error),
            Ok(validation) if dry_run => {
                // A dry run goes through every check on a copy that is then thrown away.
                let mut scratch = store.clone();
                scratch.field_validation = Some(validation);
                scratch.field_manager = request.query.get("fieldManager").cloned();
                scratch.force = request.flag("force");
                let result = operate(
                    &mut scratch,
                    request,
                    type_index,
                    namespace.as_deref(),
                    name,
                    subresource.as_deref(),
                );
                warnings = scratch.warnings;
                result
            }
            Ok(validation) => {
                store.field_validation = Some(validation);
                store.field_manager = request.query.get("fieldManager").cloned();
                store.force = request.flag("force");
                let result = operate(
                    &mut store,
                    request,
                    type_index,
                    namespace.as_deref(),
                    name,
                    subresource.as_deref(),
                );
                store.field_validation = None;
                store.field_manager = None;
                store.force = false;
                warnings = std::mem::take(&mut store.warnings);
                result
            }
        };
        let version = store.resource_version;
        drop(store);
        shared.notify(version);
        result
    };
    let mut response = match result {
        Ok((code, value))
            if table::wants_table(request.accept)
                && *request.method == Method::GET
                && value.get("kind").and_then(Value::as_str) != Some("Scale") =>
        {
            let store = shared.lock();
            let ty = &store.types[type_index];
            let items = match value.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![value.clone()],
            };
            let version = value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let include = request.query.get("includeObject").map(String::as_str);
            json_response(code, &table::table(ty, &items, version, include))
        }
        Ok((code, value)) => json_response(code, &value),
        Err(error) => error_response(&error),
    };
    for warning in warnings {
        let text = format!("299 - {}", serde_json::Value::String(warning));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("warning", value);
        }
    }
    response
}

/// Carries out a non-watch request against the store.
fn operate(
    store: &mut Store,
    request: &Request,
    type_index: usize,
    namespace: Option<&str>,
    name: Option<String>,
    subresource: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    let method = request.method;
    let Some(name) = name else {
        return match *method {
            Method::GET => list(store, type_index, namespace, request.query).map(|v| (200, v)),
            Method::POST => store
                .create(type_index, namespace, request.body()?)
                .map(|v| (201, v)),
            _ => Err(ApiError {
                code: 405,
                reason: "MethodNotAllowed",
                message: format!("{method} is not supported on a collection"),
                details: None,
            }),
        };
    };
    let key: Key = (type_index, namespace.unwrap_or_default().to_string(), name);
    let content_type = request.content_type;
    let patch_kind = || {
        content_type
            .and_then(PatchKind::from_content_type)
            .ok_or(ApiError {
                code: 415,
                reason: "UnsupportedMediaType",
                message: format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
                ),
                details: None,
            })
    };
    let manager = request.query.get("fieldManager").cloned();
    let apply_needs_manager = |kind: PatchKind| {
        if kind == PatchKind::Apply && manager.is_none() {
            Err(ApiError::bad_request(
                "PATCH requests with apply patches require a fieldManager",
            ))
        } else {
            Ok(kind)
        }
    };
    let status_only = subresource == Some("status");
    match (method.clone(), subresource) {
        (Method::GET, Some("scale")) => store.get_scale(&key).map(|v| (200, v)),
        (Method::GET, _) => store.get(&key).map(|v| (200, v)),
        (Method::PUT, Some("scale")) => store
            .write_scale(&key, None, &request.body()?)
            .map(|v| (200, v)),
        (Method::PUT, _) => store
            .update(&key, request.body()?, status_only)
            .map(|v| (200, v)),
        (Method::PATCH, Some("scale")) => {
            let kind = apply_needs_manager(patch_kind()?)?;
            store
                .write_scale(&key, Some(kind), &request.body()?)
                .map(|v| (200, v))
        }
        (Method::PATCH, _) => {
            let kind = apply_needs_manager(patch_kind()?)?;
            let created = kind == PatchKind::Apply && !store.objects.contains_key(&key);
            store
                .patch(&key, kind, &request.body()?, status_only)
                .map(|v| (if created { 201 } else { 200 }, v))
        }
        (Method::DELETE, None) => {
            let options = request.body.cloned().unwrap_or_default();
            let propagation = request
                .query
                .get("propagationPolicy")
                .map(String::as_str)
                .or_else(|| options.get("propagationPolicy").and_then(Value::as_str))
                .unwrap_or("Background")
                .to_string();
            store.delete_with(&key, &propagation).map(|v| (200, v))
        }
        _ => Err(ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!("{method} is not supported here"),
            details: None,
        }),
    }
}

fn watch_request(
    type_index: usize,
    namespace: Option<String>,
    query: &HashMap<String, String>,
) -> Result<watch::WatchRequest, ApiError> {
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "true" || v == "1");
    let timeout = match query.get("timeoutSeconds") {
        Some(text) => {
            Some(Duration::from_secs(text.parse().map_err(|_| {
                ApiError::bad_request("timeoutSeconds must be a number")
            })?))
        }
        None => None,
    };
    Ok(watch::WatchRequest {
        type_index,
        namespace,
        resource_version: query.get("resourceVersion").cloned(),
        selectors: Selectors::parse(
            query.get("labelSelector").map(String::as_str),
            query.get("fieldSelector").map(String::as_str),
        )?,
        bookmarks: flag("allowWatchBookmarks"),
        send_initial_events: flag("sendInitialEvents"),
        timeout,
    })
}

fn list(
    store: &Store,
    type_index: usize,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let selectors = Selectors::parse(
        query.get("labelSelector").map(String::as_str),
        query.get("fieldSelector").map(String::as_str),
    )?;
    let ty = &store.types[type_index];
    // Only the page is copied: a client paging through 20,000 objects 500 at a time must not
    // cost 20,000 copies per page under the store's lock (the real server pages from its
    // cache without copying the rest).
    let mut converted: Vec<Value> = Vec::new();
    if events::is_event(ty) {
        // The other Event view's objects are the same resource.
        for (other, _) in store
            .types
            .iter()
            .enumerate()
            .filter(|(i, t)| *i != type_index && events::is_event(t))
        {
            converted.extend(
                store
                    .objects_of(other, namespace)
                    .map(|e| events::convert(e, ty)),
            );
        }
    }
    let matching = || {
        store
            .objects_of(type_index, namespace)
            .chain(converted.iter())
            .filter(|o| selectors.matches(o))
    };
    // A continue token is "offset:resourceVersion"; the list answers at the version of its
    // first page, as the real server does.
    let (offset, version) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (offset, version) = token
                .split_once(':')
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let offset = offset
                .parse::<usize>()
                .map_err(|_| ApiError::bad_request("invalid continue token"))?;
            (offset, version.to_string())
        }
        None => (0, store.resource_version.to_string()),
    };
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let total = matching().count();
    let end = limit.map_or(total, |l| (offset + l).min(total));
    let page: Vec<Value> = matching()
        .skip(offset.min(total))
        .take(end.saturating_sub(offset))
        .cloned()
        .collect();
    let items_len = total;
    let mut metadata = json!({"resourceVersion": version});
    if end < items_len {
        metadata["continue"] = json!(format!("{end}:{version}"));
        metadata["remainingItemCount"] = json!(items_len - end);
    }
    Ok(json!({
        "kind": format!("{}List", ty.kind), "apiVersion": ty.api_version(),
        "metadata": metadata, "items": page
    }))
}
