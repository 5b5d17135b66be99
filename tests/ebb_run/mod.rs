//! A running `ebb run` process with its status server, shared by the tests that drive the
//! real binary.

#![allow(dead_code)]

pub mod terminal;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::support::{free_port, wait_for};

/// A running `ebb run`; interrupted (then killed) when dropped so a failed test leaks nothing.
pub struct EbbRun {
    /// The `ebb run` process.
    pub child: Child,
    /// Port of its status server.
    pub status_port: u16,
    /// Where its output (and its children's, prefixed) goes.
    pub log: std::path::PathBuf,
}

impl EbbRun {
    /// Starts `ebb run -f manifest` (binary `ebb`), output to `log`, and waits for its status
    /// server.
    pub fn start(ebb: &Path, manifest: &Path, log: &Path) -> Self {
        Self::start_with_env(ebb, manifest, log, &[])
    }

    /// [`EbbRun::start`] with extra environment variables for the `ebb` process.
    pub fn start_with_env(ebb: &Path, manifest: &Path, log: &Path, env: &[(&str, &str)]) -> Self {
        let status_port = free_port();
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(ebb)
            .args(["run", "-f"])
            .arg(manifest)
            .args(["--output", "lines", "--status-addr"])
            .arg(format!("127.0.0.1:{status_port}"))
            .envs(env.iter().copied())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let run = Self {
            child,
            status_port,
            log: log.to_path_buf(),
        };
        wait_for("ebb run ready", Duration::from_secs(60), || {
            run.status().is_some()
        });
        run
    }

    /// Its `/status` JSON, when it answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        http_get_json(self.status_port, "/status")
    }

    /// The last `lines` lines of its output, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends SIGINT.
    pub fn interrupt(&self) {
        signal(self.child.id(), "INT");
    }

    /// Waits for it to exit, failing after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ebb run did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EbbRun {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.interrupt();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
    }
}

/// Sends signal `name` (e.g. `INT`, `KILL`) to `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

/// GETs `path` from 127.0.0.1:`port` and parses a 200 answer's JSON body.
pub fn http_get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}
