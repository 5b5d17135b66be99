//! The redaction rule checked end to end: a scaler binary, run as a real process, gets bad
//! triggers carrying a marker secret over both protocols, and the marker must appear in no
//! gRPC error, no line of its stderr log (text and JSON) and not on `/metrics`.

use std::collections::HashMap;

use tonic::Code;

use super::ScalerProcess;
use crate::proto::{keda, v1};

/// One trigger to send: its plain metadata, its secrets, and the code its error must have
/// (`None`: any error or success, for triggers that reach a real broker).
#[derive(Debug, Clone)]
pub struct LeakCase {
    /// What the case is, for failure messages (never the marker itself).
    pub name: String,
    /// Plain metadata (also sent over KEDA, where secrets arrive as plain `xFromEnv` keys).
    pub metadata: Vec<(String, String)>,
    /// Secrets (v1 only; over KEDA they are added to the metadata).
    pub secrets: Vec<(String, String)>,
    /// The status code every answer must have.
    pub expect: Option<Code>,
    /// Only measuring calls fail (the metadata is valid, the source says no): GetMetricSpec
    /// may succeed.
    pub measured_only: bool,
}

impl LeakCase {
    /// A case with the given metadata and secrets.
    pub fn new(
        name: impl Into<String>,
        metadata: &[(&str, &str)],
        secrets: &[(&str, &str)],
        expect: Option<Code>,
    ) -> Self {
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            name: name.into(),
            metadata: own(metadata),
            secrets: own(secrets),
            expect,
            measured_only: false,
        }
    }

    /// Marks a case whose metadata is valid, so GetMetricSpec may succeed.
    #[must_use]
    pub fn measured_only(mut self) -> Self {
        self.measured_only = true;
        self
    }
}

/// What a run saw, for the caller's own assertions.
#[derive(Debug, Default)]
pub struct LeakReport {
    /// Answers that were errors.
    pub errors: usize,
    /// Every error message, for checks on their wording.
    pub messages: Vec<String>,
    /// The stderr of the text-format run and of the JSON run.
    pub logs: Vec<String>,
}

/// Runs `binary` twice (text and JSON logs, filter `debug` so every library's log is seen)
/// and sends every case over v1 (GetMetricSpec, GetMetrics, IsActive, StreamIsActive) and
/// KEDA (GetMetricSpec, GetMetrics), panicking at the first place `marker` shows up or at
/// an answer with an unexpected code.
pub async fn assert_no_leaks(
    binary: &str,
    extra_args: &[&str],
    marker: &str,
    cases: &[LeakCase],
) -> LeakReport {
    let mut report = LeakReport::default();
    for json in [false, true] {
        let process = ScalerProcess::start(binary, "debug", json, extra_args)
            .await
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        let mut v1_client = process.v1().await.expect("v1 client connects");
        let mut keda_client = process.keda().await.expect("KEDA client connects");
        for case in cases {
            let mut answers: Vec<(&str, Result<(), tonic::Status>)> = Vec::new();
            let request = v1::TriggerRequest {
                trigger: Some(v1::TriggerRef {
                    namespace: "ns".into(),
                    name: "leak".into(),
                    trigger_name: "t".into(),
                    trigger_index: 0,
                }),
                metadata: case.metadata.iter().cloned().collect(),
                secrets: case.secrets.iter().cloned().collect(),
            };
            answers.push((
                "v1 GetMetricSpec",
                v1_client.get_metric_spec(request.clone()).await.map(drop),
            ));
            answers.push((
                "v1 GetMetrics",
                v1_client.get_metrics(request.clone()).await.map(drop),
            ));
            answers.push((
                "v1 IsActive",
                v1_client.is_active(request.clone()).await.map(drop),
            ));
            let pushed = match v1_client.stream_is_active(request.clone()).await {
                Ok(stream) => stream.into_inner().message().await.map(drop),
                Err(status) => Err(status),
            };
            answers.push(("v1 StreamIsActive", pushed));
            let mut keda_metadata: HashMap<String, String> =
                case.metadata.iter().cloned().collect();
            for (key, value) in &case.secrets {
                keda_metadata.insert(format!("{key}FromEnv"), value.clone());
            }
            let reference = keda::ScaledObjectRef {
                name: "leak".into(),
                namespace: "ns".into(),
                scaler_metadata: keda_metadata,
            };
            answers.push((
                "KEDA GetMetricSpec",
                keda_client
                    .get_metric_spec(reference.clone())
                    .await
                    .map(drop),
            ));
            answers.push((
                "KEDA GetMetrics",
                keda_client
                    .get_metrics(keda::GetMetricsRequest {
                        scaled_object_ref: Some(reference),
                        metric_name: String::new(),
                    })
                    .await
                    .map(drop),
            ));
            for (call, answer) in answers {
                let Err(status) = answer else {
                    assert!(
                        case.expect.is_none()
                            || (case.measured_only && call.ends_with("GetMetricSpec")),
                        "case `{}`: {call} succeeded, expected {:?}",
                        case.name,
                        case.expect
                    );
                    continue;
                };
                report.errors += 1;
                assert!(
                    !status.message().contains(marker),
                    "case `{}`: {call} leaked the secret: {}",
                    case.name,
                    status.message()
                );
                if let Some(code) = case.expect {
                    assert_eq!(
                        status.code(),
                        code,
                        "case `{}`: {call}: {}",
                        case.name,
                        status.message()
                    );
                }
                report.messages.push(status.message().to_owned());
            }
        }
        let page = process.metrics().await.expect("/metrics answers");
        assert!(page.contains("200 OK"), "/metrics: {page}");
        assert!(!page.contains(marker), "/metrics leaked the secret: {page}");
        let logs = process.stop().await.expect("stderr is read");
        if let Some(line) = logs.lines().find(|line| line.contains(marker)) {
            panic!("the log (json: {json}) leaked the secret: {line}");
        }
        if json {
            for line in logs.lines().filter(|line| !line.trim().is_empty()) {
                assert!(
                    line.starts_with('{') && line.ends_with('}'),
                    "a JSON log line is not a JSON object: {line}"
                );
            }
        }
        report.logs.push(logs);
    }
    report
}
