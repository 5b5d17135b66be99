//! No secret through any error path: the real scaler binary gets malformed connection
//! strings and SAS URLs (credentials in `QueueEndpoint=http://user:pass@...`, passwords with
//! unescaped `/`, bad keys, bad settings) and real requests with a wrong key, each carrying a
//! marker secret, as a secret and over KEDA. The marker must show up in no gRPC error, no log
//! line (text and JSON) and not on `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use ebb_scaler_sdk::testing::leaks::{LeakCase, assert_no_leaks};
use tonic::Code;

/// Base64 and DNS-safe, so it fits wherever a key, a password or a host name goes.
const MARKER: &str = "Zq9MARKERx7";
const BINARY: &str = env!("CARGO_BIN_EXE_ebb-azure-queue-scaler");

fn malformed_connections() -> Vec<String> {
    let m = MARKER;
    let tail = "AccountName=devstoreaccount1;AccountKey=a2V5";
    [
        format!("QueueEndpoint=http://user:{m}@127.0.0.1:10001/devstoreaccount1;{tail}"),
        format!("QueueEndpoint=http://user:{m}/x@127.0.0.1:10001/devstoreaccount1;{tail}"),
        format!("QueueEndpoint=http://user:1234/{m}@127.0.0.1:10001/devstoreaccount1;{tail}"),
        format!("QueueEndpoint=http://user:{m}?x@127.0.0.1:10001/a;{tail}"),
        format!("QueueEndpoint=http://{m}@127.0.0.1:10001/a;{tail}"),
        format!("QueueEndpoint=ftp://{m};{tail}"),
        format!("QueueEndpoint={m};{tail}"),
        format!("QueueEndpoint=http://h:{m}/a;{tail}"),
        format!("QueueEndpoint=http://h/a?{m}@x;{tail}"),
        format!("DefaultEndpointsProtocol={m};{tail}"),
        format!("AccountName=a;AccountKey={m}!"),
        format!("AccountKey={m}=="),
        format!("AccountName=a;{m}"),
        m.to_owned(),
        format!("AccountName=a;SharedAccessSignature=sig={m};QueueEndpoint=nope"),
        format!("https://u:{m}@acct.queue.core.windows.net/q?sig=x"),
        format!("https://{m}@acct.queue.core.windows.net/q?sig=x"),
        format!("https://acct.queue.core.windows.net/q?sv=1&x={m}"),
        format!("https://acct.queue.core.windows.net/{m}"),
        format!("http://{m}:abc/q?sig=x"),
        format!("https://acct.queue.core.windows.net/q/{m}@x?sig=s"),
        format!("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://{m}@h"),
        format!("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://u:{m}/x@h"),
        format!("UseDevelopmentStorage=true;DevelopmentStorageProxyUri={m}"),
        format!("AccountName={m}@evil;AccountKey=a2V5"),
        format!("AccountName=a;AccountKey=a2V5;EndpointSuffix={m}/x@y"),
        format!("AccountName=a b;AccountKey={m}=="),
        format!("AccountName=a;AccountKey={m};DefaultEndpointsProtocol=gopher"),
        format!("AccountName=a;AccountKey={m};QueueEndpoint=//h/a"),
        format!("{m}=;;==;"),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_error_log_or_metric_quotes_a_connection_secret() {
    common::require_azurite();
    let mut cases: Vec<LeakCase> = malformed_connections()
        .iter()
        .enumerate()
        .map(|(index, connection)| {
            LeakCase::new(
                format!("malformed connection #{index}"),
                &[("queueName", "orders")],
                &[("connection", connection)],
                Some(Code::InvalidArgument),
            )
        })
        .collect();
    // Plain metadata is not where a connection string belongs, but one put there is still a
    // secret.
    cases.push(LeakCase::new(
        "connection in plain metadata",
        &[
            ("queueName", "orders"),
            (
                "connection",
                &format!("QueueEndpoint=http://u:{MARKER}/x@h/a;AccountName=a;AccountKey=a2V5"),
            ),
        ],
        &[],
        Some(Code::InvalidArgument),
    ));
    let wrong_key = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={MARKER}AAAA=;\
         QueueEndpoint={}",
        common::SHARED_ENDPOINT
    );
    cases.push(
        LeakCase::new(
            "wrong key against Azurite",
            &[("queueName", "orders")],
            &[("connection", &wrong_key)],
            None,
        )
        .measured_only(),
    );
    let wrong_sas = format!(
        "{}/orders?sv=2024-08-04&sig={MARKER}",
        common::SHARED_ENDPOINT
    );
    cases.push(
        LeakCase::new(
            "wrong SAS against Azurite",
            &[("queueName", "orders")],
            &[("connection", &wrong_sas)],
            None,
        )
        .measured_only(),
    );
    let unreachable = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={MARKER}AAAA=;\
         QueueEndpoint=http://127.0.0.1:1/devstoreaccount1"
    );
    cases.push(
        LeakCase::new(
            "unreachable endpoint",
            &[("queueName", "orders")],
            &[("connection", &unreachable)],
            Some(Code::Unavailable),
        )
        .measured_only(),
    );
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let report = assert_no_leaks(BINARY, &["--request-timeout", "2s"], MARKER, &cases).await;
    assert!(report.errors >= cases.len() * 4 * 2);
    let lowercase = MARKER.to_ascii_lowercase();
    for message in &report.messages {
        // Host names come back lowercased from URL parsing.
        assert!(!message.contains(&lowercase), "{message}");
    }
    for logs in &report.logs {
        assert!(
            !logs.contains(&lowercase),
            "the log leaked a lowercased secret"
        );
        assert!(
            logs.contains("measurement failed"),
            "the log was checked: {logs}"
        );
    }
    for message in report
        .messages
        .iter()
        .filter(|m| m.contains("invalid metadata"))
    {
        assert!(
            message.contains("`connection`"),
            "blamed on the connection: {message}"
        );
    }
    assert!(
        report
            .messages
            .iter()
            .any(|message| message.contains("user name or password")),
        "credentials inside QueueEndpoint are refused with a reason"
    );
}
