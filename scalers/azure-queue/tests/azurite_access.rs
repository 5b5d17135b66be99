//! The scaler's source access against a real Azurite: counts per strategy, every auth form
//! Azurite accepts, and the failures (wrong key, missing queue, stopped service, recovery).

mod common;

use std::time::Duration;

use common::*;
use ebb_azure_queue_scaler::connection::{DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use ebb_scaler_sdk::ScalerError;

fn value(measurement: &ebb_scaler_sdk::Measurement) -> f64 {
    measurement.values[0].value
}

#[tokio::test]
async fn all_counts_visible_and_invisible_messages() {
    require_azurite();
    let queue = unique_queue("all");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    let scaler = scaler();
    let connection = shared_key_connection(SHARED_ENDPOINT);
    let trigger = parse_trigger(&[("queueName", &queue)], &[("connection", &connection)]).unwrap();

    let empty = measure(&scaler, &trigger).await.unwrap();
    assert_eq!(value(&empty), 0.0);
    assert_eq!(empty.in_flight, Some(0));

    send(&client, 5).await;
    assert_eq!(receive(&client, 2, 300).await, 2);
    let reading = measure(&scaler, &trigger).await.unwrap();
    assert_eq!(
        value(&reading),
        5.0,
        "all counts the 2 received (invisible) messages too"
    );
    assert_eq!(reading.values[0].name, format!("azure-queue-{queue}"));
}

#[tokio::test]
async fn visible_only_excludes_invisible_messages_and_reports_them_in_flight() {
    require_azurite();
    let queue = unique_queue("visible");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    let scaler = scaler();
    let connection = shared_key_connection(SHARED_ENDPOINT);
    let trigger = parse_trigger(
        &[
            ("queueName", &queue),
            ("queueLengthStrategy", "visibleonly"),
        ],
        &[("connection", &connection)],
    )
    .unwrap();

    send(&client, 6).await;
    assert_eq!(receive(&client, 4, 300).await, 4);
    send_hidden(&client, 1, 300).await;
    let reading = measure(&scaler, &trigger).await.unwrap();
    assert_eq!(value(&reading), 2.0, "only the 2 visible messages count");
    assert_eq!(reading.in_flight, Some(5), "4 received + 1 sent invisible");

    // Only invisible messages: nothing to do, but the work in flight is reported.
    assert_eq!(receive(&client, 2, 300).await, 2);
    let reading = measure(&scaler, &trigger).await.unwrap();
    assert_eq!(value(&reading), 0.0);
    assert_eq!(reading.in_flight, Some(7));
}

#[tokio::test]
async fn visible_only_falls_back_to_the_approximate_count_above_32() {
    require_azurite();
    let queue = unique_queue("many");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    let scaler = scaler();
    let connection = shared_key_connection(SHARED_ENDPOINT);
    let visible_only = parse_trigger(
        &[
            ("queueName", &queue),
            ("queueLengthStrategy", "visibleonly"),
        ],
        &[("connection", &connection)],
    )
    .unwrap();
    let all = parse_trigger(&[("queueName", &queue)], &[("connection", &connection)]).unwrap();

    send(&client, 40).await;
    assert_eq!(receive(&client, 3, 300).await, 3);
    let reading = measure(&scaler, &visible_only).await.unwrap();
    assert_eq!(
        value(&reading),
        40.0,
        "37 visible >= 32: the approximate count (40) is used"
    );
    assert_eq!(
        reading.in_flight, None,
        "visible count is not exact, so in-flight is unknown"
    );
    assert_eq!(value(&measure(&scaler, &all).await.unwrap()), 40.0);
}

#[tokio::test]
async fn development_storage_connection_string() {
    require_azurite();
    let queue = unique_queue("devstore");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 3).await;
    let trigger = parse_trigger(
        &[("queueName", &queue)],
        &[("connection", "UseDevelopmentStorage=true")],
    )
    .unwrap();
    assert_eq!(value(&measure(&scaler(), &trigger).await.unwrap()), 3.0);
}

#[tokio::test]
async fn connection_from_env_as_keda_sends_it() {
    require_azurite();
    let queue = unique_queue("fromenv");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 2).await;
    let connection = shared_key_connection(SHARED_ENDPOINT);
    let trigger = parse_trigger(
        &[("queueName", &queue), ("connectionFromEnv", &connection)],
        &[],
    )
    .unwrap();
    assert_eq!(value(&measure(&scaler(), &trigger).await.unwrap()), 2.0);
}

#[tokio::test]
async fn sas_in_a_connection_string_and_as_urls() {
    require_azurite();
    let queue = unique_queue("sas");
    let client = create_queue(SHARED_ENDPOINT, &queue).await;
    send(&client, 4).await;
    assert_eq!(receive(&client, 1, 300).await, 1);
    // Reading metadata and peeking need only `r`.
    let sas = account_sas("r");
    let scaler = scaler();
    for connection in [
        format!("QueueEndpoint={SHARED_ENDPOINT};SharedAccessSignature={sas}"),
        format!("{SHARED_ENDPOINT}?{sas}"),
        format!("{SHARED_ENDPOINT}/{queue}?{sas}"),
    ] {
        for (strategy, expected) in [("all", 4.0), ("visibleonly", 3.0)] {
            let trigger = parse_trigger(
                &[("queueName", &queue), ("queueLengthStrategy", strategy)],
                &[("connection", &connection)],
            )
            .unwrap();
            let reading = measure(&scaler, &trigger).await.unwrap();
            assert_eq!(value(&reading), expected, "{strategy} via SAS");
        }
    }
}

#[tokio::test]
async fn wrong_key_is_rejected_without_leaking_it() {
    require_azurite();
    let queue = unique_queue("wrongkey");
    create_queue(SHARED_ENDPOINT, &queue).await;
    // A well-formed key that is not the account's.
    let wrong_key = "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3JvbmdrZXk=";
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={wrong_key};QueueEndpoint={SHARED_ENDPOINT}"
    );
    let trigger = parse_trigger(&[("queueName", &queue)], &[("connection", &connection)]).unwrap();
    let error = measure(&scaler(), &trigger).await.unwrap_err();
    assert!(
        matches!(
            error,
            ScalerError::Unauthenticated(_) | ScalerError::PermissionDenied(_)
        ),
        "{error:?}"
    );
    eprintln!("wrong key: {error}");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(wrong_key) && !shown.contains("d3JvbmdrZXl3"),
        "{shown}"
    );
    assert!(!shown.contains(DEV_ACCOUNT_KEY));

    let bad_sas = account_sas("rlp").replace("sig=", "sig=AAAA");
    let sas_trigger = parse_trigger(
        &[("queueName", &queue)],
        &[("connection", &format!("{SHARED_ENDPOINT}?{bad_sas}"))],
    )
    .unwrap();
    let error = measure(&scaler(), &sas_trigger).await.unwrap_err();
    assert!(
        matches!(
            error,
            ScalerError::Unauthenticated(_) | ScalerError::PermissionDenied(_)
        ),
        "{error:?}"
    );
    eprintln!("bad SAS: {error}");
    assert!(
        !format!("{error} {error:?}").contains("sig=AAAA"),
        "{error}"
    );
}

#[tokio::test]
async fn sas_without_read_permission_is_permission_denied() {
    require_azurite();
    let queue = unique_queue("noread");
    create_queue(SHARED_ENDPOINT, &queue).await;
    let sas = account_sas("al");
    let trigger = parse_trigger(
        &[("queueName", &queue)],
        &[("connection", &format!("{SHARED_ENDPOINT}?{sas}"))],
    )
    .unwrap();
    let error = measure(&scaler(), &trigger).await.unwrap_err();
    eprintln!("no read permission: {error}");
    let ScalerError::PermissionDenied(message) = &error else {
        panic!("expected PermissionDenied, got {error:?}");
    };
    assert!(
        message.contains("AuthorizationPermissionMismatch"),
        "{message}"
    );
    assert!(!message.contains("sig="), "{message}");
}

#[tokio::test]
async fn missing_queue_is_not_found() {
    require_azurite();
    let queue = unique_queue("missing");
    let connection = shared_key_connection(SHARED_ENDPOINT);
    for strategy in ["all", "visibleonly"] {
        let trigger = parse_trigger(
            &[("queueName", &queue), ("queueLengthStrategy", strategy)],
            &[("connection", &connection)],
        )
        .unwrap();
        let error = measure(&scaler(), &trigger).await.unwrap_err();
        eprintln!("missing queue: {error}");
        let ScalerError::NotFound(message) = error else {
            panic!("expected NotFound, got {error:?}");
        };
        assert!(message.contains(&queue), "{message}");
    }
}

#[tokio::test]
async fn stopped_azurite_is_unavailable_then_recovers() {
    let mut azurite = OwnAzurite::start().await;
    let endpoint = azurite.endpoint();
    let queue = unique_queue("outage");
    let client = create_queue(&endpoint, &queue).await;
    send(&client, 2).await;
    let scaler = scaler();
    let connection = shared_key_connection(&endpoint);
    let trigger = parse_trigger(&[("queueName", &queue)], &[("connection", &connection)]).unwrap();
    assert_eq!(value(&measure(&scaler, &trigger).await.unwrap()), 2.0);

    azurite.stop();
    let error = measure(&scaler, &trigger).await.unwrap_err();
    eprintln!("stopped: {error}");
    let ScalerError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.contains(&format!("127.0.0.1:{}", azurite.port)),
        "{message}"
    );
    assert!(!message.contains(DEV_ACCOUNT_KEY));

    azurite.resume().await;
    // The in-memory emulator comes back empty.
    let client = create_queue(&endpoint, &queue).await;
    send(&client, 1).await;
    let recovered = eventually(Duration::from_secs(20), || async {
        matches!(measure(&scaler, &trigger).await, Ok(m) if value(&m) == 1.0)
    })
    .await;
    assert!(
        recovered,
        "the same scaler (same pooled client) recovers after the restart"
    );
}
