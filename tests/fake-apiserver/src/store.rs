//! The fake's state: objects, the resourceVersion counter, the change history watches replay,
//! and every operation's API semantics (conflicts, subresources, generation, defaulting).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::patch::{self, PatchKind};
use crate::resources::ResourceType;
use crate::{crd, schema, ssa};

/// The `fieldValidation` query parameter: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Refuse the request (400), kubectl's default.
    Strict,
    /// Prune them and answer with a `Warning` header, the server's default.
    Warn,
    /// Prune them silently.
    Ignore,
}

impl FieldValidation {
    /// Parses the query parameter; absent means `Warn`, as on the real server.
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            None | Some("Warn") | Some("") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn, Strict; got {other:?}"
            ))),
        }
    }
}

/// An API error, answered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`, `Conflict`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, e.g. the field causes of a 422.
    pub details: Option<Value>,
}

impl ApiError {
    /// A 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            details: None,
        }
    }

    /// A 422 Invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message: message.into(),
            details: None,
        }
    }

    /// The `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    /// A 404 NotFound for `name` of `qualified_plural` (e.g. `deployments.apps`).
    pub fn not_found(qualified_plural: &str, name: &str) -> Self {
        Self {
            code: 404,
            reason: "NotFound",
            message: format!("{qualified_plural} \"{name}\" not found"),
            details: Some(json!({"name": name, "kind": qualified_plural})),
        }
    }
}

/// One recorded change, replayed to watches.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub resource_version: u64,
    /// Index into the type table.
    pub type_index: usize,
    /// ADDED, MODIFIED or DELETED.
    pub event_type: &'static str,
    /// The object after the change (before deletion for DELETED, with the new version).
    pub object: Value,
}

/// Object key: type, namespace ("" when cluster-scoped), name.
pub type Key = (usize, String, String);

/// Everything the fake knows.
#[derive(Debug, Default, Clone)]
pub struct Store {
    /// Served types.
    pub types: Vec<ResourceType>,
    /// Current objects.
    pub objects: BTreeMap<Key, Value>,
    /// Every change, oldest first.
    pub history: Vec<Change>,
    /// The last issued resourceVersion.
    pub resource_version: u64,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted_below: u64,
    /// How the request being served wants unknown fields handled; `None` (test setup through
    /// the library) skips schema checks altogether.
    pub field_validation: Option<FieldValidation>,
    /// Warnings for the request being served, sent back as `Warning` headers.
    pub warnings: Vec<String>,
    /// Namespaced objects need their Namespace to exist, as on the real server.
    pub namespaces_must_exist: bool,
    /// The request's `fieldManager`, for server-side apply.
    pub field_manager: Option<String>,
    /// The request's `force=true`: a server-side apply takes conflicting fields over.
    pub force: bool,
    uid_counter: u64,
}

fn now_timestamp() -> Value {
    let time =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    serde_json::to_value(time).unwrap_or(Value::Null)
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn without(object: &Value, fields: &[&str]) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for field in fields {
            map.remove(*field);
        }
    }
    copy
}

/// The API server folds a Secret's write-only `stringData` into `data` (base64).
fn fold_string_data(ty: &ResourceType, object: &mut Value) {
    if !(ty.group.is_empty() && ty.kind == "Secret") {
        return;
    }
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    for (key, value) in strings {
        let bytes = value.as_str().unwrap_or_default().as_bytes().to_vec();
        let encoded = serde_json::to_value(k8s_openapi::ByteString(bytes)).unwrap_or(Value::Null);
        if !object.get("data").is_some_and(Value::is_object) {
            object["data"] = json!({});
        }
        object["data"][key] = encoded;
    }
}

impl Store {
    /// A store serving `types`, with nothing in it.
    pub fn new(types: Vec<ResourceType>) -> Self {
        Self {
            types,
            resource_version: 1,
            ..Self::default()
        }
    }

    fn not_found(&self, type_index: usize, name: &str) -> ApiError {
        let ty = &self.types[type_index];
        ApiError::not_found(&ty.qualified_plural(), name)
    }

    fn conflict(&self, type_index: usize, name: &str) -> ApiError {
        let ty = &self.types[type_index];
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                ty.qualified_plural()
            ),
            details: None,
        }
    }

    /// Stores `object` under `key` with a fresh resourceVersion and records the change.
    fn commit(&mut self, key: Key, mut object: Value, event_type: &'static str) -> Value {
        self.resource_version += 1;
        metadata_mut(&mut object).insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        self.history.push(Change {
            resource_version: self.resource_version,
            type_index: key.0,
            event_type,
            object: object.clone(),
        });
        if event_type == "DELETED" {
            self.objects.remove(&key);
        } else {
            self.objects.insert(key, object.clone());
        }
        object
    }

    /// The object at `key`.
    pub fn get(&self, key: &Key) -> Result<Value, ApiError> {
        self.objects
            .get(key)
            .cloned()
            .ok_or_else(|| self.not_found(key.0, &key.2))
    }

    /// Objects of a type, in one namespace or all, in key order.
    pub fn list(&self, type_index: usize, namespace: Option<&str>) -> Vec<Value> {
        self.objects_of(type_index, namespace).cloned().collect()
    }

    /// The objects of one type (in one namespace), without copying them.
    pub fn objects_of<'a>(
        &'a self,
        type_index: usize,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |((ty, ns, _), _)| *ty == type_index && namespace.is_none_or(|n| n == ns))
            .map(|(_, object)| object)
    }

    /// Creates an object (POST to a collection).
    pub fn create(
        &mut self,
        type_index: usize,
        namespace: Option<&str>,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        let ty = self.types[type_index].clone();
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        self.check_type_meta(&ty, &body)?;
        let namespace = match (ty.namespaced, namespace, meta_str(&body, "namespace")) {
            (false, _, _) => String::new(),
            (true, Some(url), Some(body)) if url != body => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (true, Some(url), _) => url.to_string(),
            (true, None, _) => return Err(ApiError::bad_request("a namespace is required")),
        };
        let name = match (meta_str(&body, "name"), meta_str(&body, "generateName")) {
            (Some(name), _) if !name.is_empty() => name.to_string(),
            (_, Some(prefix)) => {
                self.uid_counter += 1;
                format!("{prefix}{:05x}", self.uid_counter)
            }
            _ => {
                return Err(ApiError::invalid(
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
        };
        validate_name(&name)?;
        let key = (type_index, namespace.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError {
                code: 409,
                reason: "AlreadyExists",
                message: format!("{} \"{name}\" already exists", ty.qualified_plural()),
                details: None,
            });
        }
        self.uid_counter += 1;
        body["apiVersion"] = json!(ty.api_version());
        body["kind"] = json!(ty.kind);
        fold_string_data(&ty, &mut body);
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid_counter);
        let metadata = metadata_mut(&mut body);
        metadata.insert("name".into(), json!(name));
        if ty.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        }
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("creationTimestamp".into(), now_timestamp());
        if ty.status_subresource {
            metadata.insert("generation".into(), json!(1));
        }
        if ty.scale.is_some() && ty.simulate_workload && body.pointer("/spec/replicas").is_none() {
            // The API server defaults apps/v1 workloads to one replica.
            if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("replicas".into(), json!(1));
            }
        }
        if ty.namespaced && self.namespaces_must_exist {
            let namespaces = self
                .types
                .iter()
                .position(|t| t.group.is_empty() && t.plural == "namespaces");
            if let Some(index) = namespaces
                && !self
                    .objects
                    .contains_key(&(index, String::new(), namespace.clone()))
            {
                return Err(ApiError::not_found("namespaces", &namespace));
            }
        }
        self.admit(type_index, &mut body, None)?;
        let stored = self.commit(key.clone(), body, "ADDED");
        self.after_write(&key);
        Ok(self.objects.get(&key).cloned().unwrap_or(stored))
    }

    fn check_type_meta(&self, ty: &ResourceType, body: &Value) -> Result<(), ApiError> {
        let api_version = body.get("apiVersion").and_then(Value::as_str);
        let kind = body.get("kind").and_then(Value::as_str);
        if api_version.is_some_and(|v| v != ty.api_version()) || kind.is_some_and(|k| k != ty.kind)
        {
            return Err(ApiError::bad_request(format!(
                "the body is a {}/{}, the URL is for {} {}",
                api_version.unwrap_or(""),
                kind.unwrap_or(""),
                ty.api_version(),
                ty.kind
            )));
        }
        Ok(())
    }

    /// Replaces an object or its status (PUT); `body` carries the full new object.
    pub fn update(&mut self, key: &Key, body: Value, status_only: bool) -> Result<Value, ApiError> {
        let current = self.get(key)?;
        let ty = self.types[key.0].clone();
        self.check_type_meta(&ty, &body)?;
        if meta_str(&body, "name").is_some_and(|name| name != key.2) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the URL",
            ));
        }
        if let Some(expected) = meta_str(&body, "resourceVersion")
            && Some(expected) != meta_str(&current, "resourceVersion")
        {
            return Err(self.conflict(key.0, &key.2));
        }
        self.store_update(key, current, body, status_only)
    }

    /// Applies a patch to an object or its status (PATCH).
    pub fn patch(
        &mut self,
        key: &Key,
        kind: PatchKind,
        body: &Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let current = match self.get(key) {
            Ok(current) => current,
            Err(_) if kind == PatchKind::Apply && !status_only => {
                // Server-side apply creates what does not exist.
                let namespace = (!key.1.is_empty()).then_some(key.1.as_str());
                let created = self.server_side_apply(key.0, &Value::Null, body)?;
                return self.create(key.0, namespace, created);
            }
            Err(error) => return Err(error),
        };
        if let Some(expected) = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && Some(expected) != meta_str(&current, "resourceVersion")
        {
            return Err(self.conflict(key.0, &key.2));
        }
        let patched = if kind == PatchKind::Apply {
            self.server_side_apply(key.0, &current, body)?
        } else {
            patch::apply(kind, &current, body).map_err(ApiError::invalid)?
        };
        self.store_update(key, current, patched, status_only)
    }

    /// Server-side apply of `config` over `current` by the request's field manager.
    fn server_side_apply(
        &self,
        type_index: usize,
        current: &Value,
        config: &Value,
    ) -> Result<Value, ApiError> {
        let manager = self.field_manager.as_deref().unwrap_or("unknown");
        let api_version = self.types[type_index].api_version();
        ssa::apply(
            current,
            config,
            manager,
            self.force,
            &api_version,
            &now_timestamp(),
        )
        .map_err(|ssa::Conflict(message)| ApiError {
            code: 409,
            reason: "Conflict",
            message,
            details: None,
        })
    }

    /// Stores `proposed` over `current`, keeping what the server owns.
    fn store_update(
        &mut self,
        key: &Key,
        current: Value,
        proposed: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let ty = self.types[key.0].clone();
        let mut next = if status_only {
            // The status subresource changes status and nothing else.
            let mut next = current.clone();
            match proposed.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    next.as_object_mut().map(|m| m.remove("status"));
                }
            }
            next
        } else if ty.status_subresource {
            // With a status subresource, writes to the main resource leave status alone.
            let mut next = proposed.clone();
            match current.get("status") {
                Some(status) => next["status"] = status.clone(),
                None => {
                    next.as_object_mut().map(|m| m.remove("status"));
                }
            }
            next
        } else {
            proposed.clone()
        };
        if !next.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        // An update that leaves managedFields out keeps them, as on the real server.
        if next.pointer("/metadata/managedFields").is_none()
            && let Some(managed) = current.pointer("/metadata/managedFields")
        {
            metadata_mut(&mut next).insert("managedFields".into(), managed.clone());
        }
        // Identity and bookkeeping fields are the server's.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match current.get("metadata").and_then(|m| m.get(field)) {
                Some(value) => {
                    metadata_mut(&mut next).insert(field.into(), value.clone());
                }
                None => {
                    metadata_mut(&mut next).remove(field);
                }
            }
        }
        next["apiVersion"] = json!(ty.api_version());
        next["kind"] = json!(ty.kind);
        fold_string_data(&ty, &mut next);
        self.admit(key.0, &mut next, Some(&current))?;
        let spec_changed =
            without(&current, &["metadata", "status"]) != without(&next, &["metadata", "status"]);
        if spec_changed && ty.status_subresource && !status_only {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut next).insert("generation".into(), json!(generation + 1));
        }
        let mut current_for_compare = current.clone();
        metadata_mut(&mut current_for_compare).remove("resourceVersion");
        let mut next_for_compare = next.clone();
        metadata_mut(&mut next_for_compare).remove("resourceVersion");
        if current_for_compare == next_for_compare {
            // A no-op write keeps the resourceVersion and sends no watch event, as etcd does.
            return Ok(current);
        }
        let stored = self.commit(key.clone(), next, "MODIFIED");
        let finalized = stored.pointer("/metadata/deletionTimestamp").is_some()
            && stored
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        if finalized {
            // The last finalizer is gone: the pending deletion completes.
            self.remove(key, true);
            return Ok(stored);
        }
        if spec_changed {
            self.after_write(key);
        }
        Ok(self.objects.get(key).cloned().unwrap_or(stored))
    }

    /// Deletes an object with background propagation.
    pub fn delete(&mut self, key: &Key) -> Result<Value, ApiError> {
        self.delete_with(key, "Background")
    }

    /// Deletes an object as the real server does: with finalizers it only gets a
    /// deletionTimestamp and goes when the last finalizer is removed; then its dependents
    /// (ownerReferences to its uid) are deleted, or with `Orphan` released. `Foreground` is
    /// treated as `Background`: the owner goes first.
    pub fn delete_with(&mut self, key: &Key, propagation: &str) -> Result<Value, ApiError> {
        let current = self.get(key)?;
        let finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(current);
            }
            let mut next = current;
            metadata_mut(&mut next).insert("deletionTimestamp".into(), now_timestamp());
            metadata_mut(&mut next).insert("deletionGracePeriodSeconds".into(), json!(0));
            return Ok(self.commit(key.clone(), next, "MODIFIED"));
        }
        Ok(self.remove(key, propagation != "Orphan"))
    }

    /// Removes a stored object and what hangs on it: a CRD's types and objects, a
    /// Namespace's contents, and dependents (deleted, or with `cascade` false released).
    fn remove(&mut self, key: &Key, cascade: bool) -> Value {
        let Some(current) = self.objects.get(key).cloned() else {
            return Value::Null;
        };
        let deleted = self.commit(key.clone(), current.clone(), "DELETED");
        let ty = self.types[key.0].clone();
        if crd::is_crd_type(&ty) {
            self.unserve_crd(&key.2);
        }
        if ty.group.is_empty() && ty.plural == "namespaces" {
            let contents: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| self.types[k.0].namespaced && k.1 == key.2)
                .cloned()
                .collect();
            for content in contents {
                self.remove(&content, true);
            }
        }
        let uid = meta_str(&current, "uid").unwrap_or_default().to_string();
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(&uid))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for dependent in dependents {
            if cascade {
                let _ = self.delete_with(&dependent, "Background");
            } else if let Some(mut object) = self.objects.get(&dependent).cloned() {
                if let Some(Value::Array(refs)) = object.pointer_mut("/metadata/ownerReferences") {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(&uid));
                }
                self.commit(dependent, object, "MODIFIED");
            }
        }
        deleted
    }

    /// Prunes, defaults and validates a write against the type's schema, as the request's
    /// `fieldValidation` asks; types without a schema pass unchecked.
    fn admit(
        &mut self,
        type_index: usize,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let ty = &self.types[type_index];
        let Some(validation) = self.field_validation else {
            // Test setup through the library skips the checks, but what a client reads is
            // still pruned and defaulted, as the real server does on every read.
            if let Some(schema) = ty.schema.as_ref() {
                let _ = schema::apply(schema, object);
            }
            return Ok(());
        };
        if crd::is_crd_type(ty) {
            let errors = crd::validate(object);
            if !errors.is_empty() {
                let name = meta_str(object, "name").unwrap_or_default().to_string();
                return Err(invalid_object(ty, &name, &[], errors));
            }
        }
        let Some(schema) = ty.schema.as_ref() else {
            return Ok(());
        };
        let outcome = schema::apply(schema, object);
        let unknown: Vec<String> = outcome
            .unknown
            .iter()
            .map(|path| format!("unknown field \"{path}\""))
            .collect();
        if !unknown.is_empty() {
            match validation {
                FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                        unknown.join(", "),
                        kind = ty.kind,
                        version = ty.version,
                    )));
                }
                FieldValidation::Warn => self.warnings.extend(unknown),
                FieldValidation::Ignore => {}
            }
        }
        // Validation ratcheting (on by default since Kubernetes 1.30): an update is not
        // refused for invalid values it leaves as they were.
        let errors: Vec<schema::FieldError> = outcome
            .errors
            .into_iter()
            .filter(|e| {
                old.is_none_or(|old| {
                    schema::at_path(old, &e.field) != schema::at_path(object, &e.field)
                })
            })
            .collect();
        if !errors.is_empty() {
            let outcome = schema::Outcome {
                unknown: Vec::new(),
                errors,
            };
            let name = meta_str(object, "name").unwrap_or_default().to_string();
            let rendered = outcome
                .errors
                .iter()
                .map(schema::FieldError::render)
                .collect();
            return Err(invalid_object(ty, &name, &outcome.errors, rendered));
        }
        Ok(())
    }

    /// What follows a stored change: workloads reconcile, CRDs get their types and status.
    fn after_write(&mut self, key: &Key) {
        if crd::is_crd_type(&self.types[key.0]) {
            self.establish_crd(key);
        } else {
            self.simulate_workload(key);
        }
    }

    /// Serves the types a stored CRD defines and writes the status the real server would.
    fn establish_crd(&mut self, key: &Key) {
        let Some(object) = self.objects.get(key).cloned() else {
            return;
        };
        let new_types = crd::types_of(&object);
        let conflict = new_types.iter().find_map(|new| {
            self.types.iter().find(|t| {
                t.served
                    && t.group == new.group
                    && t.crd.as_deref() != Some(key.2.as_str())
                    && (t.plural == new.plural || t.kind == new.kind)
            })
        });
        let conflict = conflict.map(|t| format!("{:?} is already in use", t.plural));
        if conflict.is_none() {
            for ty in self.types.iter_mut() {
                if ty.crd.as_deref() == Some(key.2.as_str()) {
                    ty.served = false;
                }
            }
            for new in new_types {
                let existing = self.types.iter().position(|t| {
                    t.group == new.group && t.version == new.version && t.plural == new.plural
                });
                match existing {
                    Some(index) => self.types[index] = new,
                    None => self.types.push(new),
                }
            }
        }
        let status = crd::status(&object, conflict, &now_timestamp());
        if object.get("status") == Some(&status) {
            return;
        }
        let mut next = object;
        next["status"] = status;
        self.commit(key.clone(), next, "MODIFIED");
    }

    /// A deleted CRD's types stop being served and their objects go with it.
    fn unserve_crd(&mut self, crd_name: &str) {
        let indices: Vec<usize> = (0..self.types.len())
            .filter(|i| self.types[*i].crd.as_deref() == Some(crd_name))
            .collect();
        for index in &indices {
            self.types[*index].served = false;
        }
        let doomed: Vec<Key> = self
            .objects
            .keys()
            .filter(|k| indices.contains(&k.0))
            .cloned()
            .collect();
        for key in doomed {
            if let Some(object) = self.objects.get(&key).cloned() {
                self.commit(key, object, "DELETED");
            }
        }
    }

    /// The `autoscaling/v1` Scale of a workload.
    pub fn get_scale(&self, key: &Key) -> Result<Value, ApiError> {
        let object = self.get(key)?;
        let paths = self.types[key.0]
            .scale
            .clone()
            .ok_or_else(|| self.not_found(key.0, &key.2))?;
        let read = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
        let mut status = json!({"replicas": read(&paths.status_replicas)});
        if let Some(Value::String(selector)) =
            paths.selector.as_deref().and_then(|p| object.pointer(p))
        {
            // A CRD's labelSelectorPath points at a selector already in string form.
            status["selector"] = json!(selector);
        } else if let Some(Value::Object(labels)) =
            paths.selector.as_deref().and_then(|p| object.pointer(p))
        {
            let selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            status["selector"] = json!(selector.join(","));
        }
        let metadata = object.get("metadata").cloned().unwrap_or_default();
        let mut scale_meta = json!({});
        for field in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(value) = metadata.get(field) {
                scale_meta[field] = value.clone();
            }
        }
        Ok(json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": read(&paths.spec_replicas)}, "status": status
        }))
    }

    /// Writes a Scale (PUT) or patches one (PATCH with `kind`), updating the workload.
    pub fn write_scale(
        &mut self,
        key: &Key,
        kind: Option<PatchKind>,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let scale = self.get_scale(key)?;
        let proposed = match kind {
            Some(kind) => patch::apply(kind, &scale, body).map_err(ApiError::invalid)?,
            None => body.clone(),
        };
        let expected = proposed
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        let is_put = kind.is_none();
        if let Some(expected) = expected {
            let patch_has_version = body.pointer("/metadata/resourceVersion").is_some();
            if (is_put || patch_has_version)
                && Some(expected) != meta_str(&scale, "resourceVersion")
            {
                return Err(self.conflict(key.0, &key.2));
            }
        }
        let replicas = proposed
            .pointer("/spec/replicas")
            .map(|value| {
                value
                    .as_i64()
                    .filter(|n| *n >= 0 && *n <= i64::from(i32::MAX))
            })
            .unwrap_or(Some(0))
            .ok_or_else(|| {
                ApiError::invalid("spec.replicas: Invalid value: must be a non-negative int32")
            })?;
        let paths = self.types[key.0]
            .scale
            .clone()
            .ok_or_else(|| self.not_found(key.0, &key.2))?;
        let mut object = self.get(key)?;
        set_pointer(&mut object, &paths.spec_replicas, json!(replicas));
        self.store_update(key, self.get(key)?, object, false)?;
        self.get_scale(key)
    }

    /// Plays the workload's controller: observed replicas follow desired ones.
    fn simulate_workload(&mut self, key: &Key) {
        let ty = self.types[key.0].clone();
        let Some(paths) = ty.scale.as_ref().filter(|_| ty.simulate_workload) else {
            return;
        };
        let Some(object) = self.objects.get(key).cloned() else {
            return;
        };
        let desired = object
            .pointer(&paths.spec_replicas)
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = object
            .pointer(&paths.status_replicas)
            .and_then(Value::as_i64);
        let generation = object
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        if observed == Some(desired)
            && object.pointer("/status/observedGeneration") == Some(&generation)
        {
            return;
        }
        let mut next = object;
        set_pointer(&mut next, &paths.status_replicas, json!(desired));
        if paths.status_replicas == "/status/replicas" {
            for field in ["readyReplicas", "availableReplicas", "updatedReplicas"] {
                next["status"][field] = json!(desired);
            }
            next["status"]["observedGeneration"] = generation;
            if ty.kind == "Deployment" {
                // The Deployment controller's conditions, which `kubectl wait` and
                // `kubectl rollout status` read.
                let now = now_timestamp();
                let condition = |kind: &str, reason: &str, message: &str| {
                    json!({"type": kind, "status": "True", "reason": reason, "message": message,
                           "lastUpdateTime": now, "lastTransitionTime": now})
                };
                next["status"]["conditions"] = json!([
                    condition(
                        "Available",
                        "MinimumReplicasAvailable",
                        "Deployment has minimum availability."
                    ),
                    condition(
                        "Progressing",
                        "NewReplicaSetAvailable",
                        "ReplicaSet has successfully progressed."
                    ),
                ]);
            }
        }
        self.commit(key.clone(), next, "MODIFIED");
    }
}

/// Sets the value at a JSON pointer, creating objects on the way.
pub fn set_pointer(document: &mut Value, pointer: &str, value: Value) {
    let mut cursor = document;
    for segment in pointer.trim_start_matches('/').split('/') {
        if !cursor.is_object() {
            *cursor = json!({});
        }
        cursor = cursor
            .as_object_mut()
            .expect("cursor was just made an object")
            .entry(segment.to_string())
            .or_insert(Value::Null);
    }
    *cursor = value;
}

/// A 422 Invalid for an object, with the field causes the real server lists.
fn invalid_object(
    ty: &ResourceType,
    name: &str,
    errors: &[schema::FieldError],
    rendered: Vec<String>,
) -> ApiError {
    let joined = if rendered.len() == 1 {
        rendered.join("")
    } else {
        format!("[{}]", rendered.join(", "))
    };
    let qualified = if ty.group.is_empty() {
        ty.kind.clone()
    } else {
        format!("{}.{}", ty.kind, ty.group)
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.detail, "field": e.field}))
        .collect();
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("{qualified} \"{name}\" is invalid: {joined}"),
        details: Some(json!({"name": name, "group": ty.group, "kind": ty.kind, "causes": causes})),
    }
}

/// DNS-1123 subdomain rule, which every name used here follows.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of \
             lower case alphanumeric characters, '-' or '.'"
        )))
    }
}
