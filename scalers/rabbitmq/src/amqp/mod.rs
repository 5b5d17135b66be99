//! AMQP measurement: one pooled connection per broker (address, vhost, credentials, TLS),
//! shared by every trigger, with a small pool of channels for passive `queue.declare`.
//!
//! A missing queue makes the broker close the channel it was declared on; only that channel
//! is dropped, so other triggers on the same connection never notice. A lost connection is
//! replaced on demand, no sooner than a jittered, growing backoff allows, so a dead broker
//! is not hammered and the number of connections never grows with triggers or polls.

mod broker;
mod error;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use broker::{Broker, QueueCounts};
pub use error::AmqpError;

use crate::address::BrokerAddress;
use crate::config::TlsOptions;

/// Tunables of the AMQP pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Connection name shown by the broker (management UI, `rabbitmqctl list_connections`).
    pub connection_name: String,
    /// Most channels open at once on one connection; more concurrent requests queue.
    pub max_channels: usize,
    /// First reconnect delay after a failure; doubles per failure, with jitter.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// A broker unused this long has its connection closed.
    pub idle_close: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            connection_name: "ebb-rabbitmq-scaler".into(),
            max_channels: 32,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            idle_close: Duration::from_secs(600),
        }
    }
}

/// What identifies one pooled connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerKey {
    /// Address with credentials and vhost.
    pub address: BrokerAddress,
    /// TLS options.
    pub tls: TlsOptions,
}

/// The pool of AMQP connections, one per [`BrokerKey`].
#[derive(Debug)]
pub struct AmqpPool {
    options: PoolOptions,
    brokers: Mutex<HashMap<BrokerKey, Arc<Broker>>>,
    last_sweep: Mutex<Instant>,
}

impl AmqpPool {
    /// An empty pool.
    pub fn new(options: PoolOptions) -> Self {
        Self {
            options,
            brokers: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// The broker for `key`, created (not yet connected) on first use.
    pub fn broker(&self, key: &BrokerKey) -> Arc<Broker> {
        self.sweep_idle();
        let mut brokers = self.brokers.lock().unwrap_or_else(|p| p.into_inner());
        brokers
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Broker::new(key.clone(), self.options.clone())))
            .clone()
    }

    /// Number of brokers currently holding an open connection.
    pub fn open_connections(&self) -> usize {
        let brokers = self.brokers.lock().unwrap_or_else(|p| p.into_inner());
        brokers
            .values()
            .filter(|broker| broker.is_connected())
            .count()
    }

    /// Closes every connection (for shutdown).
    pub async fn close_all(&self) {
        let brokers: Vec<Arc<Broker>> = {
            let mut brokers = self.brokers.lock().unwrap_or_else(|p| p.into_inner());
            brokers.drain().map(|(_, broker)| broker).collect()
        };
        for broker in brokers {
            broker.close().await;
        }
    }

    /// Drops brokers unused for `idle_close`, at most once a minute, closing their
    /// connections in the background, so removed triggers do not keep connections open.
    fn sweep_idle(&self) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < Duration::from_secs(60) {
                return;
            }
            *last = Instant::now();
        }
        let idle: Vec<Arc<Broker>> = {
            let mut brokers = self.brokers.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<BrokerKey> = brokers
                .iter()
                .filter(|(_, broker)| broker.idle_for() >= self.options.idle_close)
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|key| brokers.remove(key)).collect()
        };
        if !idle.is_empty() {
            tokio::spawn(async move {
                for broker in idle {
                    broker.close().await;
                }
            });
        }
    }
}
