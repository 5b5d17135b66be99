//! A hostile scaler: it answers whatever the test sets, however wrong it is (NaN or infinite
//! numbers, errors of megabytes, an activity stream that toggles without rest). The SDK cleans
//! what a scaler sends, so this one is written on the raw tonic services: `ebb.scaler.v1`
//! (offering push) and KEDA's `externalscaler` on one loopback port. Each trigger picks its
//! answer by its `key` metadata, as with [`super::ControlledScaler`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ebb::proto::keda::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use ebb::proto::v1::scaler_server::{Scaler, ScalerServer};
use ebb::proto::{keda, v1};
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// What the scaler answers for one key.
#[derive(Clone, Debug)]
struct Answer {
    value: f64,
    target: f64,
    /// Fail GetMetrics with UNAVAILABLE and this message instead of answering.
    error: Option<String>,
    /// How long GetMetrics takes (a source that is slow to measure).
    delay: Duration,
}

impl Default for Answer {
    fn default() -> Self {
        Self {
            value: 0.0,
            target: 1.0,
            error: None,
            delay: Duration::ZERO,
        }
    }
}

struct Shared {
    answers: Mutex<HashMap<String, Answer>>,
    get_metrics: Mutex<HashMap<String, u64>>,
    /// The activity every StreamIsActive stream reports (its first message is the current one).
    activity: watch::Sender<bool>,
    /// When set, every stream opened from then on toggles its activity at this period, forever.
    flood: Mutex<Option<Duration>>,
}

impl Shared {
    fn answer(&self, key: &str) -> Answer {
        self.answers
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn edit(&self, key: &str, change: impl FnOnce(&mut Answer)) {
        change(
            self.answers
                .lock()
                .unwrap()
                .entry(key.to_owned())
                .or_default(),
        );
    }

    /// Counts a GetMetrics call for `key`, then answers it or fails it, after its delay.
    async fn measure(&self, key: &str) -> Result<Answer, Status> {
        *self
            .get_metrics
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
        let answer = self.answer(key);
        if !answer.delay.is_zero() {
            tokio::time::sleep(answer.delay).await;
        }
        match &answer.error {
            Some(message) => Err(Status::unavailable(message.clone())),
            None => Ok(answer),
        }
    }

    /// The activity stream of one subscription.
    fn activity_stream(&self) -> Pin<Box<dyn Stream<Item = bool> + Send>> {
        match *self.flood.lock().unwrap() {
            Some(period) => futures::stream::unfold(true, move |active| async move {
                if period.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(period).await;
                }
                Some((!active, !active))
            })
            .boxed(),
            None => tokio_stream::wrappers::WatchStream::new(self.activity.subscribe()).boxed(),
        }
    }
}

/// The scaler's handle. It serves until dropped.
pub struct HostileScaler {
    /// Where it listens.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl HostileScaler {
    /// Serves on `127.0.0.1:0` in the test's runtime (so a paused clock paces its floods too).
    /// Every key answers 0 against a target of 1 until the test says otherwise; activity
    /// starts inactive.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let shared = Arc::new(Shared {
            answers: Mutex::default(),
            get_metrics: Mutex::default(),
            activity: watch::Sender::new(false),
            flood: Mutex::default(),
        });
        let service = Service(shared.clone());
        let task = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(ScalerServer::new(service.clone()))
                .add_service(ExternalScalerServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            address,
            shared,
            task,
        }
    }

    /// Answers `value` for `key` (NaN and infinities are sent as they are).
    pub fn set_value(&self, key: &str, value: f64) {
        self.shared.edit(key, |answer| answer.value = value);
    }

    /// Answers `target` per replica for `key`, in the spec and in every reading.
    pub fn set_target(&self, key: &str, target: f64) {
        self.shared.edit(key, |answer| answer.target = target);
    }

    /// Fails every GetMetrics of `key` with UNAVAILABLE and `message` (or answers again).
    pub fn set_error(&self, key: &str, message: Option<String>) {
        self.shared.edit(key, |answer| answer.error = message);
    }

    /// Makes every GetMetrics of `key` take `delay` before it answers.
    pub fn set_delay(&self, key: &str, delay: Duration) {
        self.shared.edit(key, |answer| answer.delay = delay);
    }

    /// Pushes `active` on every open activity stream (when it changes).
    pub fn push(&self, active: bool) {
        self.shared.activity.send_replace(active);
    }

    /// Makes every activity stream opened from now on toggle at `period` without end (zero:
    /// as fast as it can be sent).
    pub fn flood(&self, period: Duration) {
        *self.shared.flood.lock().unwrap() = Some(period);
    }

    /// GetMetrics calls for `key` so far (answered or failed).
    pub fn get_metrics(&self, key: &str) -> u64 {
        self.shared
            .get_metrics
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for HostileScaler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Service(Arc<Shared>);

type ActivityStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn v1_key(request: &Request<v1::TriggerRequest>) -> String {
    request
        .get_ref()
        .metadata
        .get("key")
        .cloned()
        .unwrap_or_default()
}

fn keda_key(reference: &keda::ScaledObjectRef) -> String {
    reference
        .scaler_metadata
        .get("key")
        .cloned()
        .unwrap_or_default()
}

fn metric_name(key: &str) -> String {
    format!("hostile-{key}")
}

#[tonic::async_trait]
impl Scaler for Service {
    type StreamIsActiveStream = ActivityStream<v1::IsActiveResponse>;

    async fn get_info(
        &self,
        _request: Request<v1::GetInfoRequest>,
    ) -> Result<Response<v1::GetInfoResponse>, Status> {
        Ok(Response::new(v1::GetInfoResponse {
            protocol_version: 1,
            name: "hostile".into(),
            version: "0.0.0".into(),
            description: "answers whatever the test sets".into(),
            capabilities: Some(v1::Capabilities {
                push: true,
                in_flight: false,
                keda_compatible: true,
            }),
            metadata: Vec::new(),
        }))
    }

    async fn get_metric_spec(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricSpecResponse>, Status> {
        let key = v1_key(&request);
        Ok(Response::new(v1::GetMetricSpecResponse {
            metric_specs: vec![v1::MetricSpec {
                metric_name: metric_name(&key),
                target: self.0.answer(&key).target,
                activation_target: 0.0,
                target_type: v1::MetricTargetType::AverageValue.into(),
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::GetMetricsResponse>, Status> {
        let key = v1_key(&request);
        let answer = self.0.measure(&key).await?;
        Ok(Response::new(v1::GetMetricsResponse {
            metric_values: vec![v1::MetricValue {
                metric_name: metric_name(&key),
                value: answer.value,
                target: answer.target,
                activation_target: 0.0,
            }],
            active: answer.value > 0.0,
            in_flight: None,
        }))
    }

    async fn is_active(
        &self,
        request: Request<v1::TriggerRequest>,
    ) -> Result<Response<v1::IsActiveResponse>, Status> {
        let answer = self.0.answer(&v1_key(&request));
        Ok(Response::new(v1::IsActiveResponse {
            active: answer.value > 0.0,
        }))
    }

    async fn stream_is_active(
        &self,
        _request: Request<v1::TriggerRequest>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let stream = self
            .0
            .activity_stream()
            .map(|active| Ok(v1::IsActiveResponse { active }));
        Ok(Response::new(stream.boxed()))
    }
}

#[tonic::async_trait]
impl ExternalScaler for Service {
    type StreamIsActiveStream = ActivityStream<keda::IsActiveResponse>;

    async fn is_active(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::IsActiveResponse>, Status> {
        let answer = self.0.answer(&keda_key(request.get_ref()));
        Ok(Response::new(keda::IsActiveResponse {
            result: answer.value > 0.0,
        }))
    }

    async fn stream_is_active(
        &self,
        _request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let stream = self
            .0
            .activity_stream()
            .map(|result| Ok(keda::IsActiveResponse { result }));
        Ok(Response::new(stream.boxed()))
    }

    async fn get_metric_spec(
        &self,
        request: Request<keda::ScaledObjectRef>,
    ) -> Result<Response<keda::GetMetricSpecResponse>, Status> {
        let key = keda_key(request.get_ref());
        Ok(Response::new(keda::GetMetricSpecResponse {
            metric_specs: vec![keda::MetricSpec {
                metric_name: metric_name(&key),
                target_size: 0,
                target_size_float: self.0.answer(&key).target,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<keda::GetMetricsRequest>,
    ) -> Result<Response<keda::GetMetricsResponse>, Status> {
        let key = request
            .get_ref()
            .scaled_object_ref
            .as_ref()
            .map(keda_key)
            .unwrap_or_default();
        let answer = self.0.measure(&key).await?;
        Ok(Response::new(keda::GetMetricsResponse {
            metric_values: vec![keda::MetricValue {
                metric_name: metric_name(&key),
                metric_value: 0,
                metric_value_float: answer.value,
            }],
        }))
    }
}
