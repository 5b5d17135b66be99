//! Helpers for tests against the real RabbitMQ on 127.0.0.1 (guest/guest, management API on
//! 15672): unique vhosts and queues that clean up after themselves, publishing with confirms,
//! unacknowledged deliveries, `rabbitmqctl` truth, and deadline-based waiting.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

use ebb_rabbitmq_scaler::address::encode_component;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

pub const AMQP_ADDRESS: &str = "127.0.0.1:5672";
pub const MANAGEMENT_ADDRESS: &str = "127.0.0.1:15672";
pub const MANAGEMENT: &str = "http://127.0.0.1:15672";

/// Fails the test unless RabbitMQ (AMQP and the management API) runs.
pub fn require_rabbit() {
    ebb_scaler_sdk::testing::require_service("RabbitMQ", AMQP_ADDRESS);
    ebb_scaler_sdk::testing::require_service("RabbitMQ management API", MANAGEMENT_ADDRESS);
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:08x}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
pub fn amqp_url(vhost: &str) -> String {
    format!(
        "amqp://guest:guest@127.0.0.1:5672/{}",
        encode_component(vhost)
    )
}

/// `http://guest:guest@127.0.0.1:15672/<vhost>`.
pub fn http_url(vhost: &str) -> String {
    format!(
        "http://guest:guest@127.0.0.1:15672/{}",
        encode_component(vhost)
    )
}

/// A blocking management API call (usable from `Drop`): method, path, JSON body; returns the
/// status code and body.
pub fn management_call(method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(MANAGEMENT_ADDRESS).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // guest:guest
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    let body = if response.contains("Transfer-Encoding: chunked")
        || response.contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// A vhost that exists for one test, with full permissions for guest; deleted on drop.
pub struct TestVhost {
    pub name: String,
}

impl TestVhost {
    pub fn create(name: &str) -> Self {
        let path = format!("/api/vhosts/{}", encode_component(name));
        let (status, body) = management_call("PUT", &path, "{}");
        assert!(
            status == 201 || status == 204,
            "create vhost: {status} {body}"
        );
        let path = format!("/api/permissions/{}/guest", encode_component(name));
        let (status, body) = management_call(
            "PUT",
            &path,
            r#"{"configure":".*","write":".*","read":".*"}"#,
        );
        assert!(
            status == 201 || status == 204,
            "permissions: {status} {body}"
        );
        Self {
            name: name.to_owned(),
        }
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let _ = management_call(
            "DELETE",
            &format!("/api/vhosts/{}", encode_component(&self.name)),
            "",
        );
    }
}

/// Queues created in a vhost that outlives the test (such as `/`), deleted on drop.
pub struct QueueGuard {
    pub vhost: String,
    pub names: Vec<String>,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        for name in &self.names {
            let path = format!(
                "/api/queues/{}/{}",
                encode_component(&self.vhost),
                encode_component(name)
            );
            let _ = management_call("DELETE", &path, "");
        }
    }
}

/// An AMQP client for setting up test state.
pub struct Client {
    pub connection: Connection,
    pub channel: lapin::Channel,
}

impl Client {
    pub async fn connect(vhost: &str) -> Self {
        let connection = Connection::connect(&amqp_url(vhost), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            connection,
            channel,
        }
    }

    pub async fn declare(&self, queue: &str) {
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    /// Declares a durable queue, which survives a broker restart.
    pub async fn declare_durable(&self, queue: &str) {
        let options = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .unwrap();
    }

    /// Publishes `count` persistent messages (kept across a broker restart) with confirms.
    pub async fn publish_persistent(&self, queue: &str, count: usize) {
        for _ in 0..count {
            self.channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    b"work",
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap();
        }
        self.channel.wait_for_confirms().await.unwrap();
    }

    /// Publishes `count` messages to `queue` and waits for the broker's confirms.
    pub async fn publish(&self, queue: &str, count: usize) {
        for _ in 0..count {
            self.channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    b"work",
                    BasicProperties::default(),
                )
                .await
                .unwrap();
        }
        self.channel.wait_for_confirms().await.unwrap();
    }

    /// Takes `count` deliveries from `queue` without acknowledging them; they stay
    /// unacknowledged while the returned consumer lives.
    pub async fn hold_unacked(&self, queue: &str, count: u16) -> (lapin::Channel, lapin::Consumer) {
        let channel = self.connection.create_channel().await.unwrap();
        channel
            .basic_qos(count, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "holder".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut received = Vec::new();
        for _ in 0..count {
            received.push(consumer.next().await.unwrap().unwrap());
        }
        // Deliveries are dropped without ack; they stay unacked until the channel closes.
        drop(received);
        (channel, consumer)
    }
}

/// Ready and unacknowledged counts per queue of a vhost, from `rabbitmqctl list_queues`.
pub fn rabbitmqctl_counts(vhost: &str) -> HashMap<String, (u64, u64)> {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "-p",
            vhost,
            "--formatter",
            "json",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ])
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        output.status.success(),
        "rabbitmqctl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    rows.into_iter()
        .map(|row| {
            (
                row["name"].as_str().unwrap().to_owned(),
                (
                    row["messages_ready"].as_u64().unwrap(),
                    row["messages_unacknowledged"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The broker's connections whose client-given name is `name`.
pub fn connections_named(name: &str) -> Vec<serde_json::Value> {
    let (status, body) = management_call(
        "GET",
        "/api/connections?columns=name,client_properties,vhost,state",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    all.into_iter()
        .filter(|c| c["client_properties"]["connection_name"].as_str() == Some(name))
        .collect()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
