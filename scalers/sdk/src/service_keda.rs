//! KEDA's `externalscaler.ExternalScaler` over the same core, so KEDA can use ebb scalers.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tonic::{Request, Response, Status};

use crate::config::TriggerMetadata;
use crate::core::{Core, Parsed, Reading};
use crate::proto::{keda, v1};
use crate::push::PushHub;
use crate::{Scaler, ScalerError};

const PROTOCOL: &str = "keda";

/// The KEDA service of a served scaler.
pub(crate) struct KedaService<S: Scaler> {
    pub core: Arc<Core<S>>,
    pub push: Option<Arc<PushHub<S>>>,
}

/// KEDA's deprecated integer fields still matter to old KEDA releases: round up so a small
/// fractional target never becomes 0.
#[allow(clippy::cast_possible_truncation)]
fn legacy_int(value: f64) -> i64 {
    value.ceil().clamp(0.0, i64::MAX as f64) as i64
}

impl<S: Scaler> KedaService<S> {
    fn finish<T>(
        &self,
        method: &'static str,
        started: Instant,
        result: Result<T, ScalerError>,
    ) -> Result<Response<T>, Status> {
        self.core.finish(PROTOCOL, method, started, result)
    }

    fn parse(&self, reference: Option<&keda::ScaledObjectRef>) -> Parsed<S::Config> {
        let reference = reference.cloned().unwrap_or_default();
        let metadata = TriggerMetadata::from_keda(&reference.scaler_metadata);
        let trigger_ref = v1::TriggerRef {
            namespace: reference.namespace,
            name: reference.name,
            trigger_name: String::new(),
            trigger_index: 0,
        };
        self.core.trigger(Some(&trigger_ref), &metadata)
    }

    async fn measure(
        &self,
        reference: Option<&keda::ScaledObjectRef>,
    ) -> Result<Reading, ScalerError> {
        let parsed = self.parse(reference);
        self.core.measure(&parsed.trigger?, &parsed.redactor).await
    }
}

#[tonic::async_trait]
impl<S: Scaler> keda::external_scaler_server::ExternalScaler for KedaService<S> {
    type StreamIsActiveStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<keda::IsActiveResponse, Status>> + Send>,
    >;

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object = %request.get_ref().name))]
    async fn is_active(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::IsActiveResponse>, Status> {
        let started = Instant::now();
        let result =
            self.measure(Some(request.get_ref()))
                .await
                .map(|reading| keda::IsActiveResponse {
                    result: reading.active,
                });
        self.finish("IsActive", started, result)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object = %request.get_ref().name))]
    async fn stream_is_active(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let started = Instant::now();
        let result = match &self.push {
            None => Err(ScalerError::Unimplemented(
                "this scaler does not push activity".into(),
            )),
            Some(push) => {
                let parsed = self.parse(Some(request.get_ref()));
                parsed
                    .trigger
                    .and_then(|trigger| push.subscribe(trigger, parsed.redactor))
            }
        };
        let stream = result.map(|stream| -> Self::StreamIsActiveStream {
            Box::pin(stream.map(|item| {
                item.map(|result| keda::IsActiveResponse { result })
                    .map_err(Status::from)
            }))
        });
        self.finish("StreamIsActive", started, stream)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL, object = %request.get_ref().name))]
    async fn get_metric_spec(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::GetMetricSpecResponse>, Status> {
        let started = Instant::now();
        let result = self
            .parse(Some(request.get_ref()))
            .trigger
            .and_then(|trigger| self.core.specs(&trigger))
            .map(|specs| keda::GetMetricSpecResponse {
                metric_specs: specs
                    .iter()
                    .map(|spec| keda::MetricSpec {
                        metric_name: spec.name.clone(),
                        target_size: legacy_int(spec.target),
                        target_size_float: spec.target,
                    })
                    .collect(),
            });
        self.finish("GetMetricSpec", started, result)
    }

    #[tracing::instrument(skip_all, fields(protocol = PROTOCOL))]
    async fn get_metrics(
        &self,
        request: Request<keda::GetMetricsRequest>,
    ) -> Result<Response<keda::GetMetricsResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let result = self
            .measure(request.scaled_object_ref.as_ref())
            .await
            .map(|reading| {
                // KEDA asks for one metric by name; an unknown name gets every value rather than
                // nothing, since KEDA versions differ in how they strip their `sN-` prefix.
                let wanted = reading
                    .values
                    .iter()
                    .any(|(spec, _)| spec.name == request.metric_name);
                keda::GetMetricsResponse {
                    metric_values: reading
                        .values
                        .iter()
                        .filter(|(spec, _)| !wanted || spec.name == request.metric_name)
                        .map(|(spec, value)| keda::MetricValue {
                            metric_name: spec.name.clone(),
                            metric_value: legacy_int(*value),
                            metric_value_float: *value,
                        })
                        .collect(),
                }
            });
        self.finish("GetMetrics", started, result)
    }
}

#[cfg(test)]
mod tests {
    use super::legacy_int;

    #[test]
    fn legacy_integers_round_up_and_clamp() {
        assert_eq!(legacy_int(0.2), 1);
        assert_eq!(legacy_int(5.0), 5);
        assert_eq!(legacy_int(-3.0), 0);
        assert_eq!(legacy_int(f64::NAN), 0);
    }
}
