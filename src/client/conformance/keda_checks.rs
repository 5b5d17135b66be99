//! Checks of KEDA's `externalscaler` protocol: for KEDA-only scalers on their own, and for v1
//! scalers that also serve it, against their v1 answers.

use std::collections::HashSet;

use super::probe::Probe;
use super::v1_checks::concurrent_outcome;
use super::{Outcome, Report, close_enough, sorted};
use crate::client::command::ConformanceArgs;
use crate::client::{ClientError, TriggerInput};
use crate::proto::{keda, v1};
use crate::protocol::{keda_metric_value, keda_target_value};
use crate::scaling::format_number;

/// Checks a scaler that speaks only KEDA's protocol.
pub(super) async fn run(probe: &mut Probe, args: &ConformanceArgs, report: &mut Report) {
    let trigger = probe.trigger.clone();
    let spec = probe.keda_spec(&trigger).await;
    report.record("keda-metric-spec", spec_outcome(&spec));
    let Ok(spec) = spec else {
        report.record(
            "keda-metric-values",
            Outcome::Skip("needs a working GetMetricSpec".into()),
        );
        return;
    };
    let names = sorted(
        spec.metric_specs
            .iter()
            .map(|metric| metric.metric_name.as_str()),
    );
    let outcome = match probe.keda_spec(&trigger).await {
        Ok(again)
            if sorted(
                again
                    .metric_specs
                    .iter()
                    .map(|metric| metric.metric_name.as_str()),
            ) == names =>
        {
            Outcome::Pass(format!("{names:?} twice"))
        }
        Ok(again) => Outcome::Fail(format!(
            "second GetMetricSpec named {:?}, the first {names:?}",
            sorted(
                again
                    .metric_specs
                    .iter()
                    .map(|metric| metric.metric_name.as_str())
            )
        )),
        Err(error) => Outcome::Fail(error.to_string()),
    };
    report.record("keda-metric-names-stable", outcome);

    let mut problems = Vec::new();
    let mut shown = Vec::new();
    for metric in &spec.metric_specs {
        match probe.keda_metrics(&trigger, &metric.metric_name).await {
            Ok(answer) => match value_problem(&metric.metric_name, &answer) {
                Ok(value) => {
                    shown.push(format!("{} = {}", metric.metric_name, format_number(value)))
                }
                Err(problem) => problems.push(problem),
            },
            Err(error) => problems.push(error.to_string()),
        }
    }
    report.record("keda-metric-values", verdict(problems, shown.join(", ")));

    let outcome = match probe.keda_is_active(&trigger).await {
        Ok(active) => Outcome::Pass(format!("active {active}")),
        Err(error) => Outcome::Fail(error.to_string()),
    };
    report.record("keda-is-active", outcome);

    let outcome = match probe.keda_first_push(&trigger).await {
        Ok(Some(state)) => Outcome::Pass(format!("initial state active={state} sent at once")),
        Ok(None) => Outcome::Fail("the stream closed without a message".into()),
        Err(error) if error.is_unimplemented() => {
            Outcome::Pass("UNIMPLEMENTED: use trigger type `external`, not `external-push`".into())
        }
        Err(ClientError::Timeout { .. }) => {
            Outcome::Fail("no initial state within the deadline".into())
        }
        Err(error) => Outcome::Fail(error.to_string()),
    };
    report.record("keda-stream-is-active", outcome);

    let mut extended = trigger.clone();
    extended
        .metadata
        .insert("scalerAddress".into(), probe.address.clone());
    extended
        .metadata
        .insert("ebbConformanceUnknownKey".into(), "x".into());
    let outcome = match probe.keda_spec(&extended).await {
        Ok(again) if again == spec => {
            Outcome::Pass("scalerAddress and an unknown key change nothing".into())
        }
        Ok(_) => Outcome::Fail("extra keys changed the metric spec".into()),
        Err(error) => Outcome::Fail(format!("extra keys rejected: {error}")),
    };
    report.record("unknown-keys-ignored", outcome);

    let first = spec
        .metric_specs
        .first()
        .map(|metric| metric.metric_name.clone())
        .unwrap_or_default();
    let (failures, error, took) = probe
        .concurrent_metrics(args.concurrency, Some(&first))
        .await;
    report.record(
        "concurrent-calls",
        concurrent_outcome(args.concurrency, failures, error, took),
    );
}

/// Compares the KEDA answers of a scaler that also speaks v1 with its v1 answers.
pub(super) async fn consistency(
    probe: &mut Probe,
    v1_spec: &[v1::MetricSpec],
    v1_metrics: Option<&v1::GetMetricsResponse>,
    args: &ConformanceArgs,
    report: &mut Report,
) {
    let trigger = probe.trigger.clone();
    let spec = match probe.keda_spec(&trigger).await {
        Ok(spec) => spec,
        Err(error) => {
            let detail = format!("claims keda_compatible, but KEDA GetMetricSpec failed: {error}");
            report.record("keda-consistent", Outcome::Fail(detail));
            return;
        }
    };
    let mut problems = Vec::new();
    let keda_names = sorted(
        spec.metric_specs
            .iter()
            .map(|metric| metric.metric_name.as_str()),
    );
    let v1_names = sorted(v1_spec.iter().map(|metric| metric.metric_name.as_str()));
    if keda_names != v1_names {
        problems.push(format!("KEDA names {keda_names:?}, v1 names {v1_names:?}"));
    }
    for metric in &spec.metric_specs {
        let Some(v1_metric) = v1_spec
            .iter()
            .find(|v1_metric| v1_metric.metric_name == metric.metric_name)
        else {
            continue;
        };
        let target = match keda_target_value(metric) {
            Ok(target) => target,
            Err(refused) => {
                problems.push(format!("`{}`: {refused}", metric.metric_name));
                continue;
            }
        };
        if !close_enough(target, v1_metric.target, 1e-9) {
            problems.push(format!(
                "`{}` KEDA target {target}, v1 {}",
                metric.metric_name, v1_metric.target
            ));
        }
        let answer = match probe.keda_metrics(&trigger, &metric.metric_name).await {
            Ok(answer) => answer,
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        match value_problem(&metric.metric_name, &answer) {
            Err(problem) => problems.push(problem),
            Ok(value) => {
                let v1_value = v1_metrics
                    .and_then(|metrics| {
                        metrics
                            .metric_values
                            .iter()
                            .find(|v| v.metric_name == metric.metric_name)
                    })
                    .map(|v| v.value);
                if let Some(v1_value) = v1_value
                    && !close_enough(value, v1_value, args.tolerance)
                {
                    problems.push(format!(
                        "`{}` KEDA value {value}, v1 {v1_value}",
                        metric.metric_name
                    ));
                }
            }
        }
    }
    match (probe.keda_is_active(&trigger).await, v1_metrics) {
        (Ok(active), Some(metrics)) if active != metrics.active => {
            problems.push(format!(
                "KEDA IsActive {active}, v1 GetMetrics.active {}",
                metrics.active
            ));
        }
        (Err(error), _) => problems.push(error.to_string()),
        _ => {}
    }
    let summary = format!(
        "same metrics, targets, values (tolerance {}) and activity",
        args.tolerance
    );
    report.record("keda-consistent", verdict(problems, summary));
    report.record("keda-from-env", from_env(probe, &spec).await);
}

/// KEDA sends `xFromEnv` carrying the resolved value of `x`: the scaler must read it as `x`.
async fn from_env(probe: &mut Probe, spec: &keda::GetMetricSpecResponse) -> Outcome {
    let Some((key, value)) = probe
        .trigger
        .metadata
        .iter()
        .find(|(key, value)| !key.ends_with("FromEnv") && !value.is_empty())
        .map(|(key, value)| (key.clone(), value.clone()))
    else {
        return Outcome::Skip("no metadata key to move into an xFromEnv key".into());
    };
    let mut trigger: TriggerInput = probe.trigger.clone();
    trigger.metadata.remove(&key);
    trigger.metadata.insert(format!("{key}FromEnv"), value);
    match probe.keda_spec(&trigger).await {
        Ok(again) if again == *spec => Outcome::Pass(format!("`{key}FromEnv` read as `{key}`")),
        Ok(_) => Outcome::Fail(format!(
            "`{key}FromEnv` gave a different metric spec than `{key}`"
        )),
        Err(error) => Outcome::Fail(format!("`{key}FromEnv` not read as `{key}`: {error}")),
    }
}

fn spec_outcome(spec: &Result<keda::GetMetricSpecResponse, ClientError>) -> Outcome {
    let spec = match spec {
        Ok(spec) => spec,
        Err(error) => return Outcome::Fail(format!("{error} (is the trigger metadata right?)")),
    };
    if spec.metric_specs.is_empty() {
        return Outcome::Fail("no metric specs".into());
    }
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut shown = Vec::new();
    for metric in &spec.metric_specs {
        if metric.metric_name.trim().is_empty() {
            problems.push("a metric has an empty name".to_owned());
        } else if !names.insert(metric.metric_name.as_str()) {
            problems.push(format!("metric `{}` is listed twice", metric.metric_name));
        }
        match keda_target_value(metric) {
            Ok(target) if target <= 0.0 => problems.push(format!(
                "target of `{}` is not > 0 in either field",
                metric.metric_name
            )),
            Ok(target) => shown.push(format!(
                "{} (target {})",
                metric.metric_name,
                format_number(target)
            )),
            Err(refused) => problems.push(format!("`{}`: {refused}", metric.metric_name)),
        }
    }
    verdict(problems, shown.join(", "))
}

/// The metric's value in a KEDA answer, or what is wrong with the answer.
fn value_problem(metric_name: &str, answer: &keda::GetMetricsResponse) -> Result<f64, String> {
    let Some(value) = answer
        .metric_values
        .iter()
        .find(|value| value.metric_name == metric_name)
    else {
        return Err(format!(
            "GetMetrics for `{metric_name}` returned no value of that name"
        ));
    };
    let float = value.metric_value_float;
    if !float.is_finite() || float < 0.0 || value.metric_value < 0 {
        return Err(format!(
            "`{metric_name}` = {float} / {} (float / int), must be finite and >= 0",
            value.metric_value
        ));
    }
    keda_metric_value(value).map_err(|refused| format!("`{metric_name}`: {refused}"))
}

fn verdict(problems: Vec<String>, pass: String) -> Outcome {
    if problems.is_empty() {
        Outcome::Pass(pass)
    } else {
        Outcome::Fail(problems.join("; "))
    }
}
