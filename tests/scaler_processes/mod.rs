//! Scalers run as real processes for the integration tests: the SDK example scaler binary,
//! the Python example scaler (normal, KEDA-only and deliberately broken modes) and the Node
//! example scaler. Each process is killed when its handle drops; startup waits on gRPC health
//! with a deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ebb::client::{ActivityStream, TriggerInput};
use futures::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support;

/// How long a scaler may take to start serving (the Python one generates its stubs first).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running scaler process, killed on drop.
pub struct ScalerProcess {
    child: Child,
    /// `127.0.0.1:PORT` it serves on.
    pub address: String,
    log: tempfile::NamedTempFile,
}

impl Drop for ScalerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ScalerProcess {
    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn wait_healthy(mut self) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "scaler exited with {status} before serving:\n{}",
                    self.log()
                );
            }
            let settings = ebb::client::ChannelSettings::plain(self.address.clone());
            let serving = runtime.block_on(async {
                let Ok(channel) = ebb::client::channel::connect(&settings).await else {
                    return false;
                };
                let mut client = HealthClient::new(channel);
                let request = HealthCheckRequest { service: String::new() };
                let answer = tokio::time::timeout(Duration::from_secs(2), client.check(request)).await;
                matches!(answer, Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving)
            });
            if serving {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "scaler at {} not SERVING within {START_DEADLINE:?}:\n{}",
                self.address,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A loopback port free right now (the kernel hands out a fresh one per bind).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the SDK example scaler binary with `extra` flags.
pub fn example_scaler(extra: &[&str]) -> ScalerProcess {
    let binary = support::binary("ebb-example-scaler", "ebb-example-scaler");
    let address = format!("127.0.0.1:{}", free_port());
    let log = tempfile::NamedTempFile::new().expect("log file");
    let child = Command::new(binary)
        .args(["--listen", &address])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .expect("spawn ebb-example-scaler");
    ScalerProcess {
        child,
        address,
        log,
    }
    .wait_healthy()
}

/// The venv's Python. A missing venv fails the test, naming it and `scripts/services.sh`
/// (the README's test command creates it).
pub fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the Python venv with grpcio is created by scripts/services.sh",
        python.display()
    );
    python
}

/// Starts the Python example scaler with `flags` (`--keda-only`, `--broken`).
pub fn python_scaler(flags: &[&str]) -> ScalerProcess {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-scaler/scaler.py");
    let mut command = Command::new(python());
    command.arg(script);
    announced(command, flags, "the Python scaler")
}

/// Starts the Node example scaler (examples/node-scaler) with `flags`. Node and the scaler's
/// npm packages are required: when missing the test fails, naming them and
/// `scripts/services.sh`.
pub fn node_scaler(flags: &[&str]) -> ScalerProcess {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-scaler");
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|output| output.status.success()),
        "`node` is not on PATH: the Node example scaler needs Node.js (run scripts/services.sh)"
    );
    assert!(
        directory.join("node_modules/@grpc/grpc-js").is_dir(),
        "{} has no node_modules: run scripts/services.sh to install its npm packages",
        directory.display()
    );
    let mut command = Command::new("node");
    command.arg(directory.join("scaler.js"));
    announced(command, flags, "the Node scaler")
}

/// Spawns a scaler that takes `--address`, binds port 0 and prints `listening on HOST:PORT`,
/// then waits until it is healthy.
fn announced(mut command: Command, flags: &[&str], what: &str) -> ScalerProcess {
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = command
        .args(["--address", "127.0.0.1:0"])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(log.reopen().expect("log"))
        .spawn()
        .unwrap_or_else(|error| panic!("spawn {what}: {error}"));
    // The address is printed once bound; read it on a thread so a silent process cannot hang
    // the test past the deadline.
    let stdout = child.stdout.take().expect("stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = sender.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let line = receiver.recv_timeout(START_DEADLINE).unwrap_or_default();
    let address = line.trim().strip_prefix("listening on ").map(str::to_owned);
    let process = ScalerProcess {
        child,
        address: address.clone().unwrap_or_default(),
        log,
    };
    assert!(
        address.is_some(),
        "{what} did not report its address (got {line:?}):\n{}",
        process.log()
    );
    process.wait_healthy()
}

/// Runs the `ebb` binary with `args`.
pub fn ebb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebb"))
        .args(args)
        .env_remove("EBB_SCALER_METADATA")
        .env_remove("EBB_SCALER_SECRET")
        .output()
        .expect("run ebb")
}

/// stdout of an `ebb` run, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes `text` to `path` atomically (temporary file + rename), as scalers expect.
pub fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).expect("write");
    std::fs::rename(&temporary, path).expect("rename");
}

/// A trigger (`backlog` of object `shop/orders`) with `metadata` and `secrets`.
pub fn trigger_input(metadata: &[(&str, &str)], secrets: &[(&str, &str)]) -> TriggerInput {
    let map = |pairs: &[(&str, &str)]| -> ebb::client::StringMap {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    TriggerInput {
        namespace: "shop".into(),
        name: "orders".into(),
        trigger_name: "backlog".into(),
        trigger_index: 0,
        metadata: map(metadata),
        secrets: map(secrets),
    }
}

/// Asserts that `stream` sends `active=false` at once, then, after `activate` gave the source
/// work, `active=true` within 10 s.
pub async fn assert_pushes_activation(stream: &mut ActivityStream, activate: impl FnOnce()) {
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("initial state in time");
    assert!(!first.expect("a message").expect("ok"), "inactive at first");
    activate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, stream.next())
            .await
            .expect("activation pushed before the deadline");
        if next.expect("stream open").expect("ok") {
            break;
        }
    }
}
