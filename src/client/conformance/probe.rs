//! Raw calls for the conformance checks: the generated clients with a deadline each, timed,
//! so the checks see exactly what the scaler sent (before any sanitising).

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::Outcome;
use crate::client::check::millis;
use crate::client::scaler_client::{call, keda_ref, v1_request};
use crate::client::{ClientError, TriggerInput};
use crate::proto::keda::external_scaler_client::ExternalScalerClient;
use crate::proto::v1::scaler_client::ScalerClient as V1Client;
use crate::proto::{keda, v1};

/// The scaler under test and what its calls took.
pub(super) struct Probe {
    channel: Channel,
    pub(super) timeout: Duration,
    /// The working trigger given on the command line.
    pub(super) trigger: TriggerInput,
    pub(super) address: String,
    slowest: Option<(&'static str, Duration)>,
    calls: usize,
    timed_out: Vec<&'static str>,
}

impl Probe {
    pub(super) fn new(
        channel: Channel,
        timeout: Duration,
        trigger: TriggerInput,
        address: String,
    ) -> Self {
        Self {
            channel,
            timeout,
            trigger,
            address,
            slowest: None,
            calls: 0,
            timed_out: Vec::new(),
        }
    }

    async fn timed<T>(
        &mut self,
        rpc: &'static str,
        answer: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let answer = answer.await;
        self.note(rpc, started.elapsed(), &answer);
        answer
    }

    fn note<T>(&mut self, rpc: &'static str, took: Duration, answer: &Result<T, ClientError>) {
        self.calls += 1;
        if self.slowest.is_none_or(|(_, slowest)| took > slowest) {
            self.slowest = Some((rpc, took));
        }
        if matches!(answer, Err(ClientError::Timeout { .. })) && !self.timed_out.contains(&rpc) {
            self.timed_out.push(rpc);
        }
    }

    /// Every RPC answered within its deadline?
    pub(super) fn deadline_outcome(&self) -> Outcome {
        if !self.timed_out.is_empty() {
            return Outcome::Fail(format!(
                "no answer within {:?} from: {}",
                self.timeout,
                self.timed_out.join(", ")
            ));
        }
        match self.slowest {
            Some((rpc, took)) => Outcome::Pass(format!(
                "{} calls answered; slowest {rpc} took {} (deadline {:?})",
                self.calls,
                millis(took),
                self.timeout
            )),
            None => Outcome::Skip("no calls made".into()),
        }
    }

    pub(super) async fn info(&mut self) -> Result<v1::GetInfoResponse, ClientError> {
        let mut client = V1Client::new(self.channel.clone());
        let timeout = self.timeout;
        self.timed(
            "GetInfo",
            call(
                "GetInfo",
                timeout,
                |r| client.get_info(r),
                v1::GetInfoRequest {},
            ),
        )
        .await
    }

    pub(super) async fn spec(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<v1::GetMetricSpecResponse, ClientError> {
        let mut client = V1Client::new(self.channel.clone());
        let (timeout, request) = (self.timeout, v1_request(trigger));
        self.timed(
            "GetMetricSpec",
            call(
                "GetMetricSpec",
                timeout,
                |r| client.get_metric_spec(r),
                request,
            ),
        )
        .await
    }

    pub(super) async fn metrics(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<v1::GetMetricsResponse, ClientError> {
        let mut client = V1Client::new(self.channel.clone());
        let (timeout, request) = (self.timeout, v1_request(trigger));
        self.timed(
            "GetMetrics",
            call("GetMetrics", timeout, |r| client.get_metrics(r), request),
        )
        .await
    }

    pub(super) async fn is_active(&mut self, trigger: &TriggerInput) -> Result<bool, ClientError> {
        let mut client = V1Client::new(self.channel.clone());
        let (timeout, request) = (self.timeout, v1_request(trigger));
        self.timed(
            "IsActive",
            call("IsActive", timeout, |r| client.is_active(r), request),
        )
        .await
        .map(|answer| answer.active)
    }

    /// The first message of v1 StreamIsActive: `Ok(None)` when the stream closed empty.
    pub(super) async fn first_push(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<Option<bool>, ClientError> {
        let mut client = V1Client::new(self.channel.clone());
        let (timeout, request) = (self.timeout, v1_request(trigger));
        let first = async move {
            let mut stream = client.stream_is_active(request).await?.into_inner();
            stream
                .message()
                .await
                .map(|message| message.map(|message| message.active))
        };
        self.timed(
            "StreamIsActive",
            first_message("StreamIsActive", timeout, first),
        )
        .await
    }

    pub(super) async fn keda_spec(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<keda::GetMetricSpecResponse, ClientError> {
        let mut client = ExternalScalerClient::new(self.channel.clone());
        let (timeout, request) = (self.timeout, keda_ref(trigger));
        self.timed(
            "KEDA GetMetricSpec",
            call(
                "KEDA GetMetricSpec",
                timeout,
                |r| client.get_metric_spec(r),
                request,
            ),
        )
        .await
    }

    pub(super) async fn keda_metrics(
        &mut self,
        trigger: &TriggerInput,
        metric_name: &str,
    ) -> Result<keda::GetMetricsResponse, ClientError> {
        let mut client = ExternalScalerClient::new(self.channel.clone());
        let request = keda::GetMetricsRequest {
            scaled_object_ref: Some(keda_ref(trigger)),
            metric_name: metric_name.to_owned(),
        };
        let timeout = self.timeout;
        self.timed(
            "KEDA GetMetrics",
            call(
                "KEDA GetMetrics",
                timeout,
                |r| client.get_metrics(r),
                request,
            ),
        )
        .await
    }

    pub(super) async fn keda_is_active(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<bool, ClientError> {
        let mut client = ExternalScalerClient::new(self.channel.clone());
        let (timeout, request) = (self.timeout, keda_ref(trigger));
        self.timed(
            "KEDA IsActive",
            call("KEDA IsActive", timeout, |r| client.is_active(r), request),
        )
        .await
        .map(|answer| answer.result)
    }

    /// The first message of KEDA StreamIsActive.
    pub(super) async fn keda_first_push(
        &mut self,
        trigger: &TriggerInput,
    ) -> Result<Option<bool>, ClientError> {
        let mut client = ExternalScalerClient::new(self.channel.clone());
        let (timeout, request) = (self.timeout, keda_ref(trigger));
        let first = async move {
            let mut stream = client.stream_is_active(request).await?.into_inner();
            stream
                .message()
                .await
                .map(|message| message.map(|message| message.result))
        };
        self.timed(
            "KEDA StreamIsActive",
            first_message("KEDA StreamIsActive", timeout, first),
        )
        .await
    }

    /// `count` v1 GetMetrics (or KEDA GetMetrics for `keda_metric`) at once: how many
    /// failed, the first failure, and how long the whole batch took.
    pub(super) async fn concurrent_metrics(
        &mut self,
        count: usize,
        keda_metric: Option<&str>,
    ) -> (usize, Option<ClientError>, Duration) {
        let started = Instant::now();
        let calls = (0..count).map(|_| {
            let channel = self.channel.clone();
            let timeout = self.timeout;
            let trigger = &self.trigger;
            async move {
                match keda_metric {
                    None => {
                        let mut client = V1Client::new(channel);
                        call(
                            "GetMetrics",
                            timeout,
                            |r| client.get_metrics(r),
                            v1_request(trigger),
                        )
                        .await
                        .map(drop)
                    }
                    Some(name) => {
                        let mut client = ExternalScalerClient::new(channel);
                        let request = keda::GetMetricsRequest {
                            scaled_object_ref: Some(keda_ref(trigger)),
                            metric_name: name.to_owned(),
                        };
                        call(
                            "KEDA GetMetrics",
                            timeout,
                            |r| client.get_metrics(r),
                            request,
                        )
                        .await
                        .map(drop)
                    }
                }
            }
        });
        let answers = futures::future::join_all(calls).await;
        let took = started.elapsed();
        for answer in &answers {
            self.note("concurrent GetMetrics", took, answer);
        }
        let failures = answers.iter().filter(|answer| answer.is_err()).count();
        let first_error = answers.into_iter().find_map(Result::err);
        (failures, first_error, took)
    }
}

async fn first_message(
    rpc: &'static str,
    timeout: Duration,
    first: impl Future<Output = Result<Option<bool>, tonic::Status>>,
) -> Result<Option<bool>, ClientError> {
    match tokio::time::timeout(timeout, first).await {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(status)) => Err(ClientError::from_status(rpc, &status)),
        Err(_) => Err(ClientError::Timeout { rpc, timeout }),
    }
}
