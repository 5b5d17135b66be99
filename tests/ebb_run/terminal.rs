//! `ebb` on a terminal: a new pseudo-terminal as its stdout and stderr, read back as a person
//! would see it.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `ebb` whose stdout and stderr are one pseudo-terminal; interrupted (then killed)
/// when dropped.
pub struct OnTerminal {
    /// The `ebb` process.
    pub child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

impl OnTerminal {
    /// Starts `ebb` with `args` on a new pseudo-terminal `columns` wide (stdin is null).
    pub fn start(ebb: &Path, args: &[&str], columns: u16) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("open a pty");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let terminal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(Path::new(OsStr::from_bytes(name.as_bytes())))
            .expect("open the pty's terminal side");
        // The builder (and with it this process's copies of the terminal) is dropped at the end
        // of the statement, so the reader sees the end once ebb and its children let go.
        let child = Command::new(ebb)
            .args(args)
            .env("COLUMNS", columns.to_string())
            .env_remove("EBB_LOG")
            .env_remove("EBB_RUN_OUTPUT")
            .stdin(Stdio::null())
            .stdout(terminal.try_clone().expect("dup the terminal"))
            .stderr(terminal)
            .spawn()
            .expect("start ebb on a terminal");
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let mut master = std::fs::File::from(master);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            // EIO once every holder of the terminal side has closed it.
            while let Ok(read) = master.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .extend_from_slice(&buffer[..read]);
            }
        });
        Self { child, output }
    }

    /// Everything written to the terminal so far, as written (escape sequences included), with
    /// the terminal's `\r\n` line ends as `\n`.
    pub fn raw(&self) -> String {
        let bytes = self
            .output
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit, failing after `within`.
    pub fn interrupt_and_wait(&mut self, within: Duration) -> std::process::ExitStatus {
        super::signal(self.child.id(), "INT");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for ebb") {
                return status;
            }
            assert!(Instant::now() < deadline, "ebb did not exit in {within:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            super::signal(self.child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `text` without its terminal control sequences (CSI: `ESC [` … final byte), as shown.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
