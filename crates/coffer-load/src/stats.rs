//! Latency recording and the summary figures printed per scenario.

use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly; slower requests saturate here (they would have
/// hit the request timeout long before in any sane run).
const MAX_TRACKED_MICROS: u64 = 120_000_000;

/// Per-worker latency record, in microseconds. hdrhistogram keeps memory bounded however long the
/// run is, at 3 significant digits (≤ 0.1 % error on every percentile).
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Latencies {
    pub fn new() -> anyhow::Result<Self> {
        let hist = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3)
            .map_err(|e| anyhow::anyhow!("latency histogram: {e}"))?;
        Ok(Self { hist })
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.hist.saturating_record(micros.max(1));
    }

    /// Folds another worker's record into this one.
    pub fn merge(&mut self, other: &Latencies) {
        // Both histograms were built with the same bounds, so addition cannot overflow the range;
        // saturate value by value if it ever did.
        if self.hist.add(&other.hist).is_err() {
            for v in other.hist.iter_recorded() {
                self.hist
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn summary(&self) -> Summary {
        if self.hist.is_empty() {
            return Summary::default();
        }
        Summary {
            p50_us: self.hist.value_at_quantile(0.50),
            p90_us: self.hist.value_at_quantile(0.90),
            p99_us: self.hist.value_at_quantile(0.99),
            max_us: self.hist.max(),
        }
    }
}

/// Latency percentiles in microseconds (zero when nothing was recorded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Requests per second over a measured wall-clock interval; zero for an empty interval rather than
/// infinity, so JSON output stays valid.
pub fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 && secs.is_finite() {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Ratio of two throughputs, `None` when the denominator is zero.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator > 0.0 && numerator.is_finite() && denominator.is_finite() {
        Some(numerator / denominator)
    } else {
        None
    }
}

/// Microseconds as milliseconds for display.
pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within hdrhistogram's 3-significant-digit resolution.
    fn close(actual: u64, expected: u64) -> bool {
        let tolerance = (expected / 1000).max(1);
        actual.abs_diff(expected) <= tolerance
    }

    #[test]
    fn percentiles_of_uniform_1_to_1000() {
        let mut l = Latencies::new().unwrap();
        for v in 1..=1000 {
            l.record_micros(v);
        }
        let s = l.summary();
        assert_eq!(l.count(), 1000);
        assert!(close(s.p50_us, 500), "p50 {}", s.p50_us);
        assert!(close(s.p90_us, 900), "p90 {}", s.p90_us);
        assert!(close(s.p99_us, 990), "p99 {}", s.p99_us);
        assert!(close(s.max_us, 1000), "max {}", s.max_us);
    }

    #[test]
    fn tail_outlier_shows_in_max_not_median() {
        let mut l = Latencies::new().unwrap();
        for _ in 0..999 {
            l.record_micros(200);
        }
        l.record_micros(50_000);
        let s = l.summary();
        assert!(close(s.p50_us, 200));
        assert!(close(s.p99_us, 200));
        assert!(close(s.max_us, 50_000), "max {}", s.max_us);
    }

    #[test]
    fn merge_combines_workers() {
        let mut a = Latencies::new().unwrap();
        let mut b = Latencies::new().unwrap();
        for _ in 0..50 {
            a.record_micros(100);
            b.record_micros(10_000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 100);
        let s = a.summary();
        assert!(close(s.p50_us, 100), "p50 {}", s.p50_us);
        assert!(close(s.p90_us, 10_000), "p90 {}", s.p90_us);
    }

    #[test]
    fn empty_and_extreme_values_do_not_panic() {
        let mut l = Latencies::new().unwrap();
        assert_eq!(l.summary(), Summary::default());
        l.record_micros(0);
        l.record_micros(u64::MAX);
        assert_eq!(l.count(), 2);
        assert!(l.summary().max_us >= MAX_TRACKED_MICROS);
    }

    #[test]
    fn rate_and_ratio_edges() {
        assert_eq!(rate(1000, 2.0), 500.0);
        assert_eq!(rate(1000, 0.0), 0.0);
        assert_eq!(ratio(50.0, 100.0), Some(0.5));
        assert_eq!(ratio(50.0, 0.0), None);
        assert_eq!(ms(1500), 1.5);
    }
}
