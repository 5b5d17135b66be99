//! Simulation tests: the pure replay, the settings taken from an object, and the examples.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::scaling::{Behavior, EngineSpec, MetricType};

fn trigger(name: &str, target: f64) -> TriggerModel {
    TriggerModel {
        name: name.to_owned(),
        target,
        activation: 0.0,
        metric_type: MetricType::AverageValue,
    }
}

fn simulation(consumption: Option<Consumption>) -> Simulation {
    Simulation {
        spec: EngineSpec {
            cooldown_period: Duration::from_secs(30),
            behavior: Behavior::immediate(),
            ..EngineSpec::new(0, 10, &["orders"])
        },
        triggers: vec![trigger("orders", 10.0)],
        initial_replicas: 0,
        poll: Duration::from_secs(5),
        duration: Duration::from_secs(300),
        consumption,
    }
}

#[test]
fn direct_values_scale_up_and_back_to_zero() {
    let series = Series::parse("time,orders\n0,0\n10,45\n60,0\n").unwrap();
    let outcome = simulate(&simulation(None), &series).unwrap();
    let changes: Vec<(u64, u32, u32)> = outcome
        .changes()
        .map(|poll| (poll.time, poll.from, poll.to))
        .collect();
    // 45/10 → 5 at the first poll after 10 s; 0 from 60 s, to 1 at once (no window), and to 0
    // after the 30 s cooldown counted from the last active poll at 55 s.
    assert_eq!(changes, vec![(10, 0, 5), (60, 5, 1), (85, 1, 0)]);
    assert_eq!(outcome.samples.len(), 301);
    assert_eq!(outcome.samples[12].replicas, 5);
}

#[test]
fn consumption_drains_the_queue() {
    let series = Series::parse("time,orders\n0,20\n30,0\n").unwrap();
    let outcome = simulate(
        &simulation(Some(Consumption {
            per_replica_per_second: 5.0,
            startup_delay: Duration::from_secs(10),
        })),
        &series,
    )
    .unwrap();
    let depth = |second: usize| outcome.samples[second].values[0].unwrap();
    // Nothing consumes during the startup delay: 20 per second pile up.
    assert_eq!(depth(0), 20.0);
    assert!(depth(10) > depth(5));
    let emptied = outcome
        .samples
        .iter()
        .skip(30)
        .find(|sample| sample.values[0] == Some(0.0))
        .expect("the queue empties after arrivals stop");
    assert!(emptied.replicas > 0);
    assert_eq!(outcome.samples.last().unwrap().replicas, 0);
    assert!(
        outcome
            .samples
            .iter()
            .any(|sample| sample.ready < sample.replicas)
    );
}

#[test]
fn empty_cells_are_failing_scalers_that_never_scale_to_zero() {
    let series = Series::parse("time,orders\n0,30\n20,\n").unwrap();
    let outcome = simulate(&simulation(None), &series).unwrap();
    assert_eq!(outcome.samples.last().unwrap().replicas, 3);
    assert!(outcome.samples[25].values[0].is_none());
    let last = outcome.polls.last().unwrap();
    assert!(last.reason.contains("orders failing"), "{}", last.reason);
}

#[test]
fn a_trigger_without_a_column_is_an_error() {
    let series = Series::parse("time,payments\n0,1\n").unwrap();
    let error = simulate(&simulation(None), &series).unwrap_err();
    assert!(error.to_string().contains("\"orders\""), "{error}");
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/simulate")
        .join(name)
}

fn args(object: &str, series: &str, drain_rate: Option<f64>) -> SimulateArgs {
    SimulateArgs {
        file: example(object),
        object: None,
        series: example(series),
        svg: None,
        drain_rate,
        startup_delay: Duration::from_secs(10),
        initial_replicas: None,
        poll: None,
        duration: None,
        targets: Vec::new(),
        activations: Vec::new(),
        every_poll: false,
        job_duration: Duration::from_secs(60),
    }
}

fn replay_example(args: &SimulateArgs) -> (Simulation, Outcome) {
    let object = crate::spec::load::load_scaled_objects(&args.file)
        .unwrap()
        .remove(0);
    let series = Series::parse(&std::fs::read_to_string(&args.series).unwrap()).unwrap();
    let simulation = settings(&object, args, series.end()).unwrap();
    let outcome = simulate(&simulation, &series).unwrap();
    (simulation, outcome)
}

#[test]
fn burst_example_scales_out_drains_and_returns_to_zero_stepwise() {
    let args = args("burst.yaml", "burst.csv", Some(5.0));
    let (simulation, outcome) = replay_example(&args);
    assert_eq!(simulation.triggers[0].target, 50.0);
    assert_eq!(simulation.poll, Duration::from_secs(5));
    let peak = outcome.samples.iter().map(|sample| sample.replicas).max();
    assert_eq!(peak, Some(20));
    let last = outcome.changes().last().unwrap();
    assert_eq!((last.from, last.to), (1, 0), "{}", last.reason);
    // No jump to zero: every scale-in before the last step stays at 1 or more.
    assert!(outcome.changes().all(|poll| poll.to > 0 || poll.from == 1));
    let timeline = render(&simulation, &outcome, false);
    assert!(timeline.contains("activated 0→1"), "{timeline}");
    let svg = draw(&simulation, &outcome, "burst").unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("replicas"),
        "{}",
        &svg[..100]
    );
}

/// YAML allows a byte order mark; right before the first key it once read as the start of
/// a second document, and the file was refused.
#[test]
fn a_file_starting_with_a_byte_order_mark_simulates_as_the_same_file_without_it() {
    let original = std::fs::read_to_string(example("trickle.yaml")).unwrap();
    let start = original.find("apiVersion").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let with_mark = dir.path().join("trickle.yaml");
    std::fs::write(&with_mark, format!("\u{feff}{}", &original[start..])).unwrap();
    let plain = args("trickle.yaml", "trickle.csv", None);
    let marked = SimulateArgs {
        file: with_mark,
        ..args("trickle.yaml", "trickle.csv", None)
    };
    assert_eq!(replay_example(&marked).1, replay_example(&plain).1);
}

#[test]
fn trickle_example_does_not_flap() {
    let args = args("trickle.yaml", "trickle.csv", None);
    let (_, outcome) = replay_example(&args);
    let changes: Vec<(u32, u32)> = outcome.changes().map(|poll| (poll.from, poll.to)).collect();
    assert_eq!(changes, vec![(0, 2), (2, 1), (1, 0)]);
}

#[test]
fn targets_come_from_flags_then_metadata_and_are_required() {
    let object: crate::spec::ScaledObject = serde_norway::from_str(
        "apiVersion: ebb.dev/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n    - name: q\n      scaler: {address: '127.0.0.1:1'}\n",
    )
    .unwrap();
    let mut args = args("burst.yaml", "burst.csv", None);
    let error = settings(&object, &args, 10.0).unwrap_err().to_string();
    assert!(error.contains("--target q=N"), "{error}");
    args.targets = vec!["q=7".to_owned()];
    args.activations = vec!["q=2".to_owned()];
    let simulation = settings(&object, &args, 10.0).unwrap();
    assert_eq!(simulation.triggers[0].target, 7.0);
    assert_eq!(simulation.triggers[0].activation, 2.0);
    // Default duration: series end + cooldown + scale-down window + 4 polls.
    assert_eq!(
        simulation.duration,
        Duration::from_secs(10 + 300 + 300 + 120)
    );
    args.targets = vec!["q7".to_owned()];
    assert!(settings(&object, &args, 10.0).is_err());
}

#[test]
fn a_formula_combines_the_series_and_drives_the_replicas() {
    let args = args("formula.yaml", "formula.csv", None);
    let (simulation, outcome) = replay_example(&args);
    // The triggers have no target of their own: the formula's counts.
    assert_eq!(simulation.triggers[0].target, 1.0);
    let composite = |second: usize| outcome.samples[second].composite;
    assert_eq!(composite(0), Some(0.0));
    // 0:30 bulk 40 + priority 5 × 2 = 50 → 5 replicas (4 first: the scale-up policy);
    // 1:00 80 + 10 × 2 = 100 → 10.
    assert_eq!(composite(35), Some(50.0));
    assert_eq!(outcome.samples[55].replicas, 5);
    assert_eq!(composite(65), Some(100.0));
    assert_eq!(outcome.samples[75].replicas, 10);
    // From 2:00 priority fails: held for two polls, then the formula goes on with it as 0.
    assert_eq!(outcome.samples[125].replicas, 10);
    let in_fallback = outcome
        .polls
        .iter()
        .find(|poll| poll.time >= 120 && poll.time < 180 && poll.to < 10)
        .expect("the formula goes on without the failed trigger");
    assert!(
        in_fallback.reason.contains("formula 60/10 per replica"),
        "{}",
        in_fallback.reason
    );
    let changes: Vec<String> = outcome.changes().map(|poll| poll.reason.clone()).collect();
    assert!(changes[0].starts_with("activated 0→"), "{changes:?}");
    let timeline = render(&simulation, &outcome, false);
    assert!(
        timeline.contains("formula bulk + (priority ?? 0) * 2: target 10 (AverageValue)"),
        "{timeline}"
    );
    let svg = draw(&simulation, &outcome, "formula").unwrap();
    assert!(
        svg.contains("bulk + (priority ?? 0) * 2"),
        "the composite line is drawn"
    );
}
