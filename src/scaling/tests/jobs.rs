//! The job decision: a table per strategy, worked examples with the numbers spelled out, and
//! properties over random inputs.

use proptest::prelude::*;

use super::*;

fn limits(min: u32, max: u32, strategy: JobStrategy) -> JobLimits {
    JobLimits {
        min,
        max,
        strategy,
        combine: Combine::Max,
    }
}

fn jobs(running: u32, pending: u32) -> RunningJobs {
    RunningJobs { running, pending }
}

fn create(queue: f64, target: f64, running: RunningJobs, limits: &JobLimits) -> u32 {
    decide_jobs(&[JobReading::new(queue, target)], running, limits, false).create
}

const CUSTOM: JobStrategy = JobStrategy::Custom {
    deduction: 1,
    running_percentage: 0.5,
};

/// (queue, target, running, pending, min, max, strategy, expected new jobs)
type Row = (f64, f64, u32, u32, u32, u32, JobStrategy, u32);

#[test]
fn table_of_every_strategy() {
    use JobStrategy::{Accurate, Default, Eager};
    let rows: &[Row] = &[
        // default: demand - running
        (0.0, 1.0, 0, 0, 0, 10, Default, 0),
        (7.0, 1.0, 0, 0, 0, 10, Default, 7),
        (7.0, 1.0, 3, 0, 0, 10, Default, 4),
        (7.0, 2.0, 0, 0, 0, 10, Default, 4),
        (30.0, 1.0, 0, 0, 0, 10, Default, 10),
        (30.0, 1.0, 8, 0, 0, 10, Default, 2),
        (3.0, 1.0, 5, 0, 0, 10, Default, 0),
        // custom: demand - deduction - running * percentage
        (10.0, 1.0, 0, 0, 0, 20, CUSTOM, 9),
        (10.0, 1.0, 4, 0, 0, 20, CUSTOM, 7),
        (10.0, 1.0, 5, 0, 0, 20, CUSTOM, 7),
        (1.0, 1.0, 0, 0, 0, 20, CUSTOM, 0),
        (50.0, 1.0, 18, 0, 0, 20, CUSTOM, 2),
        // accurate: max - running when over, else demand - pending
        (5.0, 1.0, 3, 1, 0, 10, Accurate, 4),
        (5.0, 1.0, 3, 0, 0, 10, Accurate, 5),
        (9.0, 1.0, 3, 0, 0, 10, Accurate, 7),
        (0.0, 1.0, 3, 2, 0, 10, Accurate, 0),
        // eager: fill free slots up to demand
        (5.0, 1.0, 3, 0, 0, 10, Eager, 5),
        (9.0, 1.0, 3, 0, 0, 10, Eager, 7),
        (2.0, 1.0, 9, 0, 0, 10, Eager, 1),
        (0.0, 1.0, 0, 0, 0, 10, Eager, 0),
        // minReplicaCount keeps jobs unfinished even without demand
        (0.0, 1.0, 0, 0, 2, 10, Default, 2),
        (0.0, 1.0, 1, 0, 2, 10, Eager, 1),
        (0.0, 1.0, 3, 0, 2, 10, Accurate, 0),
    ];
    for (index, &(queue, target, running, pending, min, max, strategy, expected)) in
        rows.iter().enumerate()
    {
        let got = create(
            queue,
            target,
            jobs(running, pending),
            &limits(min, max, strategy),
        );
        assert_eq!(
            got, expected,
            "row {index}: queue {queue}/{target}, {running} running ({pending} pending), min {min} max {max}, {strategy:?}"
        );
    }
}

#[test]
fn default_queue_12_target_2_running_4_max_10_creates_2() {
    // demand = ceil(12 / 2) = 6; 6 - 4 running = 2.
    assert_eq!(
        create(12.0, 2.0, jobs(4, 0), &limits(0, 10, JobStrategy::Default)),
        2
    );
}

#[test]
fn custom_queue_12_deduct_2_running_4_at_25_percent_creates_9_at_max_20_and_6_at_max_10() {
    // demand = 12; 12 - 2 deducted - 4 * 0.25 = 12 - 2 - 1 = 9; room 10 - 4 = 6, so 6.
    let strategy = JobStrategy::Custom {
        deduction: 2,
        running_percentage: 0.25,
    };
    assert_eq!(create(12.0, 1.0, jobs(4, 0), &limits(0, 10, strategy)), 6);
    // With max 20 the room is 16 and the formula's 9 stands.
    assert_eq!(create(12.0, 1.0, jobs(4, 0), &limits(0, 20, strategy)), 9);
}

#[test]
fn accurate_queue_6_running_3_pending_2_max_10_creates_4() {
    // The queue excludes taken items: 6 + 3 running = 9 <= 10, so 6 - 2 pending = 4.
    assert_eq!(
        create(6.0, 1.0, jobs(3, 2), &limits(0, 10, JobStrategy::Accurate)),
        4
    );
    // Queue 8: 8 + 3 = 11 > 10, so fill to the maximum: 10 - 3 = 7.
    assert_eq!(
        create(8.0, 1.0, jobs(3, 2), &limits(0, 10, JobStrategy::Accurate)),
        7
    );
}

#[test]
fn eager_queue_4_running_3_max_10_creates_4_where_default_creates_1() {
    // eager: min(4, 10 - 3) = 4. default: 4 - 3 = 1 (it assumes the 3 running jobs hold
    // three of the four items).
    assert_eq!(
        create(4.0, 1.0, jobs(3, 0), &limits(0, 10, JobStrategy::Eager)),
        4
    );
    assert_eq!(
        create(4.0, 1.0, jobs(3, 0), &limits(0, 10, JobStrategy::Default)),
        1
    );
}

#[test]
fn multiple_triggers_7_and_3_at_target_1_combine_as_max_7_min_3_avg_5_sum_10() {
    let readings = [JobReading::new(7.0, 1.0), JobReading::new(3.0, 1.0)];
    for (combine, expected) in [
        (Combine::Max, 7),
        (Combine::Min, 3),
        (Combine::Avg, 5),
        (Combine::Sum, 10),
    ] {
        let limits = JobLimits {
            combine,
            ..limits(0, 100, JobStrategy::Default)
        };
        assert_eq!(max_scale(&readings, &limits), expected, "{combine:?}");
    }
}

#[test]
fn inactive_trigger_and_paused_object_create_nothing() {
    let reading = JobReading {
        value: 5.0,
        target: 1.0,
        active: false,
    };
    let default = limits(0, 10, JobStrategy::Default);
    assert_eq!(
        decide_jobs(&[reading], jobs(0, 0), &default, false).create,
        0
    );
    let decision = decide_jobs(&[JobReading::new(5.0, 1.0)], jobs(0, 0), &default, true);
    assert_eq!(decision.create, 0);
    assert_eq!(decision.reason, "paused: no new jobs");
    // No readings at all (every scaler failed): nothing.
    assert_eq!(decide_jobs(&[], jobs(0, 0), &default, false).create, 0);
}

#[test]
fn target_zero_or_nan_reads_as_one_per_job() {
    assert_eq!(JobReading::new(3.0, 0.0).demand(), 3);
    assert_eq!(JobReading::new(3.0, f64::NAN).demand(), 3);
    assert_eq!(JobReading::new(f64::NAN, 1.0).demand(), 0);
}

fn strategy() -> impl Strategy<Value = JobStrategy> {
    prop_oneof![
        Just(JobStrategy::Default),
        Just(JobStrategy::Accurate),
        Just(JobStrategy::Eager),
        (0u32..20, 0.0f64..2.0).prop_map(|(deduction, running_percentage)| {
            JobStrategy::Custom {
                deduction,
                running_percentage,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn never_above_max_running_never_negative(
        queue in 0.0f64..1000.0,
        target in 0.0f64..20.0,
        running in 0u32..150,
        pending in 0u32..150,
        min in 0u32..20,
        max in 0u32..120,
        strategy in strategy(),
    ) {
        let limits = limits(min.min(max), max, strategy);
        let decision = decide_jobs(&[JobReading::new(queue, target)], jobs(running, pending), &limits, false);
        // u32 cannot be negative; the i64 arithmetic inside must never wrap to a huge count.
        prop_assert!(decision.create <= max);
        if running <= max {
            prop_assert!(running + decision.create <= max);
        } else {
            prop_assert_eq!(decision.create, 0);
        }
    }

    #[test]
    fn eager_creates_at_least_as_many_as_default(
        queue in 0.0f64..1000.0,
        target in 0.1f64..20.0,
        running in 0u32..150,
        pending in 0u32..150,
        min in 0u32..20,
        max in 0u32..120,
    ) {
        let at = |strategy| {
            create(queue, target, jobs(running, pending), &limits(min.min(max), max, strategy))
        };
        prop_assert!(at(JobStrategy::Eager) >= at(JobStrategy::Default));
    }
}
