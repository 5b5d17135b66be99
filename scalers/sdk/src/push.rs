//! Push sampling: one measurement loop per distinct source, shared by every StreamIsActive
//! subscriber of that source, each subscriber deriving its own activity from its own specs.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use futures::Stream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use ebb::protocol::Redactor;

use crate::core::{Core, join};
use crate::{Measurement, Scaler, ScalerError, Trigger};

/// What a sampler last saw: nothing yet, a measurement, or an error.
type Sample = Option<Result<Measurement, ScalerError>>;

/// A stream of activity values or a status ending the stream.
pub(crate) type ActivityStream = Pin<Box<dyn Stream<Item = Result<bool, ScalerError>> + Send>>;

/// One running measurement loop; stops when the last subscriber drops it.
struct Sampler {
    samples: watch::Receiver<Sample>,
    task: JoinHandle<()>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The samplers of a served scaler, keyed by [`Scaler::source_key`].
pub(crate) struct PushHub<S: Scaler> {
    core: Arc<Core<S>>,
    samplers: Mutex<HashMap<String, Weak<Sampler>>>,
}

impl<S: Scaler> PushHub<S> {
    pub fn new(core: Arc<Core<S>>) -> Self {
        Self {
            core,
            samplers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Sampler>>> {
        self.samplers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sampler(&self, trigger: &Trigger<S::Config>, redactor: &Redactor) -> Arc<Sampler> {
        let key = self.core.scaler.source_key(trigger);
        let mut samplers = self.lock();
        if let Some(existing) = samplers.get(&key).and_then(Weak::upgrade) {
            return existing;
        }
        samplers.retain(|_, weak| weak.strong_count() > 0);
        let (sender, samples) = watch::channel(None);
        let core = self.core.clone();
        let trigger = trigger.clone();
        let redactor = redactor.clone();
        let interval = self.core.scaler.sample_interval(&trigger);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let result = core.sample(&trigger, &redactor).await;
                sender.send_modify(|sample| *sample = Some(result));
            }
        });
        let sampler = Arc::new(Sampler { samples, task });
        samplers.insert(key, Arc::downgrade(&sampler));
        sampler
    }

    /// Activity changes for one subscriber: the current state first, then each change. The
    /// stream ends with an error if the source cannot be measured before any state was sent.
    pub fn subscribe(
        &self,
        trigger: Trigger<S::Config>,
        redactor: Redactor,
    ) -> Result<ActivityStream, ScalerError> {
        let specs = self.core.specs(&trigger)?;
        let sampler = self.sampler(&trigger, &redactor);
        let mut samples = sampler.samples.clone();
        Ok(Box::pin(async_stream::stream! {
            // Holding the sampler keeps its loop alive while this subscriber listens.
            let _sampler = sampler;
            let mut last: Option<bool> = None;
            loop {
                let sample = samples.borrow_and_update().clone();
                match sample {
                    Some(Ok(measurement)) => {
                        let active = join(specs.clone(), measurement).active;
                        if last != Some(active) {
                            last = Some(active);
                            yield Ok(active);
                        }
                    }
                    Some(Err(error)) if last.is_none() => {
                        // The sampler may be shared with a trigger carrying other secrets.
                        yield Err(error.redacted(&redactor));
                        break;
                    }
                    // After a first state, a failed sample keeps the last state: the host
                    // polls too and sees the error there.
                    Some(Err(_)) | None => {}
                }
                if samples.changed().await.is_err() {
                    break;
                }
            }
        }))
    }
}
