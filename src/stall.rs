//! Reactor stall measurement: how long a shard's executor went without polling its tasks.
//!
//! glommio is cooperative: a task that computes (or blocks) for 20 ms delays every other task of its shard
//! by 20 ms, sends and pulls alike. Each shard runs a probe ([`run`]) in a task queue of its own
//! (latency-sensitive, `Latency::Matters`, full shares) that sleeps [`PROBE_INTERVAL_MS`] and records how
//! late it woke: the time the reactor did not get back to its timers. Lateness goes into a per-shard
//! `hdrhistogram` (µs) and fixed buckets for Prometheus ([`STALL_BUCKETS_US`], 0.5 ms … 100 ms), all in a
//! thread-local read by the shard's own metrics sampler ([`snapshot`]): no lock, no atomics.
//!
//! A wake-up later than [`STALL_LOG_THRESHOLD_MS`] is logged (at most once per [`STALL_LOG_INTERVAL_MS`],
//! with the number not logged since) with what ran: the longest labelled task poll since the probe's last
//! wake-up ([`apogee_transport::running`]: the request code being served, or "timer", "schedule", ...).
//! Lateness includes the kernel's wake-up latency when the shard was idle and parked, and the time the
//! thread was off its CPU (another process ran: on a shared machine, often most of it). So the probe also
//! reads the thread's CPU time over each sleep: `min(lateness, CPU time)` bounds the part of a stall the
//! shard spent running its own code, kept as a second series ("on CPU"), and the log line says which it was
//! (off its CPU means blocked in a system call, such as a blocking metadata write, or waiting for a CPU).
//!
//! Test-only: [`TEST_BLOCK_SHARD_MS_ENV`] (`APOGEE_TEST_BLOCK_SHARD_MS=N`) makes every GET_BROKER_RUNTIME_INFO
//! request spin on its shard's thread for N ms, so a test can cause a stall on purpose. Read once; unset, it
//! costs one branch on a cached value.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use apogee_transport::running::{self, labelled, Label};
use apogee_transport::StopSignal;
use futures::future::{select, Either};
use glommio::{Latency, Shares};
use tracing::warn;

/// How long the probe sleeps between wake-ups.
pub const PROBE_INTERVAL_MS: u64 = 1;
/// A wake-up this late (or later) is logged.
pub const STALL_LOG_THRESHOLD_MS: u64 = 10;
/// At most one stall log line per shard per this interval.
pub const STALL_LOG_INTERVAL_MS: u64 = 1_000;
/// Upper bounds of the Prometheus buckets, µs (0.5 ms … 100 ms); `+Inf` follows.
pub const STALL_BUCKETS_US: [u64; 8] = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000];
/// The histogram's largest value (µs): longer stalls are recorded as this.
const STALL_RECORD_MAX_US: u64 = 60_000_000;
/// Test-only fault injection (see the module docs).
pub const TEST_BLOCK_SHARD_MS_ENV: &str = "APOGEE_TEST_BLOCK_SHARD_MS";

/// One shard's stall figures.
pub struct Stalls {
    histogram: hdrhistogram::Histogram<u64>,
    buckets: [u64; STALL_BUCKETS_US.len()],
    sum_us: u64,
    /// The on-CPU series: lateness bounded by the thread's CPU time over the sleep.
    on_cpu_buckets: [u64; STALL_BUCKETS_US.len()],
    on_cpu_sum_us: u64,
    on_cpu_max_us: u64,
    /// When the last stall was logged, and how many were over the threshold since without a line.
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Default for Stalls {
    fn default() -> Self {
        Self {
            // 1 µs … 60 s at 2 significant digits: a few KiB.
            histogram: hdrhistogram::Histogram::new_with_bounds(1, STALL_RECORD_MAX_US, 2)
                .unwrap_or_else(|_| {
                    hdrhistogram::Histogram::new(2).unwrap_or_else(|_| unreachable!())
                }),
            buckets: [0; STALL_BUCKETS_US.len()],
            sum_us: 0,
            on_cpu_buckets: [0; STALL_BUCKETS_US.len()],
            on_cpu_sum_us: 0,
            on_cpu_max_us: 0,
            last_logged: None,
            unlogged: 0,
        }
    }
}

/// What a stall log line says about the stalls it stands for.
#[derive(Debug, PartialEq, Eq)]
pub struct LogDue {
    /// Stalls over the threshold since the last line, this one included.
    pub stalls: u64,
}

impl Stalls {
    /// Records one wake-up `late_us` late; says whether to log it (over the threshold, and no line within
    /// the interval).
    pub fn record(&mut self, late_us: u64, now: Instant) -> Option<LogDue> {
        let late_us = late_us.min(STALL_RECORD_MAX_US);
        self.histogram.saturating_record(late_us.max(1));
        self.sum_us = self.sum_us.saturating_add(late_us);
        if let Some(i) = STALL_BUCKETS_US.iter().position(|b| late_us <= *b) {
            self.buckets[i] += 1;
        }
        if late_us < STALL_LOG_THRESHOLD_MS * 1000 {
            return None;
        }
        self.unlogged += 1;
        let due = self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(STALL_LOG_INTERVAL_MS));
        if !due {
            return None;
        }
        self.last_logged = Some(now);
        Some(LogDue {
            stalls: std::mem::take(&mut self.unlogged),
        })
    }

    /// Records the on-CPU part of the same wake-up's lateness.
    pub fn record_on_cpu(&mut self, on_cpu_late_us: u64) {
        let us = on_cpu_late_us.min(STALL_RECORD_MAX_US);
        self.on_cpu_sum_us = self.on_cpu_sum_us.saturating_add(us);
        self.on_cpu_max_us = self.on_cpu_max_us.max(us);
        if let Some(i) = STALL_BUCKETS_US.iter().position(|b| us <= *b) {
            self.on_cpu_buckets[i] += 1;
        }
    }

    pub fn summary(&self) -> StallSummary {
        let h = &self.histogram;
        StallSummary {
            buckets: self.buckets,
            count: h.len(),
            sum_us: self.sum_us,
            on_cpu_buckets: self.on_cpu_buckets,
            on_cpu_sum_us: self.on_cpu_sum_us,
            on_cpu_max_us: self.on_cpu_max_us,
            max_us: h.max(),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
        }
    }
}

/// A shard's stall figures at one moment (per-bucket counts, not cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StallSummary {
    pub buckets: [u64; STALL_BUCKETS_US.len()],
    pub count: u64,
    pub sum_us: u64,
    /// The same wake-ups' lateness bounded by the thread's CPU time (see the module docs).
    pub on_cpu_buckets: [u64; STALL_BUCKETS_US.len()],
    pub on_cpu_sum_us: u64,
    pub on_cpu_max_us: u64,
    pub max_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
}

thread_local! {
    static STALLS: RefCell<Stalls> = RefCell::new(Stalls::default());
}

/// This shard's stall figures (call on the shard's thread).
pub fn snapshot() -> StallSummary {
    STALLS.with(|s| s.borrow().summary())
}

/// The probe: runs until `stop` fires, in a task queue of its own.
pub async fn run(shard: usize, stop: StopSignal) {
    let queue = glommio::executor().create_task_queue(
        Shares::Static(1000),
        Latency::Matters(Duration::from_millis(PROBE_INTERVAL_MS)),
        "stall-probe",
    );
    let probe = async move {
        let interval = Duration::from_millis(PROBE_INTERVAL_MS);
        let _ = running::take_longest_poll();
        loop {
            let asleep = Instant::now();
            let cpu_before_us = thread_cpu_us();
            let tick = glommio::timer::sleep(interval);
            if let Either::Right(_) = select(Box::pin(tick), stop.clone()).await {
                break;
            }
            let woke = Instant::now();
            let late = woke.duration_since(asleep).saturating_sub(interval);
            let late_us = late.as_micros() as u64;
            let on_cpu_us = thread_cpu_us().saturating_sub(cpu_before_us);
            let longest = running::take_longest_poll();
            let due = STALLS.with(|s| {
                let mut s = s.borrow_mut();
                s.record_on_cpu(late_us.min(on_cpu_us));
                s.record(late_us, woke)
            });
            if let Some(due) = due {
                let what = match longest {
                    Some((took, label)) if took >= late / 2 => {
                        format!("{label} ran {} ms in one poll", took.as_millis())
                    }
                    Some((took, label)) => format!(
                        "no labelled task explains it (longest labelled poll: {label}, {} µs): the store's \
                         flusher, checkpointer, retention or disk monitor, replication, or the kernel",
                        took.as_micros()
                    ),
                    None => "no labelled task ran: the store's flusher, checkpointer, retention or disk \
                             monitor, replication, or the kernel"
                        .to_owned(),
                };
                let off_cpu = if on_cpu_us < late_us / 2 {
                    " The thread ran only {on_cpu} ms of it: the rest it was off its CPU, blocked in a system call (a \
                     blocking file write) or waiting for a CPU (a busy machine)."
                } else {
                    ""
                }
                .replace("{on_cpu}", &(on_cpu_us / 1000).to_string());
                warn!(
                    shard,
                    stall_ms = late.as_millis() as u64,
                    on_cpu_ms = on_cpu_us / 1000,
                    stalls_since_last_line = due.stalls,
                    "reactor stall: the shard did not poll for {} ms; {what}.{off_cpu}",
                    late.as_millis()
                );
            }
        }
        let s = snapshot();
        tracing::info!(
            shard,
            probes = s.count,
            p99_us = s.p99_us,
            p999_us = s.p999_us,
            max_us = s.max_us,
            "reactor stalls since start"
        );
    };
    match glommio::spawn_local_into(probe, queue) {
        Ok(task) => task.await,
        Err(e) => {
            warn!(shard, error = %e, "the stall probe could not start; stalls are not measured")
        }
    }
}

/// CPU time this thread has used, µs (CLOCK_THREAD_CPUTIME_ID; 0 if it cannot be read).
fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000) + ts.tv_nsec as u64 / 1_000
}

/// Wraps one of the shard's own tasks so that its polls count under `name` (see the module docs).
pub fn task<F: std::future::Future>(name: &'static str, future: F) -> running::Labelled<F> {
    labelled(Label::Task(name), future)
}

/// The test hook: blocks this thread if [`TEST_BLOCK_SHARD_MS_ENV`] is set and `code` is
/// GET_BROKER_RUNTIME_INFO.
pub fn test_block(code: i32) {
    static BLOCK_MS: OnceLock<Option<u64>> = OnceLock::new();
    let block = *BLOCK_MS.get_or_init(|| {
        std::env::var(TEST_BLOCK_SHARD_MS_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = block {
        if code == apogee_net::codes::RequestCode::GetBrokerRuntimeInfo as i32 {
            warn!(
                ms,
                "{TEST_BLOCK_SHARD_MS_ENV}: blocking the shard (test-only)"
            );
            // Spins rather than sleeps: a stall of the shard's own making is CPU time, as this is.
            let until = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalls_fill_buckets_and_are_logged_once_per_interval() {
        let mut s = Stalls::default();
        let t0 = Instant::now();
        assert_eq!(s.record(100, t0), None);
        assert_eq!(s.record(1_500, t0), None);
        assert_eq!(s.record(15_000, t0), Some(LogDue { stalls: 1 }));
        assert_eq!(s.record(30_000, t0 + Duration::from_millis(10)), None);
        assert_eq!(s.record(200_000, t0 + Duration::from_millis(20)), None);
        assert_eq!(
            s.record(12_000, t0 + Duration::from_millis(STALL_LOG_INTERVAL_MS)),
            Some(LogDue { stalls: 3 })
        );
        let sum = s.summary();
        assert_eq!(sum.count, 6);
        // 100 µs → ≤0.5 ms, 1.5 ms → ≤2 ms, 15 → ≤20, 30 → ≤50, 12 → ≤20; 200 ms only in +Inf.
        assert_eq!(sum.buckets, [1, 0, 1, 0, 0, 2, 1, 0]);
        assert_eq!(sum.sum_us, 100 + 1_500 + 15_000 + 30_000 + 200_000 + 12_000);
        assert!(sum.max_us >= 199_000, "{}", sum.max_us);
    }
}
