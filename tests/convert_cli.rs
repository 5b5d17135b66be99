//! `ebb convert` as a user runs it: KEDA's manifests in, ebb's out. The output is checked by
//! real validators: jsonschema against the CRDs `ebb crd` writes (strict about undeclared
//! fields), and kubectl applying it to the fake API server, which enforces the CRDs'
//! structural schemas with strict field validation. Unconvertible inputs are a corpus
//! (`tests/convert/refused/NAME.yaml` with the exact report in `NAME.expected`).

mod real_clients;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use real_clients::{FakeApiProcess, require_python_module, table_cells, text};

/// Runs `ebb` from the workspace root, so reported file names are the relative ones given.
fn ebb(args: &[&str]) -> Output {
    Command::new(support::binary("ebb", "ebb"))
        .args(args)
        .current_dir(support::workspace_root())
        .env_remove("EBB_SCALERS")
        .env_remove("EBB_SCALER_REGISTRY")
        .output()
        .expect("run ebb")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `ebb crd --out DIR`, as the chart tests use it.
fn crds(dir: &Path) -> PathBuf {
    let out = dir.join("crds");
    let output = ebb(&["crd", "--out", out.to_str().expect("UTF-8 path")]);
    assert!(output.status.success(), "{}", text(&output));
    out
}

/// Validates every ebb object of `manifest` with the venv's jsonschema; the validator's lines.
fn validate(dir: &Path, manifest: &Path) -> String {
    let python = require_python_module("jsonschema");
    let output = Command::new(python)
        .arg(support::workspace_root().join("tests/python/validate_against_crds.py"))
        .arg(crds(dir))
        .arg(manifest)
        .output()
        .expect("run the validator");
    assert!(output.status.success(), "{}", text(&output));
    stdout(&output)
}

#[test]
fn the_keda_manifests_convert_to_objects_that_validate_against_ebbs_crds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = ebb(&["convert", "examples/keda-manifests"]);
    assert!(output.status.success(), "{}", text(&output));
    let changes = stderr(&output);
    assert_eq!(
        changes,
        "\
examples/keda-manifests/scaledobject.yaml: ScaledObject/rabbitmq-consumer: apiVersion: keda.sh/v1alpha1 -> ebb.dev/v1alpha1
examples/keda-manifests/triggerauthentication.yaml: TriggerAuthentication/rabbitmq-consumer-trigger: apiVersion: keda.sh/v1alpha1 -> ebb.dev/v1alpha1
examples/keda-manifests/triggerauthentication.yaml: TriggerAuthentication/rabbitmq-consumer-trigger: kind: TriggerAuthentication -> ScalerAuthentication
"
    );
    let yaml = stdout(&output);
    assert!(
        yaml.contains("# Source: examples/keda-manifests/secret.yaml"),
        "{yaml}"
    );
    assert!(!yaml.contains("keda.sh/v1alpha1"), "{yaml}");
    assert!(
        !yaml.contains("scaler:"),
        "type: rabbitmq keeps relying on the registry: {yaml}"
    );
    let manifest = dir.path().join("converted.yaml");
    std::fs::write(&manifest, &yaml).expect("write");
    let report = validate(dir.path(), &manifest);
    assert_eq!(
        report,
        "valid ScaledObject/rabbitmq-consumer\nvalid ScalerAuthentication/rabbitmq-consumer-trigger\n"
    );
}

#[test]
fn a_keda_scaled_job_and_cluster_authentication_convert_and_validate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = ebb(&["convert", "tests/convert/convertible"]);
    assert!(output.status.success(), "{}", text(&output));
    let changes = stderr(&output);
    for line in [
        "tests/convert/convertible/scaledjob.yaml: ScaledJob/reports: spec.triggers[0].authenticationRef.kind: ClusterTriggerAuthentication -> ClusterScalerAuthentication",
        "tests/convert/convertible/scaledjob.yaml: ScaledJob/reports: spec.triggers[0].metadata.value: written as a string",
        "tests/convert/convertible/scaledjob.yaml: ScaledJob/reports: spec.triggers[0].useCachedMetrics: removed: ebb reads each trigger once per poll",
        "tests/convert/convertible/scaledjob.yaml: ClusterTriggerAuthentication/broker: kind: ClusterTriggerAuthentication -> ClusterScalerAuthentication",
        "tests/convert/convertible/scaledjob.yaml: ClusterTriggerAuthentication/broker: spec: its Secrets and ConfigMaps are now read from the ebb controller's namespace",
    ] {
        assert!(changes.contains(line), "{line}\n{changes}");
    }
    let manifest = dir.path().join("converted.yaml");
    std::fs::write(&manifest, stdout(&output)).expect("write");
    assert_eq!(
        validate(dir.path(), &manifest),
        "valid ScaledJob/reports\nvalid ClusterScalerAuthentication/broker\n"
    );
}

#[test]
fn kubectl_applies_the_converted_manifests_strictly_and_shows_the_new_columns() {
    let server = FakeApiProcess::start();
    server.kubectl_ok(&["apply", "-k", "deploy/crds"]);
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=20s",
        "crd/scaledobjects.ebb.dev",
        "crd/scaledjobs.ebb.dev",
        "crd/scalerauthentications.ebb.dev",
        "crd/clusterscalerauthentications.ebb.dev",
    ]);
    let out = server.dir().join("converted");
    for input in ["examples/keda-manifests", "tests/convert/convertible"] {
        let output = ebb(&["convert", input, "--output", out.to_str().expect("UTF-8")]);
        assert!(output.status.success(), "{}", text(&output));
    }
    // local.yaml holds only `ebb run`'s own kinds (Scaler, ProcessGroup), which no cluster
    // serves; they pass through unchanged.
    let local = out.join("local.yaml");
    let yaml = std::fs::read_to_string(&local).expect("local.yaml written");
    assert!(yaml.contains("kind: ProcessGroup"), "{yaml}");
    std::fs::remove_file(&local).expect("remove local.yaml");
    let applied = server.kubectl_ok(&[
        "apply",
        "--validate=strict",
        "-f",
        out.to_str().expect("UTF-8"),
    ]);
    for line in [
        "scaledobject.ebb.dev/rabbitmq-consumer created",
        "scalerauthentication.ebb.dev/rabbitmq-consumer-trigger created",
        "secret/rabbitmq-consumer-secret created",
        "scaledjob.ebb.dev/reports created",
        "clusterscalerauthentication.ebb.dev/broker created",
    ] {
        assert!(applied.contains(line), "{line}\n{applied}");
    }
    let table = server.kubectl_ok(&["get", "eso", "-n", "default"]);
    assert_eq!(
        table_cells(&table, 0),
        [
            "NAME",
            "TARGET",
            "MIN",
            "MAX",
            "REPLICAS",
            "TRIGGERS",
            "AUTHENTICATIONS",
            "READY",
            "ACTIVE",
            "FALLBACK",
            "PAUSED",
            "AGE"
        ],
        "{table}"
    );
    // The controller's status fills the condition columns; write one as it would.
    server.kubectl_ok(&[
        "patch",
        "scaledobject",
        "rabbitmq-consumer",
        "-n",
        "default",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"currentReplicas":2,"conditions":[{"type":"Ready","status":"True"},{"type":"Active","status":"True"},{"type":"Fallback","status":"True"},{"type":"Paused","status":"False"}]}}"#,
    ]);
    let table = server.kubectl_ok(&["get", "eso", "-n", "default"]);
    assert_eq!(
        table_cells(&table, 1)[..11],
        [
            "rabbitmq-consumer",
            "consumer",
            "0",
            "10",
            "2",
            "rabbitmq",
            "rabbitmq-consumer-trigger",
            "True",
            "True",
            "True",
            "False"
        ],
        "{table}"
    );
    let jobs = server.kubectl_ok(&["get", "esj", "-n", "default"]);
    let header = table_cells(&jobs, 0);
    assert!(
        header.contains(&"TRIGGERS")
            && header.contains(&"AUTHENTICATIONS")
            && header.contains(&"PAUSED"),
        "{jobs}"
    );
    assert_eq!(table_cells(&jobs, 1)[0], "reports", "{jobs}");
    assert!(table_cells(&jobs, 1).contains(&"broker"), "{jobs}");
}

/// Every `tests/convert/refused/NAME.yaml` is reported exactly as `NAME.expected` says, makes
/// the exit code 1 and is not written; `--keep-going` reports the same, exits 0 and writes the
/// refused documents as they were, under the reasons.
#[test]
fn unconvertible_inputs_are_reported_by_field_and_reason() {
    let corpus = support::workspace_root().join("tests/convert/refused");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "{cases:?}");
    for case in cases {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let relative = format!("tests/convert/refused/{name}");
        let expected = std::fs::read_to_string(case.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{relative}: no .expected file"));
        let output = ebb(&["convert", &relative]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{relative}: {}",
            text(&output)
        );
        assert_eq!(stderr(&output), expected, "{relative}");
        assert_eq!(
            stdout(&output),
            "",
            "{relative}: a file with a refused document is not written"
        );
        let kept = ebb(&["convert", "--keep-going", &relative]);
        assert_eq!(kept.status.code(), Some(0), "{relative}: {}", text(&kept));
        assert_eq!(stderr(&kept), expected, "{relative}");
        assert!(
            stdout(&kept).contains("# ebb convert: not converted, kept as written:\n"),
            "{relative}: {}",
            stdout(&kept)
        );
    }
}

#[test]
fn a_type_registered_like_the_controllers_registry_converts() {
    let refused = ebb(&["convert", "tests/convert/refused/triggers.yaml"]);
    assert!(
        stderr(&refused).contains("spec.triggers[0].type"),
        "{}",
        text(&refused)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("registry.yaml");
    std::fs::write(&registry, "scalers:\n  kafka: {address: 127.0.0.1:9009}\n").expect("write");
    let output = ebb(&[
        "convert",
        "--scaler-registry",
        registry.to_str().expect("UTF-8"),
        "tests/convert/refused/triggers.yaml",
    ]);
    let report = stderr(&output);
    assert!(
        !report.contains("spec.triggers[0].type"),
        "kafka is registered: {report}"
    );
    assert!(
        report.contains("spec.triggers[1].type"),
        "cpu still is not: {report}"
    );
    let flagged = ebb(&[
        "convert",
        "--scaler",
        "kafka=127.0.0.1:9009",
        "tests/convert/refused/triggers.yaml",
    ]);
    assert_eq!(stderr(&flagged), report);
    let bad = ebb(&["convert", "--scaler", "kafka", "examples/keda-manifests"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("expected TYPE=ADDRESS"),
        "{}",
        text(&bad)
    );
}

/// Runs `ebb convert` in `dir` (file names in reports are the relative ones given).
fn ebb_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(support::binary("ebb", "ebb"))
        .args(args)
        .current_dir(dir)
        .env_remove("EBB_SCALERS")
        .env_remove("EBB_SCALER_REGISTRY")
        .output()
        .expect("run ebb")
}

/// A directory `in/` holding a convertible file and one with a refused document (a secret
/// store), each with comments that must survive.
fn inputs() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("mkdir");
    let good = std::fs::read_to_string(
        support::workspace_root().join("examples/keda-manifests/scaledobject.yaml"),
    )
    .expect("example");
    let refused = "\
# Hand-written notes about this file.
apiVersion: v1
kind: Secret # keep this comment
metadata:
  name: creds
stringData:
  token: abc
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: vault # and this one
spec:
  hashiCorpVault:
    address: http://vault:8200
";
    std::fs::write(input.join("good.yaml"), &good).expect("write");
    std::fs::write(input.join("refused.yaml"), refused).expect("write");
    (dir, good, refused.to_owned())
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn an_output_directory_that_is_or_holds_an_input_is_refused_and_nothing_is_written() {
    let (dir, good, refused) = inputs();
    std::fs::create_dir(dir.path().join("in/sub")).expect("mkdir");
    std::fs::write(dir.path().join("in/sub/deeper.yaml"), &good).expect("write");
    std::os::unix::fs::symlink(dir.path().join("in"), dir.path().join("link")).expect("symlink");
    for (inputs, output) in [
        (vec!["in"], "in"),
        (vec!["in"], "./in/"),
        (vec!["in"], "in/../in"),
        (vec!["in"], "link"),
        (vec!["in"], "."),
        (vec!["in/good.yaml"], "in"),
        (vec!["in/sub/deeper.yaml"], "in"),
        (vec!["link/good.yaml"], "in"),
    ] {
        let mut args = vec!["convert"];
        args.extend(&inputs);
        args.extend(["--output", output]);
        let result = ebb_in(dir.path(), &args);
        assert_eq!(result.status.code(), Some(1), "{args:?}: {}", text(&result));
        assert!(
            stderr(&result).contains(&format!(
                "--output {output}: the output directory is or contains the input"
            )),
            "{args:?}: {}",
            text(&result)
        );
        assert_eq!(read(dir.path().join("in/good.yaml")), good, "{args:?}");
        assert_eq!(
            read(dir.path().join("in/refused.yaml")),
            refused,
            "{args:?}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("in"))
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names.len(), 3, "nothing was added: {names:?}");
    // Beside the inputs, or below them, is fine: nothing there is an input.
    for output in ["out", "in/sub/converted"] {
        let result = ebb_in(dir.path(), &["convert", "in/good.yaml", "--output", output]);
        assert!(result.status.success(), "{output}: {}", text(&result));
        assert!(
            dir.path().join(output).join("good.yaml").is_file(),
            "{output}"
        );
    }
}

#[test]
fn a_file_with_a_refused_document_is_written_only_with_keep_going_and_then_keeps_it_as_written() {
    let (dir, _, refused) = inputs();
    let result = ebb_in(dir.path(), &["convert", "in", "--output", "out"]);
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    assert!(
        stderr(&result).contains(
            "in/refused.yaml: TriggerAuthentication/vault: spec.hashiCorpVault: cannot convert"
        ),
        "{}",
        text(&result)
    );
    assert!(
        dir.path().join("out/good.yaml").is_file(),
        "the other file is written"
    );
    assert!(
        !dir.path().join("out/refused.yaml").exists(),
        "a file with a refused document is not written without --keep-going"
    );
    // On stdout the same: nothing of the refused file.
    let printed = ebb_in(dir.path(), &["convert", "in/refused.yaml"]);
    assert_eq!(printed.status.code(), Some(1));
    assert_eq!(stdout(&printed), "", "{}", text(&printed));

    let kept = ebb_in(
        dir.path(),
        &["convert", "in", "--output", "out", "--keep-going"],
    );
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept));
    let written = read(dir.path().join("out/refused.yaml"));
    let (secret, vault) = refused.split_once("---\n").expect("two documents");
    assert!(
        written.starts_with(secret),
        "the Secret passes through as written, the file's first comment too:\n{written}"
    );
    assert!(
        written.contains(
            "# ebb convert: not converted, kept as written:\n#   spec.hashiCorpVault: ebb does not read secret stores"
        ) && written.ends_with(vault),
        "the refused document is kept as written, under the reason:\n{written}"
    );
    let no_temporary_left = std::fs::read_dir(dir.path().join("out"))
        .expect("list")
        .all(|entry| {
            !entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with(".ebb-convert-")
        });
    assert!(no_temporary_left);
}

/// The output replaces a file by renaming a complete temporary file over it, so it never
/// writes through what is there: a link from the output to an input is replaced, and the
/// input is untouched (`std::fs::write` would have written into the input).
#[test]
fn outputs_are_renamed_into_place_never_written_through_an_existing_file() {
    let (dir, good, _) = inputs();
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    std::os::unix::fs::symlink(
        dir.path().join("in/good.yaml"),
        dir.path().join("out/good.yaml"),
    )
    .expect("symlink");
    let result = ebb_in(dir.path(), &["convert", "in/good.yaml", "--output", "out"]);
    assert!(result.status.success(), "{}", text(&result));
    assert_eq!(
        read(dir.path().join("in/good.yaml")),
        good,
        "the input is untouched"
    );
    let output = dir.path().join("out/good.yaml");
    assert!(
        !output.is_symlink(),
        "the link was replaced by the converted file"
    );
    assert!(read(output).contains("ebb.dev/v1alpha1"));
}

#[test]
fn two_inputs_with_the_same_file_name_are_refused_under_output() {
    let (dir, good, _) = inputs();
    std::fs::create_dir(dir.path().join("other")).expect("mkdir");
    std::fs::write(dir.path().join("other/good.yaml"), &good).expect("write");
    let result = ebb_in(
        dir.path(),
        &[
            "convert",
            "in/good.yaml",
            "other/good.yaml",
            "--output",
            "out",
        ],
    );
    assert_eq!(result.status.code(), Some(1), "{}", text(&result));
    assert!(
        stderr(&result).contains("in/good.yaml and other/good.yaml have the same file name"),
        "{}",
        text(&result)
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}
