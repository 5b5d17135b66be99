//! `ebb scaler check` and `ebb scaler conformance` against real scaler processes over
//! loopback: the SDK example scaler, the Python example scaler (both protocols, KEDA-only) and
//! the Python scaler's deliberately broken mode.

mod scaler_processes;
mod support;

use scaler_processes::{ebb, example_scaler, python_scaler, stdout, write_atomically};

/// A spool directory with `files` waiting and one file in flight, for the Python scaler.
fn spool(files: usize) -> tempfile::TempDir {
    let directory = tempfile::tempdir().expect("tempdir");
    for index in 0..files {
        std::fs::write(directory.path().join(format!("job-{index}")), "").expect("write");
    }
    std::fs::create_dir(directory.path().join("inflight")).expect("mkdir");
    std::fs::write(directory.path().join("inflight/job-x"), "").expect("write");
    directory
}

fn assert_lines(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn conformance_passes_against_the_example_scaler() {
    let scaler = example_scaler(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let value = files.path().join("queue.txt");
    let in_flight = files.path().join("in-flight.txt");
    write_atomically(&value, "7");
    write_atomically(&in_flight, "2");
    let output = ebb(&[
        "scaler",
        "conformance",
        &scaler.address,
        "-m",
        &format!("valueFile={}", value.display()),
        "-m",
        &format!("inFlightFile={}", in_flight.display()),
        "-m",
        "target=5",
    ]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "conformance failed:\n{text}\n{}",
        scaler.log()
    );
    assert_lines(
        &text,
        &[
            "PASS  health-serving",
            "PASS  info-schema",
            "PASS  metric-names-stable",
            "PASS  metric-values                example-queue = 7; active true; in-flight 2",
            "PASS  invalid-value",
            "PASS  stream-is-active             initial state active=true",
            "PASS  keda-consistent",
            "PASS  keda-from-env",
            " 0 failed",
        ],
    );
}

#[test]
fn conformance_passes_against_the_example_scaler_without_push() {
    let scaler = example_scaler(&["--no-push"]);
    let output = ebb(&["scaler", "conformance", &scaler.address, "-m", "value=3"]);
    let text = stdout(&output);
    assert!(output.status.success(), "conformance failed:\n{text}");
    assert_lines(
        &text,
        &[
            "PASS  stream-is-active             no push: UNIMPLEMENTED",
            " 0 failed",
        ],
    );
}

#[test]
fn check_shows_the_example_scalers_info_and_current_values() {
    let scaler = example_scaler(&[]);
    let files = tempfile::tempdir().expect("tempdir");
    let value = files.path().join("orders.txt");
    let in_flight = files.path().join("in-flight.txt");
    write_atomically(&value, "7");
    write_atomically(&in_flight, "2");
    let value_flag = format!("valueFile={}", value.display());
    let in_flight_flag = format!("inFlightFile={}", in_flight.display());
    let args = [
        "scaler",
        "check",
        &scaler.address,
        "-m",
        &value_flag,
        "-m",
        &in_flight_flag,
        "-m",
        "target=5",
        "--secret",
        "token=hunter2-secret",
    ];
    let output = ebb(&args);
    let text = stdout(&output);
    assert!(output.status.success(), "check failed:\n{text}");
    assert_lines(
        &text,
        &[
            "health      SERVING",
            "protocol    ebb.scaler.v1",
            "name        example 0.1.0 (protocol version 1)",
            "capabilities push, in-flight, keda-compatible",
            "valueFile",
            "example-orders               target 5  activation 0  type AverageValue",
            "example-orders               value 7  target 5  activation 0",
            "active      true",
            "in-flight   2",
            "push        StreamIsActive initial state active=true",
            "token=*** (secret)",
        ],
    );
    assert!(
        !text.contains("hunter2-secret"),
        "a secret was printed:\n{text}"
    );

    // The value file is re-read on every measurement.
    write_atomically(&value, "0");
    let text = stdout(&ebb(&args));
    assert_lines(
        &text,
        &["value 0  target 5", "active      false", "active=false"],
    );
}

#[test]
fn check_reports_a_missing_value_file_as_not_found() {
    let scaler = example_scaler(&[]);
    let missing = tempfile::tempdir()
        .expect("tempdir")
        .path()
        .join("absent.txt");
    let output = ebb(&[
        "scaler",
        "check",
        &scaler.address,
        "-m",
        &format!("valueFile={}", missing.display()),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "check must fail:\n{text}");
    assert_lines(&text, &["metrics     FAILED: GetMetrics failed: NotFound"]);
}

#[test]
fn conformance_passes_against_the_python_scaler() {
    let scaler = python_scaler(&[]);
    let directory = spool(3);
    let output = ebb(&[
        "scaler",
        "conformance",
        &scaler.address,
        "-m",
        &format!("directory={}", directory.path().display()),
        "-m",
        &format!(
            "inFlightDirectory={}",
            directory.path().join("inflight").display()
        ),
    ]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "conformance failed:\n{text}\n{}",
        scaler.log()
    );
    assert_lines(
        &text,
        &[
            "PASS  protocol-detected            ebb.scaler.v1",
            "PASS  info-schema                  python-directory 0.1.0",
            "= 3; active true; in-flight 1",
            "PASS  missing-required-key         INVALID_ARGUMENT naming `directory`",
            "PASS  keda-consistent",
            "PASS  keda-from-env                `directoryFromEnv` read as `directory`",
            " 0 failed",
        ],
    );
}

#[test]
fn check_and_conformance_detect_a_keda_only_scaler() {
    let scaler = python_scaler(&["--keda-only"]);
    let directory = spool(2);
    let metadata = format!("directory={}", directory.path().display());
    let output = ebb(&["scaler", "check", &scaler.address, "-m", &metadata]);
    let text = stdout(&output);
    assert!(output.status.success(), "check failed:\n{text}");
    assert_lines(
        &text,
        &[
            "protocol    externalscaler (KEDA)",
            "GetMetricSpec + GetMetrics per metric + IsActive",
            "value 2  target 10",
            "active      true",
            "in-flight   unknown",
        ],
    );

    let output = ebb(&["scaler", "conformance", &scaler.address, "-m", &metadata]);
    let text = stdout(&output);
    assert!(output.status.success(), "conformance failed:\n{text}");
    assert_lines(
        &text,
        &[
            "SKIP  info-schema",
            "PASS  keda-metric-values",
            "PASS  keda-stream-is-active",
            " 0 failed",
        ],
    );
}

#[test]
fn conformance_fails_against_a_broken_scaler_naming_the_checks() {
    let scaler = python_scaler(&["--broken"]);
    let directory = spool(1);
    let output = ebb(&[
        "scaler",
        "conformance",
        &scaler.address,
        "--timeout",
        "2s",
        "-m",
        &format!("directory={}", directory.path().display()),
    ]);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "conformance must fail:\n{text}"
    );
    assert_lines(
        &text,
        &[
            "FAIL  metric-spec                  target of",
            "FAIL  metric-names-stable",
            "FAIL  metric-values",
            "FAIL  missing-required-key",
            "FAIL  secrets-not-echoed",
            "FAIL  stream-is-active             push advertised, but no initial state within the deadline",
            "FAIL  keda-consistent",
            "failed checks: ",
        ],
    );
    assert!(
        !text.contains("ebb-conformance-secret"),
        "the leaked secret was printed:\n{text}"
    );
}

#[test]
fn conformance_fails_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let output = ebb(&[
        "scaler",
        "conformance",
        &format!("127.0.0.1:{port}"),
        "-m",
        "value=1",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_lines(&text, &["FAIL  connect", "failed checks: connect"]);
}
