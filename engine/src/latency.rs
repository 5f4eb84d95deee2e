//! A fixed-bucket latency histogram in Prometheus's shape (a count per upper bound, the sum, the count):
//! plain counters owned by one shard, copied out for the metrics endpoint. Used for the commit log's flush
//! (write + fdatasync) here and for send requests in the broker.

/// Upper bounds of the buckets, in µs; a last, unbounded bucket follows.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket of [`LATENCY_BUCKETS_US`], plus one for above the last bound.
    pub buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    pub sum_us: u64,
    pub count: u64,
}

impl Histogram {
    pub fn observe(&mut self, us: u64) {
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i] += 1;
        self.sum_us += us;
        self.count += 1;
    }
}
