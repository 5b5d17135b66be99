//! `ebb status`: the live state of every object, read from the process's own status endpoint
//! (`/status` of `ebb run --status-addr` or of the controller's metrics address), not from the
//! API server, which holds readings only as often as `--status-readings-interval` allows.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::local::status::{ObjectView, Snapshot, render_table};

/// `ebb status` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The controller's metrics address (`--metrics-listen`) or `ebb run --status-addr`, as
    /// HOST:PORT.
    #[arg(long, env = "EBB_STATUS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Print the raw JSON instead of the table.
    #[arg(long, env = "EBB_STATUS_JSON")]
    pub json: bool,
    /// How long to wait for the answer.
    #[arg(long, env = "EBB_STATUS_TIMEOUT", default_value = "5s", value_parser = crate::process::parse_duration)]
    pub timeout: Duration,
}

/// Why `ebb status` failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusCliError {
    /// The address did not answer.
    #[error("cannot reach {addr}: {source}")]
    Connect {
        /// The address asked.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout {
        /// The address asked.
        addr: String,
        /// The limit.
        timeout: Duration,
    },
    /// The answer was not a 200 with the status JSON.
    #[error("{addr}/status answered {detail}")]
    BadAnswer {
        /// The address asked.
        addr: String,
        /// What came back.
        detail: String,
    },
}

/// `GET http://addr/status` over plain HTTP/1.1, the body as JSON.
pub async fn fetch(addr: &str, timeout: Duration) -> Result<serde_json::Value, StatusCliError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "GET /status HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| StatusCliError::Timeout {
            addr: addr.to_owned(),
            timeout,
        })?
        .map_err(|source| StatusCliError::Connect {
            addr: addr.to_owned(),
            source,
        })?;
    let bad = |detail: String| StatusCliError::BadAnswer {
        addr: addr.to_owned(),
        detail,
    };
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no HTTP answer".into()))?;
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split(' ').nth(1) != Some("200") {
        return Err(bad(
            crate::spec::terminal_safe(status_line, true).into_owned()
        ));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(bad("a chunked body, which this client does not read".into()));
    }
    serde_json::from_str(body).map_err(|error| bad(format!("no status JSON: {error}")))
}

/// The table `ebb status` prints: one line per object with its trigger values against their
/// targets, whether it is active, replicas current → desired and the last decision's reason.
pub fn table(status: &serde_json::Value, width: usize) -> String {
    let objects: Vec<ObjectView> = status
        .get("objects")
        .and_then(|objects| serde_json::from_value(objects.clone()).ok())
        .unwrap_or_default();
    let snapshot = Snapshot {
        objects,
        ..Snapshot::default()
    };
    render_table(&snapshot, width)
}

/// Runs `ebb status`: prints the table (or the JSON) on stdout.
pub async fn run(args: StatusArgs) -> Result<(), StatusCliError> {
    let status = fetch(&args.addr, args.timeout).await?;
    if args.json {
        println!("{status:#}");
    } else {
        print!("{}", table(&status, usize::MAX));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_table_shows_value_target_activity_replicas_and_reason() {
        let status = json!({"objects": [{
            "name": "shop/orders",
            "status": {
                "conditions": [{"type": "Active", "status": "True", "reason": "TriggerActive"}],
                "triggers": [{"name": "queue", "health": "Happy", "numberOfFailures": 0, "lastValue": 12.0, "target": 5.0}],
                "desiredReplicas": 3, "currentReplicas": 2
            },
            "lastReason": "Scaled: scaled from 2 to 3 replicas: queue 12/5"
        }]});
        let table = super::table(&status, 200);
        let line = table.lines().nth(1).unwrap();
        for part in [
            "shop/orders",
            "queue 12/5",
            "yes",
            "2 → 3",
            "Scaled: scaled from 2 to 3",
        ] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
    }
}
