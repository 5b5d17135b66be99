//! Leader election with a `coordination.k8s.io/v1` Lease: several controller replicas run,
//! one holds the lease and acts. A holder renews the lease every `renew_interval`; the others
//! take it over once they have seen it unchanged for `lease_duration` (measured on their own
//! clock, so clock skew between nodes does not matter). Every write carries the
//! resourceVersion that was read, so two candidates never both win: one gets 409 Conflict.
//! A Lease namespace that does not exist is named, with its fix, at error level and in
//! `/readyz`; the candidate keeps trying and takes part once the namespace appears.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use crate::runtime::Readiness;

/// Why the Lease could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Lease's namespace does not exist (a 404 naming `namespaces` on create).
    #[error(
        "the leader Lease's namespace {namespace:?} does not exist: create it \
         (`kubectl create namespace {namespace}`), or run the controller with --namespace \
         (env POD_NAMESPACE) naming an existing namespace"
    )]
    NamespaceMissing {
        /// The namespace.
        namespace: String,
    },
    /// Any other API error.
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// Whether `status` (a failed create) says the namespace itself is missing.
fn namespace_missing(status: &kube::core::Status) -> bool {
    status.code == 404
        && (status
            .details
            .as_ref()
            .is_some_and(|details| details.kind == "namespaces")
            || status.message.starts_with("namespaces "))
}

/// Timing of the election.
#[derive(Debug, Clone)]
pub struct LeaseTiming {
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// How often a candidate retries.
    pub retry_interval: Duration,
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    timing: LeaseTiming,
    /// The other holder's record as last seen, and when it was first seen so.
    observed: Option<(Option<String>, Option<String>, Instant)>,
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl LeaderElector {
    /// A candidate named `identity` for the lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timing,
            observed: None,
        }
    }

    /// The election timing.
    pub fn timing(&self) -> &LeaseTiming {
        &self.timing
    }

    fn now() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    /// Takes or renews the lease once. `Ok(true)`: this candidate holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds(self.timing.lease_duration)),
                    acquire_time: Some(Self::now()),
                    renew_time: Some(Self::now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(kube::Error::Api(status)) if namespace_missing(&status) => {
                    Err(LeaseError::NamespaceMissing {
                        namespace: self.namespace.clone(),
                    })
                }
                Err(error) => Err(error.into()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.identity.as_str());
        if !ours && holder.is_some() {
            let record = (
                holder.clone(),
                spec.renew_time.as_ref().map(|t| t.0.to_string()),
            );
            let first_seen = match &self.observed {
                Some((h, r, at)) if (h, r) == (&record.0, &record.1) => *at,
                _ => Instant::now(),
            };
            self.observed = Some((record.0, record.1, first_seen));
            let duration = spec
                .lease_duration_seconds
                .map_or(self.timing.lease_duration, |s| {
                    Duration::from_secs(u64::try_from(s).unwrap_or(0))
                });
            if first_seen.elapsed() < duration {
                return Ok(false);
            }
        }
        let mut next = spec;
        if !ours {
            next.acquire_time = Some(Self::now());
            next.lease_transitions = Some(next.lease_transitions.unwrap_or(0) + 1);
        }
        next.holder_identity = Some(self.identity.clone());
        next.lease_duration_seconds = Some(seconds(self.timing.lease_duration));
        next.renew_time = Some(Self::now());
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = None;
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(Self::now());
        if let Err(error) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "releasing the leader lease failed");
        }
    }

    /// Waits until this candidate holds the lease. While the Lease's namespace is missing,
    /// `readiness` is not ready and says why (and the error is logged once); a standby is
    /// ready again once the namespace exists.
    pub async fn acquire(&mut self, readiness: &Readiness) {
        let mut namespace_missing = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {
                    if std::mem::take(&mut namespace_missing) {
                        tracing::info!(namespace = %self.namespace, "the leader Lease's namespace exists now");
                        readiness.set_ready(true);
                    }
                }
                Err(error @ LeaseError::NamespaceMissing { .. }) => {
                    if !std::mem::replace(&mut namespace_missing, true) {
                        tracing::error!(
                            namespace = %self.namespace,
                            "{error}; retrying every {}",
                            humantime::format_duration(self.timing.retry_interval)
                        );
                        readiness.set_not_ready(error.to_string());
                    } else {
                        tracing::debug!(namespace = %self.namespace, "the leader Lease's namespace is still missing");
                    }
                }
                Err(error) => tracing::warn!(%error, "reading the leader lease failed"),
            }
            tokio::time::sleep(self.timing.retry_interval).await;
        }
    }

    /// Renews until the lease is lost (another holder took it, or renewal kept failing for
    /// longer than the lease duration). Returns when leadership is lost.
    pub async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timing.renew_interval).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "renewing the leader lease failed");
                    // Stop acting before another candidate may take over.
                    if last_renewal.elapsed() + self.timing.renew_interval
                        >= self.timing.lease_duration
                    {
                        return;
                    }
                }
            }
        }
    }
}
