//! [`ScalerClient`]: one scaler behind one channel, called in whichever protocol it speaks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::OnceCell;
use tonic::Code;
use tonic::transport::Channel;

use super::ClientError;
use super::channel::TlsSettings;
use super::encoded::{self, EncodedRequest};
use super::scaler_text::clean_info;
use super::types::{
    MetricReading, MetricSpec, MetricsReading, Protocol, ScalerInfo, TargetType, TriggerInput,
};
use crate::proto::keda::external_scaler_client::ExternalScalerClient;
use crate::proto::v1::scaler_client::ScalerClient as V1Client;
use crate::proto::{keda, v1};
use crate::protocol::{
    NotFinite, Redactor, finite, finite_value, keda_metric_value, keda_target_value,
};

/// Activity pushed by a scaler: one item per message, the first being the current state. The
/// stream ends when the scaler closes it; an error item ends it too.
pub type ActivityStream = Pin<Box<dyn Stream<Item = Result<bool, ClientError>> + Send>>;

/// A scaler reached over one channel. Cheap to clone; clones share the channel and the
/// detected protocol.
///
/// Whatever text the scaler answers (error messages, GetInfo's names and descriptions) is
/// cleaned here, where it enters ebb, by [`super::clean_scaler_text`]: masked of every secret
/// of the trigger the call is about and of the connection's TLS key, control characters
/// escaped, cut to [`super::MAX_SCALER_TEXT`] bytes. Nothing downstream cleans it again.
#[derive(Clone, Debug)]
pub struct ScalerClient {
    channel: Channel,
    info: Arc<OnceCell<ScalerInfo>>,
    /// The connection's own secrets (its TLS key), masked in every answer.
    connection_secrets: Arc<Redactor>,
}

impl ScalerClient {
    /// A client over `channel`; the protocol is detected on first use and then cached.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            info: Arc::new(OnceCell::new()),
            connection_secrets: Arc::default(),
        }
    }

    /// A client that trusts `info` instead of asking (e.g. a KEDA-only scaler named as such).
    pub fn with_info(channel: Channel, info: ScalerInfo) -> Self {
        Self {
            channel,
            info: Arc::new(OnceCell::new_with(Some(info))),
            connection_secrets: Arc::default(),
        }
    }

    /// This client over the same channel and with the same secrets masked, trusting `info`
    /// instead of asking.
    pub fn known_as(&self, info: ScalerInfo) -> Self {
        Self {
            channel: self.channel.clone(),
            info: Arc::new(OnceCell::new_with(Some(info))),
            connection_secrets: self.connection_secrets.clone(),
        }
    }

    /// This client masking the TLS material of its connection in every answer as well.
    #[must_use]
    pub fn masking_tls(mut self, tls: Option<&TlsSettings>) -> Self {
        if let Some(key) = tls.and_then(|tls| tls.client_key_pem.as_deref()) {
            self.connection_secrets = Arc::new(Redactor::new([key]));
        }
        self
    }

    /// `error` with its scaler-supplied text cleaned of the secrets sent for `trigger`.
    fn cleaned(&self, error: ClientError, trigger: &TriggerInput) -> ClientError {
        let mut redactor = Redactor::clone(&self.connection_secrets);
        for secret in trigger.secrets.values() {
            redactor.add(secret);
        }
        error.cleaned(&redactor)
    }

    /// The channel, for callers that need a raw generated client.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// What the scaler is, detecting the protocol the first time: `GetInfo` answered means
    /// v1, `UNIMPLEMENTED` means KEDA's protocol. Any other failure is returned and not
    /// cached, so the next call tries again.
    pub async fn info(&self, timeout: Duration) -> Result<&ScalerInfo, ClientError> {
        self.info
            .get_or_try_init(|| async {
                let mut client = V1Client::new(self.channel.clone());
                let answer = call(
                    "GetInfo",
                    timeout,
                    |request| client.get_info(request),
                    v1::GetInfoRequest {},
                )
                .await;
                match answer {
                    Ok(info) => Ok(clean_info(
                        ScalerInfo::from_v1(info),
                        &self.connection_secrets,
                    )),
                    Err(error) if error.is_unimplemented() => Ok(ScalerInfo::keda()),
                    Err(error) => Err(error.cleaned(&self.connection_secrets)),
                }
            })
            .await
    }

    /// The protocol the scaler speaks (see [`ScalerClient::info`]).
    pub async fn protocol(&self, timeout: Duration) -> Result<Protocol, ClientError> {
        Ok(self.info(timeout).await?.protocol)
    }

    /// The metrics `trigger` exposes. One RPC in either protocol.
    pub async fn metric_specs(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<Vec<MetricSpec>, ClientError> {
        self.specs(trigger, timeout)
            .await
            .map_err(|error| self.cleaned(error, trigger))
    }

    async fn specs(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<Vec<MetricSpec>, ClientError> {
        let specs = match self.protocol(timeout).await? {
            Protocol::V1 => {
                let mut client = V1Client::new(self.channel.clone());
                let answer = call(
                    "GetMetricSpec",
                    timeout,
                    |request| client.get_metric_spec(request),
                    v1_request(trigger),
                )
                .await?;
                answer
                    .metric_specs
                    .into_iter()
                    .map(spec_from_v1)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|refused| not_finite("GetMetricSpec", &refused))?
            }
            Protocol::Keda => {
                let mut client = ExternalScalerClient::new(self.channel.clone());
                let answer = call(
                    "GetMetricSpec",
                    timeout,
                    |request| client.get_metric_spec(request),
                    keda_ref(trigger),
                )
                .await?;
                answer
                    .metric_specs
                    .iter()
                    .map(spec_from_keda)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|refused| not_finite("GetMetricSpec", &refused))?
            }
        };
        if specs.is_empty() {
            return Err(ClientError::BadAnswer {
                rpc: "GetMetricSpec",
                reason: "no metric specs".into(),
            });
        }
        Ok(specs)
    }

    /// Measures `trigger` once. Over v1 this is one `GetMetrics` call. Over KEDA's protocol
    /// it is `GetMetricSpec`, then `GetMetrics` per metric and `IsActive`, concurrently; use
    /// [`ScalerClient::metrics_with_specs`] to skip the spec call when specs are cached.
    pub async fn metrics(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<MetricsReading, ClientError> {
        let reading = match self.protocol(timeout).await {
            Ok(Protocol::V1) => self.v1_metrics(&EncodedRequest::v1(trigger), timeout).await,
            Ok(Protocol::Keda) => match self.specs(trigger, timeout).await {
                Ok(specs) => self.keda_metrics(trigger, &specs, timeout).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        reading.map_err(|error| self.cleaned(error, trigger))
    }

    /// Like [`ScalerClient::metrics`] with the trigger's specs already known: over KEDA's
    /// protocol they name the metrics to ask for and give the targets. Over v1 they are not
    /// needed (the reading carries its targets) and are ignored.
    pub async fn metrics_with_specs(
        &self,
        trigger: &TriggerInput,
        specs: &[MetricSpec],
        timeout: Duration,
    ) -> Result<MetricsReading, ClientError> {
        self.metrics_prepared(trigger, &EncodedRequest::v1(trigger), specs, timeout)
            .await
    }

    /// Like [`ScalerClient::metrics_with_specs`] with the v1 request encoded beforehand
    /// ([`EncodedRequest::v1`] of the same trigger): a poller encodes it once per trigger
    /// version instead of once per poll.
    pub async fn metrics_prepared(
        &self,
        trigger: &TriggerInput,
        encoded: &EncodedRequest,
        specs: &[MetricSpec],
        timeout: Duration,
    ) -> Result<MetricsReading, ClientError> {
        let reading = match self.protocol(timeout).await {
            Ok(Protocol::V1) => self.v1_metrics(encoded, timeout).await,
            Ok(Protocol::Keda) => self.keda_metrics(trigger, specs, timeout).await,
            Err(error) => Err(error),
        };
        reading.map_err(|error| self.cleaned(error, trigger))
    }

    /// Whether `trigger` is active, via the `IsActive` RPC of either protocol.
    pub async fn is_active(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<bool, ClientError> {
        self.activity(trigger, timeout)
            .await
            .map_err(|error| self.cleaned(error, trigger))
    }

    async fn activity(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<bool, ClientError> {
        match self.protocol(timeout).await? {
            Protocol::V1 => {
                let mut client = V1Client::new(self.channel.clone());
                Ok(call(
                    "IsActive",
                    timeout,
                    |request| client.is_active(request),
                    v1_request(trigger),
                )
                .await?
                .active)
            }
            Protocol::Keda => {
                let mut client = ExternalScalerClient::new(self.channel.clone());
                Ok(call(
                    "IsActive",
                    timeout,
                    |request| client.is_active(request),
                    keda_ref(trigger),
                )
                .await?
                .result)
            }
        }
    }

    /// Opens `StreamIsActive`. `timeout` bounds opening the stream only (the stream itself
    /// lives until either side closes it). A scaler without push answers `UNIMPLEMENTED`,
    /// either here or as the stream's first item.
    pub async fn activity_stream(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<ActivityStream, ClientError> {
        let stream = self
            .open_activity_stream(trigger, timeout)
            .await
            .map_err(|error| self.cleaned(error, trigger))?;
        // Each item's error is the scaler's text too; cleaned as it arrives.
        let client = self.clone();
        let trigger = trigger.clone();
        Ok(stream
            .map(move |item| item.map_err(|error| client.cleaned(error, &trigger)))
            .boxed())
    }

    async fn open_activity_stream(
        &self,
        trigger: &TriggerInput,
        timeout: Duration,
    ) -> Result<ActivityStream, ClientError> {
        const RPC: &str = "StreamIsActive";
        match self.protocol(timeout).await? {
            Protocol::V1 => {
                let mut client = V1Client::new(self.channel.clone());
                let opened =
                    tokio::time::timeout(timeout, client.stream_is_active(v1_request(trigger)))
                        .await;
                let stream = opened
                    .map_err(|_| ClientError::Timeout { rpc: RPC, timeout })?
                    .map_err(|status| ClientError::from_status(RPC, &status))?
                    .into_inner();
                Ok(stream
                    .map(|item| {
                        item.map(|message| message.active)
                            .map_err(|status| ClientError::from_status(RPC, &status))
                    })
                    .boxed())
            }
            Protocol::Keda => {
                let mut client = ExternalScalerClient::new(self.channel.clone());
                let opened =
                    tokio::time::timeout(timeout, client.stream_is_active(keda_ref(trigger))).await;
                let stream = opened
                    .map_err(|_| ClientError::Timeout { rpc: RPC, timeout })?
                    .map_err(|status| ClientError::from_status(RPC, &status))?
                    .into_inner();
                Ok(stream
                    .map(|item| {
                        item.map(|message| message.result)
                            .map_err(|status| ClientError::from_status(RPC, &status))
                    })
                    .boxed())
            }
        }
    }

    async fn v1_metrics(
        &self,
        encoded: &EncodedRequest,
        timeout: Duration,
    ) -> Result<MetricsReading, ClientError> {
        let channel = self.channel.clone();
        let answer: v1::GetMetricsResponse = call(
            "GetMetrics",
            timeout,
            |request| encoded::unary(channel, GET_METRICS_PATH, request),
            encoded.bytes(),
        )
        .await?;
        if answer.metric_values.is_empty() {
            return Err(ClientError::BadAnswer {
                rpc: "GetMetrics",
                reason: "no metric values".into(),
            });
        }
        let mut values: Vec<MetricReading> = answer
            .metric_values
            .into_iter()
            .map(reading_from_v1)
            .collect::<Result<_, _>>()
            .map_err(|refused| not_finite("GetMetrics", &refused))?;
        // The collect reuses the decoder's buffer, which grew to four entries for the one
        // most scalers send; the loop keeps this reading until the next poll.
        values.shrink_to_fit();
        Ok(MetricsReading {
            values,
            active: answer.active,
            in_flight: answer.in_flight.map(|in_flight| in_flight.count),
        })
    }

    async fn keda_metrics(
        &self,
        trigger: &TriggerInput,
        specs: &[MetricSpec],
        timeout: Duration,
    ) -> Result<MetricsReading, ClientError> {
        let reference = keda_ref(trigger);
        let reads = specs.iter().map(|spec| {
            let mut client = ExternalScalerClient::new(self.channel.clone());
            let request = keda::GetMetricsRequest {
                scaled_object_ref: Some(reference.clone()),
                metric_name: spec.metric_name.clone(),
            };
            async move {
                let answer = call(
                    "GetMetrics",
                    timeout,
                    |request| client.get_metrics(request),
                    request,
                )
                .await?;
                let value = pick_keda_value(&spec.metric_name, &answer.metric_values)?;
                Ok::<_, ClientError>(MetricReading {
                    metric_name: spec.metric_name.clone(),
                    value,
                    target: spec.target,
                    activation_target: spec.activation_target,
                })
            }
        });
        let mut activity_client = ExternalScalerClient::new(self.channel.clone());
        let activity = call(
            "IsActive",
            timeout,
            |request| activity_client.is_active(request),
            reference.clone(),
        );
        let (values, activity) = tokio::join!(futures::future::try_join_all(reads), activity);
        Ok(MetricsReading {
            values: values?,
            active: activity?.result,
            in_flight: None,
        })
    }
}

/// The value for `metric_name` in a KEDA answer: the entry of that name, or the only entry
/// when the scaler names it differently (KEDA itself does not check the name).
fn pick_keda_value(metric_name: &str, values: &[keda::MetricValue]) -> Result<f64, ClientError> {
    let named = values.iter().find(|value| value.metric_name == metric_name);
    match (named, values) {
        (Some(value), _) | (None, [value]) => {
            keda_metric_value(value).map_err(|refused| not_finite("GetMetrics", &refused))
        }
        (None, []) => Err(ClientError::BadAnswer {
            rpc: "GetMetrics",
            reason: format!("no value for metric `{metric_name}`"),
        }),
        (None, _) => Err(ClientError::BadAnswer {
            rpc: "GetMetrics",
            reason: format!("several values, none named `{metric_name}`"),
        }),
    }
}

/// Sends one unary RPC with a deadline: `grpc-timeout` tells the scaler, and a local timer
/// makes sure the caller gets its answer even from a scaler that ignores the header.
pub(crate) async fn call<Req, Resp, F, Fut>(
    rpc: &'static str,
    timeout: Duration,
    send: F,
    message: Req,
) -> Result<Resp, ClientError>
where
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    match tokio::time::timeout(timeout, send(request)).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) if is_local_deadline(&status) => Err(ClientError::Timeout { rpc, timeout }),
        Ok(Err(status)) => Err(ClientError::from_status(rpc, &status)),
        Err(_) => Err(ClientError::Timeout { rpc, timeout }),
    }
}

/// Whether `status` is the deadline running out on this side rather than the scaler's
/// answer. tonic's channel enforces the `grpc-timeout` it sends and reports that as CANCELLED
/// "Timeout expired"; it races with the local timer in [`call`], so both mean a timeout.
fn is_local_deadline(status: &tonic::Status) -> bool {
    match status.code() {
        Code::DeadlineExceeded => status.message().is_empty(),
        Code::Cancelled => {
            std::error::Error::source(status)
                .is_some_and(|source| source.downcast_ref::<tonic::TimeoutExpired>().is_some())
                || status.message() == tonic::TimeoutExpired(()).to_string()
        }
        _ => false,
    }
}

/// Path of v1 `GetMetrics` (the generated client's, for calls with a pre-encoded request).
const GET_METRICS_PATH: &str = "/ebb.scaler.v1.Scaler/GetMetrics";

/// The v1 request for a trigger.
pub(crate) fn v1_request(trigger: &TriggerInput) -> v1::TriggerRequest {
    v1::TriggerRequest {
        trigger: Some(v1::TriggerRef {
            namespace: trigger.namespace.clone(),
            name: trigger.name.clone(),
            trigger_name: trigger.trigger_name.clone(),
            trigger_index: trigger.trigger_index,
        }),
        metadata: to_map(&trigger.metadata),
        secrets: to_map(&trigger.secrets),
    }
}

/// KEDA's `ScaledObjectRef` for a trigger: every metadata key with the secrets merged in,
/// since KEDA's protocol has no other place for credentials.
pub(crate) fn keda_ref(trigger: &TriggerInput) -> keda::ScaledObjectRef {
    let mut metadata = to_map(&trigger.metadata);
    metadata.extend(
        trigger
            .secrets
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    keda::ScaledObjectRef {
        name: trigger.name.clone(),
        namespace: trigger.namespace.clone(),
        scaler_metadata: metadata,
    }
}

fn to_map(values: &super::StringMap) -> HashMap<String, String> {
    values
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A number that is not finite makes the whole answer a protocol violation: the poll fails
/// rather than reading it as 0 (which would scale in).
fn not_finite(rpc: &'static str, refused: &NotFinite) -> ClientError {
    ClientError::BadAnswer {
        rpc,
        reason: refused.to_string(),
    }
}

fn reading_from_v1(value: v1::MetricValue) -> Result<MetricReading, NotFinite> {
    Ok(MetricReading {
        value: finite_value("value", value.value)?,
        target: finite("target", value.target)?,
        activation_target: finite_value("activation_target", value.activation_target)?,
        metric_name: value.metric_name,
    })
}

fn spec_from_v1(spec: v1::MetricSpec) -> Result<MetricSpec, NotFinite> {
    let target_type = match v1::MetricTargetType::try_from(spec.target_type) {
        Ok(v1::MetricTargetType::AverageValue) => Some(TargetType::AverageValue),
        Ok(v1::MetricTargetType::Value) => Some(TargetType::Value),
        _ => None,
    };
    Ok(MetricSpec {
        target: finite("target", spec.target)?,
        activation_target: finite_value("activation_target", spec.activation_target)?,
        metric_name: spec.metric_name,
        target_type,
    })
}

fn spec_from_keda(spec: &keda::MetricSpec) -> Result<MetricSpec, NotFinite> {
    Ok(MetricSpec {
        metric_name: spec.metric_name.clone(),
        target: keda_target_value(spec)?,
        activation_target: 0.0,
        target_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> TriggerInput {
        TriggerInput {
            namespace: "ns".into(),
            name: "orders".into(),
            trigger_name: "queue".into(),
            trigger_index: 2,
            metadata: [
                ("queueName".to_owned(), "q".to_owned()),
                ("password".to_owned(), "plain".to_owned()),
            ]
            .into(),
            secrets: [("password".to_owned(), "s3cret".to_owned())].into(),
        }
    }

    #[test]
    fn keda_ref_merges_secrets_over_metadata() {
        let reference = keda_ref(&trigger());
        assert_eq!(reference.name, "orders");
        assert_eq!(reference.namespace, "ns");
        assert_eq!(reference.scaler_metadata["queueName"], "q");
        assert_eq!(reference.scaler_metadata["password"], "s3cret");
    }

    #[test]
    fn v1_request_keeps_secrets_apart() {
        let request = v1_request(&trigger());
        assert_eq!(request.metadata["password"], "plain");
        assert_eq!(request.secrets["password"], "s3cret");
        let reference = request.trigger.unwrap();
        assert_eq!(
            (reference.trigger_name.as_str(), reference.trigger_index),
            ("queue", 2)
        );
    }

    #[test]
    fn trigger_debug_hides_secret_values() {
        assert!(!format!("{:?}", trigger()).contains("s3cret"));
    }

    #[test]
    fn keda_value_is_picked_by_name_or_alone() {
        let value = |name: &str, float: f64| keda::MetricValue {
            metric_name: name.into(),
            metric_value: 0,
            metric_value_float: float,
        };
        assert_eq!(
            pick_keda_value("a", &[value("b", 1.0), value("a", 2.0)]).unwrap(),
            2.0
        );
        assert_eq!(pick_keda_value("a", &[value("other", 3.0)]).unwrap(), 3.0);
        assert!(pick_keda_value("a", &[]).is_err());
        assert!(pick_keda_value("a", &[value("b", 1.0), value("c", 1.0)]).is_err());
    }

    #[test]
    fn a_non_finite_number_in_a_v1_answer_is_refused_naming_its_field() {
        let value = |value: f64, target: f64, activation_target: f64| v1::MetricValue {
            metric_name: "m".into(),
            value,
            target,
            activation_target,
        };
        assert_eq!(reading_from_v1(value(-1.0, 5.0, 0.0)).unwrap().value, 0.0);
        for (answer, field) in [
            (value(f64::NAN, 5.0, 0.0), "value"),
            (value(1.0, f64::INFINITY, 0.0), "target"),
            (value(1.0, 5.0, f64::NEG_INFINITY), "activation_target"),
        ] {
            let refused = reading_from_v1(answer).unwrap_err();
            assert_eq!(refused.field, field);
            let error = not_finite("GetMetrics", &refused);
            assert_eq!(
                error.code(),
                Code::Internal,
                "a failed poll, not a 0: {error}"
            );
        }
        let spec = v1::MetricSpec {
            metric_name: "m".into(),
            target: f64::NAN,
            ..v1::MetricSpec::default()
        };
        assert_eq!(spec_from_v1(spec).unwrap_err().field, "target");
    }

    #[test]
    fn the_channels_own_deadline_counts_as_a_timeout() {
        let expired = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(expired.code(), Code::Cancelled);
        assert!(is_local_deadline(&expired));
        assert!(is_local_deadline(&tonic::Status::new(
            Code::DeadlineExceeded,
            ""
        )));
        // A scaler's own answers are not the local deadline.
        assert!(!is_local_deadline(&tonic::Status::cancelled(
            "client went away"
        )));
        assert!(!is_local_deadline(&tonic::Status::deadline_exceeded(
            "source too slow"
        )));
    }
}
