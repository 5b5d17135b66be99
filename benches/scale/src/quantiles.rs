//! Quantiles: exact ones over samples, and estimated ones over the cumulative buckets of a
//! Prometheus histogram (the runtime's scale-loop lag), read from its text encoding.

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `q` quantile (0..=1) of `samples` by the nearest-rank method; `None` when empty.
pub fn exact(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let rank = (q * samples.len() as f64).ceil() as usize;
    Some(samples[rank.clamp(1, samples.len()) - 1])
}

/// Cumulative bucket counts of one histogram at one moment: `(upper bound, count <= bound)`,
/// ascending, the last bound being `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, u64)>);

/// An estimated quantile: linear interpolation inside the bucket holding the rank, with that
/// bucket's bounds so a reader can judge the estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The interpolated value.
    pub value: f64,
    /// Lower bound of the bucket holding the rank.
    pub bucket_low: f64,
    /// Upper bound of that bucket (`+Inf` for the overflow bucket).
    pub bucket_high: f64,
}

impl Buckets {
    /// Reads the buckets of `histogram` by encoding it in a registry of its own.
    pub fn read(histogram: &Histogram) -> Self {
        let mut registry = Registry::default();
        registry.register("h", "histogram being read", histogram.clone());
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        Self::parse(&text, "h")
    }

    /// Parses the `<name>_bucket{le="..."} <count>` lines of a text encoding.
    pub fn parse(text: &str, name: &str) -> Self {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut buckets: Vec<(f64, u64)> = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (bound, rest) = rest.split_once("\"}")?;
                let count = rest.split_whitespace().next()?.parse::<u64>().ok()?;
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse::<f64>().ok()?
                };
                Some((bound, count))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self(buckets)
    }

    /// What was observed between `earlier` and `self` (both of the same histogram).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|(bound, count)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(other, _)| other == bound)
                        .map_or(0, |(_, count)| *count);
                    (*bound, count.saturating_sub(before))
                })
                .collect(),
        )
    }

    /// Number of observations.
    pub fn total(&self) -> u64 {
        self.0.last().map_or(0, |(_, count)| *count)
    }

    /// The estimated `q` quantile; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<Estimate> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut low = 0.0;
        let mut below = 0u64;
        for (bound, count) in &self.0 {
            if *count as f64 >= rank && *count > below {
                if bound.is_infinite() {
                    return Some(Estimate {
                        value: low,
                        bucket_low: low,
                        bucket_high: *bound,
                    });
                }
                let share = (rank - below as f64) / (*count - below) as f64;
                return Some(Estimate {
                    value: low + (bound - low) * share.clamp(0.0, 1.0),
                    bucket_low: low,
                    bucket_high: *bound,
                });
            }
            low = *bound;
            below = *count;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::histogram::exponential_buckets;

    #[test]
    fn exact_quantiles_use_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(exact(&mut samples, 0.5), Some(50.0));
        assert_eq!(exact(&mut samples, 0.99), Some(99.0));
        assert_eq!(exact(&mut samples, 1.0), Some(100.0));
        assert_eq!(exact(&mut [], 0.5), None);
    }

    #[test]
    fn histogram_quantiles_interpolate_inside_the_bucket() {
        let histogram = Histogram::new(exponential_buckets(0.001, 2.0, 4));
        let before = Buckets::read(&histogram);
        for _ in 0..90 {
            histogram.observe(0.0005);
        }
        for _ in 0..10 {
            histogram.observe(0.003);
        }
        let buckets = Buckets::read(&histogram).since(&before);
        assert_eq!(buckets.total(), 100);
        let median = buckets.quantile(0.5).unwrap();
        assert_eq!((median.bucket_low, median.bucket_high), (0.0, 0.001));
        let p99 = buckets.quantile(0.99).unwrap();
        assert_eq!((p99.bucket_low, p99.bucket_high), (0.002, 0.004));
        assert!(p99.value > 0.002 && p99.value <= 0.004, "{p99:?}");
    }

    #[test]
    fn only_the_window_counts() {
        let histogram = Histogram::new(exponential_buckets(0.001, 2.0, 4));
        histogram.observe(5.0);
        let before = Buckets::read(&histogram);
        histogram.observe(0.0001);
        let window = Buckets::read(&histogram).since(&before);
        assert_eq!(window.total(), 1);
        assert_eq!(window.quantile(0.99).unwrap().bucket_high, 0.001);
    }
}
