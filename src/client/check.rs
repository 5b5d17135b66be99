//! `ebb scaler check`: call a scaler once the way a host would, and show what it answers.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::command::TargetArgs;
use super::scaler_client::call;
use super::{ClientError, Protocol, ScalerClient, ScalerInfo, TriggerInput, ValueKind, channel};
use crate::scaling::format_number;

pub(super) async fn run(args: &TargetArgs) -> Result<bool, ClientError> {
    let trigger = args.trigger_input();
    let settings = args.channel_settings()?;
    let started = Instant::now();
    let channel = channel::connect(&settings).await?;
    println!(
        "scaler      {} (connected in {})",
        settings.address,
        millis(started.elapsed())
    );
    println!("trigger     {}", describe_trigger(&trigger));
    let mut healthy = true;

    match health(&channel, args.timeout).await {
        Ok((status, took)) => println!("health      {} ({})", status.as_str_name(), millis(took)),
        Err(error) => println!("health      not served: {error}"),
    }

    let client = ScalerClient::new(channel);
    let started = Instant::now();
    let info = client.info(args.timeout).await?.clone();
    println!(
        "protocol    {} (detected in {})",
        info.protocol,
        millis(started.elapsed())
    );
    if info.protocol == Protocol::V1 {
        print!("{}", describe_info(&info));
        for warning in metadata_warnings(&info, &trigger) {
            println!("warning     {warning}");
        }
    }

    let started = Instant::now();
    match client.metric_specs(&trigger, args.timeout).await {
        Ok(specs) => {
            println!("metric spec ({})", millis(started.elapsed()));
            for spec in &specs {
                let kind = spec
                    .target_type
                    .map_or_else(|| "unstated".to_owned(), |kind| format!("{kind:?}"));
                println!(
                    "  {:<28} target {}  activation {}  type {kind}",
                    spec.metric_name,
                    format_number(spec.target),
                    format_number(spec.activation_target)
                );
            }
        }
        Err(error) => {
            healthy = false;
            println!("metric spec FAILED: {error}");
        }
    }

    let started = Instant::now();
    match client.metrics(&trigger, args.timeout).await {
        Ok(reading) => {
            let rpcs = match info.protocol {
                Protocol::V1 => "1 RPC",
                Protocol::Keda => "GetMetricSpec + GetMetrics per metric + IsActive",
            };
            println!("metrics     ({}, {rpcs})", millis(started.elapsed()));
            for value in &reading.values {
                println!(
                    "  {:<28} value {}  target {}  activation {}",
                    value.metric_name,
                    format_number(value.value),
                    format_number(value.target),
                    format_number(value.activation_target)
                );
            }
            println!("active      {}", reading.active);
            match reading.in_flight {
                Some(count) => println!("in-flight   {count}"),
                None => println!("in-flight   unknown"),
            }
        }
        Err(error) => {
            healthy = false;
            println!("metrics     FAILED: {error}");
        }
    }

    println!(
        "push        {}",
        first_push(&client, &trigger, &info, args.timeout).await
    );
    Ok(healthy)
}

/// Asks `grpc.health.v1` about the whole server.
pub(super) async fn health(
    channel: &Channel,
    timeout: Duration,
) -> Result<(ServingStatus, Duration), ClientError> {
    let mut client = HealthClient::new(channel.clone());
    let started = Instant::now();
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let answer = call(
        "Health/Check",
        timeout,
        |request| client.check(request),
        request,
    )
    .await?;
    Ok((answer.status(), started.elapsed()))
}

/// What the first message of StreamIsActive says, or why there is none.
async fn first_push(
    client: &ScalerClient,
    trigger: &TriggerInput,
    info: &ScalerInfo,
    timeout: Duration,
) -> String {
    let started = Instant::now();
    let first = async {
        let mut stream = client.activity_stream(trigger, timeout).await?;
        match tokio::time::timeout(timeout, stream.next()).await {
            Ok(Some(item)) => item.map(Some),
            Ok(None) => Ok(None),
            Err(_) => Err(ClientError::Timeout {
                rpc: "StreamIsActive",
                timeout,
            }),
        }
    };
    match first.await {
        Ok(Some(active)) => format!(
            "StreamIsActive initial state active={active} ({})",
            millis(started.elapsed())
        ),
        Ok(None) => "StreamIsActive closed without a message".into(),
        Err(error) if error.is_unimplemented() => {
            if info.capabilities.push {
                "FAILED: push advertised but StreamIsActive is UNIMPLEMENTED".into()
            } else {
                "not offered (UNIMPLEMENTED)".into()
            }
        }
        Err(error) => format!("StreamIsActive failed: {error}"),
    }
}

/// The trigger as given, secrets by key only.
fn describe_trigger(trigger: &TriggerInput) -> String {
    let mut text = format!(
        "{}/{} {}",
        trigger.namespace, trigger.name, trigger.trigger_name
    );
    for (key, value) in &trigger.metadata {
        let _ = write!(text, " {key}={value}");
    }
    for key in trigger.secrets.keys() {
        let _ = write!(text, " {key}=*** (secret)");
    }
    text
}

fn describe_info(info: &ScalerInfo) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "name        {} {} (protocol version {})",
        info.name, info.version, info.protocol_version
    );
    let _ = writeln!(text, "description {}", info.description);
    let capabilities = &info.capabilities;
    let flags: Vec<&str> = [
        (capabilities.push, "push"),
        (capabilities.in_flight, "in-flight"),
        (capabilities.keda_compatible, "keda-compatible"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let flags = if flags.is_empty() {
        "none".to_owned()
    } else {
        flags.join(", ")
    };
    let _ = writeln!(text, "capabilities {flags}");
    let _ = writeln!(text, "metadata keys");
    for field in &info.metadata {
        let mut notes = vec![kind_name(field.kind).to_owned()];
        if field.required {
            notes.push("required".into());
        }
        if !field.default_value.is_empty() {
            notes.push(format!("default {}", field.default_value));
        }
        if field.secret {
            notes.push("secret".into());
        }
        if !field.allowed_values.is_empty() {
            notes.push(format!("one of {}", field.allowed_values.join("|")));
        }
        let _ = writeln!(
            text,
            "  {:<22} {:<40} {}",
            field.key,
            notes.join(", "),
            field.description
        );
    }
    text
}

/// Problems a host would flag before calling: missing required keys, unknown keys, secrets
/// given as plain metadata.
fn metadata_warnings(info: &ScalerInfo, trigger: &TriggerInput) -> Vec<String> {
    let mut warnings = Vec::new();
    for field in &info.metadata {
        let given =
            trigger.metadata.contains_key(&field.key) || trigger.secrets.contains_key(&field.key);
        if field.required && !given {
            warnings.push(format!("required key `{}` is not given", field.key));
        }
        if field.secret && trigger.metadata.contains_key(&field.key) {
            warnings.push(format!(
                "`{}` is a secret: pass it with --secret, not -m",
                field.key
            ));
        }
    }
    for key in trigger.metadata.keys().chain(trigger.secrets.keys()) {
        if info.field(key).is_none() {
            warnings.push(format!(
                "key `{key}` is not in the scaler's schema and will be ignored"
            ));
        }
    }
    warnings
}

pub(super) fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Unspecified | ValueKind::String => "string",
        ValueKind::Integer => "integer",
        ValueKind::Number => "number",
        ValueKind::Boolean => "boolean",
        ValueKind::Enum => "enum",
        ValueKind::Duration => "duration",
    }
}

pub(super) fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
