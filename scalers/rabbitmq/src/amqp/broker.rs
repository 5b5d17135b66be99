//! One broker's pooled connection: connect on demand (single-flight, with backoff), a pool of
//! idle channels, and passive `queue.declare`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::tcp::{AsyncTcpStream, RustlsConnector};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::time::timeout_at;

use super::error::{AmqpError, Context, classify};
use super::{BrokerKey, PoolOptions};

/// A connection attempt that takes longer than this is abandoned, whatever the request
/// deadline; requests stop waiting for it sooner.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Heartbeat interval asked for when `host` does not set `?heartbeat=`.
const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// What a passive `queue.declare` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages ready for delivery (unacknowledged ones are not included).
    pub ready: u64,
    /// Consumers subscribed to the queue.
    pub consumers: u64,
}

#[derive(Clone)]
struct Live {
    generation: u64,
    connection: Arc<Connection>,
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<AmqpError>,
}

/// One broker (address, vhost, credentials, TLS) and its single connection.
pub struct Broker {
    key: BrokerKey,
    masked: String,
    options: PoolOptions,
    live: Mutex<Option<Live>>,
    connect_lock: Arc<tokio::sync::Mutex<()>>,
    idle_channels: Mutex<Vec<(u64, Channel)>>,
    channel_permits: Semaphore,
    backoff: Mutex<Backoff>,
    generation: AtomicU64,
    created: Instant,
    last_used_millis: AtomicU64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("broker", &self.masked)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Broker {
    pub(super) fn new(key: BrokerKey, options: PoolOptions) -> Self {
        Self {
            masked: key.address.masked(),
            channel_permits: Semaphore::new(options.max_channels.max(1)),
            key,
            options,
            live: Mutex::new(None),
            connect_lock: Arc::new(tokio::sync::Mutex::new(())),
            idle_channels: Mutex::new(Vec::new()),
            backoff: Mutex::new(Backoff::default()),
            generation: AtomicU64::new(0),
            created: Instant::now(),
            last_used_millis: AtomicU64::new(0),
        }
    }

    /// The broker address with the password masked.
    pub fn masked(&self) -> &str {
        &self.masked
    }

    /// Whether the connection is open right now.
    pub fn is_connected(&self) -> bool {
        self.current()
            .is_some_and(|live| live.connection.status().connected())
    }

    pub(super) fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used_millis.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    fn touch(&self) {
        let now = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_millis.store(now, Ordering::Relaxed);
    }

    /// Passive `queue.declare` of `queue`: ready messages and consumers. A missing queue
    /// costs one channel, never the connection.
    pub async fn queue_counts(
        self: &Arc<Self>,
        queue: &str,
        timeout: Duration,
    ) -> Result<QueueCounts, AmqpError> {
        self.touch();
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || AmqpError::TimedOut {
            broker: self.masked.clone(),
            millis: timeout.as_millis(),
        };
        let _permit = timeout_at(deadline, self.channel_permits.acquire())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| self.other("channel pool closed"))?;
        let (generation, channel) = self.channel(deadline, timeout).await?;
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let declared = timeout_at(
            deadline,
            channel.queue_declare(queue.into(), options, FieldTable::default()),
        )
        .await;
        match declared {
            // The answer may still arrive on this channel; dropping it closes it.
            Err(_) => Err(timed_out()),
            Ok(Ok(declared)) => {
                self.return_channel(generation, channel);
                Ok(QueueCounts {
                    ready: u64::from(declared.message_count()),
                    consumers: u64::from(declared.consumer_count()),
                })
            }
            Ok(Err(error)) => {
                let error = classify(&error, &self.context(queue));
                if error.connection_lost() {
                    self.invalidate(generation);
                } else if channel.status().connected() {
                    self.return_channel(generation, channel);
                }
                Err(error)
            }
        }
    }

    fn context<'a>(&'a self, queue: &'a str) -> Context<'a> {
        Context {
            broker: &self.masked,
            vhost: &self.key.address.vhost,
            queue,
            secret: self.key.address.password.as_deref(),
        }
    }

    fn other(&self, detail: &str) -> AmqpError {
        AmqpError::Other {
            broker: self.masked.clone(),
            detail: detail.to_owned(),
        }
    }

    fn current(&self) -> Option<Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn return_channel(&self, generation: u64, channel: Channel) {
        if self
            .current()
            .is_some_and(|live| live.generation == generation)
        {
            let mut idle = self.idle_channels.lock().unwrap_or_else(|p| p.into_inner());
            idle.push((generation, channel));
        }
    }

    async fn channel(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(u64, Channel), AmqpError> {
        let live = self.connection(deadline, timeout).await?;
        loop {
            let idle = self
                .idle_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            match idle {
                Some((generation, channel))
                    if generation == live.generation && channel.status().connected() =>
                {
                    return Ok((generation, channel));
                }
                Some(_) => continue,
                None => break,
            }
        }
        match timeout_at(deadline, live.connection.create_channel()).await {
            Ok(Ok(channel)) => Ok((live.generation, channel)),
            Ok(Err(error)) => {
                let error = classify(&error, &self.context(""));
                if error.connection_lost() {
                    self.invalidate(live.generation);
                }
                Err(error)
            }
            Err(_) => Err(AmqpError::TimedOut {
                broker: self.masked.clone(),
                millis: timeout.as_millis(),
            }),
        }
    }

    /// The open connection, or a new one. Only one attempt runs at a time; it runs in its own
    /// task so a request giving up never leaves a half-open connection behind.
    async fn connection(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Live, AmqpError> {
        if let Some(live) = self.current().filter(|l| l.connection.status().connected()) {
            return Ok(live);
        }
        let still_connecting = || AmqpError::Unreachable {
            broker: self.masked.clone(),
            detail: format!("no connection within {} ms", timeout.as_millis()),
        };
        let guard = timeout_at(deadline, self.connect_lock.clone().lock_owned())
            .await
            .map_err(|_| still_connecting())?;
        if let Some(live) = self.current().filter(|l| l.connection.status().connected()) {
            return Ok(live);
        }
        if let Some(live) = self.current() {
            self.invalidate(live.generation);
        }
        {
            let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(retry_at), Some(error)) = (backoff.retry_at, &backoff.last_error)
                && retry_at > Instant::now()
            {
                return Err(error.clone());
            }
        }
        let broker = Arc::clone(self);
        let attempt = tokio::spawn(async move {
            let _guard = guard;
            broker.establish().await
        });
        match timeout_at(deadline, attempt).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.other("connection attempt panicked")),
            Err(_) => Err(still_connecting()),
        }
    }

    async fn establish(&self) -> Result<Live, AmqpError> {
        let opened = match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(opened) => opened,
            Err(_) => Err(AmqpError::Unreachable {
                broker: self.masked.clone(),
                detail: format!(
                    "connecting took longer than {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            }),
        };
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        match opened {
            Ok(connection) => {
                if backoff.failures > 0 {
                    tracing::info!(broker = %self.masked, "reconnected to broker");
                } else {
                    tracing::debug!(broker = %self.masked, "connected to broker");
                }
                *backoff = Backoff::default();
                let live = Live {
                    generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
                    connection: Arc::new(connection),
                };
                *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some(live.clone());
                Ok(live)
            }
            Err(error) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let delay = self.backoff_delay(backoff.failures);
                backoff.retry_at = Some(Instant::now() + delay);
                backoff.last_error = Some(error.clone());
                // The error's text passes the same redaction as the gRPC error it becomes.
                tracing::warn!(
                    broker = %self.masked,
                    failures = backoff.failures,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %self.key.address.redact(&error.to_string()),
                    "cannot connect to broker"
                );
                Err(error)
            }
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so many scalers
    /// restarting together spread their reconnects.
    fn backoff_delay(&self, failures: u32) -> Duration {
        let exponent = failures.saturating_sub(1).min(16);
        let full = self
            .options
            .backoff_initial
            .saturating_mul(1 << exponent)
            .min(self.options.backoff_max);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    async fn open(&self) -> Result<Connection, AmqpError> {
        let mut uri: AMQPUri = self
            .key
            .address
            .with_credentials()
            .parse()
            .map_err(|_| self.other("`host` is not a valid AMQP URI"))?;
        // A silently dead TCP connection is noticed after two missed heartbeats; the broker's
        // default (60 s) would leave triggers timing out for two minutes.
        uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
        let properties = ConnectionProperties::default()
            .with_connection_name(self.options.connection_name.clone().into());
        let context = self.context("");
        let opened = if self.key.address.scheme.is_tls() {
            let config = crate::tls::client_config(&self.key.tls)?;
            let connector = RustlsConnector::from(Arc::new(config));
            let runtime = lapin::runtime::default_runtime().map_err(|e| classify(&e, &context))?;
            Connection::connector(
                uri,
                runtime,
                async move |uri: AMQPUri, runtime| {
                    let host = uri
                        .authority
                        .host
                        .trim_start_matches('[')
                        .trim_end_matches(']');
                    let addresses: Vec<_> = tokio::net::lookup_host((host, uri.authority.port))
                        .await?
                        .collect();
                    let stream = AsyncTcpStream::connect(&runtime, addresses).await?;
                    Ok(stream.into_rustls(&connector, host).await?)
                },
                properties,
            )
            .await
        } else {
            Connection::connect_uri(uri, properties).await
        };
        opened.map_err(|error| classify(&error, &context))
    }

    /// Forgets connection `generation` (if still current) and its channels; dropping them
    /// closes them.
    fn invalidate(&self, generation: u64) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.as_ref().is_some_and(|l| l.generation == generation) {
            *live = None;
            drop(live);
            self.idle_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.idle_channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        if let Some(live) = live {
            let closing = live.connection.close(200, "scaler closing".into());
            let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::BrokerAddress;

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let key = BrokerKey {
            address: BrokerAddress::parse("amqp://h").expect("valid address"),
            tls: crate::config::TlsOptions::default(),
        };
        let broker = Broker::new(key, PoolOptions::default());
        for failures in 1..40_u32 {
            let full = Duration::from_millis(100)
                .saturating_mul(1 << failures.saturating_sub(1).min(16))
                .min(Duration::from_secs(5));
            let delay = broker.backoff_delay(failures);
            assert!(
                delay >= full / 2 && delay <= full,
                "{failures}: {delay:?} vs {full:?}"
            );
        }
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|_| broker.backoff_delay(8)).collect();
        assert!(spread.len() > 1, "delays are jittered");
    }
}
