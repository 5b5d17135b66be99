//! The Azure Queue demo end to end: `examples/azure-queue/run.sh` itself, with its own real
//! Azurite, the real Azure Queue scaler as a sidecar of `ebb run`, and real Functions-style
//! worker processes. The script must exit 0 after the workers went 0 -> N -> 0, every message
//! must be processed exactly once or moved to the poison queue, and Azurite must be stopped.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn ids(path: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for line in std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
    {
        *ids.entry(line.to_owned()).or_insert(0) += 1;
    }
    ids
}

/// The number after `label` on a line of the demo's closing report.
fn figure(output: &str, label: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` figure in:\n{output}"))
}

#[test]
fn the_demo_scales_workers_0_to_n_to_0_and_handles_every_message_once_or_poisons_it() {
    let ebb = support::binary("ebb", "ebb");
    let bin_dir = ebb.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(support::workspace_root().join("examples/azure-queue/run.sh"))
        .args(["--messages", "60", "--fail-every", "20"])
        .env("EBB_DEMO_BIN_DIR", bin_dir)
        .env("EBB_DEMO_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "run.sh failed ({}); it installs Azurite with npm (scripts/services.sh does too):\n{stdout}\n{stderr}",
        output.status
    );

    // The closing report, and the same facts read independently from the record files.
    assert_eq!(figure(&stdout, "published:"), 60, "{stdout}");
    assert_eq!(figure(&stdout, "processed:"), 57, "{stdout}");
    assert_eq!(figure(&stdout, "poisoned:"), 3, "{stdout}");
    assert_eq!(figure(&stdout, "left in queue:"), 0, "{stdout}");
    let peak = figure(&stdout, "peak workers:");
    assert!(peak >= 2, "the workers peaked at {peak}:\n{stdout}");

    let processed = ids(&dir.path().join("processed"));
    let poisoned = ids(&dir.path().join("poisoned"));
    assert!(processed.values().all(|n| *n == 1), "{processed:?}");
    assert!(poisoned.values().all(|n| *n == 1), "{poisoned:?}");
    let expected_poisoned: Vec<String> = [19, 39, 59].iter().map(|n| format!("msg-{n}")).collect();
    assert_eq!(
        poisoned.keys().cloned().collect::<Vec<_>>(),
        expected_poisoned
    );
    for n in (0..60).filter(|n| n % 20 != 19) {
        assert!(
            processed.contains_key(&format!("msg-{n}")),
            "msg-{n} missing"
        );
    }
    assert_eq!(processed.len(), 57);

    // 0 -> N -> 0 as ebb run printed it (plain lines: stdout is not a terminal).
    let replicas: Vec<u64> = stdout
        .lines()
        .filter(|line| line.contains(" orders: "))
        .filter_map(|line| line.split(" | replicas ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(replicas.first(), Some(&0), "{stdout}");
    assert_eq!(replicas.last(), Some(&0), "{stdout}");
    assert!(replicas.iter().any(|n| *n >= 2), "{replicas:?}");

    // A message that failed was retried before it was poisoned (dequeue count 3).
    let logs = format!("{stdout}{stderr}");
    assert!(
        logs.contains("try 2 failed") && logs.contains("try 3 failed"),
        "no retries seen:\n{logs}"
    );

    // The script stopped its Azurite.
    let pid: u32 = stderr
        .split("Azurite (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no Azurite pid in:\n{stderr}"));
    assert!(!support::alive(pid), "Azurite {pid} still runs");
    assert!(stderr.contains("stopped Azurite"), "{stderr}");
}
