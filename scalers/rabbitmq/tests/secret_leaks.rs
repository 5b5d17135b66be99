//! No secret through any error path: the real scaler binary gets 50+ malformed broker URLs
//! (passwords with unescaped `/`, `?`, `#`, bad ports, bad escapes, bad options) and triggers
//! that reach the real broker with a wrong password, each carrying a marker password, in plain
//! metadata, in secrets and over KEDA. The marker must show up in no gRPC error, no log line
//! (text and JSON) and not on `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use ebb_scaler_sdk::testing::leaks::{LeakCase, assert_no_leaks};
use tonic::Code;

const MARKER: &str = "Zq9MARKERx7";
const BINARY: &str = env!("CARGO_BIN_EXE_ebb-rabbitmq-scaler");

/// `host` values that are malformed: each must be INVALID_ARGUMENT without the marker.
fn malformed_hosts() -> Vec<String> {
    let m = MARKER;
    [
        format!("amqp://user:{m}/x@127.0.0.1:5672/%2F"),
        format!("amqp://user:{m}?x@127.0.0.1:5672/%2F"),
        format!("amqp://user:x/{m}@127.0.0.1:5672/%2F"),
        format!("amqp://user:x?{m}@127.0.0.1:5672/%2F"),
        format!("amqps://user:{m}/x@rabbit.example:5671/%2F"),
        format!("http://user:{m}/x@127.0.0.1:15672/%2F"),
        format!("https://user:{m}?q@rabbit.example/%2F"),
        format!("amqp://user:{m}"),
        format!("amqp://user:{m}@"),
        format!("amqp://user:{m}@:5672"),
        format!("amqp://user:{m}@rabbit:99999"),
        format!("amqp://user:{m}@rabbit:0"),
        format!("amqp://user:{m}@rabbit:-1"),
        format!("amqp://user:{m}@rabbit:abc"),
        format!("amqp://user:{m}@rabbit:5672:5673"),
        format!("amqp://user:{m}@[::1"),
        format!("amqp://user:{m}@[]:5672"),
        format!("amqp://user:{m}%FF@rabbit"),
        format!("amqp://us%FFer:{m}@rabbit"),
        format!("amqp://user:{m}@rabbit/%FF"),
        format!("ftp://user:{m}@rabbit"),
        format!("{m}://rabbit"),
        format!("user:{m}@rabbit"),
        format!("amqp:/user:{m}@rabbit"),
        format!("AMQP://user:{m}/x@RABBIT"),
        format!("amqp://user:{m}@rabbit:5672/%2F?heartbeat=abc"),
        format!("amqp://user:{m}@rabbit:5672/%2F?heartbeat=-1"),
        format!("amqp://user:{m}@rabbit:5672/%2F?channel_max=x"),
        format!("amqp://user:{m}@rabbit:5672/%2F?frame_max=99999999999999999999"),
        format!("amqp://user:{m}@rabbit:5672/%2F?heartbeat={m}"),
        format!("amqp://user:{m}@rabbit:5672/%2F?x=@"),
        format!("amqp://user:{m}:more/x@rabbit"),
        format!("amqp://:{m}/@rabbit"),
        format!("amqp://user:{m}@rabbit:5672/a/b@c"),
        format!("  amqp://user:{m}/x@rabbit  "),
        format!("amqp://{m}/x@rabbit"),
        format!("amqp://{m}?@rabbit"),
        format!("https://{m}@rabbit:abc"),
        format!("amqp://user%3A{m}/x@rabbit"),
        format!("amqp://user:{m}@rabbit:5672/%2F?heartbeat=1/x@y"),
        format!("http://user:{m}#frag/x@127.0.0.1:15672/%2F"),
        format!("amqp://user:{m}@@/x@rabbit"),
        format!("amqp://user:{m}@rabbit:65536"),
        format!("amqps://user:{m}@rabbit:5671/%2F?connection_timeout=soon"),
        String::new(),
    ]
    .into()
}

/// Well-formed hosts whose other keys are wrong: INVALID_ARGUMENT, without the marker.
fn bad_other_keys() -> Vec<LeakCase> {
    let host = format!("amqp://user:{MARKER}@127.0.0.1:5672/%2F");
    let http = format!("http://user:{MARKER}@127.0.0.1:15672/%2F");
    let invalid = Some(Code::InvalidArgument);
    let case = |name: &str, host: &str, extra: &[(&str, &str)]| {
        let mut metadata = vec![("queueName", "q")];
        metadata.extend_from_slice(extra);
        LeakCase::new(name, &metadata, &[("host", host)], invalid)
    };
    vec![
        case("protocol mismatch", &http, &[("protocol", "amqp")]),
        case("rate over AMQP", &host, &[("mode", "MessageRate")]),
        case("regex over AMQP", &host, &[("useRegex", "true")]),
        case("TLS material without TLS", &host, &[("ca", "x")]),
        case("tiny target", &host, &[("value", "1e-320")]),
        case("negative page size", &http, &[("pageSize", "-5")]),
        case("zero timeout", &host, &[("timeout", "0")]),
        case("empty queue", &host, &[("queueName", " ")]),
        case("cert without key", &host, &[("cert", "x")]),
        LeakCase::new(
            "password key with a malformed host",
            &[("queueName", "q"), ("host", "amqp://user@rabbit:abc")],
            &[("password", MARKER)],
            invalid,
        ),
    ]
}

/// Triggers that reach the real broker (or fail to): any code, never the marker.
fn reaching_the_broker() -> Vec<LeakCase> {
    let m = MARKER;
    let garbage_ca = format!("-----BEGIN CERTIFICATE-----\n{m}\n-----END CERTIFICATE-----\n");
    vec![
        LeakCase::new(
            "wrong password over AMQP",
            &[("queueName", "q")],
            &[("host", &format!("amqp://guest:{m}@127.0.0.1:5672/%2F"))],
            Some(Code::Unauthenticated),
        )
        .measured_only(),
        LeakCase::new(
            "wrong password with # over AMQP",
            &[("queueName", "q")],
            &[("host", &format!("amqp://guest:{m}#x@127.0.0.1:5672/%2F"))],
            Some(Code::Unauthenticated),
        )
        .measured_only(),
        LeakCase::new(
            "wrong password over HTTP",
            &[("queueName", "q")],
            &[("host", &format!("http://guest:{m}@127.0.0.1:15672/%2F"))],
            Some(Code::Unauthenticated),
        )
        .measured_only(),
        LeakCase::new(
            "password key, wrong",
            &[
                ("queueName", "q"),
                ("host", "amqp://guest@127.0.0.1:5672/%2F"),
            ],
            &[("password", m)],
            Some(Code::Unauthenticated),
        )
        .measured_only(),
        // The broker's own "cannot connect to broker" log line names the broker: a token as
        // the user name, or a credential in the query, is masked there as in the error.
        LeakCase::new(
            "token as the user name over AMQP",
            &[("queueName", "q")],
            &[("host", &format!("amqp://{m}@127.0.0.1:5672/%2F"))],
            Some(Code::Unauthenticated),
        )
        .measured_only(),
        LeakCase::new(
            "credential in the query, unreachable port",
            &[("queueName", "q"), ("timeout", "2s")],
            &[(
                "host",
                &format!("amqp://guest:guest@127.0.0.1:1/%2F?auth_token={m}"),
            )],
            Some(Code::Unavailable),
        )
        .measured_only(),
        LeakCase::new(
            "unreachable port",
            &[("queueName", "q"), ("timeout", "2s")],
            &[("host", &format!("amqp://guest:{m}@127.0.0.1:1/%2F"))],
            Some(Code::Unavailable),
        )
        .measured_only(),
        LeakCase::new(
            "garbage CA",
            &[("queueName", "q"), ("ca", &garbage_ca)],
            &[("host", &format!("amqps://guest:{m}@127.0.0.1:5671/%2F"))],
            Some(Code::InvalidArgument),
        )
        .measured_only(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn no_error_log_or_metric_quotes_a_password() {
    common::require_rabbit();
    let mut cases = Vec::new();
    for (index, host) in malformed_hosts().iter().enumerate() {
        let invalid = Some(Code::InvalidArgument);
        // `host` as a secret and as plain metadata: a secret in the wrong place is still one.
        cases.push(LeakCase::new(
            format!("malformed host #{index} as a secret"),
            &[("queueName", "q")],
            &[("host", host)],
            invalid,
        ));
        cases.push(LeakCase::new(
            format!("malformed host #{index} in plain metadata"),
            &[("queueName", "q"), ("host", host)],
            &[],
            invalid,
        ));
    }
    cases.extend(bad_other_keys());
    let reaching = reaching_the_broker();
    let measured_only = reaching.len();
    cases.extend(reaching);
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let report = assert_no_leaks(BINARY, &["--reconnect-max", "200ms"], MARKER, &cases).await;
    // Every call of every case failed (but GetMetricSpec twice per valid trigger): the checks
    // above saw real error text.
    assert_eq!(report.errors, (cases.len() * 6 - measured_only * 2) * 2);
    let heartbeat = report
        .messages
        .iter()
        .find(|message| message.contains("connection options"))
        .expect("the bad heartbeat is explained");
    assert!(heartbeat.contains("`host`"), "{heartbeat}");
    assert!(
        report
            .messages
            .iter()
            .any(|message| message.contains("invalid metadata `pageSize`")),
        "pageSize=-5 is reported under its own key"
    );
    for logs in &report.logs {
        assert!(
            logs.contains("measurement failed"),
            "failed measurements are logged (at debug), so the log was checked: {logs}"
        );
    }
}
