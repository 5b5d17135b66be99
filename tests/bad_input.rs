//! The bad-input corpus (`tests/bad-input/*.yaml`): every file must be refused by
//! `ebb run --check` with the words its `# expect:` line gives, naming file, object and field,
//! without echoing secrets or raw control characters, and without the words of any
//! `# absent:` line (a follow-on error that would mislead). Files with a `# convert-expect:`
//! line must be refused by `ebb convert` in those words, with nothing written. Files marked
//! `# cluster: yes` hold a ScaledObject the controller must refuse too, with the same words
//! in its Ready condition, against the fake API server.

#[path = "fake_apiserver/mod.rs"]
mod fake_apiserver;
#[path = "in_process_controller/mod.rs"]
mod in_process_controller;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use in_process_controller::{InProcessController, test_args};
use serde_json::Value;

/// The marker planted in the corpus wherever a value is secret.
const MARKER: &str = "TOPSECRET";

struct Case {
    path: PathBuf,
    expect: String,
    /// Words that must not appear (`# absent:` lines).
    absent: Vec<String>,
    /// What `ebb convert` must say (`# convert-expect:`), for files it is run on.
    convert: Option<String>,
    cluster: bool,
}

/// `\"` and `\\` in an `# expect:` line stand for `"` and `\`; other escapes stay as written
/// (they are what the output shows, e.g. `\u{1b}`).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some('"')) | ('\\', Some('\\')) => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .expect("read tests/bad-input")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read case");
            let expect = text
                .lines()
                .find_map(|line| line.strip_prefix("# expect: "))
                .map(unescape)
                .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
            let cluster = text.lines().any(|line| line == "# cluster: yes");
            let absent = text
                .lines()
                .filter_map(|line| line.strip_prefix("# absent: "))
                .map(unescape)
                .collect();
            let convert = text
                .lines()
                .find_map(|line| line.strip_prefix("# convert-expect: "))
                .map(unescape);
            Case {
                path,
                expect,
                absent,
                convert,
                cluster,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.path.cmp(&b.path));
    cases
}

#[test]
fn ebb_run_check_refuses_every_bad_file_in_the_expected_words() {
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus has {} files", cases.len());
    let ebb = support::binary("ebb", "ebb");
    let mut failures = Vec::new();
    for case in &cases {
        let output = std::process::Command::new(&ebb)
            .args(["run", "--check", "-f"])
            .arg(&case.path)
            .env("EBB_LOG", "warn")
            .output()
            .expect("run ebb");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let name = case.path.file_name().unwrap_or_default().to_string_lossy();
        if output.status.success() {
            failures.push(format!("{name}: accepted:\n{text}"));
        } else if !text.contains(&case.expect) {
            failures.push(format!("{name}: expected {:?} in:\n{text}", case.expect));
        } else if !text.contains(&*name) && !text.contains("bad-input") {
            failures.push(format!("{name}: the file is not named:\n{text}"));
        }
        for words in &case.absent {
            if text.contains(words.as_str()) {
                failures.push(format!("{name}: {words:?} should not be said:\n{text}"));
            }
        }
        failures.extend(leaks(&name, &text));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What no output may hold: a secret value, or a raw escape character.
fn leaks(name: &str, text: &str) -> Vec<String> {
    let mut failures = Vec::new();
    if text.contains(MARKER) {
        failures.push(format!("{name}: a secret value was echoed:\n{text}"));
    }
    if text.contains('\u{1b}') {
        failures.push(format!(
            "{name}: a raw escape character reached the terminal"
        ));
    }
    failures
}

#[test]
fn ebb_convert_refuses_the_files_marked_for_it_in_the_expected_words_and_writes_nothing() {
    let cases: Vec<Case> = corpus()
        .into_iter()
        .filter(|case| case.convert.is_some())
        .collect();
    assert!(cases.len() >= 3, "{} convert cases", cases.len());
    let ebb = support::binary("ebb", "ebb");
    let mut failures = Vec::new();
    for case in &cases {
        let expect = case.convert.as_deref().unwrap_or_default();
        let output = std::process::Command::new(&ebb)
            .arg("convert")
            .arg(&case.path)
            .env_remove("EBB_SCALERS")
            .env_remove("EBB_SCALER_REGISTRY")
            .output()
            .expect("run ebb");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        let name = case.path.file_name().unwrap_or_default().to_string_lossy();
        if output.status.code() != Some(1) {
            failures.push(format!("{name}: exit {:?}:\n{stderr}", output.status));
        } else if !stderr.contains(expect) {
            failures.push(format!("{name}: expected {expect:?} in:\n{stderr}"));
        } else if !stderr.contains(&*name) {
            failures.push(format!("{name}: the file is not named:\n{stderr}"));
        }
        if !stdout.is_empty() {
            failures.push(format!(
                "{name}: a file with a refused document was written:\n{stdout}"
            ));
        }
        failures.extend(leaks(&name, &format!("{stdout}{stderr}")));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The ScaledObject of a corpus file, as JSON for the API server, in namespace `bad`.
fn scaled_object(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read case");
    for document in text.split("\n---\n") {
        let value: Value = serde_norway::from_str(document).expect("corpus YAML");
        if value["kind"] == "ScaledObject" {
            let mut object = value;
            object["metadata"]["namespace"] = Value::from("bad");
            return object;
        }
    }
    panic!("{} has no ScaledObject", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_refuses_the_same_objects_in_the_same_words() {
    let cases: Vec<Case> = corpus().into_iter().filter(|case| case.cluster).collect();
    assert!(cases.len() >= 20, "{} cluster cases", cases.len());
    let server = FakeApiServer::start().await;
    let mut names = Vec::new();
    for case in &cases {
        let object = scaled_object(&case.path);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        server.create(object).expect("create ScaledObject");
        names.push(name);
    }
    let controller = InProcessController::start(server.client(), test_args("bad-input")).await;
    let ready_message = |name: &str| -> Option<(String, String)> {
        let object = server.get("ebb.dev/v1alpha1", "ScaledObject", "bad", name)?;
        object["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|condition| condition["type"] == "Ready")
            .map(|condition| {
                (
                    condition["status"].as_str().unwrap_or_default().to_owned(),
                    condition["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while names.iter().any(|name| ready_message(name).is_none()) {
        assert!(
            std::time::Instant::now() < deadline,
            "not every object got a Ready condition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut failures = Vec::new();
    for (case, name) in cases.iter().zip(&names) {
        let Some((status, message)) = ready_message(name) else {
            continue;
        };
        if status != "False" || !message.contains(&case.expect) {
            failures.push(format!(
                "{name}: Ready={status} {message:?}, expected {:?}",
                case.expect
            ));
        }
    }
    controller.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
