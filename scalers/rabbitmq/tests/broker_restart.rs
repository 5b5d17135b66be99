//! Broker restart (`rabbitmqctl stop_app` / `start_app`): the scaler answers UNAVAILABLE and
//! reports NOT_SERVING during the outage, recovers by itself afterwards (polling and push), and
//! leaves no connection behind. Alone in its file because it disturbs every RabbitMQ user on
//! the machine; the outage is kept short and the broker is always restarted, also on panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use ebb_rabbitmq_scaler::amqp::PoolOptions;
use ebb_rabbitmq_scaler::{RabbitMqScaler, ScalerOptions};
use ebb_scaler_sdk::proto::v1;
use ebb_scaler_sdk::testing::TestServer;
use ebb_scaler_sdk::tonic_health::pb::HealthCheckRequest;
use ebb_scaler_sdk::tonic_health::pb::health_check_response::ServingStatus;
use futures::StreamExt;
use tonic::Code;

fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops the RabbitMQ application; starts it again when restarted explicitly or dropped.
struct Outage {
    running: bool,
}

impl Outage {
    fn begin() -> Self {
        let outage = Self { running: false };
        rabbitmqctl(&["stop_app"]);
        outage
    }

    fn end(&mut self) {
        if !self.running {
            self.running = true;
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup", "--timeout", "60"]);
        }
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if !self.running {
            self.running = true;
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
            let _ = Command::new("rabbitmqctl")
                .args(["await_startup", "--timeout", "60"])
                .status();
        }
    }
}

async fn serving(server: &mut TestServer) -> i32 {
    server
        .health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn scaler_recovers_from_a_broker_restart_without_leaking_connections() {
    require_rabbit();
    let vhost = TestVhost::create(&unique("ebb-restart"));
    let client = Client::connect(&vhost.name).await;
    client.declare_durable("durable").await;
    client.publish_persistent("durable", 3).await;
    drop(client);

    let connection_name = unique("ebb-test-restart");
    let scaler = RabbitMqScaler::new(ScalerOptions {
        push_interval: Duration::from_millis(100),
        pool: PoolOptions {
            connection_name: connection_name.clone(),
            backoff_max: Duration::from_millis(500),
            ..PoolOptions::default()
        },
    });
    let mut server = TestServer::start(scaler).await.unwrap();
    let trigger = v1::TriggerRequest {
        trigger: Some(v1::TriggerRef::default()),
        metadata: [
            ("host", amqp_url(&vhost.name)),
            ("queueName", "durable".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect::<HashMap<_, _>>(),
        secrets: HashMap::new(),
    };
    let metrics = server
        .v1
        .get_metrics(trigger.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metrics.metric_values[0].value, 3.0);
    assert_eq!(serving(&mut server).await, ServingStatus::Serving as i32);
    let mut push = server
        .v1
        .stream_is_active(trigger.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(push.next().await.unwrap().unwrap().active);

    let mut outage = Outage::begin();
    let status = wait_for(
        Duration::from_secs(30),
        "UNAVAILABLE during the outage",
        || {
            let mut client = server.v1.clone();
            let trigger = trigger.clone();
            async move { client.get_metrics(trigger).await.err() }
        },
    )
    .await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        !status.message().contains("guest:guest"),
        "{}",
        status.message()
    );
    assert_eq!(serving(&mut server).await, ServingStatus::NotServing as i32);
    outage.end();

    // Recovery needs no help: the next polls reconnect after the backoff.
    let value = wait_for(
        Duration::from_secs(60),
        "GetMetrics after the restart",
        || {
            let mut client = server.v1.clone();
            let trigger = trigger.clone();
            async move { client.get_metrics(trigger).await.ok() }
        },
    )
    .await
    .into_inner()
    .metric_values[0]
        .value;
    assert_eq!(value, 3.0, "durable queue keeps its persistent messages");
    assert_eq!(serving(&mut server).await, ServingStatus::Serving as i32);

    // The push stream survived too: emptying the queue flips it.
    let purger = Client::connect(&vhost.name).await;
    purger
        .channel
        .queue_purge(
            "durable".into(),
            lapin::options::QueuePurgeOptions::default(),
        )
        .await
        .unwrap();
    let flipped = tokio::time::timeout(Duration::from_secs(20), push.next())
        .await
        .unwrap();
    assert!(!flipped.unwrap().unwrap().active);

    // Exactly one connection of this scaler exists after the restart.
    let listed = wait_for(
        Duration::from_secs(30),
        "the scaler's new connection in the list",
        || async {
            let found = connections_named(&connection_name);
            (!found.is_empty()).then_some(found.len())
        },
    )
    .await;
    assert_eq!(listed, 1);
}
