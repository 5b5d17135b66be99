//! The dashboard's memory: a bounded ring of samples and scale events per object, fed by a
//! [`StatusSink`] tee so the controller and `ebb run` record it the same way. Nothing is
//! recorded unless a host wraps its sink in [`HistorySink`] (the dashboard is on).
//!
//! Memory per object is capped: at most [`MAX_SAMPLES`] samples of `16 + 8 × triggers`
//! bytes (values and targets as `f32`, at most [`MAX_TRIGGERS`] triggers) and at most
//! [`MAX_EVENTS`] events whose text is cut to [`MAX_EVENT_TEXT`] bytes. One trigger: about
//! 86 KB of samples + 19 KB of events. Samples are taken when the status changes (a poll
//! whose value or replicas moved), so a quiet object uses far less; samples older than
//! [`KEPT`] are dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::local::status::format_value;
use crate::runtime::{ObjectEvent, ObjectKey, REASON_SCALED, StatusSink};
use crate::simulate::chart::{ChartData, MetricLine, ScaleMark};
use crate::spec::ScaledObjectStatus;

/// How long samples are kept.
pub const KEPT: Duration = Duration::from_secs(3600);
/// Samples kept per object at most (one hour at a one-second polling interval).
pub const MAX_SAMPLES: usize = 3600;
/// Triggers recorded per object at most (the rest are shown in the list, not charted).
pub const MAX_TRIGGERS: usize = 8;
/// Events kept per object at most.
pub const MAX_EVENTS: usize = 64;
/// Bytes of an event's text kept at most.
pub const MAX_EVENT_TEXT: usize = 300;

/// One status change: when, and the replica counts.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Milliseconds since the Unix epoch.
    at: u64,
    desired: u32,
    current: u32,
}

/// One recorded event.
#[derive(Debug, Clone)]
struct Recorded {
    at: u64,
    scaled: bool,
    text: String,
}

/// One object's ring.
#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Sample>,
    /// `values[i * stride + t]` and `targets[..]`: trigger `t` at sample `i`; NaN = none.
    values: VecDeque<f32>,
    targets: VecDeque<f32>,
    names: Vec<String>,
    events: VecDeque<Recorded>,
    latest: Option<ScaledObjectStatus>,
}

impl Ring {
    fn stride(&self) -> usize {
        self.names.len()
    }

    fn push(&mut self, at: u64, status: &ScaledObjectStatus) {
        let names: Vec<String> = status
            .triggers
            .iter()
            .take(MAX_TRIGGERS)
            .map(|trigger| trigger.name.clone())
            .collect();
        if names != self.names {
            // The object's triggers changed: the old columns mean nothing any more.
            self.samples.clear();
            self.values.clear();
            self.targets.clear();
            self.names = names;
        }
        while self.samples.len() >= MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|oldest| at.saturating_sub(oldest.at) > KEPT.as_millis() as u64)
        {
            self.samples.pop_front();
            for _ in 0..self.stride() {
                self.values.pop_front();
                self.targets.pop_front();
            }
        }
        self.samples.push_back(Sample {
            at,
            desired: status.desired_replicas.unwrap_or(0),
            current: status.current_replicas.unwrap_or(0),
        });
        for trigger in status.triggers.iter().take(MAX_TRIGGERS) {
            self.values
                .push_back(trigger.last_value.map_or(f32::NAN, |value| value as f32));
            self.targets
                .push_back(trigger.target.map_or(f32::NAN, |value| value as f32));
        }
        match &mut self.latest {
            Some(latest) => latest.clone_from(status),
            None => self.latest = Some(status.clone()),
        }
    }

    fn event(&mut self, at: u64, event: &ObjectEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        let mut text = format!("{}: {}", event.reason, event.message);
        if text.len() > MAX_EVENT_TEXT {
            let mut cut = MAX_EVENT_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        self.events.push_back(Recorded {
            at,
            scaled: event.reason == REASON_SCALED,
            text,
        });
    }

    fn chart(&self, now: u64, window: Duration) -> ChartData {
        let window_ms = window.as_millis() as u64;
        let start = now.saturating_sub(window_ms);
        let second = |at: u64| at.saturating_sub(start) / 1000;
        let first = self.samples.partition_point(|sample| sample.at < start);
        // The sample in force at the window's start opens the lines at second 0.
        let from = first.saturating_sub(1);
        let stride = self.stride();
        let time_of = |index: usize| {
            let sample = &self.samples[index];
            if index < first { 0 } else { second(sample.at) }
        };
        let mut metrics: Vec<MetricLine> = self
            .names
            .iter()
            .enumerate()
            .map(|(column, name)| {
                let points: Vec<(u64, Option<f64>)> = (from..self.samples.len())
                    .map(|index| {
                        let value = self.values[index * stride + column];
                        (
                            time_of(index),
                            (!value.is_nan()).then_some(f64::from(value)),
                        )
                    })
                    .collect();
                let target = self
                    .samples
                    .len()
                    .checked_sub(1)
                    .map(|last| self.targets[last * stride + column])
                    .filter(|target| !target.is_nan())
                    .map(f64::from);
                let latest = points
                    .last()
                    .and_then(|point| point.1)
                    .map_or_else(|| "?".to_owned(), format_value);
                // Thresholds seldom change: the latest one is drawn across the window, as the
                // target is, rather than stored with every sample.
                let activation = self
                    .latest
                    .as_ref()
                    .and_then(|status| status.triggers.get(column))
                    .and_then(|trigger| trigger.activation_target);
                MetricLine {
                    name: name.clone(),
                    label: format!("{name} = {latest}"),
                    points,
                    target,
                    activation,
                }
            })
            .collect();
        // Extend every line to now: the value holds until the next change.
        let end = second(now);
        for line in &mut metrics {
            if let Some(&(time, value)) = line.points.last()
                && time < end
            {
                line.points.push((end, value));
            }
        }
        let mut desired: Vec<(u64, u32)> = (from..self.samples.len())
            .map(|index| (time_of(index), self.samples[index].desired))
            .collect();
        let mut current: Vec<(u64, u32)> = (from..self.samples.len())
            .map(|index| (time_of(index), self.samples[index].current))
            .collect();
        for line in [&mut desired, &mut current] {
            if let Some(&(time, count)) = line.last()
                && time < end
            {
                line.push((end, count));
            }
        }
        let marks = self
            .events
            .iter()
            .filter(|event| event.scaled && event.at >= start)
            .map(|event| {
                let replicas = self
                    .samples
                    .iter()
                    .rev()
                    .find(|sample| sample.at <= event.at.saturating_add(1000))
                    .map_or(0, |sample| sample.desired);
                ScaleMark {
                    time: second(event.at),
                    replicas,
                    reason: event.text.clone(),
                }
            })
            .collect();
        ChartData {
            span: window.as_secs().max(1),
            time_caption: format!(
                "seconds (window: last {})",
                humantime::format_duration(window)
            ),
            metric_caption: "metric".to_owned(),
            metrics,
            replicas: desired,
            second_replicas: Some(("current replicas".to_owned(), current)),
            marks,
        }
    }
}

/// One object as the dashboard lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEntry {
    /// Namespace ("" outside Kubernetes).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The latest status.
    pub status: Option<ScaledObjectStatus>,
    /// The latest event, `Reason: message`.
    pub last_event: Option<String>,
}

/// The recorded history of every object. Clones share it.
#[derive(Clone, Debug)]
pub struct History {
    rings: Arc<Mutex<BTreeMap<ObjectKey, Ring>>>,
    changes: broadcast::Sender<ObjectKey>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self {
            rings: Arc::default(),
            changes: broadcast::channel(1024).0,
        }
    }

    fn with<T>(&self, key: &ObjectKey, change: impl FnOnce(&mut Ring) -> T) -> T {
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let out = change(rings.entry(key.clone()).or_default());
        drop(rings);
        // No receiver (nobody watching) is fine.
        let _ = self.changes.send(key.clone());
        out
    }

    /// Records a status of `key` taken at `at`.
    pub fn record_status(&self, key: &ObjectKey, status: &ScaledObjectStatus, at: SystemTime) {
        self.with(key, |ring| ring.push(millis(at), status));
    }

    /// Records an event of `key` at `at`.
    pub fn record_event(&self, key: &ObjectKey, event: &ObjectEvent, at: SystemTime) {
        self.with(key, |ring| ring.event(millis(at), event));
    }

    /// Forgets `key`.
    pub fn remove(&self, key: &ObjectKey) {
        self.rings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        let _ = self.changes.send(key.clone());
    }

    /// Every object with its latest status, sorted.
    pub fn objects(&self) -> Vec<ObjectEntry> {
        self.rings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, ring)| ObjectEntry {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                status: ring.latest.clone(),
                last_event: ring.events.back().map(|event| event.text.clone()),
            })
            .collect()
    }

    /// The chart data of `key` over the `window` before `now`.
    pub fn chart(&self, key: &ObjectKey, now: SystemTime, window: Duration) -> Option<ChartData> {
        self.rings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|ring| ring.chart(millis(now), window))
    }

    /// Keys of objects as they change (lagging receivers should reload everything).
    pub fn changes(&self) -> broadcast::Receiver<ObjectKey> {
        self.changes.subscribe()
    }
}

/// A [`StatusSink`] that records into a [`History`] and passes everything on to `inner`.
pub struct HistorySink {
    inner: Arc<dyn StatusSink>,
    history: History,
}

impl HistorySink {
    /// Records into `history` on the way to `inner`.
    pub fn new(inner: Arc<dyn StatusSink>, history: History) -> Self {
        Self { inner, history }
    }
}

impl StatusSink for HistorySink {
    fn publish_status<'a>(
        &'a self,
        key: &'a ObjectKey,
        status: &'a Arc<crate::runtime::SharedStatus>,
    ) -> BoxFuture<'a, ()> {
        status.read(|status| self.history.record_status(key, status, SystemTime::now()));
        self.inner.publish_status(key, status)
    }

    fn record_event<'a>(&'a self, key: &'a ObjectKey, event: &'a ObjectEvent) -> BoxFuture<'a, ()> {
        self.history.record_event(key, event, SystemTime::now());
        self.inner.record_event(key, event)
    }

    fn object_removed<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, ()> {
        self.history.remove(key);
        self.inner.object_removed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::EventKind;
    use crate::spec::TriggerStatus;

    fn status(value: f64, desired: u32) -> ScaledObjectStatus {
        ScaledObjectStatus {
            triggers: vec![TriggerStatus {
                name: "queue".to_owned(),
                last_value: Some(value),
                target: Some(5.0),
                activation_target: Some(2.0),
                ..TriggerStatus::default()
            }],
            desired_replicas: Some(desired),
            current_replicas: Some(desired),
            ..ScaledObjectStatus::default()
        }
    }

    #[test]
    fn the_ring_is_bounded_and_charts_the_window() {
        let history = History::new();
        let key = ObjectKey::new("", "orders");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for second in 0..(MAX_SAMPLES as u64 + 100) {
            history.record_status(
                &key,
                &status(second as f64, 1),
                start + Duration::from_secs(second),
            );
        }
        let ring_len = history.rings.lock().unwrap()[&key].samples.len();
        assert_eq!(ring_len, MAX_SAMPLES);
        let now = start + Duration::from_secs(MAX_SAMPLES as u64 + 99);
        let event = ObjectEvent {
            kind: EventKind::Normal,
            reason: REASON_SCALED,
            message: "x".repeat(1000),
        };
        history.record_event(&key, &event, now);
        let chart = history.chart(&key, now, Duration::from_secs(300)).unwrap();
        assert_eq!(chart.metrics[0].target, Some(5.0));
        assert_eq!(chart.metrics[0].activation, Some(2.0));
        assert_eq!(
            chart.metrics[0].points.first().map(|point| point.0),
            Some(0)
        );
        assert_eq!(
            chart.metrics[0].points.last().map(|point| point.0),
            Some(300)
        );
        assert!(
            chart.metrics[0].label.ends_with("= 3699"),
            "{}",
            chart.metrics[0].label
        );
        assert_eq!(chart.marks.len(), 1);
        assert!(chart.marks[0].reason.len() <= MAX_EVENT_TEXT + '…'.len_utf8());
        let svg = crate::simulate::chart::render(&chart, "orders").unwrap();
        assert!(svg.contains("class=\"scale-event\""), "{svg}");
        assert!(svg.contains("queue activation 2"), "{svg}");
    }
}
