//! Checking a trigger's metadata against the metadata schema its scaler reports in GetInfo,
//! before anything is polled or scaled: a missing required key or a value of the wrong kind
//! makes the object not Ready (in the cluster) or refused (`ebb run`), naming the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::Problem;
use crate::client::{Protocol, ScalerInfo, ValueKind};
use crate::runtime::{ResolvedTrigger, ScalerPool};
use crate::spec::parse_duration;

/// Where GetInfo answers come from.
pub trait InfoSource: Send + Sync {
    /// The scaler's schema when it can be had now: `None` for a KEDA-only scaler or one that
    /// does not answer (a scaler that is down is no reason to refuse an object; its loop
    /// counts the failures and applies fallback).
    fn info<'a>(&'a self, trigger: &'a ResolvedTrigger) -> BoxFuture<'a, Option<ScalerInfo>>;
}

/// How long a failed GetInfo keeps a scaler from being asked again.
const INFO_FAILURE_MEMORY: Duration = Duration::from_secs(10);
/// How long a connection opened for a check stays open for the loop that follows it.
const KEEP_AFTER_CHECK: Duration = Duration::from_secs(30);

/// [`InfoSource`] over the runtime's scaler pool: one GetInfo per connection (the pool caches
/// it), and a scaler that just failed is not asked again for a while, so a dead scaler does
/// not cost every object its deadline.
#[derive(Clone)]
pub struct PoolInfo {
    pool: ScalerPool,
    timeout: Duration,
    failures: Arc<Mutex<HashMap<String, Instant>>>,
}

impl PoolInfo {
    /// GetInfo through `pool`, each call under `timeout`.
    pub fn new(pool: ScalerPool, timeout: Duration) -> Self {
        Self {
            pool,
            timeout,
            failures: Arc::default(),
        }
    }
}

impl InfoSource for PoolInfo {
    fn info<'a>(&'a self, trigger: &'a ResolvedTrigger) -> BoxFuture<'a, Option<ScalerInfo>> {
        Box::pin(async move {
            if trigger.protocol == Some(Protocol::Keda) {
                return None;
            }
            let address = trigger.channel.address.clone();
            let recently_failed = self
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&address)
                .is_some_and(|at| at.elapsed() < INFO_FAILURE_MEMORY);
            if recently_failed {
                return None;
            }
            let connection = self.pool.connection(&trigger.channel).ok()?;
            let answer = connection.client().info(self.timeout).await;
            if answer.is_ok() {
                // The object's loop will poll over this connection once it starts, which can
                // be a while (the controller starts nothing before its first lists are done).
                // The pool closes a connection nobody holds, so hold it that long: otherwise
                // every pause between checks costs a reconnect and a new protocol detection.
                let keep = connection.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(KEEP_AFTER_CHECK).await;
                    drop(keep);
                });
            }
            match answer {
                Ok(info) if info.protocol == Protocol::V1 => Some(info.clone()),
                Ok(_) => None,
                Err(error) => {
                    self.failures
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(address, Instant::now());
                    tracing::debug!(address = %trigger.channel.address, %error, "GetInfo failed; metadata not checked now");
                    None
                }
            }
        })
    }
}

/// Every schema problem of `triggers` (an object's prepared triggers, in spec order).
pub async fn check_schemas(source: &dyn InfoSource, triggers: &[ResolvedTrigger]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (index, trigger) in triggers.iter().enumerate() {
        if let Some(info) = source.info(trigger).await {
            problems.extend(check_metadata(&info, index, trigger));
        }
    }
    problems
}

/// Every problem of `trigger` (the object's trigger number `index`) against `info`'s schema.
/// A KEDA-only scaler has no schema, so nothing is checked for it.
pub fn check_metadata(info: &ScalerInfo, index: usize, trigger: &ResolvedTrigger) -> Vec<Problem> {
    let mut problems = Vec::new();
    let input = &trigger.input;
    let field = |key: &str| format!("spec.triggers[{index}].metadata.{key}");
    for schema in &info.metadata {
        let plain = input
            .metadata
            .get(&schema.key)
            .or_else(|| input.metadata.get(&format!("{}FromEnv", schema.key)));
        let present = plain.is_some() || input.secrets.contains_key(&schema.key);
        if schema.required && !present {
            problems.push(Problem {
                field: field(&schema.key),
                reason: "MissingMetadata",
                message: format!(
                    "scaler {:?} requires {:?}{}",
                    info.name,
                    schema.key,
                    if schema.secret {
                        " (a credential: give it through a ScalerAuthentication)"
                    } else {
                        ""
                    }
                ),
                transient: false,
            });
            continue;
        }
        // Only plain values are checked: secret values must never appear in a message.
        let Some(value) = input.metadata.get(&schema.key) else {
            continue;
        };
        if schema.secret {
            continue;
        }
        if let Some(expected) = kind_problem(schema.kind, &schema.allowed_values, value) {
            problems.push(Problem {
                field: field(&schema.key),
                reason: "InvalidMetadata",
                message: format!("{value:?} is not {expected}"),
                transient: false,
            });
        }
    }
    problems
}

fn kind_problem(kind: ValueKind, allowed: &[String], value: &str) -> Option<String> {
    let value = value.trim();
    let ok = match kind {
        ValueKind::Unspecified | ValueKind::String => true,
        ValueKind::Integer => value.parse::<i64>().is_ok(),
        ValueKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
        ValueKind::Boolean => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        ValueKind::Enum => {
            allowed.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(value))
        }
        ValueKind::Duration => parse_duration(value).is_ok(),
    };
    if ok {
        return None;
    }
    Some(match kind {
        ValueKind::Integer => "a whole number".to_owned(),
        ValueKind::Number => "a number".to_owned(),
        ValueKind::Boolean => "true or false".to_owned(),
        ValueKind::Enum => format!("one of {}", allowed.join(", ")),
        ValueKind::Duration => "a duration such as 500 (ms), 2s or 1m30s".to_owned(),
        ValueKind::Unspecified | ValueKind::String => "text".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Capabilities, MetadataField, Protocol};
    use crate::runtime::ObjectKey;

    fn field(key: &str, required: bool, kind: ValueKind, allowed: &[&str]) -> MetadataField {
        MetadataField {
            key: key.into(),
            required,
            default_value: String::new(),
            description: String::new(),
            secret: key == "password",
            kind,
            allowed_values: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn info() -> ScalerInfo {
        ScalerInfo {
            protocol: Protocol::V1,
            protocol_version: 1,
            name: "demo".into(),
            version: "1".into(),
            description: String::new(),
            capabilities: Capabilities::default(),
            metadata: vec![
                field("queueName", true, ValueKind::String, &[]),
                field("value", false, ValueKind::Number, &[]),
                field(
                    "mode",
                    false,
                    ValueKind::Enum,
                    &["QueueLength", "MessageRate"],
                ),
                field("password", true, ValueKind::String, &[]),
                field("timeout", false, ValueKind::Duration, &[]),
            ],
        }
    }

    fn trigger(metadata: &[(&str, &str)], secrets: &[(&str, &str)]) -> ResolvedTrigger {
        let mut trigger = ResolvedTrigger::new(&ObjectKey::new("ns", "o"), "t", 0, "127.0.0.1:1");
        for (k, v) in metadata {
            trigger.input.metadata.insert(k.to_string(), v.to_string());
        }
        for (k, v) in secrets {
            trigger.input.secrets.insert(k.to_string(), v.to_string());
        }
        trigger
    }

    #[test]
    fn valid_metadata_passes() {
        let t = trigger(
            &[
                ("queueName", "q"),
                ("value", "2.5"),
                ("mode", "QueueLength"),
                ("timeout", "2s"),
            ],
            &[("password", "x")],
        );
        assert!(check_metadata(&info(), 0, &t).is_empty());
    }

    #[test]
    fn missing_required_and_bad_kinds_are_named() {
        let t = trigger(&[("value", "lots"), ("mode", "Fast")], &[]);
        let problems = check_metadata(&info(), 2, &t);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.triggers[2].metadata.queueName",
                "spec.triggers[2].metadata.value",
                "spec.triggers[2].metadata.mode",
                "spec.triggers[2].metadata.password"
            ]
        );
        assert!(problems[3].message.contains("ScalerAuthentication"));
    }

    #[test]
    fn from_env_key_satisfies_a_required_key() {
        let t = trigger(&[("queueNameFromEnv", "q")], &[("password", "x")]);
        assert!(check_metadata(&info(), 0, &t).is_empty());
    }
}
