//! The protocol contract check (`scripts/proto-check.sh`: buf lint, buf breaking of
//! `ebb.scaler.v1` against its release baseline and of KEDA's `externalscaler` against KEDA's
//! wire facts) really catches breaking edits. Each test copies the files the check reads into a
//! temporary directory, edits one proto there, and runs the same script CI runs on the copy.

use std::path::{Path, PathBuf};
use std::process::Command;

const V1: &str = "proto/ebb/scaler/v1/scaler.proto";
const KEDA: &str = "proto/externalscaler/externalscaler.proto";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies `from` into `to` recursively, skipping node_modules.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.file_name() != "node_modules" {
                copy_tree(&entry.path(), &to.join(entry.file_name()));
            }
        }
    } else {
        std::fs::copy(from, to).expect("copy");
    }
}

/// A copy of what the check reads: buf.yaml, proto/ and tests/proto/ (baselines, rules).
fn copy_of_the_contract() -> tempfile::TempDir {
    let buf = repository().join("tests/proto/node_modules/.bin/buf");
    assert!(
        buf.exists(),
        "buf is missing at {}: run scripts/services.sh to install it (npm @bufbuild/buf)",
        buf.display()
    );
    let copy = tempfile::tempdir().expect("tempdir");
    for part in ["buf.yaml", "proto", "tests/proto"] {
        copy_tree(&repository().join(part), &copy.path().join(part));
    }
    copy
}

/// Replaces `old` (which must occur exactly once) with `new` in `file` of the copy.
fn edit(root: &Path, file: &str, old: &str, new: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).expect("read proto");
    assert_eq!(text.matches(old).count(), 1, "`{old}` once in {file}");
    std::fs::write(&path, text.replace(old, new)).expect("write proto");
}

/// Runs the check on `root`: whether it passed, and everything it printed.
fn check(root: &Path) -> (bool, String) {
    let output = Command::new(repository().join("scripts/proto-check.sh"))
        .arg(root)
        .output()
        .expect("run scripts/proto-check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn assert_fails(root: &Path, expected: &[&str]) {
    let (passed, text) = check(root);
    assert!(!passed, "the check passed a breaking edit:\n{text}");
    for line in expected {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn the_unedited_protocol_passes_and_an_added_field_is_allowed() {
    let copy = copy_of_the_contract();
    let (passed, text) = check(copy.path());
    assert!(
        passed,
        "the repository's own protos fail the check:\n{text}"
    );
    assert!(text.contains("all checks passed"), "{text}");

    // Additive change: a new, commented field with a new number.
    edit(
        copy.path(),
        V1,
        "  repeated MetadataField metadata = 6;\n",
        "  repeated MetadataField metadata = 6;\n  // Where to read more.\n  string documentation_url = 7;\n",
    );
    let (passed, text) = check(copy.path());
    assert!(passed, "an added field was refused:\n{text}");
}

#[test]
fn a_changed_field_number_in_v1_fails() {
    let copy = copy_of_the_contract();
    edit(copy.path(), V1, "double target = 2;", "double target = 5;");
    assert_fails(
        copy.path(),
        &[
            "buf breaking: ebb.scaler.v1",
            r#"Previously present field "2" with name "target" on message "MetricSpec" was deleted"#,
        ],
    );
}

#[test]
fn a_changed_field_type_or_a_renamed_field_in_v1_fails() {
    let copy = copy_of_the_contract();
    edit(copy.path(), V1, "uint64 count = 1;", "int32 count = 1;");
    edit(
        copy.path(),
        V1,
        "bool keda_compatible = 3;",
        "bool keda = 3;",
    );
    assert_fails(
        copy.path(),
        &[
            r#"Field "1" with name "count" on message "InFlight" changed type from "uint64" to "int32""#,
            r#"Field "3" on message "Capabilities" changed name from "keda_compatible" to "keda""#,
        ],
    );
}

#[test]
fn a_keda_field_type_or_a_removed_keda_rpc_fails_the_wire_check() {
    let copy = copy_of_the_contract();
    // int64 -> int32 passes buf's WIRE category (both are varints); KEDA's exact types do not.
    edit(
        copy.path(),
        KEDA,
        "int64 targetSize = 2;",
        "int32 targetSize = 2;",
    );
    edit(
        copy.path(),
        KEDA,
        "  rpc IsActive(ScaledObjectRef) returns (IsActiveResponse) {}\n",
        "",
    );
    assert_fails(
        copy.path(),
        &[
            "buf breaking: externalscaler against KEDA's wire protocol",
            r#"Field "2" with name "targetSize" on message "MetricSpec" changed type from "int64" to "int32""#,
            r#"Previously present RPC "IsActive" on service "ExternalScaler" was deleted"#,
        ],
    );
}

#[test]
fn a_keda_field_number_fails_the_wire_check() {
    let copy = copy_of_the_contract();
    edit(
        copy.path(),
        KEDA,
        "double metricValueFloat = 3;",
        "double metricValueFloat = 4;",
    );
    assert_fails(
        copy.path(),
        &[
            r#"Previously present field "3" with name "metricValueFloat" on message "MetricValue" was deleted"#,
        ],
    );
}

#[test]
fn an_undocumented_field_fails_lint() {
    let copy = copy_of_the_contract();
    edit(
        copy.path(),
        V1,
        "  repeated MetadataField metadata = 6;\n",
        "  repeated MetadataField metadata = 6;\n  string DocumentationUrl = 7;\n",
    );
    assert_fails(
        copy.path(),
        &[
            "buf lint",
            r#"Field "DocumentationUrl" should have a non-empty comment for documentation"#,
            r#"Field name "DocumentationUrl" should be lower_snake_case"#,
        ],
    );
}
