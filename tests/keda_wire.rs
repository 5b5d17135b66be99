//! Byte-level checks of KEDA's `externalscaler` messages: what ebb encodes must be exactly the
//! bytes KEDA's own (Go) stubs produce and expect, so a wrong field number, wire type or
//! integer encoding fails here. Expected bytes are written out by hand from the protobuf
//! encoding rules: a tag byte is `(field_number << 3) | wire_type`, with wire type 0 = varint,
//! 1 = 64-bit (double), 2 = length-delimited (string, message, map entry).

use std::collections::HashMap;

use ebb::proto::keda;
use ebb::protocol::{keda_metric_value, keda_target_value};
use prost::Message;

#[test]
fn scaled_object_ref_bytes() {
    let message = keda::ScaledObjectRef {
        name: "so".into(),
        namespace: "ns".into(),
        scaler_metadata: HashMap::from([("k".to_owned(), "v".to_owned())]),
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x02, b's', b'o',       // name: field 1, LEN -> (1 << 3) | 2 = 0x0a; length 2
        0x12, 0x02, b'n', b's',       // namespace: field 2, LEN -> (2 << 3) | 2 = 0x12
        0x1a, 0x06,                   // scalerMetadata: field 3, LEN -> (3 << 3) | 2 = 0x1a; entry of 6 bytes
        0x0a, 0x01, b'k',             //   map entry key: field 1, LEN
        0x12, 0x01, b'v',             //   map entry value: field 2, LEN
    ];
    assert_eq!(message.encode_to_vec(), expected);
}

#[test]
fn is_active_response_bytes() {
    // result: field 1, VARINT -> (1 << 3) | 0 = 0x08; true = 1.
    assert_eq!(
        keda::IsActiveResponse { result: true }.encode_to_vec(),
        [0x08, 0x01]
    );
    // proto3 leaves default values off the wire entirely.
    assert!(
        keda::IsActiveResponse { result: false }
            .encode_to_vec()
            .is_empty()
    );
}

#[test]
fn metric_spec_response_bytes() {
    let message = keda::GetMetricSpecResponse {
        metric_specs: vec![keda::MetricSpec {
            metric_name: "q".into(),
            target_size: 5,
            target_size_float: 2.5,
        }],
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x0e,                   // metricSpecs: field 1, LEN -> 0x0a; 3 + 2 + 9 = 14 bytes
        0x0a, 0x01, b'q',             //   metricName: field 1, LEN -> 0x0a
        0x10, 0x05,                   //   targetSize: field 2, VARINT -> (2 << 3) | 0 = 0x10; 5
        0x19,                         //   targetSizeFloat: field 3, I64 -> (3 << 3) | 1 = 0x19
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40, // 2.5 = 0x4004_0000_0000_0000, little-endian
    ];
    assert_eq!(message.encode_to_vec(), expected);
}

#[test]
fn get_metrics_request_bytes() {
    let message = keda::GetMetricsRequest {
        scaled_object_ref: Some(keda::ScaledObjectRef {
            name: "a".into(),
            namespace: String::new(),
            scaler_metadata: HashMap::new(),
        }),
        metric_name: "m".into(),
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x03,                   // scaledObjectRef: field 1, LEN -> 0x0a; 3 bytes
        0x0a, 0x01, b'a',             //   name: field 1, LEN
        0x12, 0x01, b'm',             // metricName: field 2, LEN -> (2 << 3) | 2 = 0x12
    ];
    assert_eq!(message.encode_to_vec(), expected);
}

#[test]
fn get_metrics_response_bytes() {
    let message = keda::GetMetricsResponse {
        metric_values: vec![keda::MetricValue {
            metric_name: "m".into(),
            metric_value: 7,
            metric_value_float: 1.5,
        }],
    };
    #[rustfmt::skip]
    let expected = [
        0x0a, 0x0e,                   // metricValues: field 1, LEN; 14 bytes
        0x0a, 0x01, b'm',             //   metricName: field 1, LEN
        0x10, 0x07,                   //   metricValue: field 2, VARINT -> 0x10; 7
        0x19,                         //   metricValueFloat: field 3, I64 -> 0x19
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f, // 1.5 = 0x3ff8_0000_0000_0000, little-endian
    ];
    assert_eq!(message.encode_to_vec(), expected);
}

#[test]
fn negative_int64_is_plain_ten_byte_varint() {
    // int64 (not sint64): -1 is two's complement, 0xffff_ffff_ffff_ffff, as a 10-byte varint.
    let message = keda::MetricValue {
        metric_name: String::new(),
        metric_value: -1,
        metric_value_float: 0.0,
    };
    #[rustfmt::skip]
    let expected = [
        0x10,                                                       // field 2, VARINT
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // 64 one-bits, 7 per byte
    ];
    assert_eq!(message.encode_to_vec(), expected);
}

#[test]
fn decodes_bytes_a_keda_scaler_sends() {
    // A MetricValue as an old scaler sends it: name "queue", integer value 300, no float.
    #[rustfmt::skip]
    let old = [
        0x0a, 0x05, b'q', b'u', b'e', b'u', b'e', // metricName: field 1, LEN, "queue"
        0x10, 0xac, 0x02,                         // metricValue: field 2, VARINT; 300 = 0b10_0101100 -> 0xac 0x02
    ];
    let value = keda::MetricValue::decode(&old[..]).expect("decode");
    assert_eq!(value.metric_name, "queue");
    assert_eq!(value.metric_value, 300);
    assert_eq!(value.metric_value_float, 0.0);
    assert_eq!(
        keda_metric_value(&value),
        Ok(300.0),
        "float absent: the integer is read"
    );

    // A newer scaler sends both, plus a field this protocol does not know (field 9, VARINT ->
    // (9 << 3) | 0 = 0x48), which must be skipped.
    #[rustfmt::skip]
    let new = [
        0x10, 0x02,                                     // metricValue: 2
        0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40, // metricValueFloat: 2.5
        0x48, 0x01,                                     // unknown field 9
    ];
    let value = keda::MetricValue::decode(&new[..]).expect("decode");
    assert_eq!(
        keda_metric_value(&value),
        Ok(2.5),
        "float > 0 wins over the integer"
    );
}

#[test]
fn decodes_a_spec_with_only_the_deprecated_target() {
    #[rustfmt::skip]
    let bytes = [
        0x0a, 0x05,                   // metricSpecs: field 1, LEN; 5 bytes
        0x0a, 0x01, b'x',             //   metricName "x"
        0x10, 0x0a,                   //   targetSize: 10
    ];
    let spec = keda::GetMetricSpecResponse::decode(&bytes[..]).expect("decode");
    assert_eq!(spec.metric_specs.len(), 1);
    assert_eq!(keda_target_value(&spec.metric_specs[0]), Ok(10.0));
}

#[test]
fn float_wins_rule() {
    let value = |int: i64, float: f64| keda::MetricValue {
        metric_name: "m".into(),
        metric_value: int,
        metric_value_float: float,
    };
    assert_eq!(keda_metric_value(&value(7, 2.5)), Ok(2.5), "float > 0 wins");
    assert_eq!(
        keda_metric_value(&value(7, 0.0)),
        Ok(7.0),
        "float 0: the integer"
    );
    assert_eq!(
        keda_metric_value(&value(7, -3.0)),
        Ok(7.0),
        "negative float: the integer"
    );
    assert_eq!(
        keda_metric_value(&value(-7, 0.0)),
        Ok(0.0),
        "negative integer reads as 0"
    );
    // NaN and infinities are a broken answer (a failed poll), never 0 or the integer.
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(
            keda_metric_value(&value(7, bad)).is_err(),
            "{bad} float is refused"
        );
    }
    let spec = keda::MetricSpec {
        metric_name: "m".into(),
        target_size: 4,
        target_size_float: 0.5,
    };
    assert_eq!(keda_target_value(&spec), Ok(0.5));
}

#[test]
fn service_and_method_names_match_keda() {
    let descriptors = prost_types::FileDescriptorSet::decode(ebb::proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let file = descriptors
        .file
        .iter()
        .find(|file| file.package() == "externalscaler")
        .expect("externalscaler package");
    let service = file
        .service
        .iter()
        .find(|service| service.name() == "ExternalScaler")
        .expect("service");
    let methods: Vec<(&str, &str, &str, bool)> = service
        .method
        .iter()
        .map(|method| {
            (
                method.name(),
                method.input_type(),
                method.output_type(),
                method.server_streaming(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        [
            (
                "IsActive",
                ".externalscaler.ScaledObjectRef",
                ".externalscaler.IsActiveResponse",
                false
            ),
            (
                "StreamIsActive",
                ".externalscaler.ScaledObjectRef",
                ".externalscaler.IsActiveResponse",
                true
            ),
            (
                "GetMetricSpec",
                ".externalscaler.ScaledObjectRef",
                ".externalscaler.GetMetricSpecResponse",
                false
            ),
            (
                "GetMetrics",
                ".externalscaler.GetMetricsRequest",
                ".externalscaler.GetMetricsResponse",
                false
            ),
        ]
    );
    // Field names and numbers exactly as in KEDA's proto (camelCase names, numbers 1..3).
    let spec = file
        .message_type
        .iter()
        .find(|message| message.name() == "MetricSpec")
        .expect("MetricSpec");
    let fields: Vec<(&str, i32)> = spec
        .field
        .iter()
        .map(|field| (field.name(), field.number()))
        .collect();
    assert_eq!(
        fields,
        [("metricName", 1), ("targetSize", 2), ("targetSizeFloat", 3)]
    );
}
