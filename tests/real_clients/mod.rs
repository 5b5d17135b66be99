//! The fake API server as a separate process (`ebb-fake-apiserver`) and the real clients the
//! tests drive against it: kubectl, and the venv's Python with the official `kubernetes`
//! client and `helm-python-sdk`. A missing client fails the test, naming
//! `scripts/services.sh`, which installs them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support;

pub mod cluster;
pub mod helm;

/// A running `ebb-fake-apiserver`, killed on drop, with the kubeconfig it wrote.
pub struct FakeApiProcess {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for FakeApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FakeApiProcess {
    /// Starts the binary on a free port and waits for its kubeconfig.
    pub fn start() -> Self {
        let binary = support::binary("ebb-fake-apiserver", "ebb-fake-apiserver");
        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ebb-fake-apiserver");
        let mut server = Self { child, dir };
        support::wait_for(
            "the fake API server's kubeconfig",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!("ebb-fake-apiserver exited with {status}");
                }
                kubeconfig.exists()
            },
        );
        server
    }

    /// Sends SIGTERM and waits (up to 10 s) for the process to exit; its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let mut status = None;
        support::wait_for(
            "ebb-fake-apiserver to exit on SIGTERM",
            Duration::from_secs(10),
            || {
                status = self.child.try_wait().ok().flatten();
                status.is_some()
            },
        );
        status.expect("exited")
    }

    /// The kubeconfig file the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs kubectl with `args` against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        kubectl_with(&self.kubeconfig(), args)
    }

    /// Runs kubectl and returns its stdout, failing the test when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        kubectl_ok_with(&self.kubeconfig(), args)
    }

    /// Runs a Python script from `tests/python` with the venv's Python, the kubeconfig in
    /// `KUBECONFIG`, and `args`.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        Command::new(venv_python())
            .arg(support::workspace_root().join("tests/python").join(script))
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .current_dir(support::workspace_root())
            .output()
            .expect("run the venv's Python")
    }
}

/// Runs kubectl with `args` against the API server `kubeconfig` names.
pub fn kubectl_with(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(kubectl())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(support::workspace_root())
        .output()
        .expect("run kubectl")
}

/// Runs kubectl and returns its stdout, failing the test (with both outputs) when it fails.
pub fn kubectl_ok_with(kubeconfig: &Path, args: &[&str]) -> String {
    let output = kubectl_with(kubeconfig, args);
    assert!(
        output.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// kubectl from `PATH`; its absence fails the test.
pub fn kubectl() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("kubectl is not installed: run scripts/services.sh, which installs it")
    })
}

/// The venv's Python with `module` importable; a missing venv or package fails the test.
pub fn require_python_module(module: &str) -> PathBuf {
    let python = venv_python();
    let importable = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        importable,
        "the Python package {module} is missing from {}: run scripts/services.sh, which installs it",
        python.display()
    );
    python
}

fn venv_python() -> PathBuf {
    let python = support::workspace_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/services.sh, which creates the venv",
        python.display()
    );
    python
}

/// The combined output of a finished command, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The cells of line `index` (0 is the header) of a `kubectl get` table.
pub fn table_cells(table: &str, index: usize) -> Vec<&str> {
    table
        .lines()
        .nth(index)
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}
