//! The real controller run in the test process against the fake API server, stopped on
//! demand: one harness for the tests that need the controller but not a separate process.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ebb::kubernetes::{ControllerArgs, ControllerError, run_with_client};

/// A running controller task.
pub struct InProcessController {
    task: tokio::task::JoinHandle<Result<(), ControllerError>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// Address of its telemetry server.
    pub telemetry: SocketAddr,
}

/// Controller flags for tests: `identity`, the controller namespace `ebb-system`, and leases
/// short enough that a restart takes over quickly.
pub fn test_args(identity: &str) -> ControllerArgs {
    ControllerArgs {
        identity: Some(identity.to_owned()),
        namespace: "ebb-system".into(),
        lease_duration: Duration::from_secs(3),
        lease_renew_interval: Duration::from_millis(500),
        lease_retry_interval: Duration::from_millis(200),
        ..ControllerArgs::default()
    }
}

impl InProcessController {
    /// Starts the controller with `args` against `client`, telemetry on a free loopback port.
    pub async fn start(client: kube::Client, args: ControllerArgs) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind telemetry");
        let telemetry = listener.local_addr().expect("telemetry address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with_client(client, args, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            task,
            stop: Some(stop),
            telemetry,
        }
    }

    /// Asks it to stop and waits (at most 30 s) for a clean exit.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("controller stops in time")
            .expect("controller task")
            .expect("controller result");
    }
}
