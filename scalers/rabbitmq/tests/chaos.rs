//! Chaos against the real scaler binary and the real broker: SIGKILL the scaler again and
//! again while the broker holds messages, and SIGSTOP it. After each crash the broker must
//! drop the dead scaler's AMQP connection (none leaks), a restarted scaler reads the same
//! count (the scaler only reads: nothing is lost or consumed), and a stopped scaler answers
//! DEADLINE_EXCEEDED to a caller with a deadline, then recovers on SIGCONT.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Client, TestVhost, amqp_url, management_call, require_rabbit, unique, wait_for};
use ebb_scaler_sdk::proto::v1;
use ebb_scaler_sdk::testing::ScalerProcess;
use tonic::Code;

const BINARY: &str = env!("CARGO_BIN_EXE_ebb-rabbitmq-scaler");

fn request(vhost: &str) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef::default()),
        metadata: HashMap::from([("queueName".to_owned(), "jobs".to_owned())]),
        secrets: HashMap::from([("host".to_owned(), amqp_url(vhost))]),
    }
}

/// AMQP connections the broker holds for `name` (the scaler's `--connection-name`).
fn connections_named(name: &str) -> usize {
    let (status, body) = management_call("GET", "/api/connections?columns=client_properties", "");
    assert_eq!(status, 200, "{body}");
    body.matches(&format!("\"connection_name\":\"{name}\""))
        .count()
}

async fn start(name: &str) -> ScalerProcess {
    ScalerProcess::start(BINARY, "info", false, &["--connection-name", name])
        .await
        .unwrap()
}

async fn queue_length(process: &ScalerProcess, vhost: &str) -> Result<f64, tonic::Status> {
    let mut client = process.v1().await.unwrap();
    let reply = client.get_metrics(request(vhost)).await?.into_inner();
    Ok(reply.metric_values[0].value)
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_kill_9_leaks_no_connection_and_loses_nothing() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-chaos"));
    let client = Client::connect(&vhost.name).await;
    client.declare("jobs").await;
    client.publish("jobs", 7).await;
    let name = unique("ebb-chaos-scaler");
    for round in 0..4 {
        let process = start(&name).await;
        let length = queue_length(&process, &vhost.name).await.unwrap();
        assert_eq!(
            length, 7.0,
            "round {round}: the count survives scaler crashes"
        );
        // The management API lists a new connection after a moment; poll for it.
        wait_for(Duration::from_secs(20), "one pooled connection", || async {
            (connections_named(&name) == 1).then_some(())
        })
        .await;
        process.crash().await.unwrap();
        // The kernel closes the dead process's socket; the broker must drop the connection.
        wait_for(
            Duration::from_secs(20),
            "the broker drops the connection",
            || async { (connections_named(&name) == 0).then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_scaler_misses_deadlines_and_recovers_on_sigcont() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-chaos-stop"));
    let client = Client::connect(&vhost.name).await;
    client.declare("jobs").await;
    client.publish("jobs", 3).await;
    let process = start(&unique("ebb-chaos-stopped")).await;
    assert_eq!(queue_length(&process, &vhost.name).await.unwrap(), 3.0);
    let pid = process.pid().unwrap().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    let mut client_v1 = process.v1().await.unwrap();
    let mut call = tonic::Request::new(request(&vhost.name));
    call.set_timeout(Duration::from_millis(500));
    let stopped = client_v1.get_metrics(call).await.unwrap_err();
    assert!(
        matches!(stopped.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{stopped:?}"
    );
    signal("-CONT");
    let recovered = wait_for(Duration::from_secs(20), "answers after SIGCONT", || {
        let process = &process;
        let vhost = &vhost.name;
        async move { queue_length(process, vhost).await.ok() }
    })
    .await;
    assert_eq!(recovered, 3.0);
    process.stop().await.unwrap();
}
