//! Polling one trigger: the RPCs of one poll, their deadline, the cached metric specs, and
//! what the loop remembers about the trigger between polls.
//!
//! Steady state is ONE `GetMetrics` per poll over v1 and `GetMetrics` + `IsActive` over KEDA's
//! protocol (its specs are fetched once per trigger configuration and cached here; the
//! poller is rebuilt when the trigger changes).

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::ObjectKey;
use super::keda_metrics::KedaTrigger;
use super::pool::{RpcMethod, ScalerConnection, ScalerPool};
use super::push::{PushBackoff, PushTask, TriggerActivity};
use super::series::{ObjectSeries, TriggerSeries};
use super::sink::{EventKind, ObjectEvent, REASON_TRIGGER_FAILING, REASON_TRIGGER_RECOVERED};
use super::trigger::{PushMode, ResolvedTrigger};
use crate::client::{
    ClientError, EncodedRequest, MetricSpec, MetricsReading, Protocol, ScalerClient, ScalerInfo,
};

/// What the loop knows about one trigger.
pub(crate) struct TriggerPoller {
    /// Shared with the push task: one copy of the metadata and secrets per trigger.
    pub(crate) trigger: Arc<ResolvedTrigger>,
    /// `Err` holds why no connection could be made (bad address or TLS): every poll fails.
    connection: Result<Arc<ScalerConnection>, String>,
    client: Option<ScalerClient>,
    protocol: Option<Protocol>,
    /// The KEDA scaler's GetMetricSpec answer, asked once (a boxed slice: v1 triggers, the
    /// common case, pay one word for it).
    keda_specs: Option<Box<[MetricSpec]>>,
    /// The v1 request, encoded once (the trigger never changes for a poller).
    encoded: EncodedRequest,
    pub(crate) activity: Arc<TriggerActivity>,
    push_task: Option<JoinHandle<()>>,
    /// The last successful reading (kept across failures, for status and push evaluation).
    pub(crate) last_reading: Option<MetricsReading>,
    /// The error of the last poll, if it failed.
    pub(crate) last_error: Option<PollFailure>,
    /// Failed polls since the last success.
    pub(crate) consecutive_failures: u32,
    /// A pushed activation not yet confirmed or denied by a poll.
    pub(crate) pushed_active: bool,
    /// The trigger's exported numbers.
    pub(crate) series: Arc<TriggerSeries>,
    /// The same series under KEDA's names, when exported.
    /// Boxed: most installations do not export KEDA's names, and the poller is kept per
    /// trigger.
    keda: Option<Box<KedaTrigger>>,
}

/// A failed poll, classified by gRPC code, with a message safe to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PollFailure {
    pub(crate) code: tonic::Code,
    pub(crate) message: String,
}

impl From<&ClientError> for PollFailure {
    fn from(error: &ClientError) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl TriggerPoller {
    pub(crate) fn new(
        object: &ObjectSeries,
        trigger: ResolvedTrigger,
        pool: &ScalerPool,
        previous_activity: Option<Arc<TriggerActivity>>,
    ) -> Self {
        let connection = pool
            .connection(&trigger.channel)
            .map_err(|error| error.to_string());
        let client = connection
            .as_ref()
            .ok()
            .map(|connection| match trigger.protocol {
                // Named KEDA (trigger type `external`): trust it, share the channel, skip GetInfo.
                Some(Protocol::Keda) => connection.client().known_as(ScalerInfo::keda()),
                _ => connection.client().clone(),
            });
        let encoded = EncodedRequest::v1(&trigger.input);
        let metrics = pool.metrics();
        let series = object.trigger(trigger.name());
        Self {
            keda: metrics
                .keda_trigger(series.labels(), trigger.input.trigger_index)
                .map(Box::new),
            series,
            trigger: Arc::new(trigger),
            connection,
            client,
            protocol: None,
            keda_specs: None,
            encoded,
            activity: previous_activity.unwrap_or_default(),
            push_task: None,
            last_reading: None,
            last_error: None,
            consecutive_failures: 0,
            pushed_active: false,
        }
    }

    /// The admission slots of this trigger's connection, when it has one.
    pub(crate) fn poll_slots(&self) -> Option<&Arc<tokio::sync::Semaphore>> {
        self.connection
            .as_ref()
            .ok()
            .map(|connection| connection.poll_slots())
    }

    /// Marks the trigger as one of a ScaledJob (in KEDA-named series).
    pub(crate) fn for_scaled_job(mut self) -> Self {
        if let Some(keda) = &mut self.keda {
            keda.for_scaled_job();
        }
        self
    }

    /// Starts the push subscription unless push is off or there is no connection.
    pub(crate) fn start_push(
        &mut self,
        wake: &Arc<super::mailbox::Mailbox>,
        backoff: PushBackoff,
        object: &ObjectKey,
        series: &Arc<ObjectSeries>,
    ) {
        if self.trigger.push == PushMode::Never {
            return;
        }
        let (Ok(connection), Some(client)) = (&self.connection, &self.client) else {
            return;
        };
        series.start_pushing();
        let task = PushTask {
            trigger: self.trigger.clone(),
            client: client.clone(),
            connection: connection.clone(),
            activity: self.activity.clone(),
            wake: wake.clone(),
            backoff,
            subscriptions: series.clone(),
            object: object.to_string(),
        };
        self.push_task = Some(tokio::spawn(task.run()));
    }

    /// Polls the trigger once, updating what is remembered about it.
    pub(crate) async fn poll(&mut self, object: &ObjectKey) -> bool {
        let span = tracing::debug_span!(
            "poll",
            object = %object,
            trigger = self.trigger.name(),
            address = self.trigger.channel.address.as_str()
        );
        let result = self.measure().instrument(span).await;
        let address = self.trigger.channel.address.as_str();
        match result {
            Ok(reading) => {
                if self.consecutive_failures > 0 {
                    tracing::info!(object = %object, trigger = self.trigger.name(), address, "trigger answers again");
                }
                self.activity.set_polled(reading.active);
                self.pushed_active = false;
                self.series.set_polled(reading.active);
                self.series.record_values(
                    reading
                        .values
                        .iter()
                        .map(|value| (value.metric_name.as_str(), value.value, value.target)),
                );
                if let Some(keda) = &self.keda {
                    let values = self.series.values();
                    keda.record_success(
                        reading.active,
                        values.iter().map(|(metric, value)| (&**metric, *value)),
                    );
                }
                self.last_reading = Some(reading);
                self.last_error = None;
                self.consecutive_failures = 0;
                true
            }
            Err(failure) => {
                if self.consecutive_failures == 0 {
                    tracing::warn!(object = %object, trigger = self.trigger.name(), address, code = ?failure.code, error = %failure.message, "trigger poll failed");
                } else {
                    tracing::debug!(object = %object, trigger = self.trigger.name(), address, code = ?failure.code, error = %failure.message, "trigger poll failed again");
                }
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.series.set_failures(self.consecutive_failures);
                if let Some(keda) = &self.keda {
                    let values = self.series.values();
                    keda.record_failure(values.iter().map(|(metric, _)| &**metric));
                }
                self.last_error = Some(failure);
                false
            }
        }
    }

    async fn measure(&mut self) -> Result<MetricsReading, PollFailure> {
        let connection = self.connection.as_ref().map_err(|message| PollFailure {
            code: tonic::Code::InvalidArgument,
            message: message.clone(),
        })?;
        let Some(client) = self.client.as_ref() else {
            return Err(PollFailure {
                code: tonic::Code::InvalidArgument,
                message: "no scaler client".into(),
            });
        };
        let rpc = connection.rpc();
        let timeout = self.trigger.timeout;
        let protocol = match self.protocol {
            Some(protocol) => protocol,
            None => {
                // GetInfo runs once per connection (the client caches it); the first poll of
                // each trigger records how long detection took from its point of view.
                let started = Instant::now();
                let detected = client.protocol(timeout).await;
                rpc.record(RpcMethod::GetInfo, started, &detected);
                let detected = detected.map_err(|error| PollFailure::from(&error))?;
                self.protocol = Some(detected);
                detected
            }
        };
        if protocol == Protocol::Keda && self.keda_specs.is_none() {
            let started = Instant::now();
            let specs = client.metric_specs(&self.trigger.input, timeout).await;
            rpc.record(RpcMethod::GetMetricSpec, started, &specs);
            self.keda_specs = Some(
                specs
                    .map_err(|error| PollFailure::from(&error))?
                    .into_boxed_slice(),
            );
        }
        let specs = self.keda_specs.as_deref().unwrap_or(&[]);
        let started = Instant::now();
        let reading = client
            .metrics_prepared(&self.trigger.input, &self.encoded, specs, timeout)
            .await;
        rpc.record(RpcMethod::GetMetrics, started, &reading);
        reading.map_err(|error| {
            // A spec that no longer matches the scaler's answers is refetched next time.
            if matches!(error, ClientError::BadAnswer { .. }) || error.is_invalid_metadata() {
                self.keda_specs = None;
            }
            PollFailure::from(&error)
        })
    }

    /// The event for a change of health since the last poll (`was_failing` before it): a
    /// Warning when the trigger starts failing, a Normal when it answers again.
    pub(crate) fn transition(&self, was_failing: bool) -> Option<ObjectEvent> {
        let failing = self.consecutive_failures > 0;
        let name = self.trigger.name();
        if failing && !was_failing {
            let message = match &self.last_error {
                Some(error) => format!("trigger {name} failed: {}", error.message),
                None => format!("trigger {name} failed"),
            };
            Some(ObjectEvent {
                kind: EventKind::Warning,
                reason: REASON_TRIGGER_FAILING,
                message,
            })
        } else if !failing && was_failing {
            Some(ObjectEvent {
                kind: EventKind::Normal,
                reason: REASON_TRIGGER_RECOVERED,
                message: format!("trigger {name} answers again"),
            })
        } else {
            None
        }
    }
}

impl Drop for TriggerPoller {
    fn drop(&mut self) {
        if let Some(task) = self.push_task.take() {
            task.abort();
        }
    }
}
