//! `ebb-yaml-limits`: prints how long hostile input takes to reject (issue 16, defect 5: a
//! 200 KB YAML of nested `[[[…]]]` took 31 s, growing with the square of the depth).
//!
//! Two paths are measured at 50, 100, 200 and 400 KB:
//! - `ebb run --check`'s loading ([`ebb::spec::load::parse_documents`], also run as the real
//!   binary with `--ebb`): a ScaledObject whose spec carries the nested value, and a flat one
//!   of the same size that passes the shape check, to show that accepted input is linear too;
//! - the controller's decoding of an object from the API server: the JSON watch event decoded
//!   as kube decodes it (`serde_json` into a `DynamicObject`), then into a `ScaledObject` as
//!   the controller does.
//!
//! Then `ebb convert`'s cost per file (issue 26: each file cost about 40 ms, 1,000 files 40 s
//! against 0.1 s for the same 1,000 documents in one file): N files of one KEDA ScaledObject
//! against one file of the same N documents, in process ([`ebb::convert::convert_text`]) and
//! as the real binary (`--ebb`), with an older binary beside it as the baseline
//! (`--baseline-ebb`). The same pre-scan refuses deep nesting under `ebb convert` as under
//! `ebb run --check`, so the nested rows above hold for both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use kube::api::DynamicObject;

/// Prints rejection times for nested and oversized YAML and JSON objects.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The `ebb` binary, to time `ebb run --check -f FILE` as a user runs it as well.
    #[arg(long, env = "EBB_BIN")]
    ebb: Option<PathBuf>,
    /// Sizes to try, in KB.
    #[arg(long, env = "EBB_YAML_LIMITS_SIZES", value_delimiter = ',', default_values_t = [50, 100, 200, 400])]
    sizes: Vec<usize>,
    /// Runs per measurement; the median is printed.
    #[arg(long, env = "EBB_YAML_LIMITS_RUNS", default_value_t = 5)]
    runs: usize,
    /// Files (and documents) in the `ebb convert` per-file measurement; 0 skips it.
    #[arg(long, env = "EBB_YAML_LIMITS_CONVERT_FILES", default_value_t = 1000)]
    convert_files: usize,
    /// An older `ebb` binary, timed on the same `ebb convert` inputs as the baseline.
    #[arg(long, env = "EBB_BASELINE_BIN")]
    baseline_ebb: Option<PathBuf>,
}

const HEAD: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: deep}\nspec:\n  scaleTargetRef: {name: web}\n  triggers: [{type: cpu, metadata: {value: \"50\"}}]\n  extra: ";

/// A ScaledObject of about `bytes` bytes whose `spec.extra` nests `[` as deep as it fits.
fn nested_yaml(bytes: usize) -> String {
    let depth = bytes.saturating_sub(HEAD.len()) / 2;
    format!("{HEAD}{}{}\n", "[".repeat(depth), "]".repeat(depth))
}

/// A ScaledObject of about `bytes` bytes whose `spec.extra` is one flat list.
fn flat_yaml(bytes: usize) -> String {
    let items = bytes.saturating_sub(HEAD.len()) / 2;
    format!("{HEAD}[{}1]\n", "1,".repeat(items.saturating_sub(1)))
}

const JSON_HEAD: &str = r#"{"type":"ADDED","object":{"apiVersion":"keda.sh/v1alpha1","kind":"ScaledObject","metadata":{"name":"deep","namespace":"default"},"spec":{"scaleTargetRef":{"name":"web"},"triggers":[{"type":"cpu","metadata":{"value":"50"}}],"extra":"#;

/// A watch event of about `bytes` bytes whose object's `spec.extra` nests as deep as it fits.
fn nested_json(bytes: usize) -> String {
    let depth = bytes.saturating_sub(JSON_HEAD.len()) / 2;
    format!(
        "{JSON_HEAD}{}{}}}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// A watch event of about `bytes` bytes whose object's `spec.extra` is one flat list.
fn flat_json(bytes: usize) -> String {
    let items = bytes.saturating_sub(JSON_HEAD.len()) / 2;
    format!(
        "{JSON_HEAD}[{}1]}}}}}}",
        "1,".repeat(items.saturating_sub(1))
    )
}

/// What a watch event holds; kube decodes its events the same way (serde_json).
#[derive(serde::Deserialize)]
struct WatchEvent {
    object: DynamicObject,
}

/// The controller's decoding: the event as kube decodes it, then the object as the controller
/// turns a `DynamicObject` into a `ScaledObject`. `Err` carries the error text.
fn controller_decode(json: &str) -> Result<(), String> {
    let event: WatchEvent = serde_json::from_str(json).map_err(|error| error.to_string())?;
    serde_json::to_value(&event.object)
        .and_then(serde_json::from_value::<ebb::spec::ScaledObject>)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// `ebb run --check`'s loading of one file's text. `Err` carries the error text.
fn check_load(text: &str) -> Result<(), String> {
    let documents = ebb::spec::load::parse_documents(Path::new("bench.yaml"), text)
        .map_err(|error| error.to_string())?;
    for document in &documents {
        document
            .scaled_object()
            .map_err(|error| error.to_string())?;
    }
    Ok(())
}

/// The median time of `runs` calls of `work`, and the last outcome.
fn time(
    runs: usize,
    mut work: impl FnMut() -> Result<(), String>,
) -> (Duration, Result<(), String>) {
    let mut times = Vec::with_capacity(runs);
    let mut outcome = Ok(());
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        outcome = work();
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], outcome)
}

fn outcome_text(outcome: &Result<(), String>) -> String {
    match outcome {
        Ok(()) => "accepted".to_owned(),
        Err(error) => {
            let short: String = error.chars().take(70).collect();
            format!("rejected: {short}")
        }
    }
}

fn row(path: &str, input: &str, kb: usize, (took, outcome): (Duration, Result<(), String>)) {
    println!(
        "| {path} | {input} | {kb} KB | {:.2} ms | {} |",
        took.as_secs_f64() * 1000.0,
        outcome_text(&outcome)
    );
}

/// One KEDA ScaledObject, as `examples/keda-manifests` has it; `{index}` names it.
fn keda_document(index: usize) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: consumer-{index}\nspec:\n  scaleTargetRef:\n    name: consumer\n  maxReplicaCount: 10\n  triggers:\n    - type: rabbitmq\n      metadata:\n        queueName: hello\n        value: \"5\"\n      authenticationRef:\n        name: rabbitmq-consumer-trigger\n"
    )
}

/// `ebb convert` in process: each text as its own file. `Err` carries the first refusal.
fn convert_files(texts: &[String]) -> Result<(), String> {
    let known = ebb::convert::BUNDLED_TYPES
        .iter()
        .map(|kind| (*kind).to_owned())
        .collect();
    for (index, text) in texts.iter().enumerate() {
        let converted = ebb::convert::convert_text(&format!("f{index}.yaml"), text, &known)
            .map_err(|error| error.to_string())?;
        if let Some(refusal) = converted.refusals.first() {
            return Err(refusal.to_string());
        }
    }
    Ok(())
}

/// `ebb convert PATH` as a user runs it, output discarded.
fn convert_process(ebb: &Path, path: &Path) -> Result<(), String> {
    let output = std::process::Command::new(ebb)
        .arg("convert")
        .arg(path)
        .env_remove("EBB_SCALERS")
        .env_remove("EBB_SCALER_REGISTRY")
        .stdout(std::process::Stdio::null())
        .output()
        .map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn convert_row(
    path: &str,
    input: &str,
    count: usize,
    (took, outcome): (Duration, Result<(), String>),
) {
    let total = took.as_secs_f64() * 1000.0;
    println!(
        "| {path} | {input} | {total:.1} ms | {:.3} ms | {} |",
        total / count as f64,
        outcome_text(&outcome)
    );
}

/// Prints the per-file cost of `ebb convert`: N files against one file of N documents.
fn convert_costs(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let count = args.convert_files;
    let texts: Vec<String> = (0..count).map(keda_document).collect();
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    for (index, text) in texts.iter().enumerate() {
        std::fs::write(files.join(format!("f{index:05}.yaml")), text)?;
    }
    let joined = texts.join("---\n");
    let one = dir.join("one.yaml");
    std::fs::write(&one, &joined)?;
    println!();
    println!("| path | input | total | per file or document | outcome |");
    println!("|---|---|---|---|---|");
    let runs = args.runs;
    let files_input = format!("{count} files of 1 document");
    let one_input = format!("1 file of {count} documents");
    convert_row(
        "convert_text (in process)",
        &files_input,
        count,
        time(runs, || convert_files(&texts)),
    );
    convert_row(
        "convert_text (in process)",
        &one_input,
        count,
        time(runs, || convert_files(std::slice::from_ref(&joined))),
    );
    let binaries = [
        ("`ebb convert` process", &args.ebb),
        ("baseline process", &args.baseline_ebb),
    ];
    for (name, binary) in binaries {
        let Some(binary) = binary else { continue };
        convert_row(
            name,
            &files_input,
            count,
            time(runs, || convert_process(binary, &files)),
        );
        convert_row(
            name,
            &one_input,
            count,
            time(runs, || convert_process(binary, &one)),
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ebb-yaml-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!("| path | input | size | median time | outcome |");
    println!("|---|---|---|---|---|");
    for &kb in &args.sizes {
        let bytes = kb * 1024;
        let nested = nested_yaml(bytes);
        let flat = flat_yaml(bytes);
        row(
            "ebb run --check (loader)",
            "nested [[[…]]]",
            kb,
            time(args.runs, || check_load(&nested)),
        );
        row(
            "ebb run --check (loader)",
            "flat list",
            kb,
            time(args.runs, || check_load(&flat)),
        );
        if let Some(ebb) = &args.ebb {
            for (input, text) in [("nested [[[…]]]", &nested), ("flat list", &flat)] {
                let file = dir.join("bench.yaml");
                std::fs::write(&file, text)?;
                let measured = time(args.runs, || {
                    let output = std::process::Command::new(ebb)
                        .args(["run", "--check", "-f"])
                        .arg(&file)
                        .output()
                        .map_err(|error| error.to_string())?;
                    if output.status.success() {
                        Ok(())
                    } else {
                        let stderr = String::from_utf8_lossy(&output.stderr);
                        // The first problem, after the `Error:` heading.
                        let problem = stderr
                            .lines()
                            .map(str::trim)
                            .find(|line| !line.is_empty() && !line.starts_with("Error:"));
                        Err(problem.unwrap_or_default().to_owned())
                    }
                });
                row("`ebb run --check` process", input, kb, measured);
            }
        }
        let nested = nested_json(bytes);
        let flat = flat_json(bytes);
        row(
            "controller decode",
            "nested [[[…]]]",
            kb,
            time(args.runs, || controller_decode(&nested)),
        );
        row(
            "controller decode",
            "flat list",
            kb,
            time(args.runs, || controller_decode(&flat)),
        );
    }
    if args.convert_files > 0 {
        convert_costs(&args, &dir)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_are_the_sizes_asked_for() {
        for text in [
            nested_yaml(50 * 1024),
            flat_yaml(50 * 1024),
            nested_json(50 * 1024),
            flat_json(50 * 1024),
        ] {
            assert!(text.len().abs_diff(50 * 1024) < 64, "{}", text.len());
        }
    }

    #[test]
    fn the_convert_inputs_convert_without_a_refusal() {
        let texts: Vec<String> = (0..3).map(keda_document).collect();
        convert_files(&texts).unwrap();
        convert_files(&[texts.join("---\n")]).unwrap();
    }

    #[test]
    fn both_hosts_refuse_deep_nesting_and_accept_a_flat_object() {
        let loader = check_load(&nested_yaml(200 * 1024)).unwrap_err();
        assert!(loader.contains("nested more than"), "{loader}");
        let controller = controller_decode(&nested_json(200 * 1024)).unwrap_err();
        assert!(
            controller.contains("recursion limit exceeded"),
            "{controller}"
        );
        // Depth is the limit, not size: the same size flat is parsed through by both.
        check_load(&flat_yaml(20 * 1024)).unwrap();
        controller_decode(&flat_json(20 * 1024)).unwrap();
    }
}
