//! Checks for scalers that speak `ebb.scaler.v1` (and, when they say so, KEDA's protocol).

use std::collections::HashSet;

use tonic::Code;

use super::probe::Probe;
use super::{Outcome, Report, keda_checks, sorted};
use crate::client::command::ConformanceArgs;
use crate::client::scaler_text::clean_info;
use crate::client::{ClientError, MetadataField, ScalerInfo, TriggerInput, ValueKind};
use crate::proto::v1;
use crate::protocol::Redactor;

/// A value no typed metadata key accepts.
const INVALID_VALUE: &str = "ebb-conformance-not-a-valid-value";
/// Sent as every secret's value; must never come back in an error message.
const SECRET_SENTINEL: &str = "ebb-conformance-secret-5e1f7c";

pub(super) async fn run(
    probe: &mut Probe,
    info: &ScalerInfo,
    args: &ConformanceArgs,
    report: &mut Report,
) {
    report.record("info-schema", info_schema(info));
    report.record("info-stable", info_stable(probe, info).await);
    report.record("metadata-keys", metadata_keys(info, &probe.trigger));

    let trigger = probe.trigger.clone();
    let spec = probe.spec(&trigger).await;
    report.record("metric-spec", spec_outcome(&spec));
    let Ok(spec) = spec.map(|spec| spec.metric_specs) else {
        report.record("metric-names-stable", needs_spec());
        report.record("metric-values", needs_spec());
        report.record("metric-targets-match-spec", needs_spec());
        return;
    };
    let metrics = probe.metrics(&trigger).await;
    report.record(
        "metric-names-stable",
        names_stable(probe, &spec, &metrics).await,
    );
    report.record("metric-values", values_outcome(info, &spec, &metrics));
    report.record("metric-targets-match-spec", targets_match(&spec, &metrics));
    if let Ok(metrics) = &metrics {
        report.record("active-consistent", active_consistent(metrics));
        let outcome = match probe.is_active(&trigger).await {
            Ok(active) if active == metrics.active => {
                Outcome::Pass(format!("IsActive = GetMetrics.active = {active}"))
            }
            Ok(active) => Outcome::Warn(format!(
                "IsActive says {active}, GetMetrics said {} (fine only if the source changed)",
                metrics.active
            )),
            Err(error) => Outcome::Fail(error.to_string()),
        };
        report.record("is-active", outcome);
    }
    report.record(
        "unknown-keys-ignored",
        unknown_keys_ignored(probe, &spec).await,
    );
    report.record(
        "missing-required-key",
        missing_required_key(probe, info).await,
    );
    report.record("invalid-value", invalid_value(probe, info).await);
    report.record("secrets-not-echoed", secrets_not_echoed(probe, info).await);
    let active = metrics.as_ref().ok().map(|metrics| metrics.active);
    report.record(
        "stream-is-active",
        stream_is_active(probe, info, active).await,
    );
    let (failures, error, took) = probe.concurrent_metrics(args.concurrency, None).await;
    report.record(
        "concurrent-calls",
        concurrent_outcome(args.concurrency, failures, error, took),
    );
    if info.capabilities.keda_compatible {
        keda_checks::consistency(probe, &spec, metrics.as_ref().ok(), args, report).await;
    } else {
        report.record(
            "keda-consistent",
            Outcome::Skip("GetInfo does not claim keda_compatible".into()),
        );
    }
}

fn needs_spec() -> Outcome {
    Outcome::Skip("needs a working GetMetricSpec".into())
}

fn info_schema(info: &ScalerInfo) -> Outcome {
    let mut problems = Vec::new();
    if info.protocol_version != 1 {
        problems.push(format!(
            "protocol_version is {}, expected 1",
            info.protocol_version
        ));
    }
    if info.name.trim().is_empty() {
        problems.push("name is empty".to_owned());
    }
    if info.version.trim().is_empty() {
        problems.push("version is empty".to_owned());
    }
    if info.metadata.is_empty() {
        problems.push("the metadata schema lists no key".to_owned());
    }
    let mut seen = HashSet::new();
    for field in &info.metadata {
        if field.key.trim().is_empty() {
            problems.push("a metadata field has an empty key".to_owned());
        } else if !seen.insert(field.key.as_str()) {
            problems.push(format!("key `{}` is listed twice", field.key));
        }
        if field.kind == ValueKind::Enum && field.allowed_values.is_empty() {
            problems.push(format!("enum key `{}` lists no allowed values", field.key));
        }
        if !field.default_value.is_empty() && !value_fits(field, &field.default_value) {
            problems.push(format!(
                "default `{}` of `{}` is not a valid value",
                field.default_value, field.key
            ));
        }
    }
    if problems.is_empty() {
        Outcome::Pass(format!(
            "{} {} lists {} metadata keys ({} required)",
            info.name,
            info.version,
            info.metadata.len(),
            info.metadata.iter().filter(|field| field.required).count()
        ))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

/// Whether `value` parses as the field's kind (loosely, as a host would pre-check it).
fn value_fits(field: &MetadataField, value: &str) -> bool {
    let value = value.trim();
    match field.kind {
        ValueKind::Integer => value.parse::<i64>().is_ok(),
        ValueKind::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
        ValueKind::Boolean => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        ValueKind::Enum => field
            .allowed_values
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(value)),
        ValueKind::Duration => {
            value.parse::<u64>().is_ok() || humantime::parse_duration(value).is_ok()
        }
        ValueKind::String | ValueKind::Unspecified => true,
    }
}

async fn info_stable(probe: &mut Probe, info: &ScalerInfo) -> Outcome {
    match probe.info().await {
        // `info` came through the client, cleaned as all scaler text is: so is `again`.
        Ok(again)
            if clean_info(ScalerInfo::from_v1(again.clone()), &Redactor::default()) == *info =>
        {
            Outcome::Pass("same answer twice".into())
        }
        Ok(_) => Outcome::Fail("GetInfo answered differently on a second call".into()),
        Err(error) => Outcome::Fail(error.to_string()),
    }
}

fn metadata_keys(info: &ScalerInfo, trigger: &TriggerInput) -> Outcome {
    let unknown: Vec<&str> = trigger
        .metadata
        .keys()
        .chain(trigger.secrets.keys())
        .filter(|key| info.field(key).is_none())
        .map(String::as_str)
        .collect();
    let plain_secrets: Vec<&str> = info
        .metadata
        .iter()
        .filter(|field| field.secret && trigger.metadata.contains_key(&field.key))
        .map(|field| field.key.as_str())
        .collect();
    if unknown.is_empty() && plain_secrets.is_empty() {
        Outcome::Pass("every given key is in the schema".into())
    } else {
        let mut notes = Vec::new();
        if !unknown.is_empty() {
            notes.push(format!("not in the schema: {}", unknown.join(", ")));
        }
        if !plain_secrets.is_empty() {
            notes.push(format!(
                "secrets given as plain metadata: {}",
                plain_secrets.join(", ")
            ));
        }
        Outcome::Warn(notes.join("; "))
    }
}

fn spec_outcome(spec: &Result<v1::GetMetricSpecResponse, ClientError>) -> Outcome {
    let spec = match spec {
        Ok(spec) => spec,
        Err(error) => return Outcome::Fail(format!("{error} (is the trigger metadata right?)")),
    };
    if spec.metric_specs.is_empty() {
        return Outcome::Fail("no metric specs".into());
    }
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    for metric in &spec.metric_specs {
        if metric.metric_name.trim().is_empty() {
            problems.push("a metric has an empty name".to_owned());
        } else if !names.insert(metric.metric_name.as_str()) {
            problems.push(format!("metric `{}` is listed twice", metric.metric_name));
        }
        if !(metric.target.is_finite() && metric.target > 0.0) {
            problems.push(format!(
                "target of `{}` is {}, must be > 0",
                metric.metric_name, metric.target
            ));
        }
        if !(metric.activation_target.is_finite() && metric.activation_target >= 0.0) {
            problems.push(format!(
                "activation_target of `{}` is {}, must be >= 0",
                metric.metric_name, metric.activation_target
            ));
        }
    }
    if problems.is_empty() {
        let described: Vec<String> = spec
            .metric_specs
            .iter()
            .map(|metric| format!("{} (target {})", metric.metric_name, metric.target))
            .collect();
        Outcome::Pass(described.join(", "))
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

async fn names_stable(
    probe: &mut Probe,
    spec: &[v1::MetricSpec],
    metrics: &Result<v1::GetMetricsResponse, ClientError>,
) -> Outcome {
    let expected = sorted(spec.iter().map(|metric| metric.metric_name.as_str()));
    let trigger = probe.trigger.clone();
    for attempt in 2..=3 {
        match probe.spec(&trigger).await {
            Ok(again) => {
                let names = sorted(
                    again
                        .metric_specs
                        .iter()
                        .map(|metric| metric.metric_name.as_str()),
                );
                if names != expected {
                    return Outcome::Fail(format!(
                        "GetMetricSpec call {attempt} named {names:?}, the first {expected:?}"
                    ));
                }
            }
            Err(error) => return Outcome::Fail(format!("GetMetricSpec call {attempt}: {error}")),
        }
    }
    match metrics {
        Ok(metrics) => {
            let names = sorted(
                metrics
                    .metric_values
                    .iter()
                    .map(|value| value.metric_name.as_str()),
            );
            if names == expected {
                Outcome::Pass(format!(
                    "{expected:?} in 3 GetMetricSpec calls and GetMetrics"
                ))
            } else {
                Outcome::Fail(format!(
                    "GetMetrics named {names:?}, GetMetricSpec {expected:?}"
                ))
            }
        }
        Err(_) => Outcome::Skip("GetMetrics failed (see metric-values)".into()),
    }
}

fn values_outcome(
    info: &ScalerInfo,
    spec: &[v1::MetricSpec],
    metrics: &Result<v1::GetMetricsResponse, ClientError>,
) -> Outcome {
    let metrics = match metrics {
        Ok(metrics) => metrics,
        Err(error) => return Outcome::Fail(error.to_string()),
    };
    let mut problems = Vec::new();
    if metrics.metric_values.len() != spec.len() {
        problems.push(format!(
            "{} values for {} metrics",
            metrics.metric_values.len(),
            spec.len()
        ));
    }
    for value in &metrics.metric_values {
        if !(value.value.is_finite() && value.value >= 0.0) {
            problems.push(format!(
                "`{}` = {}, must be finite and >= 0",
                value.metric_name, value.value
            ));
        }
    }
    if metrics.in_flight.is_some() && !info.capabilities.in_flight {
        problems.push("in_flight reported but GetInfo does not advertise in_flight".to_owned());
    }
    if !problems.is_empty() {
        return Outcome::Fail(problems.join("; "));
    }
    let values: Vec<String> = metrics
        .metric_values
        .iter()
        .map(|value| format!("{} = {}", value.metric_name, value.value))
        .collect();
    let in_flight = metrics.in_flight.map_or_else(
        || "unknown".to_owned(),
        |in_flight| in_flight.count.to_string(),
    );
    Outcome::Pass(format!(
        "{}; active {}; in-flight {in_flight}",
        values.join(", "),
        metrics.active
    ))
}

fn targets_match(
    spec: &[v1::MetricSpec],
    metrics: &Result<v1::GetMetricsResponse, ClientError>,
) -> Outcome {
    let Ok(metrics) = metrics else {
        return Outcome::Skip("GetMetrics failed (see metric-values)".into());
    };
    let mut problems = Vec::new();
    for value in &metrics.metric_values {
        let Some(metric) = spec
            .iter()
            .find(|metric| metric.metric_name == value.metric_name)
        else {
            continue;
        };
        if value.target != metric.target {
            problems.push(format!(
                "`{}` target {} vs spec {}",
                value.metric_name, value.target, metric.target
            ));
        }
        if value.activation_target != metric.activation_target {
            problems.push(format!(
                "`{}` activation_target {} vs spec {}",
                value.metric_name, value.activation_target, metric.activation_target
            ));
        }
    }
    if problems.is_empty() {
        Outcome::Pass("GetMetrics repeats the spec's targets".into())
    } else {
        Outcome::Fail(problems.join("; "))
    }
}

fn active_consistent(metrics: &v1::GetMetricsResponse) -> Outcome {
    let computed = metrics
        .metric_values
        .iter()
        .any(|value| value.value > value.activation_target);
    if computed == metrics.active {
        Outcome::Pass(format!(
            "active {} matches the values and activation targets",
            metrics.active
        ))
    } else {
        Outcome::Warn(format!(
            "active is {}, but values vs activation targets say {computed} (allowed when the scaler knows better)",
            metrics.active
        ))
    }
}

async fn unknown_keys_ignored(probe: &mut Probe, spec: &[v1::MetricSpec]) -> Outcome {
    let mut trigger = probe.trigger.clone();
    // KEDA always sends `scalerAddress`; hosts may send keys a scaler never heard of.
    trigger
        .metadata
        .insert("scalerAddress".into(), probe.address.clone());
    trigger
        .metadata
        .insert("ebbConformanceUnknownKey".into(), "x".into());
    match probe.spec(&trigger).await {
        Ok(again) if again.metric_specs == spec => {
            Outcome::Pass("scalerAddress and an unknown key change nothing".into())
        }
        Ok(_) => Outcome::Fail("extra keys changed the metric spec".into()),
        Err(error) => Outcome::Fail(format!(
            "extra keys (scalerAddress, ebbConformanceUnknownKey) rejected: {error}"
        )),
    }
}

/// Expects INVALID_ARGUMENT naming `key` from both GetMetricSpec and GetMetrics.
async fn expect_invalid(
    probe: &mut Probe,
    trigger: &TriggerInput,
    key: &str,
    what: &str,
) -> Outcome {
    let spec = probe.spec(trigger).await.map(drop);
    let metrics = probe.metrics(trigger).await.map(drop);
    for (rpc, answer) in [("GetMetricSpec", spec), ("GetMetrics", metrics)] {
        match answer {
            Ok(()) => return Outcome::Fail(format!("{rpc} answered OK {what}")),
            Err(ClientError::Status {
                code: Code::InvalidArgument,
                message,
                ..
            }) => {
                if !message.contains(key) {
                    return Outcome::Fail(format!(
                        "{rpc}'s INVALID_ARGUMENT message does not name `{key}`: {message}"
                    ));
                }
            }
            Err(error) => {
                return Outcome::Fail(format!(
                    "{rpc} {what}: expected INVALID_ARGUMENT, got {error}"
                ));
            }
        }
    }
    Outcome::Pass(format!("INVALID_ARGUMENT naming `{key}` {what}"))
}

async fn missing_required_key(probe: &mut Probe, info: &ScalerInfo) -> Outcome {
    let Some(field) = info.metadata.iter().find(|field| field.required) else {
        return Outcome::Skip("the schema lists no required key".into());
    };
    let mut trigger = probe.trigger.clone();
    trigger.metadata.remove(&field.key);
    trigger.secrets.remove(&field.key);
    let what = format!("without required key `{}`", field.key);
    expect_invalid(probe, &trigger, &field.key, &what).await
}

/// The first non-secret key with a kind that rejects free text.
fn typed_field(info: &ScalerInfo) -> Option<&MetadataField> {
    info.metadata.iter().find(|field| {
        !field.secret
            && matches!(
                field.kind,
                ValueKind::Integer
                    | ValueKind::Number
                    | ValueKind::Boolean
                    | ValueKind::Enum
                    | ValueKind::Duration
            )
    })
}

async fn invalid_value(probe: &mut Probe, info: &ScalerInfo) -> Outcome {
    let Some(field) = typed_field(info) else {
        return Outcome::Skip("the schema lists no typed key".into());
    };
    let mut trigger = probe.trigger.clone();
    trigger
        .metadata
        .insert(field.key.clone(), INVALID_VALUE.into());
    let what = format!("for `{}={INVALID_VALUE}`", field.key);
    expect_invalid(probe, &trigger, &field.key, &what).await
}

async fn secrets_not_echoed(probe: &mut Probe, info: &ScalerInfo) -> Outcome {
    let secrets: Vec<&MetadataField> = info.metadata.iter().filter(|field| field.secret).collect();
    if secrets.is_empty() {
        return Outcome::Skip("the schema lists no secret key".into());
    }
    let mut trigger = probe.trigger.clone();
    for field in &secrets {
        trigger
            .secrets
            .insert(field.key.clone(), SECRET_SENTINEL.into());
    }
    let mut broken = trigger.clone();
    if let Some(field) = typed_field(info) {
        broken
            .metadata
            .insert(field.key.clone(), INVALID_VALUE.into());
    }
    let mut answers = vec![
        probe.spec(&trigger).await.map(drop),
        probe.metrics(&trigger).await.map(drop),
        probe.spec(&broken).await.map(drop),
    ];
    if info.capabilities.keda_compatible {
        answers.push(probe.keda_spec(&trigger).await.map(drop));
    }
    let leaked = answers
        .iter()
        .filter_map(|answer| answer.as_ref().err())
        .find(|error| error.to_string().contains(SECRET_SENTINEL));
    match leaked {
        Some(error) => Outcome::Fail(format!(
            "a secret's value came back in an error message ({:?} from the call)",
            error.code()
        )),
        None => Outcome::Pass(format!("{} secret key(s) never echoed", secrets.len())),
    }
}

async fn stream_is_active(probe: &mut Probe, info: &ScalerInfo, active: Option<bool>) -> Outcome {
    let trigger = probe.trigger.clone();
    let first = probe.first_push(&trigger).await;
    match (info.capabilities.push, first) {
        (true, Ok(Some(state))) => match active {
            Some(active) if active != state => Outcome::Warn(format!(
                "initial state active={state}, but GetMetrics said {active} (fine only if the source changed)"
            )),
            _ => Outcome::Pass(format!("initial state active={state} sent at once")),
        },
        (true, Ok(None)) => {
            Outcome::Fail("push advertised, but the stream closed without a message".into())
        }
        (true, Err(ClientError::Timeout { .. })) => {
            Outcome::Fail("push advertised, but no initial state within the deadline".into())
        }
        (true, Err(error)) => Outcome::Fail(format!("push advertised, but {error}")),
        (false, Err(error)) if error.is_unimplemented() => {
            Outcome::Pass("no push: UNIMPLEMENTED, as advertised".into())
        }
        (false, Ok(_)) => {
            Outcome::Fail("StreamIsActive answers, but GetInfo does not advertise push".into())
        }
        (false, Err(error)) => Outcome::Fail(format!(
            "no push advertised: expected UNIMPLEMENTED, got {error}"
        )),
    }
}

pub(super) fn concurrent_outcome(
    count: usize,
    failures: usize,
    error: Option<ClientError>,
    took: std::time::Duration,
) -> Outcome {
    match error {
        None => Outcome::Pass(format!(
            "{count} concurrent GetMetrics answered in {}",
            crate::client::check::millis(took)
        )),
        Some(error) => Outcome::Fail(format!(
            "{failures} of {count} concurrent GetMetrics failed, e.g. {error}"
        )),
    }
}
