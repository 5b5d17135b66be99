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
