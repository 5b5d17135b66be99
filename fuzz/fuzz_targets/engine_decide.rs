//! The engine's decision over a sequence of polls with arbitrary readings (NaN, infinities,
//! zero targets, errors) and limits. Checks: nothing panics, and without pause or fallback a
//! count that starts within consistent bounds never goes above the maximum.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use ebb::scaling::{EngineSpec, EngineState, Measurement, Reading, ReadingErrorKind, decide};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fn reading(input: &mut Unstructured<'_>, trigger: &str) -> Result<Reading> {
    Ok(if input.arbitrary::<u8>()? % 5 == 0 {
        Reading::error(trigger, ReadingErrorKind::Unavailable, "down")
    } else {
        let measurement = Measurement::new(input.arbitrary()?, input.arbitrary()?)
            .with_activation(input.arbitrary()?);
        Reading::ok(trigger, measurement)
    })
}

fn run(input: &mut Unstructured<'_>) -> Result<()> {
    let min = u32::from(input.arbitrary::<u8>()? % 8);
    let max = u32::from(input.arbitrary::<u8>()?);
    let mut spec = EngineSpec::new(min, max, &["a", "b"]);
    spec.cooldown_period = Duration::from_secs(u64::from(input.arbitrary::<u16>()?));
    spec.initial_cooldown_period = Duration::from_secs(u64::from(input.arbitrary::<u8>()?));
    let mut state = EngineState::default();
    let mut current = u32::from(input.arbitrary::<u8>()?);
    // maxReplicaCount 0 is refused by validation, so the engine need not honour it.
    let bounded = max >= 1 && min <= max && current <= max;
    let mut now = UNIX_EPOCH + Duration::from_secs(1_000_000);
    for _ in 0..input.int_in_range(1..=30)? {
        let readings = vec![reading(input, "a")?, reading(input, "b")?];
        let decision = decide(&spec, current, &readings, &state, now);
        if bounded {
            assert!(
                decision.desired_replicas <= max,
                "desired {} above maxReplicaCount {max}",
                decision.desired_replicas
            );
        }
        current = decision.desired_replicas;
        state = decision.state;
        now += Duration::from_millis(u64::from(input.arbitrary::<u16>()?) * 100);
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
