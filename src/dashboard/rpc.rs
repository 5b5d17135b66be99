//! Scaler RPC latency (p50/p99 per address) and push subscriptions, read from the runtime's
//! own Prometheus metrics, so the dashboard shows the figures `/metrics` exports and keeps no
//! second set of counters.

use std::collections::BTreeMap;

use prometheus_client::registry::Registry;
use serde::Serialize;

/// RPC figures of one scaler address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalerRpc {
    /// The scaler's address.
    pub address: String,
    /// RPCs made.
    pub calls: u64,
    /// Bucket bound (seconds) under which half of them finished.
    pub p50: Option<f64>,
    /// Bucket bound (seconds) under which 99 % of them finished.
    pub p99: Option<f64>,
}

/// What the dashboard shows about scaler calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcSummary {
    /// Per address, sorted.
    pub scalers: Vec<ScalerRpc>,
    /// Push subscriptions opened (first and re-subscriptions), all objects.
    pub push_subscriptions: u64,
}

/// Reads the summary from `registry`.
pub fn summary(registry: &Registry) -> RpcSummary {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, registry).is_err() {
        return RpcSummary::default();
    }
    parse(&text)
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

/// The summary from OpenMetrics text.
fn parse(text: &str) -> RpcSummary {
    // address -> upper bound -> cumulative count (summed over methods and codes).
    let mut buckets: BTreeMap<String, BTreeMap<String, (f64, u64)>> = BTreeMap::new();
    let mut push_subscriptions = 0;
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(count) = value.parse::<f64>() else {
            continue;
        };
        if series.starts_with("ebb_push_subscriptions_total") {
            push_subscriptions += count as u64;
        }
        let Some(labels) = series.strip_prefix("ebb_scaler_rpc_duration_seconds_bucket{") else {
            continue;
        };
        let (Some(address), Some(le)) = (label(labels, "address"), label(labels, "le")) else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        let entry = buckets
            .entry(address.to_owned())
            .or_default()
            .entry(le.to_owned())
            .or_insert((bound, 0));
        entry.1 += count as u64;
    }
    let scalers = buckets
        .into_iter()
        .map(|(address, by_bound)| {
            let mut sorted: Vec<(f64, u64)> = by_bound.into_values().collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let calls = sorted.last().map_or(0, |bucket| bucket.1);
            let quantile = |q: f64| {
                let wanted = (q * calls as f64).ceil() as u64;
                (calls > 0)
                    .then(|| sorted.iter().find(|bucket| bucket.1 >= wanted.max(1)))
                    .flatten()
                    .map(|bucket| bucket.0)
                    .filter(|bound| bound.is_finite())
            };
            ScalerRpc {
                address,
                calls,
                p50: quantile(0.5),
                p99: quantile(0.99),
            }
        })
        .collect();
    RpcSummary {
        scalers,
        push_subscriptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets_summed_over_methods() {
        let text = "\
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"GetMetrics\",code=\"OK\",le=\"0.001\"} 50
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"GetMetrics\",code=\"OK\",le=\"0.002\"} 98
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"GetMetrics\",code=\"OK\",le=\"+Inf\"} 99
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"IsActive\",code=\"OK\",le=\"0.001\"} 0
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"IsActive\",code=\"OK\",le=\"0.002\"} 0
ebb_scaler_rpc_duration_seconds_bucket{address=\"a:1\",method=\"IsActive\",code=\"OK\",le=\"+Inf\"} 1
ebb_push_subscriptions_total{namespace=\"\",object=\"x\"} 3
";
        let summary = parse(text);
        assert_eq!(summary.push_subscriptions, 3);
        assert_eq!(
            summary.scalers,
            vec![ScalerRpc {
                address: "a:1".to_owned(),
                calls: 100,
                p50: Some(0.001),
                p99: None,
            }]
        );
    }
}
