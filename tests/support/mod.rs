//! Shared helpers for the root crate's integration tests: finding workspace binaries and
//! deciding what to do when a service the test needs is missing.

#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Serialises nested `cargo build` calls from tests running in parallel.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Path of binary `bin` from workspace package `package`, building it (debug) if needed.
/// `cargo test --workspace` has normally built it already, so this is a quick no-op then.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build -p {package} --bin {bin} failed"
    );
    target_dir().join("debug").join(bin)
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

/// True when `address` accepts TCP connections. When it does not: under CI (`CI=true`) the
/// test fails, because CI must provide every service; locally the caller skips, loudly.
pub fn require_service(name: &str, address: &str) -> bool {
    let reachable = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if reachable {
        return true;
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{name} is not reachable at {address}, and CI must provide it");
    }
    eprintln!(
        "\n!!! SKIPPING: {name} is not reachable at {address}. Run scripts/services.sh to start it. !!!\n"
    );
    false
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
