//! `ebb.scaler.v1.Scaler` over the protocol-independent core.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tonic::{Request, Response, Status};

use crate::config::TriggerMetadata;
use crate::core::{Core, Parsed, Reading};
use crate::proto::v1;
use crate::push::PushHub;
use crate::{MetricSpec, Scaler, ScalerError};

const PROTOCOL: &str = "v1";

/// The v1 service of a served scaler.
pub(crate) struct V1Service<S: Scaler> {
    pub core: Arc<Core<S>>,
    pub push: Option<Arc<PushHub<S>>>,
}

fn spec_to_proto(spec: &MetricSpec) -> v1::MetricSpec {
    v1::MetricSpec {
        metric_name: spec.name.clone(),
        target: spec.target,
        activation_target: spec.activation_target,
        target_type: spec.target_type as i32,
    }
}

fn reading_to_proto(reading: Reading) -> v1::GetMetricsResponse {
    v1::GetMetricsResponse {
        metric_values: reading
            .values
            .iter()
            .map(|(spec, value)| v1::MetricValue {
                metric_name: spec.name.clone(),
                value: *value,
                target: spec.target,
                activation_target: spec.activation_target,
            })
            .collect(),
        active: reading.active,
        in_flight: reading.in_flight.map(|count| v1::InFlight { count }),
    }
}

impl<S: Scaler> V1Service<S> {
    fn finish<T>(
        &self,
        method: &'static str,
        started: Instant,
        result: Result<T, ScalerError>,
    ) -> Result<Response<T>, Status> {
        self.core.finish(PROTOCOL, method, started, result)
    }

    fn parse(&self, request: &v1::TriggerRequest) -> Parsed<S::Config> {
        let metadata = TriggerMetadata::from_v1(&request.metadata, &request.secrets);
        self.core.trigger(request.trigger.as_ref(), &metadata)
    }

    async fn measure(&self, request: &v1::TriggerRequest) -> Result<Reading, ScalerError> {
        let parsed = self.parse(request);
        self.core.measure(&parsed.trigger?, &parsed.redactor).await
    }

    fn info(&self) -> v1::GetInfoResponse {
        let identity = &self.core.identity;
        v1::GetInfoResponse {
            protocol_version: 1,
            name: identity.name.clone(),
            version: identity.version.clone(),
            description: identity.description.clone(),
            capabilities: Some(v1::Capabilities {
                push: self.push.is_some(),
                in_flight: self.core.scaler.reports_in_flight(),
                keda_compatible: true,
            }),
            metadata: self.core.schema.fields().to_vec(),
        }
    }
}

#[tonic::async_trait]
impl<S: Scaler> v1::scaler_server::Scaler for V1Service<S> {
    type StreamIsActiveStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::IsActiveResponse, Status>> + Send>>;

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL))]
    async fn get_info(
        &self,
        _request: Request<v1::GetInfoRequest>,
    ) -> Result<Response<v1::GetInfoResponse>, Status> {
        self.finish("GetInfo", Instant::now(), Ok(self.info()))
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object, trigger))]
    async fn get_metric_spec(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricSpecResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        record_trigger(&request);
        let result = self
            .parse(&request)
            .trigger
            .and_then(|trigger| self.core.specs(&trigger))
            .map(|specs| v1::GetMetricSpecResponse {
                metric_specs: specs.iter().map(spec_to_proto).collect(),
            });
        self.finish("GetMetricSpec", started, result)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object, trigger))]
    async fn get_metrics(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricsResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        record_trigger(&request);
        let result = self.measure(&request).await.map(reading_to_proto);
        self.finish("GetMetrics", started, result)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object, trigger))]
    async fn is_active(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::IsActiveResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        record_trigger(&request);
        let result = self
            .measure(&request)
            .await
            .map(|reading| v1::IsActiveResponse {
                active: reading.active,
            });
        self.finish("IsActive", started, result)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object, trigger))]
    async fn stream_is_active(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        record_trigger(&request);
        let result = match &self.push {
            None => Err(ScalerError::Unimplemented(
                "this scaler does not push activity".into(),
            )),
            Some(push) => {
                let parsed = self.parse(&request);
                parsed
                    .trigger
                    .and_then(|trigger| push.subscribe(trigger, parsed.redactor))
            }
        };
        let stream = result.map(|stream| -> Self::StreamIsActiveStream {
            Box::pin(stream.map(|item| {
                item.map(|active| v1::IsActiveResponse { active })
                    .map_err(Status::from)
            }))
        });
        self.finish("StreamIsActive", started, stream)
    }
}

fn record_trigger(request: &v1::TriggerRequest) {
    if let Some(trigger) = &request.trigger {
        let span = tracing::Span::current();
        span.record("object", format!("{}/{}", trigger.namespace, trigger.name));
        span.record("trigger", trigger.trigger_name.as_str());
    }
}
