//! The scaler connection pool: one HTTP/2 channel per (address, TLS settings), shared by every
//! object and trigger that names it.
//!
//! An address whose host is an IP literal or `localhost` gets one lazily connected channel. A
//! DNS name (a headless Service in front of several scaler pods) gets a balanced channel fed
//! by a resolver task that re-resolves the name periodically, so requests spread over every
//! pod and follow pods as they come and go. Protocol detection (`GetInfo`) is cached per
//! connection by the [`ScalerClient`] inside.
//!
//! The pool keeps only weak references: a connection closes when the last trigger using it
//! goes away, and its resolver task ends with it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::mpsc::Sender;
use tonic::Code;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

use super::metrics::{RpcLabels, RuntimeMetrics};
use crate::client::{ChannelSettings, ClientError, ScalerClient};

/// How often a DNS name is re-resolved unless configured otherwise.
pub const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// Unary RPCs in flight at once on one connection; more wait in the channel's queue (their
/// deadline still runs). Thousands of simultaneous HTTP/2 streams on one connection cost far
/// more than queueing them, and a burst of polls would otherwise time out together.
const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;

/// Polls admitted at once per connection. A poll waits for a slot before its request exists,
/// so a burst (a restart with 100,000 objects) queues cheaply and without its deadline running,
/// instead of holding a request, headers and a future per object until deadlines expire
/// together. Above [`MAX_IN_FLIGHT_PER_CONNECTION`] so a balanced connection's pods stay busy.
const MAX_POLLS_ADMITTED_PER_CONNECTION: usize = 1024;

/// Settings of a [`ScalerPool`].
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// How often DNS names are re-resolved to follow scaler pods.
    pub resolve_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            resolve_interval: DEFAULT_RESOLVE_INTERVAL,
        }
    }
}

/// Shared scaler connections. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ScalerPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    config: PoolConfig,
    metrics: RuntimeMetrics,
    // Touched only when a trigger is (re)configured, never per poll.
    connections: Mutex<HashMap<ChannelSettings, Weak<ScalerConnection>>>,
}

/// One pooled connection to a scaler (possibly balanced over several pods).
#[derive(Debug)]
pub struct ScalerConnection {
    settings: ChannelSettings,
    client: ScalerClient,
    rpc: RpcRecorder,
    poll_slots: Arc<tokio::sync::Semaphore>,
}

impl ScalerPool {
    /// An empty pool recording RPC metrics into `metrics`.
    pub fn new(config: PoolConfig, metrics: RuntimeMetrics) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                config,
                metrics,
                connections: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The connection for `settings`, created on first use. Must be called inside a tokio
    /// runtime (channels spawn their workers). Fails only when the settings cannot make an
    /// endpoint (bad address, unusable TLS material).
    pub fn connection(
        &self,
        settings: &ChannelSettings,
    ) -> Result<Arc<ScalerConnection>, ClientError> {
        let mut connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = connections.get(settings).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        connections.retain(|_, weak| weak.strong_count() > 0);
        let channel = build_channel(settings, self.inner.config.resolve_interval)?;
        let connection = Arc::new(ScalerConnection {
            settings: settings.clone(),
            client: ScalerClient::new(channel).masking_tls(settings.tls.as_ref()),
            rpc: RpcRecorder::new(&settings.address, &self.inner.metrics),
            poll_slots: Arc::new(tokio::sync::Semaphore::new(
                MAX_POLLS_ADMITTED_PER_CONNECTION,
            )),
        });
        connections.insert(settings.clone(), Arc::downgrade(&connection));
        Ok(connection)
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|weak| weak.strong_count() > 0)
            .count()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The metrics this pool records into.
    pub fn metrics(&self) -> &RuntimeMetrics {
        &self.inner.metrics
    }
}

impl ScalerConnection {
    /// The protocol-neutral client over this connection.
    pub fn client(&self) -> &ScalerClient {
        &self.client
    }

    /// The settings this connection was made for.
    pub fn settings(&self) -> &ChannelSettings {
        &self.settings
    }

    /// The scaler address, as configured.
    pub fn address(&self) -> &str {
        &self.settings.address
    }

    pub(crate) fn rpc(&self) -> &RpcRecorder {
        &self.rpc
    }

    /// Admission of polls on this connection (see `MAX_POLLS_ADMITTED_PER_CONNECTION`).
    pub(crate) fn poll_slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.poll_slots
    }
}

/// Records RPC latency and errors for one address. The success series of each method is
/// created once and kept, so the common path does no label lookups.
#[derive(Debug)]
pub(crate) struct RpcRecorder {
    address: String,
    metrics: RuntimeMetrics,
    ok: [Histogram; RpcMethod::COUNT],
}

/// The scaler RPCs the runtime sends (KEDA's poll counts as `GetMetrics` as a whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RpcMethod {
    GetInfo = 0,
    GetMetricSpec = 1,
    GetMetrics = 2,
    StreamIsActive = 3,
}

impl RpcMethod {
    const COUNT: usize = 4;
    const ALL: [RpcMethod; Self::COUNT] = [
        RpcMethod::GetInfo,
        RpcMethod::GetMetricSpec,
        RpcMethod::GetMetrics,
        RpcMethod::StreamIsActive,
    ];

    fn name(self) -> &'static str {
        match self {
            RpcMethod::GetInfo => "GetInfo",
            RpcMethod::GetMetricSpec => "GetMetricSpec",
            RpcMethod::GetMetrics => "GetMetrics",
            RpcMethod::StreamIsActive => "StreamIsActive",
        }
    }
}

impl RpcRecorder {
    fn new(address: &str, metrics: &RuntimeMetrics) -> Self {
        let ok = RpcMethod::ALL.map(|method| {
            metrics.scaler_rpc_duration.get_or_create_owned(&RpcLabels {
                address: address.to_owned(),
                method: method.name(),
                code: format!("{:?}", Code::Ok),
            })
        });
        Self {
            address: address.to_owned(),
            metrics: metrics.clone(),
            ok,
        }
    }

    /// Records one finished call that started at `started`.
    pub(crate) fn record<T>(
        &self,
        method: RpcMethod,
        started: Instant,
        result: &Result<T, ClientError>,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(_) => self.ok[method as usize].observe(seconds),
            Err(error) => {
                let labels = RpcLabels {
                    address: self.address.clone(),
                    method: method.name(),
                    code: format!("{:?}", error.code()),
                };
                self.metrics
                    .scaler_rpc_duration
                    .get_or_create(&labels)
                    .observe(seconds);
                let errors: Counter = self.metrics.scaler_errors.get_or_create_owned(&labels);
                errors.inc();
            }
        }
    }
}

/// Host and port of an address written as `host:port`, `[v6]:port` or a URI.
fn host_and_port(address: &str, tls: bool) -> Option<(String, u16)> {
    let rest = address
        .trim()
        .strip_prefix("http://")
        .or_else(|| address.trim().strip_prefix("https://"))
        .unwrap_or(address.trim());
    let authority = rest.split('/').next()?;
    let default_port = if tls { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
}

/// A name worth balancing over: not an IP literal, not `localhost` (whose v4 and v6 answers
/// are the same process, often listening on one of them only).
fn needs_balancing(host: &str) -> bool {
    host.parse::<IpAddr>().is_err() && !host.eq_ignore_ascii_case("localhost")
}

fn build_channel(
    settings: &ChannelSettings,
    resolve_interval: Duration,
) -> Result<Channel, ClientError> {
    // Validates the address and TLS material up front, whichever channel is built.
    let single =
        crate::client::channel::endpoint(settings)?.concurrency_limit(MAX_IN_FLIGHT_PER_CONNECTION);
    let Some((host, port)) = host_and_port(&settings.address, settings.tls.is_some()) else {
        return Ok(single.connect_lazy());
    };
    if !needs_balancing(&host) {
        return Ok(single.connect_lazy());
    }
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    let template = settings.clone();
    tokio::spawn(resolve_forever(
        host,
        port,
        template,
        changes,
        resolve_interval,
    ));
    Ok(channel)
}

/// The endpoint of one resolved pod: the pod's IP, verified against the original host name.
fn pod_endpoint(
    template: &ChannelSettings,
    host: &str,
    addr: SocketAddr,
) -> Result<Endpoint, ClientError> {
    let scheme = if template.address.starts_with("https://") || template.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut settings = template.clone();
    settings.address = format!("{scheme}://{addr}");
    if let Some(tls) = settings.tls.as_mut() {
        tls.server_name.get_or_insert_with(|| host.to_owned());
    }
    Ok(
        crate::client::channel::endpoint(&settings)?
            .concurrency_limit(MAX_IN_FLIGHT_PER_CONNECTION),
    )
}

async fn resolve_forever(
    host: String,
    port: u16,
    template: ChannelSettings,
    changes: Sender<Change<SocketAddr, Endpoint>>,
    interval: Duration,
) {
    let mut known: HashSet<SocketAddr> = HashSet::new();
    loop {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(addrs) => {
                let now: HashSet<SocketAddr> = addrs.collect();
                if now.is_empty() {
                    tracing::warn!(address = %template.address, "scaler name resolved to no address; keeping the last known pods");
                } else {
                    for gone in known.difference(&now) {
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for added in now.difference(&known) {
                        match pod_endpoint(&template, &host, *added) {
                            Ok(endpoint) => {
                                if changes
                                    .send(Change::Insert(*added, endpoint))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                            Err(error) => {
                                tracing::warn!(address = %template.address, pod = %added, %error, "cannot build scaler endpoint");
                            }
                        }
                    }
                    known = now;
                }
            }
            Err(error) => {
                tracing::warn!(address = %template.address, %error, "cannot resolve scaler address; keeping the last known pods");
            }
        }
        // Until the first answer, retry quickly: every RPC waits for an endpoint meanwhile.
        let wait = if known.is_empty() {
            interval.min(Duration::from_secs(1))
        } else {
            interval
        };
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_handles_every_form() {
        assert_eq!(
            host_and_port("scaler:9000", false),
            Some(("scaler".into(), 9000))
        );
        assert_eq!(
            host_and_port("https://scaler.ns.svc:9443", true),
            Some(("scaler.ns.svc".into(), 9443))
        );
        assert_eq!(
            host_and_port("[::1]:7000", false),
            Some(("::1".into(), 7000))
        );
        assert_eq!(host_and_port("scaler", true), Some(("scaler".into(), 443)));
        assert_eq!(host_and_port("scaler:notaport", false), None);
    }

    #[test]
    fn only_dns_names_are_balanced() {
        assert!(needs_balancing("scaler.ns.svc.cluster.local"));
        assert!(!needs_balancing("127.0.0.1"));
        assert!(!needs_balancing("::1"));
        assert!(!needs_balancing("localhost"));
    }

    #[tokio::test]
    async fn same_settings_share_one_connection() {
        let pool = ScalerPool::new(PoolConfig::default(), RuntimeMetrics::unregistered());
        let settings = ChannelSettings::plain("127.0.0.1:1");
        let first = pool.connection(&settings).unwrap();
        let second = pool.connection(&settings).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let other = pool
            .connection(&ChannelSettings::plain("127.0.0.1:2"))
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(pool.len(), 2);
        drop((first, second));
        assert_eq!(pool.len(), 1);
    }

    #[tokio::test]
    async fn bad_address_is_an_error() {
        let pool = ScalerPool::new(PoolConfig::default(), RuntimeMetrics::unregistered());
        assert!(pool.connection(&ChannelSettings::plain("")).is_err());
    }
}

#[cfg(test)]
mod resolver_tests {
    use super::*;

    #[tokio::test]
    async fn resolver_inserts_resolved_addresses_and_stops_with_the_channel() {
        let (changes, mut received) = tokio::sync::mpsc::channel(8);
        let template = ChannelSettings::plain("localhost:4000");
        let task = tokio::spawn(resolve_forever(
            "localhost".into(),
            4000,
            template,
            changes,
            Duration::from_millis(5),
        ));
        match received.recv().await {
            Some(Change::Insert(addr, endpoint)) => {
                assert_eq!(addr.port(), 4000);
                assert!(addr.ip().is_loopback());
                assert_eq!(endpoint.uri().port_u16(), Some(4000));
            }
            Some(Change::Remove(addr)) => panic!("unexpected removal of {addr}"),
            None => panic!("resolver ended without resolving"),
        }
        drop(received);
        task.await.unwrap();
    }

    #[test]
    fn pod_endpoints_verify_tls_against_the_service_name() {
        let template = ChannelSettings {
            tls: Some(crate::client::TlsSettings::default()),
            ..ChannelSettings::plain("scaler.ns.svc:9443")
        };
        let endpoint =
            pod_endpoint(&template, "scaler.ns.svc", "10.0.0.7:9443".parse().unwrap()).unwrap();
        assert_eq!(endpoint.uri().to_string(), "https://10.0.0.7:9443/");
    }
}
