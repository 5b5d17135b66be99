//! The text timeline `ebb simulate` prints.

use std::fmt::Write;

use super::model::{Outcome, Simulation};
use crate::scaling::format_number;

/// `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(second: u64) -> String {
    let (hours, minutes, seconds) = (second / 3600, second / 60 % 60, second % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// The header, one line per replica change (or per poll with `every_poll`), and a summary.
pub fn render(simulation: &Simulation, outcome: &Outcome, every_poll: bool) -> String {
    let spec = &simulation.spec;
    let mut text = String::new();
    let idle = spec
        .idle_replicas
        .map(|idle| format!(", idle {idle}"))
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "replicas {}..{}{idle}, poll {}s, cooldown {}s, start at {} replica(s)",
        spec.min_replicas,
        spec.max_replicas,
        simulation.poll.as_secs(),
        spec.cooldown_period.as_secs(),
        simulation.initial_replicas
    );
    for trigger in &simulation.triggers {
        if spec.modifiers.is_some() {
            let _ = writeln!(
                text,
                "trigger {}: its value feeds the formula",
                trigger.name
            );
            continue;
        }
        let _ = writeln!(
            text,
            "trigger {}: target {} ({:?}), active above {}",
            trigger.name,
            format_number(trigger.target),
            trigger.metric_type,
            format_number(trigger.activation)
        );
    }
    if let Some(modifiers) = &spec.modifiers {
        let formula = modifiers
            .formula
            .as_ref()
            .map(|formula| formula.source().to_owned())
            .unwrap_or_else(|error| format!("(invalid: {error})"));
        let _ = writeln!(
            text,
            "formula {formula}: target {} ({:?}), active above {}",
            format_number(modifiers.target),
            modifiers.metric_type,
            format_number(modifiers.activation_target)
        );
    }
    if let Some(consumption) = &simulation.consumption {
        let _ = writeln!(
            text,
            "consumption: {} messages/s per ready replica, startup delay {}s; series cells are arrivals/s",
            format_number(consumption.per_replica_per_second),
            consumption.startup_delay.as_secs()
        );
    }
    let _ = writeln!(text);
    let _ = writeln!(text, "{:>7}  {:>9}  reason", "time", "replicas");
    for poll in &outcome.polls {
        if poll.from == poll.to && !every_poll {
            continue;
        }
        let change = format!("{}→{}", poll.from, poll.to);
        let _ = writeln!(
            text,
            "{:>7}  {:>9}  {}",
            clock(poll.time),
            change,
            poll.reason
        );
    }
    let peak = outcome
        .samples
        .iter()
        .map(|sample| sample.replicas)
        .max()
        .unwrap_or(0);
    let errors = outcome
        .samples
        .iter()
        .filter(|sample| sample.values.iter().any(Option::is_none))
        .count();
    let _ = writeln!(text);
    let _ = write!(
        text,
        "{} change(s) in {}, peak {} replicas, {} replica-seconds",
        outcome.changes().count(),
        clock(
            outcome
                .samples
                .last()
                .map(|sample| sample.time)
                .unwrap_or(0)
        ),
        peak,
        outcome.replica_seconds()
    );
    if errors > 0 {
        let _ = write!(text, ", {errors} second(s) with a failing trigger");
    }
    if simulation.consumption.is_some() {
        for (index, trigger) in simulation.triggers.iter().enumerate() {
            let deepest = outcome
                .samples
                .iter()
                .filter_map(|sample| sample.values[index])
                .fold(0.0f64, f64::max);
            let _ = write!(
                text,
                ", {} deepest {}",
                trigger.name,
                format_number(deepest.round())
            );
        }
    }
    let _ = writeln!(text);
    text
}
