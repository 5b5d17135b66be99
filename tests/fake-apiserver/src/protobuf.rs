//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! read into JSON. client-go's typed clients send built-in objects this way: `kubectl create
//! namespace|deployment|secret|configmap|serviceaccount` and Helm's release Secrets. Answers
//! stay JSON, which those clients also accept.
//!
//! The decoder is table-driven over the fields of the types those clients write; fields not in
//! the tables are skipped. Zero values that Go's JSON encoding would omit (empty strings, the
//! zero time) are dropped.

use serde_json::{Map, Value, json};

/// How one field is encoded.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
    Msg(&'static str),
    RepStr,
    RepMsg(&'static str),
    MapStr,
    MapBytes,
    MapQuantity,
    Time,
    IntOrString,
}

use Kind::*;

/// Field tables, `(number, JSON name, kind)`, per message, as in Kubernetes' generated.proto.
fn fields(message: &str) -> &'static [(u64, &'static str, Kind)] {
    match message {
        "ObjectMeta" => &[
            (1, "name", Str),
            (2, "generateName", Str),
            (3, "namespace", Str),
            (5, "uid", Str),
            (6, "resourceVersion", Str),
            (7, "generation", Int),
            (8, "creationTimestamp", Time),
            (9, "deletionTimestamp", Time),
            (10, "deletionGracePeriodSeconds", Int),
            (11, "labels", MapStr),
            (12, "annotations", MapStr),
            (13, "ownerReferences", RepMsg("OwnerReference")),
            (14, "finalizers", RepStr),
        ],
        "OwnerReference" => &[
            (1, "kind", Str),
            (3, "name", Str),
            (4, "uid", Str),
            (5, "apiVersion", Str),
            (6, "controller", Bool),
            (7, "blockOwnerDeletion", Bool),
        ],
        "Namespace" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (2, "spec", Msg("NamespaceSpec")),
            (3, "status", Msg("NamespaceStatus")),
        ],
        "NamespaceSpec" => &[(1, "finalizers", RepStr)],
        "NamespaceStatus" => &[(1, "phase", Str)],
        "Secret" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (2, "data", MapBytes),
            (3, "type", Str),
            (4, "stringData", MapStr),
            (5, "immutable", Bool),
        ],
        "ConfigMap" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (2, "data", MapStr),
            (3, "binaryData", MapBytes),
            (4, "immutable", Bool),
        ],
        "ServiceAccount" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (4, "automountServiceAccountToken", Bool),
        ],
        "Deployment" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (2, "spec", Msg("DeploymentSpec")),
            (3, "status", Msg("DeploymentStatus")),
        ],
        "DeploymentSpec" => &[
            (1, "replicas", Int),
            (2, "selector", Msg("LabelSelector")),
            (3, "template", Msg("PodTemplateSpec")),
            (4, "strategy", Msg("DeploymentStrategy")),
            (5, "minReadySeconds", Int),
            (6, "revisionHistoryLimit", Int),
            (7, "paused", Bool),
            (9, "progressDeadlineSeconds", Int),
        ],
        "DeploymentStrategy" => &[
            (1, "type", Str),
            (2, "rollingUpdate", Msg("RollingUpdateDeployment")),
        ],
        "RollingUpdateDeployment" => &[
            (1, "maxUnavailable", IntOrString),
            (2, "maxSurge", IntOrString),
        ],
        "DeploymentStatus" => &[
            (1, "observedGeneration", Int),
            (2, "replicas", Int),
            (3, "updatedReplicas", Int),
            (4, "availableReplicas", Int),
            (5, "unavailableReplicas", Int),
            (7, "readyReplicas", Int),
        ],
        "LabelSelector" => &[
            (1, "matchLabels", MapStr),
            (2, "matchExpressions", RepMsg("LabelSelectorRequirement")),
        ],
        "LabelSelectorRequirement" => {
            &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)]
        }
        "PodTemplateSpec" => &[
            (1, "metadata", Msg("ObjectMeta")),
            (2, "spec", Msg("PodSpec")),
        ],
        "PodSpec" => &[
            (2, "containers", RepMsg("Container")),
            (3, "restartPolicy", Str),
            (4, "terminationGracePeriodSeconds", Int),
            (5, "activeDeadlineSeconds", Int),
            (6, "dnsPolicy", Str),
            (7, "nodeSelector", MapStr),
            (8, "serviceAccountName", Str),
            (10, "nodeName", Str),
            (11, "hostNetwork", Bool),
            (16, "hostname", Str),
            (17, "subdomain", Str),
            (19, "schedulerName", Str),
            (20, "initContainers", RepMsg("Container")),
            (21, "automountServiceAccountToken", Bool),
        ],
        "Container" => &[
            (1, "name", Str),
            (2, "image", Str),
            (3, "command", RepStr),
            (4, "args", RepStr),
            (5, "workingDir", Str),
            (6, "ports", RepMsg("ContainerPort")),
            (7, "env", RepMsg("EnvVar")),
            (8, "resources", Msg("ResourceRequirements")),
            (9, "volumeMounts", RepMsg("VolumeMount")),
            (13, "terminationMessagePath", Str),
            (14, "imagePullPolicy", Str),
            (16, "stdin", Bool),
            (17, "stdinOnce", Bool),
            (18, "tty", Bool),
            (20, "terminationMessagePolicy", Str),
        ],
        "ContainerPort" => &[
            (1, "name", Str),
            (2, "hostPort", Int),
            (3, "containerPort", Int),
            (4, "protocol", Str),
            (5, "hostIP", Str),
        ],
        "EnvVar" => &[(1, "name", Str), (2, "value", Str)],
        "VolumeMount" => &[
            (1, "name", Str),
            (2, "readOnly", Bool),
            (3, "mountPath", Str),
            (4, "subPath", Str),
        ],
        "ResourceRequirements" => &[(1, "limits", MapQuantity), (2, "requests", MapQuantity)],
        _ => &[],
    }
}

/// A protobuf wire-format reader.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first().ok_or("truncated varint")?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if count > self.bytes.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field: its number and either a varint or a length-delimited payload.
    fn field(&mut self) -> Result<(u64, Result<u64, &'a [u8]>), String> {
        let key = self.varint()?;
        let payload = match key & 7 {
            0 => Ok(self.varint()?),
            1 => Err(self.take(8)?),
            2 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Err(self.take(length)?)
            }
            5 => Err(self.take(4)?),
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok((key >> 3, payload))
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8".to_string())
}

/// The key and value payloads of one map entry.
fn entry(bytes: &[u8]) -> Result<(String, &[u8]), String> {
    let mut reader = Reader { bytes };
    let (mut key, mut value) = (String::new(), &[][..]);
    while !reader.bytes.is_empty() {
        match reader.field()? {
            (1, Err(bytes)) => key = text(bytes)?,
            (2, Err(bytes)) => value = bytes,
            _ => {}
        }
    }
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes };
    let mut seconds = 0i64;
    while !reader.bytes.is_empty() {
        if let (1, Ok(value)) = reader.field()? {
            seconds = value as i64;
        }
    }
    if seconds == 0 {
        return Ok(Value::Null);
    }
    let timestamp =
        k8s_openapi::jiff::Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
    Ok(json!(timestamp.to_string()))
}

fn int_or_string(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader { bytes };
    let (mut kind, mut number, mut string) = (0, 0i64, String::new());
    while !reader.bytes.is_empty() {
        match reader.field()? {
            (1, Ok(value)) => kind = value,
            (2, Ok(value)) => number = value as i64,
            (3, Err(bytes)) => string = text(bytes)?,
            _ => {}
        }
    }
    Ok(if kind == 1 {
        json!(string)
    } else {
        json!(number as i32)
    })
}

fn message(name: &str, bytes: &[u8]) -> Result<Value, String> {
    let table = fields(name);
    let mut reader = Reader { bytes };
    let mut object = Map::new();
    while !reader.bytes.is_empty() {
        let (number, payload) = reader.field()?;
        let Some((_, field, kind)) = table.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let field = field.to_string();
        let value = match (kind, payload) {
            (Str, Err(bytes)) => json!(text(bytes)?),
            (Int, Ok(value)) => json!(value as i64 as i32 as i64),
            (Bool, Ok(value)) => json!(value != 0),
            (Msg(inner), Err(bytes)) => message(inner, bytes)?,
            (Time, Err(bytes)) => time(bytes)?,
            (IntOrString, Err(bytes)) => int_or_string(bytes)?,
            (RepStr, Err(bytes)) => {
                push(&mut object, &field, json!(text(bytes)?));
                continue;
            }
            (RepMsg(inner), Err(bytes)) => {
                push(&mut object, &field, message(inner, bytes)?);
                continue;
            }
            (MapStr | MapBytes | MapQuantity, Err(bytes)) => {
                let (key, value) = entry(bytes)?;
                let value = match kind {
                    MapBytes => serde_json::to_value(k8s_openapi::ByteString(value.to_vec()))
                        .map_err(|e| e.to_string())?,
                    MapQuantity => {
                        let (_, quantity) = entry(value)?;
                        json!(text(quantity)?)
                    }
                    _ => json!(text(value)?),
                };
                let map = object.entry(field).or_insert_with(|| json!({}));
                map[key] = value;
                continue;
            }
            _ => return Err(format!("field {name}.{field} has an unexpected wire type")),
        };
        if value.is_null() || value == json!("") {
            // Go's JSON encoding omits these; the protobuf encoding always writes them.
            continue;
        }
        object.insert(field, value);
    }
    Ok(Value::Object(object))
}

fn push(object: &mut Map<String, Value>, field: &str, value: Value) {
    let list = object.entry(field.to_string()).or_insert_with(|| json!([]));
    if let Some(items) = list.as_array_mut() {
        items.push(value);
    }
}

/// Decodes a `k8s\0`-prefixed protobuf body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(b"k8s\x00")
        .ok_or("the protobuf body lacks the k8s envelope prefix")?;
    let mut reader = Reader { bytes: envelope };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !reader.bytes.is_empty() {
        match reader.field()? {
            (1, Err(type_meta)) => {
                let mut meta = Reader { bytes: type_meta };
                while !meta.bytes.is_empty() {
                    match meta.field()? {
                        (1, Err(bytes)) => api_version = text(bytes)?,
                        (2, Err(bytes)) => kind = text(bytes)?,
                        _ => {}
                    }
                }
            }
            (2, Err(bytes)) => raw = bytes,
            _ => {}
        }
    }
    if fields(&kind).is_empty() {
        return Err(format!(
            "the fake API server cannot read {kind} in protobuf; send JSON"
        ));
    }
    let mut object = message(&kind, raw)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}
