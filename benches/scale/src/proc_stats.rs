//! Figures read from `/proc`: CPU time and peak RSS of this process, TCP connections on a
//! port, and what machine this is. Linux only, and no unsafe code (so no `getrusage`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::BenchError;

/// `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`. It is 100 on every Linux
/// architecture ebb targets (the kernel ABI fixes it regardless of `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

fn read(file: &str) -> Result<String, BenchError> {
    std::fs::read_to_string(file).map_err(|source| BenchError::io(format!("read {file}"), source))
}

/// User + system CPU seconds used by this process so far (all threads, 10 ms resolution).
pub fn process_cpu_seconds() -> Result<f64, BenchError> {
    let stat = read("/proc/self/stat")?;
    cpu_seconds_from_stat(&stat)
}

fn cpu_seconds_from_stat(stat: &str) -> Result<f64, BenchError> {
    let bad = |message: &str| BenchError::Proc {
        file: "/proc/self/stat".into(),
        message: message.into(),
    };
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let (_, rest) = stat
        .rsplit_once(')')
        .ok_or_else(|| bad("no ')' after the command"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: [0] is state (field 3); utime is field 14, stime field 15.
    let ticks = |index: usize| -> Result<f64, BenchError> {
        fields
            .get(index)
            .and_then(|text| text.parse::<f64>().ok())
            .ok_or_else(|| bad("utime/stime missing"))
    };
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}

fn status_kib(key: &str) -> Result<f64, BenchError> {
    let status = read("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse::<f64>().ok())
        .ok_or_else(|| BenchError::Proc {
            file: "/proc/self/status".into(),
            message: format!("no {key} line"),
        })
}

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
pub fn peak_rss_mib() -> Result<f64, BenchError> {
    Ok(status_kib("VmHWM:")? / 1024.0)
}

/// Resident set size of this process now, in MiB (`VmRSS`).
pub fn rss_mib() -> Result<f64, BenchError> {
    Ok(status_kib("VmRSS:")? / 1024.0)
}

/// Remote ends (`address:port` in the kernel's hex form) of every ESTABLISHED TCP connection
/// whose local port is `port`: the connections a server listening on `port` has accepted.
pub fn established_peers(port: u16) -> Result<BTreeSet<String>, BenchError> {
    let mut peers = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        // tcp6 is absent when IPv6 is disabled; that is not an error.
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        peers.extend(peers_in_table(&table, port));
    }
    Ok(peers)
}

fn peers_in_table(table: &str, port: u16) -> impl Iterator<Item = String> + '_ {
    const ESTABLISHED: &str = "01";
    table.lines().skip(1).filter_map(move |line| {
        let mut fields = line.split_whitespace();
        let _slot = fields.next()?;
        let local = fields.next()?;
        let remote = fields.next()?;
        let state = fields.next()?;
        let local_port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
        (state == ESTABLISHED && local_port == port).then(|| remote.to_owned())
    })
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Kernel release from `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// Total memory in MiB from `/proc/meminfo`.
    pub memory_mib: u64,
}

impl Machine {
    /// Describes this machine; unknown parts are left empty rather than failing the run.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_default();
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            memory_mib,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_come_from_utime_and_stime() {
        let stat = "1234 (ebb bench) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_from_stat(stat).unwrap(), 3.0);
    }

    #[test]
    fn own_figures_are_readable() {
        assert!(process_cpu_seconds().unwrap() >= 0.0);
        assert!(peak_rss_mib().unwrap() > 0.0);
        assert!(rss_mib().unwrap() <= peak_rss_mib().unwrap());
    }

    #[test]
    fn only_established_connections_on_the_port_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
            0: 0100007F:1F90 00000000:0000 0A 0\n\
            1: 0100007F:1F90 0100007F:C350 01 0\n\
            2: 0100007F:C350 0100007F:1F90 01 0\n\
            3: 0100007F:1F90 0100007F:C351 06 0\n";
        let peers: Vec<String> = peers_in_table(table, 0x1F90).collect();
        assert_eq!(peers, vec!["0100007F:C350".to_owned()]);
    }

    #[tokio::test]
    async fn a_live_connection_is_seen() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        assert_eq!(established_peers(port).unwrap().len(), 1);
    }
}
