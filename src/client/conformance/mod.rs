//! `ebb scaler conformance`: protocol checks any scaler, in any language, must pass. Each check
//! prints one line, `PASS`, `FAIL`, `WARN` (allowed, but worth a look) or `SKIP` (does not apply);
//! the command fails when any check fails.

mod keda_checks;
mod probe;
mod v1_checks;

use std::time::Instant;

use super::check::{health, millis};
use super::command::ConformanceArgs;
use super::{ClientError, Protocol, ScalerClient, channel};
use probe::Probe;
use tonic_health::pb::health_check_response::ServingStatus;

/// A check's verdict, with what was seen.
pub(super) enum Outcome {
    Pass(String),
    Fail(String),
    Warn(String),
    Skip(String),
}

/// Prints verdicts as they come and counts them.
#[derive(Default)]
pub(super) struct Report {
    passed: usize,
    failed: Vec<&'static str>,
    warned: usize,
    skipped: usize,
}

impl Report {
    pub(super) fn record(&mut self, check: &'static str, outcome: Outcome) {
        let (label, detail) = match outcome {
            Outcome::Pass(detail) => {
                self.passed += 1;
                ("PASS", detail)
            }
            Outcome::Fail(detail) => {
                self.failed.push(check);
                ("FAIL", detail)
            }
            Outcome::Warn(detail) => {
                self.warned += 1;
                ("WARN", detail)
            }
            Outcome::Skip(detail) => {
                self.skipped += 1;
                ("SKIP", detail)
            }
        };
        println!("{label}  {check:<28} {detail}");
    }

    fn finish(&self) -> bool {
        println!(
            "\n{} passed, {} failed, {} warnings, {} skipped",
            self.passed,
            self.failed.len(),
            self.warned,
            self.skipped
        );
        if !self.failed.is_empty() {
            println!("failed checks: {}", self.failed.join(", "));
        }
        self.failed.is_empty()
    }
}

pub(super) async fn run(args: &ConformanceArgs) -> Result<bool, ClientError> {
    let target = &args.target;
    let settings = target.channel_settings()?;
    let trigger = target.trigger_input();
    let mut report = Report::default();
    println!("conformance of the scaler at {}\n", settings.address);

    let started = Instant::now();
    let channel = match channel::connect(&settings).await {
        Ok(channel) => {
            report.record(
                "connect",
                Outcome::Pass(format!("connected in {}", millis(started.elapsed()))),
            );
            channel
        }
        Err(error) => {
            report.record("connect", Outcome::Fail(error.to_string()));
            return Ok(report.finish());
        }
    };

    let outcome = match health(&channel, target.timeout).await {
        Ok((ServingStatus::Serving, took)) => Outcome::Pass(format!("SERVING ({})", millis(took))),
        Ok((status, _)) => {
            Outcome::Fail(format!("grpc.health.v1 answers {}", status.as_str_name()))
        }
        Err(error) => Outcome::Fail(format!("grpc.health.v1 Check failed: {error}")),
    };
    report.record("health-serving", outcome);

    let client = ScalerClient::new(channel.clone());
    let info = match client.info(target.timeout).await {
        Ok(info) => {
            report.record(
                "protocol-detected",
                Outcome::Pass(info.protocol.to_string()),
            );
            info.clone()
        }
        Err(error) => {
            report.record(
                "protocol-detected",
                Outcome::Fail(format!(
                    "GetInfo neither answered nor UNIMPLEMENTED: {error}"
                )),
            );
            return Ok(report.finish());
        }
    };

    let mut probe = Probe::new(channel, target.timeout, trigger, settings.address.clone());
    match info.protocol {
        Protocol::V1 => v1_checks::run(&mut probe, &info, args, &mut report).await,
        Protocol::Keda => {
            report.record(
                "info-schema",
                Outcome::Skip(
                    "KEDA-only scaler (GetInfo is UNIMPLEMENTED): no schema to check".into(),
                ),
            );
            keda_checks::run(&mut probe, args, &mut report).await;
        }
    }
    report.record("deadline", probe.deadline_outcome());
    Ok(report.finish())
}

/// Whether two readings agree within a relative tolerance (absolute near zero).
pub(super) fn close_enough(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// Names, sorted, for comparing metric sets.
pub(super) fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_is_relative_with_an_absolute_floor() {
        assert!(close_enough(100.0, 104.0, 0.05));
        assert!(!close_enough(100.0, 106.0, 0.05));
        assert!(close_enough(0.0, 0.04, 0.05));
        assert!(!close_enough(0.0, 0.2, 0.05));
    }
}
