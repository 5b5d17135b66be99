//! The live dashboard in a real browser: headless Chromium, driven over WebDriver by
//! chromedriver (plain HTTP/JSON), loads `/` of a running `ebb run` with the real RabbitMQ
//! scaler, real workers and a real RabbitMQ. Checks in the DOM (polled with a deadline, no
//! sleeps) that the object appears, that a value change reaches the chart within 2 s of ebb
//! knowing it, and that the scale event is marked; saves a screenshot as a test artifact.

mod ebb_run;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebb_run::EbbRun;
use serde_json::{Value, json};
use support::{free_port, wait_for_port};

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn bin(package: &str, name: &str) -> PathBuf {
    match std::env::var_os("EBB_TEST_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => support::binary(package, name),
    }
}

/// A tool the test needs, failing with the install hint when missing.
fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not installed (Debian chromium / chromium-driver): run scripts/services.sh"
        )
    })
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; the answer's JSON body (read by its
/// Content-Length: chromedriver keeps connections open).
fn http_json(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = &stream;
    write!(
        writer,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut reader = BufReader::new(&stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read response head");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("Content-Length");
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer).expect("read response body");
    serde_json::from_slice(&answer)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&answer)))
}

/// chromedriver and the Chromium it started (one process group), stopped together on drop
/// so a failed test leaves no browser behind.
struct DriverGroup(std::process::Child);

impl Drop for DriverGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// A WebDriver session on a headless Chromium.
struct Browser {
    port: u16,
    session: String,
    _driver: DriverGroup,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Self {
        let chromium = require_tool("chromium");
        let driver = require_tool("chromedriver");
        let port = free_port();
        // Its own process group, so the Chromium it starts goes with it on drop.
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = DriverGroup(child);
        wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,1500",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let answer = http_json(
            port,
            "POST",
            "/session",
            Some(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}})),
        );
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_owned();
        Self {
            port,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    fn command(&self, method: &str, what: &str, body: Option<&Value>) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let answer = http_json(self.port, method, &path, body);
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver {what}: {answer}"
        );
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.command("POST", "url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and returns its result.
    fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            Some(&json!({"script": script, "args": []})),
        )
    }

    /// Polls `script` until it returns a truthy value, within `within`; that value.
    fn wait_for(&self, what: &str, within: Duration, script: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.eval(script);
            if !(value.is_null() || value == json!(false) || value == json!("")) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: not within {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, path: &Path) {
        let data = self.command("GET", "screenshot", None);
        let png = base64_decode(data.as_str().expect("base64 screenshot"));
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| http_json(self.port, "DELETE", &path, None));
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let digit = |byte: u8| match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {byte}"),
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|byte| *byte != b'=')
        .map(digit)
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (index, digit)| {
            word | u32::from(*digit) << (18 - 6 * index)
        });
        out.extend(&word.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn publisher(args: &[&str]) -> String {
    let output = Command::new(bin("ebb-quickstart-publisher", "ebb-quickstart-publisher"))
        .args(["--amqp-url", AMQP_URL])
        .args(args)
        .output()
        .expect("run the publisher");
    assert!(output.status.success(), "publisher {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct DeleteQueue(String);

impl Drop for DeleteQueue {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| publisher(&["--queue", &self.0, "--delete-queue"]));
    }
}

fn manifest(dir: &Path, queue: &str) -> PathBuf {
    let yaml = format!(
        r#"apiVersion: ebb.dev/v1alpha1
kind: Scaler
metadata: {{name: rabbitmq}}
spec:
  command: {scaler}
  args: ["--listen", "{{address}}"]
---
apiVersion: ebb.dev/v1alpha1
kind: ProcessGroup
metadata: {{name: workers}}
spec:
  command: {worker}
  env: {{QUEUE: {queue}, WORK_TIME: 400ms, AMQP_URL: "{AMQP_URL}"}}
  gracePeriod: 5s
---
apiVersion: ebb.dev/v1alpha1
kind: ScaledObject
metadata: {{name: orders}}
spec:
  scaleTargetRef: {{apiVersion: ebb.dev/v1alpha1, kind: ProcessGroup, name: workers}}
  pollingInterval: 1
  cooldownPeriod: 5
  maxReplicaCount: 4
  triggers:
    - type: rabbitmq
      name: queue
      metadata: {{queueName: {queue}, value: "5", activationValue: "2", hostFromEnv: AMQP_URL}}
"#,
        scaler = bin("ebb-rabbitmq-scaler", "ebb-rabbitmq-scaler").display(),
        worker = bin("ebb-quickstart-worker", "ebb-quickstart-worker").display(),
    );
    let path = dir.join("ebb.yaml");
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// The value ebb's `/status` shows for the trigger, when it has one.
fn status_value(run: &EbbRun) -> Option<f64> {
    run.status()?["objects"][0]["status"]["triggers"][0]["lastValue"].as_f64()
}

/// The value in the chart legend of trigger `queue` ("queue = 12"), or null.
const LEGEND: &str = r#"
    const texts = [...document.querySelectorAll('div.chart[data-object="orders"] svg text')];
    const legend = texts.map((t) => t.textContent.trim()).find((t) => /^queue = \S+$/.test(t));
    return legend ? legend.slice('queue = '.length) : null;"#;

#[test]
fn the_dashboard_shows_objects_live_values_and_scale_events_in_chromium() {
    support::require_service("RabbitMQ", "127.0.0.1:5672");
    let browser = Browser::start();
    let ebb = bin("ebb", "ebb");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let queue = format!("ebb-dashboard-{}-{nanos}", std::process::id());
    publisher(&["--queue", &queue, "--count", "0"]);
    let _queue = DeleteQueue(queue.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let run = EbbRun::start(
        &ebb,
        &manifest(dir.path(), &queue),
        &dir.path().join("ebb.log"),
    );
    support::wait_for("a first status", Duration::from_secs(30), || {
        status_value(&run) == Some(0.0)
    });

    browser.open(&format!("http://127.0.0.1:{}/", run.status_port));
    browser.wait_for(
        "the object listed with its value and target",
        Duration::from_secs(20),
        r#"const row = document.querySelector('#objects tr[data-object="orders"]');
           return row && row.textContent.includes('queue 0/5');"#,
    );
    let before = browser.wait_for("the chart drawn", Duration::from_secs(20), LEGEND);
    assert_eq!(before, json!("0"));
    let thresholds = browser.eval(
        r#"return [...document.querySelectorAll('div.chart[data-object="orders"] svg text')]
             .map((t) => t.textContent.trim()).filter((t) => /^queue (target|activation) /.test(t));"#,
    );
    assert_eq!(
        thresholds,
        json!(["queue target 5", "queue activation 2"]),
        "the target and the activation threshold drawn on the live chart"
    );
    assert!(
        browser
            .eval(r#"return document.querySelector('#host').textContent;"#)
            .as_str()
            .is_some_and(|host| host.contains("workers") && host.contains("rabbitmq")),
        "process groups and scalers listed"
    );

    publisher(&["--queue", &queue, "--count", "30", "--id-prefix", "dash"]);
    // The moment ebb itself knows the new value; the page must show it within 2 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    let known = loop {
        if let Some(value) = status_value(&run).filter(|value| *value > 0.0) {
            break value;
        }
        assert!(
            Instant::now() < deadline,
            "ebb never saw the published messages"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let shown = browser.wait_for(
        "the new value on the chart within 2 s",
        Duration::from_secs(2),
        &format!("const value = (() => {{ {LEGEND} }})(); return value !== '0' ? value : null;"),
    );
    println!("ebb saw {known}; the chart shows {shown}");

    let mark = browser.wait_for(
        "a scale event marked on the chart",
        Duration::from_secs(20),
        r#"const mark = document.querySelector('div.chart[data-object="orders"] circle.scale-event title');
           return mark ? mark.textContent : null;"#,
    );
    assert!(
        mark.as_str().is_some_and(|text| text.starts_with("Scaled")),
        "{mark}"
    );

    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&artifacts).expect("artifact dir");
    let shot = artifacts.join("dashboard.png");
    browser.screenshot(&shot);
    let png = std::fs::read(&shot).expect("read screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    println!("screenshot: {}", shot.display());
}
