//! A trigger's v1 request encoded once and sent as is on every poll. The request only changes
//! when the trigger does, so building the protobuf message (maps of metadata and secrets) and
//! encoding it again for each of thousands of polls per second is wasted work.

use std::marker::PhantomData;

use prost::Message as _;
use prost::bytes::{BufMut as _, Bytes};
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic_prost::ProstDecoder;

use super::scaler_client::v1_request;
use super::types::TriggerInput;

/// The encoded `TriggerRequest` of one trigger. It holds the trigger's resolved secrets, so
/// `Debug` shows only its size.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedRequest(Bytes);

impl EncodedRequest {
    /// Encodes the v1 request for `trigger`.
    pub fn v1(trigger: &TriggerInput) -> Self {
        Self(Bytes::from(v1_request(trigger).encode_to_vec()))
    }

    /// The bytes to send (a reference-counted handle, not a copy).
    pub(crate) fn bytes(&self) -> Bytes {
        self.0.clone()
    }
}

impl std::fmt::Debug for EncodedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EncodedRequest({} bytes)", self.0.len())
    }
}

/// First size of a poll's encode and decode buffers. tonic's default is 8 KiB each, for
/// requests and answers of a few hundred bytes: with a thousand polls in flight that was
/// 16 MiB of buffers holding about 300 KiB. Larger messages grow the buffer as needed.
const POLL_BUFFER_BYTES: usize = 512;

/// tonic's default yield threshold (not readable from `BufferSettings`).
const YIELD_THRESHOLD_BYTES: usize = 32 * 1024;

fn poll_buffer_settings() -> BufferSettings {
    BufferSettings::new(POLL_BUFFER_BYTES, YIELD_THRESHOLD_BYTES)
}

/// Writes already-encoded bytes; decodes the answer with prost.
struct PreEncodedCodec<Answer>(PhantomData<Answer>);

/// Copies the encoded request into tonic's buffer.
struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        poll_buffer_settings()
    }
}

impl<Answer> Codec for PreEncodedCodec<Answer>
where
    Answer: prost::Message + Default + Send + 'static,
{
    type Encode = Bytes;
    type Decode = Answer;
    type Encoder = BytesEncoder;
    type Decoder = AnswerDecoder<Answer>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        AnswerDecoder(ProstDecoder::default())
    }
}

/// prost's decoder, wrapped so the codec's types stay private to this module.
struct AnswerDecoder<Answer>(ProstDecoder<Answer>);

impl<Answer: prost::Message + Default> Decoder for AnswerDecoder<Answer> {
    type Item = Answer;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Answer>, Status> {
        self.0.decode(src)
    }

    fn buffer_settings(&self) -> BufferSettings {
        poll_buffer_settings()
    }
}

/// Sends `request` as a unary call to `path` (`/package.Service/Method`) and decodes the
/// answer as `Answer`.
pub(crate) async fn unary<Answer>(
    channel: Channel,
    path: &'static str,
    request: tonic::Request<Bytes>,
) -> Result<tonic::Response<Answer>, Status>
where
    Answer: prost::Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(format!("scaler connection not ready: {error}")))?;
    grpc.unary(
        request,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        PreEncodedCodec::<Answer>(PhantomData),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1;

    fn trigger() -> TriggerInput {
        TriggerInput {
            namespace: "shop".into(),
            name: "orders".into(),
            trigger_name: "queue".into(),
            trigger_index: 1,
            metadata: [("queueName".to_owned(), "orders".to_owned())].into(),
            secrets: [("password".to_owned(), "s3cret".to_owned())].into(),
        }
    }

    #[test]
    fn the_encoded_request_decodes_to_the_built_one() {
        let encoded = EncodedRequest::v1(&trigger());
        let decoded = v1::TriggerRequest::decode(encoded.bytes()).expect("valid protobuf");
        assert_eq!(decoded, v1_request(&trigger()));
    }

    #[test]
    fn debug_shows_no_secret() {
        let encoded = EncodedRequest::v1(&trigger());
        let shown = format!("{encoded:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("bytes"), "{shown}");
    }
}
