//! Child processes of the benchmark: this same binary re-executed with a subcommand, spoken
//! to with one line per message over stdin/stdout. Each side of a comparison runs in its own
//! process so `/proc/self` figures (CPU, peak RSS) belong to that side alone.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::BenchError;

/// Messages a measuring child (controller side or floor) prints, one JSON object per line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ChildMessage {
    /// Warm-up is over; the measured window starts now.
    WindowStart,
    /// The measured window ended now.
    WindowEnd,
    /// The child's figures (a JSON object whose shape depends on the child).
    Result {
        /// The figures.
        figures: serde_json::Value,
    },
}

impl ChildMessage {
    /// Prints the message as one line on stdout (the parent reads it).
    pub fn emit(&self) -> Result<(), BenchError> {
        use std::io::Write as _;
        let text =
            serde_json::to_string(self).map_err(|source| BenchError::json("message", source))?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .map_err(|source| BenchError::io("write to stdout", source))
    }
}

/// A running child process; killed when dropped.
pub struct Child {
    name: String,
    process: tokio::process::Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Child {
    /// Starts this binary with `args` (a subcommand and its flags).
    pub fn spawn(name: &str, args: &[String]) -> Result<Self, BenchError> {
        let executable = std::env::current_exe()
            .map_err(|source| BenchError::io("find the benchmark's own executable", source))?;
        let mut process = Command::new(executable)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::io(format!("start child `{name}`"), source))?;
        let failed = |what: &str| BenchError::Child {
            child: name.to_owned(),
            message: format!("no {what} pipe"),
        };
        let stdin = process.stdin.take().ok_or_else(|| failed("stdin"))?;
        let stdout = process.stdout.take().ok_or_else(|| failed("stdout"))?;
        Ok(Self {
            name: name.to_owned(),
            process,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Sends one line.
    pub async fn send(&mut self, line: &str) -> Result<(), BenchError> {
        let io = |source| BenchError::io(format!("write to child `{}`", self.name), source);
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(io)?;
        self.stdin.flush().await.map_err(io)
    }

    /// The next line, within `limit`.
    pub async fn line(&mut self, limit: Duration) -> Result<String, BenchError> {
        let name = self.name.clone();
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Err(_) => Err(BenchError::timeout(format!("a line from `{name}`"), limit)),
            Ok(Err(source)) => Err(BenchError::io(format!("read from child `{name}`"), source)),
            Ok(Ok(None)) => Err(BenchError::Child {
                child: name,
                message: "ended early (see its stderr above)".into(),
            }),
            Ok(Ok(Some(line))) => Ok(line),
        }
    }

    /// The next line parsed as JSON `T`, within `limit`.
    pub async fn receive<T: DeserializeOwned>(&mut self, limit: Duration) -> Result<T, BenchError> {
        let line = self.line(limit).await?;
        serde_json::from_str(&line).map_err(|source| {
            BenchError::json(format!("line from `{}`: {line}", self.name), source)
        })
    }

    /// Sends `command` and parses the one-line answer.
    pub async fn ask<T: DeserializeOwned>(&mut self, command: &str) -> Result<T, BenchError> {
        self.send(command).await?;
        self.receive(Duration::from_secs(10)).await
    }

    /// Waits for the process to exit (after `quit` or its own end), killing it after `limit`.
    pub async fn finish(mut self, limit: Duration) {
        if tokio::time::timeout(limit, self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}
