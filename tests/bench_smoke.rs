//! The scale benchmark's smoke mode (`ebb-bench --smoke`: every part with 100 objects, a
//! 5 s window) runs end to end and writes a well-formed result, so the benchmark cannot rot.
//! The figures are checked for sanity (counts add up, quantiles are ordered, nothing failed),
//! never against timing thresholds: speed is what the full run reports, not what tests judge.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::Value;

fn number(value: &Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is not a number in {value:#}"))
}

#[test]
fn smoke_mode_writes_a_well_formed_result() {
    let binary = support::binary("ebb-bench", "ebb-bench");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let output = Command::new(binary)
        .arg("--smoke")
        .arg("--json")
        .arg(&json)
        .current_dir(dir.path())
        .output()
        .expect("run ebb-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ebb-bench --smoke failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("goals:"), "no table printed:\n{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["mode"], "smoke");
    assert!(number(&report, "/machine/cpus") >= 1.0);
    assert!(
        report["date"]
            .as_str()
            .is_some_and(|date| date.ends_with('Z'))
    );

    // Part 1: 100 objects polled every second, the floor beside them.
    let steady = &report["steady"][0];
    assert_eq!(number(steady, "/objects"), 100.0);
    let polls = number(steady, "/controller/polls");
    let window = number(steady, "/controller/window_seconds");
    assert!(window > 0.0);
    assert!(
        polls >= 100.0 && polls <= 100.0 * (window + 1.0),
        "{polls} polls of 100 objects in {window} s"
    );
    assert!(number(steady, "/controller/cpu_cores") > 0.0);
    let rss = number(steady, "/controller/peak_rss_mib");
    assert!(rss > 1.0 && rss < 4096.0, "peak RSS {rss} MiB");
    assert!(number(steady, "/controller/lag_observations") > 0.0);
    let (p50, p99) = (
        number(steady, "/controller/lag_p50_ms"),
        number(steady, "/controller/lag_p99_ms"),
    );
    assert!(p50 >= 0.0 && p99 >= p50, "lag p50 {p50} p99 {p99}");
    let methods: Vec<&String> = steady["scaler_rpcs"].as_object().unwrap().keys().collect();
    assert_eq!(
        methods,
        ["v1/GetMetrics"],
        "steady state is GetMetrics only"
    );
    let per_poll = number(steady, "/rpcs_per_trigger_poll");
    assert!((0.9..=1.1).contains(&per_poll), "{per_poll} RPCs per poll");
    let connections = number(steady, "/connections_seen");
    assert!(
        (1.0..=2.0).contains(&connections),
        "{connections} connections"
    );
    assert!(number(steady, "/floor/calls_ok") >= 100.0);
    assert_eq!(number(steady, "/floor/calls_failed"), 0.0);
    assert!(number(steady, "/floor/cpu_cores") > 0.0);
    let ratio = number(steady, "/cpu_ratio");
    assert!(ratio.is_finite() && ratio > 0.0, "ratio {ratio}");

    // Part 2: 100 ScaledObjects against the fake API server, all Ready.
    let ready = &report["create_ready"];
    assert_eq!(number(ready, "/objects"), 100.0);
    assert_eq!(number(ready, "/ready"), 100.0);
    let (p50, p99) = (number(ready, "/p50_ms"), number(ready, "/p99_ms"));
    assert!(p50 > 0.0 && p99 >= p50 && number(ready, "/max_ms") >= p99);
    assert!(
        number(ready, "/api_requests") >= 100.0,
        "one status write per object at least"
    );
    assert!(
        ready["api_requests_by_kind"]["PATCH scaledobjects/status"].as_u64() >= Some(100),
        "{ready:#}"
    );

    // Part 3: every pushed activation reached its target.
    let push = &report["push"];
    assert_eq!(number(push, "/objects"), 100.0);
    assert_eq!(number(push, "/written"), 100.0);
    let (p50, p99) = (number(push, "/p50_ms"), number(push, "/p99_ms"));
    assert!(p50 > 0.0 && p99 >= p50);

    // Part 4: the API load of 3 × 30 objects, charged per object per hour.
    let api = &report["api"];
    assert_eq!(number(api, "/objects_per_case"), 30.0);
    let cases: Vec<&str> = api["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| case["name"].as_str())
        .collect();
    assert_eq!(cases, ["idle", "readings", "scaling"]);
    for case in api["cases"].as_array().unwrap() {
        let total = number(case, "/total_per_object_per_hour");
        assert!(total.is_finite() && total >= 0.0, "{case:#}");
    }
    assert!(number(api, "/watch_bytes_per_target") > 0.0, "{api:#}");

    // Goals: judged, each with its verdict.
    let goals = report["goals"].as_array().unwrap();
    assert!(goals.len() >= 9, "{goals:#?}");
    for goal in goals {
        assert!(
            goal["name"].is_string() && goal["goal"].is_string() && goal["measured"].is_string()
        );
        assert!(goal["pass"].is_boolean());
    }
}
