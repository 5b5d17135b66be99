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

/// The workspace target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
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
