//! Shared helpers for the root crate's integration tests: finding workspace binaries and
//! deciding what to do when a service the test needs is missing.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Whether this test process has built the workspace's binaries yet.
static BUILT: Mutex<bool> = Mutex::new(false);

/// Path of binary `bin` from workspace package `package` (debug), built up to date.
///
/// Builds every workspace binary in one `cargo build --workspace --bins`, once per test
/// process: building single packages resolves features differently from the workspace and
/// rebuilds shared crates back and forth. `scripts/test.sh` runs the same command before the
/// tests, so here it is a quick no-op.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        *built = true;
    }
    let path = target_dir().join("debug").join(bin);
    assert!(
        path.exists(),
        "{package} has no binary {bin} at {}",
        path.display()
    );
    path
}

/// The workspace root: the nearest directory above the crate that holds `Cargo.lock`, so this
/// module also serves scaler crates that include it by path.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// The workspace target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs `ebb` with `args` and returns its output; the binary is built like any other.
pub fn run_ebb(args: &[&str]) -> std::process::Output {
    Command::new(binary("ebb", "ebb"))
        .args(args)
        .output()
        .expect("run ebb")
}

/// Starts workspace binary `bin` of `package` with `args`, stderr to a temporary log file.
pub fn spawn(package: &str, bin: &str, args: &[&str]) -> (std::process::Child, PathBuf) {
    let log = std::env::temp_dir().join(format!("{bin}-{}.log", std::process::id()));
    let file = std::fs::File::create(&log).expect("create log file");
    let child = Command::new(binary(package, bin))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn scaler");
    (child, log)
}

/// A loopback address with a port free right now.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("{}", listener.local_addr().expect("addr"))
}

/// Fails the test unless `address` accepts TCP connections, naming the service and
/// `scripts/services.sh` (the README's test command starts every service): the SDK's rule,
/// so every crate's tests share it.
pub fn require_service(name: &str, address: &str) {
    ebb_scaler_sdk::testing::require_service(name, address);
}

/// Waits until `address` accepts TCP connections, failing after `deadline`.
pub fn wait_for_port(address: &str, deadline: Duration) {
    let start = std::time::Instant::now();
    while !address
        .parse()
        .is_ok_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
    {
        assert!(
            start.elapsed() < deadline,
            "nothing listens on {address} after {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills a spawned child when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `check` holds, failing the test with `what` after `within`.
pub fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` still runs (a zombie waiting for its reaper counts as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind a free port")
}
