//! `apogee-perf`: TPS and latency of any RocketMQ-compatible cluster, or of an embedded Apogee.
//!
//! - `produce`: N producers send M-byte messages (sync, async or oneway; single or batched), as fast as they
//!   can or at a fixed total rate. Latency is send→ack; at a fixed rate it is measured from the *intended*
//!   send time, so a stall shows up in every message it delayed (no coordinated omission).
//! - Fixed rate (`--rate`): a dedicated pacing thread starts every send at its intended time (sleep with a
//!   1 ns timer slack, then spin the last `--pacer-spin-us`; the send's first step runs on the pacing thread,
//!   the wait for its answer on the runtime), whatever is in flight (up to one second's worth). The report gives the pacing error it achieved: how late each send
//!   actually started against its intended time (p50/p99), so the latencies are known to measure the
//!   broker, not the harness.
//! - `consume`: a push consumer counts messages and born→consumed latency. With `--sql EXPR` instead:
//!   the broker's SQL92 filter cost per stored message next to a tag-filtered run ([`filter_cost`]).
//! - `produce --trace`: the producer traces every send to `RMQ_SYS_TRACE_TOPIC`; `--trace-compare` runs
//!   the workload without trace and then with it, in the same process, and reports the difference.
//! - `e2e`: both at once; latency is from the send to the handler seeing the message.
//! - `delay`: both at once, every message sent with `--delay-level`; what is measured is the delivery-time
//!   error: when the handler sees a message minus when it was due (its send time + the level's delay from
//!   `--message-delay-level`, which an embedded broker also uses; so the send→store time is included).
//!   Deliveries more than 1 ms early (store times are whole milliseconds) are counted apart.
//! - `timer`: as `delay`, with RocketMQ 5 timer messages: every message is sent with TIMER_DELAY_MS =
//!   `--timer-delay-ms` and is due at its send time + that delay.
//! - `--timer-delay-ms` with `produce` sends timers nobody waits for (to load a broker's timer index: how
//!   much memory a million waiting timers cost).
//! - `transaction`: plain sends, then transactional sends (half + END commit), each for `--duration`, then
//!   `--check-backs` half messages left unknown and the rate at which the broker checks them back
//!   ([`transaction`]).
//!
//! Reports every `--interval` (a live line on a terminal, plain lines otherwise) and a final summary with
//! p50/p90/p99/p99.9/p99.99/max; `--json` prints the summary as JSON; `--report FILE.html` writes a page
//! with throughput over time and the latency percentile curves ([`report`]).
//!
//! Anything that stops the run (an unreachable name server, a topic that cannot be created, every send
//! refused) ends it with one line naming what failed and where, and exit code 1.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee::cli::{self, LogFormat};
use apogee_client::consumer::ConsumeFrom;
use apogee_client::{
    ClientError, ConsumeResult, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

mod disk_baseline;
mod filter_cost;
mod report;
mod transaction;

/// The pacing thread sleeps until this long before a send is due, then spins (`--pacer-spin-us`).
const PACER_SPIN_US_DEFAULT: u64 = 50;
/// The pacing thread runs a send's first step itself only when the next send is due later than this.
const INLINE_BUDGET: Duration = Duration::from_micros(100);

#[derive(Parser, Debug, Clone)]
#[command(
    name = "apogee-perf",
    about = "TPS and latency harness for RocketMQ-compatible clusters"
)]
struct Cli {
    /// What to measure.
    #[arg(value_enum)]
    workload: Workload,
    /// Name server address(es), host:port;host:port.
    #[arg(long, default_value = "127.0.0.1:9876")]
    namesrv: String,
    /// Start a standalone Apogee in this process, on a temporary store, and measure it.
    #[arg(long)]
    embedded: bool,
    /// Embedded: shards.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Embedded: SYNC_FLUSH instead of ASYNC_FLUSH.
    #[arg(long)]
    sync_flush: bool,
    /// Embedded: any broker.conf key for the embedded broker, `--broker-opt metricsPort=5557`
    /// (repeatable).
    #[arg(long = "broker-opt", value_name = "KEY=VALUE")]
    broker_opts: Vec<String>,
    /// ACL: sign every request with this access key (brokers with aclEnable=true; with --embedded, pass
    /// `--broker-opt aclEnable=true --broker-opt aclFile=...`). Needs --secret-key.
    #[arg(long, value_name = "AK", requires = "secret_key")]
    access_key: Option<String>,
    /// ACL: the access key's secret.
    #[arg(long, value_name = "SK", requires = "access_key")]
    secret_key: Option<String>,
    #[arg(long, default_value = "perf")]
    topic: String,
    /// Queues per broker of the topic (created if missing).
    #[arg(long, default_value_t = 8)]
    queues: i32,
    /// Concurrent senders.
    #[arg(long, default_value_t = 32)]
    producers: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Messages per send (1: plain sends; more: SEND_BATCH_MESSAGE).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = Mode::Sync)]
    mode: Mode,
    /// Stop after this many messages (whichever of --messages/--duration comes first).
    #[arg(long)]
    messages: Option<u64>,
    /// Seconds to run, after the warm-up.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Total messages per second (fixed-rate mode: sends start on schedule from a pacing thread, whatever
    /// is in flight, and --producers does not apply); unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Fixed rate: the pacing thread sleeps until this many µs before each send, then spins (more: more
    /// precise on a busy machine, at the cost of CPU; 0: never spin).
    #[arg(long, default_value_t = PACER_SPIN_US_DEFAULT)]
    pacer_spin_us: u64,
    /// Seconds of warm-up excluded from the figures.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds between reports.
    #[arg(long, default_value_t = 1)]
    interval: u64,
    /// Print the final summary as JSON.
    #[arg(long)]
    json: bool,
    /// `delay`: the delay level every message is sent with.
    #[arg(long, default_value_t = 1)]
    delay_level: u8,
    /// `delay`: the broker's `messageDelayLevel` (an embedded broker is started with it).
    #[arg(long, default_value = apogee_engine::delay::MESSAGE_DELAY_LEVEL_DEFAULT)]
    message_delay_level: String,
    /// Send every message as a timer due this many ms after its send (TIMER_DELAY_MS); the `timer`
    /// workload measures their delivery-time error (default there: 2000).
    #[arg(long)]
    timer_delay_ms: Option<u64>,
    /// `consume`: measure the broker's SQL92 filter cost with this selector (see `filter_cost`;
    /// `a = 0` matches 10 % of the loaded messages) next to the tag subscription `t0`.
    #[arg(long)]
    sql: Option<String>,
    /// `produce`: trace every send (Pub records to RMQ_SYS_TRACE_TOPIC, as RocketMQ's client).
    #[arg(long)]
    trace: bool,
    /// `produce`: run without trace, then with trace, and report the send throughput of both.
    #[arg(long)]
    trace_compare: bool,
    /// First write 512 MiB with O_DIRECT next to the store (the embedded one, else the current
    /// directory) and report the run's MB/s as a share of that raw bandwidth.
    #[arg(long)]
    disk_baseline: bool,
    /// `transaction`: half messages left unknown for the broker to check back.
    #[arg(long, default_value_t = 2_000)]
    check_backs: u64,
    /// `transaction`, embedded broker: its `transactionTimeOut` (ms).
    #[arg(long, default_value_t = 1_000)]
    transaction_timeout_ms: u64,
    /// `transaction`, embedded broker: its `transactionCheckInterval` (ms).
    #[arg(long, default_value_t = 5_000)]
    transaction_check_interval_ms: u64,
    /// Write a self-contained HTML page with throughput over time and the latency percentile curves of
    /// the run (produce, consume, e2e, delay, timer).
    #[arg(long, value_name = "FILE.html")]
    report: Option<std::path::PathBuf>,
    /// Log lines as text (coloured only on a terminal; NO_COLOR turns colour off) or JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Every client connection is TLS. With --embedded the broker and its name server enforce TLS, with a
    /// throwaway CA and certificate made at run time unless --tls-cert/--tls-key/--tls-ca are given;
    /// otherwise --tls-ca names the CA of the cluster's certificates.
    #[arg(long)]
    tls: bool,
    /// TLS: the CA certificate (PEM) the client trusts.
    #[arg(long, value_name = "FILE", requires = "tls")]
    tls_ca: Option<std::path::PathBuf>,
    /// TLS, embedded: the broker's certificate (PEM; needs --tls-key and --tls-ca).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS, embedded: the broker's private key (PEM, unencrypted).
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"])]
    tls_key: Option<std::path::PathBuf>,
    /// The loaded client TLS settings (from the flags above, once the embedded broker made its CA).
    #[arg(skip)]
    tls_client: Option<apogee_client::TlsConfig>,
}

impl Cli {
    /// The ACL credentials produce, consume and topic creation sign with, when given.
    fn credentials(&self) -> Option<apogee_client::Credentials> {
        match (&self.access_key, &self.secret_key) {
            (Some(ak), Some(sk)) => Some(apogee_client::Credentials::new(ak, sk)),
            _ => None,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Produce,
    Consume,
    E2e,
    Delay,
    Timer,
    Transaction,
}

impl Cli {
    fn producer_config(&self, namesrv: &str, group: &str) -> ProducerConfig {
        let mut c = ProducerConfig::new(namesrv, group);
        c.credentials = self.credentials();
        match &self.tls_client {
            Some(t) => c.with_tls(t.clone()),
            None => c,
        }
    }

    fn admin(&self, namesrv: &str) -> apogee_client::Admin {
        apogee_client::Admin::with_options(namesrv, self.tls_client.clone(), self.credentials())
    }

    /// The TIMER_DELAY_MS every message carries, if any.
    fn timer_delay_ms(&self) -> Option<u64> {
        match (self.workload, self.timer_delay_ms) {
            (Workload::Timer, d) => Some(d.unwrap_or(2_000)),
            (_, d) => d,
        }
    }

    /// How long after its send a message is due, in µs (`delay` and `timer`).
    fn due_after_us(&self) -> Option<u64> {
        match self.workload {
            Workload::Delay => {
                // Checked in `main` before anything runs.
                let levels = apogee_engine::delay::parse_levels(&self.message_delay_level)
                    .unwrap_or_default();
                let level = (self.delay_level as usize).clamp(1, levels.len().max(1));
                Some(levels.get(level - 1).copied().unwrap_or(0) * 1_000)
            }
            Workload::Timer => self.timer_delay_ms().map(|ms| ms * 1_000),
            _ => None,
        }
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sync,
    Async,
    Oneway,
}

/// Counters and histograms shared by workers and the reporter.
struct Stats {
    measuring: AtomicBool,
    sent: AtomicU64,
    failed: AtomicU64,
    consumed: AtomicU64,
    /// `delay`: messages the handler saw before they were due.
    early: AtomicU64,
    bytes: AtomicU64,
    /// (interval, whole run) send→ack latency in µs.
    send_lat: Mutex<(Histogram<u64>, Histogram<u64>)>,
    /// (interval, whole run) end-to-end latency in µs (`delay`: the delivery-time error).
    e2e_lat: Mutex<(Histogram<u64>, Histogram<u64>)>,
    /// (interval, whole run) fixed rate: how late each send started against its intended time, in µs.
    pacing: Mutex<(Histogram<u64>, Histogram<u64>)>,
    /// The first send failure, for the closing line when every send failed.
    first_failure: Mutex<Option<String>>,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn record(h: &Mutex<(Histogram<u64>, Histogram<u64>)>, us: u64) {
    let mut g = h.lock().unwrap_or_else(|p| p.into_inner());
    let v = us.clamp(1, 60_000_000);
    let _ = g.0.record(v);
    let _ = g.1.record(v);
}

/// (p50, p99) of the interval histogram, which is then cleared.
fn take_interval(h: &Mutex<(Histogram<u64>, Histogram<u64>)>) -> (u64, u64) {
    let mut g = h.lock().unwrap_or_else(|p| p.into_inner());
    let r = (g.0.value_at_quantile(0.5), g.0.value_at_quantile(0.99));
    g.0.reset();
    r
}

fn body(size: usize) -> Vec<u8> {
    // The first 8 bytes carry the send time (µs since the epoch) for end-to-end latency.
    let mut b = vec![0x61u8; size.max(8)];
    b[..8].copy_from_slice(&now_us().to_be_bytes());
    b
}

/// One send (or batch) as the mode says.
async fn send_one(producer: &Producer, cli: &Cli) -> Result<(), ClientError> {
    let message = || {
        let m = Message::new(cli.topic.as_str(), body(cli.size));
        let m = match cli.timer_delay_ms() {
            Some(ms) => m.with_delay(Duration::from_millis(ms)),
            None => m,
        };
        if cli.workload == Workload::Delay {
            m.with_delay_level(cli.delay_level)
        } else {
            m
        }
    };
    match (cli.mode, cli.batch) {
        (Mode::Oneway, _) => producer.send_oneway(message()).await,
        (Mode::Async, 1) => match producer.send_async(message()).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(ClientError::Shutdown),
        },
        (_, 1) => producer.send(message()).await.map(|_| ()),
        (_, n) => {
            let msgs: Vec<Message> = (0..n).map(|_| message()).collect();
            producer.send_batch(&msgs).await.map(|_| ())
        }
    }
}

/// Counts one send's outcome; latency from `intended`.
fn count(stats: &Stats, cli: &Cli, intended: Instant, r: Result<(), ClientError>) {
    if !stats.measuring.load(Ordering::Relaxed) {
        return;
    }
    match r {
        Ok(()) => {
            stats.sent.fetch_add(cli.batch as u64, Ordering::Relaxed);
            stats
                .bytes
                .fetch_add((cli.batch * cli.size) as u64, Ordering::Relaxed);
            record(&stats.send_lat, intended.elapsed().as_micros() as u64);
        }
        Err(e) => {
            stats.failed.fetch_add(cli.batch as u64, Ordering::Relaxed);
            let mut first = stats
                .first_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

async fn produce(
    cli: Cli,
    namesrv: String,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let producer = Producer::start(cli.producer_config(&namesrv, "apogee-perf-producer"))
        .await
        .map_err(|e| format!("cannot start a producer with name server {namesrv}: {e}"))?;
    if cli.trace {
        producer.enable_trace(apogee_net::topic::TRACE_TOPIC_DEFAULT);
    }
    if let Some(rate) = cli.rate {
        return paced(cli, rate, producer, stats, stop).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..cli.producers {
        let (producer, stats, stop, cli) =
            (producer.clone(), stats.clone(), stop.clone(), cli.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let intended = Instant::now();
                let r = send_one(&producer, &cli).await;
                count(&stats, &cli, intended, r);
                if let Some(max) = cli.messages {
                    if stats.sent.load(Ordering::Relaxed) >= max {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    if let Some(trace) = producer.trace() {
        let s = trace.stats();
        eprintln!(
            "trace: {} records buffered, {} dropped (buffer full), {} sent, {} failed (so far)",
            s.recorded.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.sent.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed),
        );
    }
    Ok(())
}

/// Lets this thread's sleeps end when asked, not up to 50 µs later (Linux's default timer slack).
fn precise_sleeps() {
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack; it takes no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Returns at `due`: sleeps until `spin` before it, then spins.
fn wait_until(due: Instant, spin: Duration) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > spin {
            std::thread::sleep(left - spin);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A waker that does nothing: the pacing thread polls each send once itself, then hands it to the runtime,
/// whose first poll registers a real waker.
struct NoopWake;

impl std::task::Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
}

/// Fixed rate: a pacing thread starts the k-th send at `start + k·batch/rate`, whatever is still in flight
/// (up to one second's worth: past that the pacer waits, and the pacing error shows it). When the next
/// send is not due within [`INLINE_BUDGET`], it runs the send's first step itself, at the intended time
/// (the send is built and queued on its connection; no hand-off to a runtime thread that may be asleep),
/// and leaves the wait for the answer to the runtime; at higher rates it hands each whole send to the
/// runtime, so that its own thread never limits the rate. Each send records how late it started (the pacing error) and its latency from the
/// intended time.
async fn paced(
    cli: Cli,
    rate: f64,
    producer: Producer,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "--rate {rate}: must be a positive number of messages per second"
        ));
    }
    let runtime = tokio::runtime::Handle::current();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let in_flight_max = (rate as usize).max(cli.producers).max(1);
    let period = cli.batch as f64 / rate;
    let spin = Duration::from_micros(cli.pacer_spin_us);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let pacer = {
        let (stats, stop, in_flight) = (stats.clone(), stop.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name("apogee-perf-pacer".into())
            .spawn(move || {
                precise_sleeps();
                let _context = runtime.enter();
                let waker = std::task::Waker::from(Arc::new(NoopWake));
                let mut cx = std::task::Context::from_waker(&waker);
                let cli = Arc::new(cli);
                let start = Instant::now();
                let mut k: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let due = start + Duration::from_secs_f64(k as f64 * period);
                    wait_until(due, spin);
                    while in_flight.load(Ordering::Acquire) >= in_flight_max
                        && !stop.load(Ordering::Relaxed)
                    {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    k += 1;
                    in_flight.fetch_add(1, Ordering::AcqRel);
                    let (producer, stats, stop, cli, in_flight) = (
                        producer.clone(),
                        stats.clone(),
                        stop.clone(),
                        cli.clone(),
                        in_flight.clone(),
                    );
                    let mut send = Box::pin(async move {
                        if stats.measuring.load(Ordering::Relaxed) {
                            record(&stats.pacing, due.elapsed().as_micros() as u64);
                        }
                        let r = send_one(&producer, &cli).await;
                        count(&stats, &cli, due, r);
                        in_flight.fetch_sub(1, Ordering::AcqRel);
                        if let Some(max) = cli.messages {
                            if stats.sent.load(Ordering::Relaxed) >= max {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    });
                    // Its first step here when there is time before the next send is due; else all of it
                    // on the runtime, so that one thread never limits the rate.
                    let next_due = start + Duration::from_secs_f64(k as f64 * period);
                    if Instant::now() + INLINE_BUDGET > next_due
                        || send.as_mut().poll(&mut cx).is_pending()
                    {
                        runtime.spawn(send);
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| format!("cannot start the pacing thread: {e}"))?
    };
    let _ = done_rx.await;
    let _ = pacer.join();
    // The sends still in flight finish (bounded by the client's timeouts).
    while in_flight.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn consume(cli: &Cli, namesrv: &str, stats: Arc<Stats>) -> Result<PushConsumer, String> {
    let mut config = PushConsumerConfig::new(namesrv, "apogee-perf-consumer");
    if let Some(t) = &cli.tls_client {
        config = config.with_tls(t.clone());
    }
    config.consume_from = ConsumeFrom::LastOffset;
    config.credentials = cli.credentials();
    let consumer = PushConsumer::new(config);
    consumer.subscribe(&cli.topic, "*");
    // `delay` / `timer`: a message is due at its send time + its level's delay or its timer delay.
    let delay_us = cli.due_after_us();
    consumer
        .start(move |batch| {
            let now = now_us();
            for m in batch {
                if stats.measuring.load(Ordering::Relaxed) {
                    stats.consumed.fetch_add(1, Ordering::Relaxed);
                    if let (Some(delay_us), true) = (delay_us, m.body.len() >= 8) {
                        // The re-put record's store time is its delivery time, so the reference is the
                        // send time in the body: the error includes the send→store time (conservative).
                        let mut t = [0u8; 8];
                        t.copy_from_slice(&m.body[..8]);
                        let due = u64::from_be_bytes(t) + delay_us;
                        // Store times are whole ms: less than 1 ms early is within their precision.
                        if now + 1_000 < due {
                            stats.early.fetch_add(1, Ordering::Relaxed);
                        }
                        record(&stats.e2e_lat, now.saturating_sub(due));
                    } else if m.body.len() >= 8 {
                        let mut t = [0u8; 8];
                        t.copy_from_slice(&m.body[..8]);
                        record(&stats.e2e_lat, now.saturating_sub(u64::from_be_bytes(t)));
                    }
                }
            }
            ConsumeResult::Success
        })
        .await
        .map_err(|e| format!("cannot start a consumer with name server {namesrv}: {e}"))?;
    Ok(consumer)
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50), "p90_us": h.value_at_quantile(0.90), "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999), "p9999_us": h.value_at_quantile(0.9999), "max_us": h.max(),
    })
}

/// `span` free ports from `base - 2`; the search starts at a place drawn from the process id, so that two
/// runs started together do not pick the same ports (the broker's listeners share ports with SO_REUSEPORT,
/// so a collision would not fail: it would split connections between two brokers).
fn free_port_range(span: u16) -> Result<u16, String> {
    let seed = (std::process::id() as usize).wrapping_mul(7919);
    for i in 0..300usize {
        let base = 30_000 + ((seed + i * 97) % 25_000) as u16;
        if (base - 2..base - 2 + span).all(|p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        {
            return Ok(base);
        }
    }
    Err(format!(
        "no {span} free ports in a row between 30000 and 55000 for the embedded broker"
    ))
}

/// Where [`throwaway_certificate`] puts the CA that signed it.
const THROWAWAY_CA_FILE: &str = "tls-ca.pem";

/// `--tls --embedded` without certificates: a CA and a certificate for 127.0.0.1/localhost it signed,
/// made now into the run's temporary folder (gone with it); returns the certificate, key and CA paths.
#[allow(clippy::type_complexity)]
fn throwaway_certificate(
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf), String> {
    let made = (|| -> Result<[String; 3], rcgen::Error> {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "apogee-perf throwaway CA");
        let ca_key = rcgen::KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
        Ok([ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()])
    })()
    .map_err(|e| format!("--tls: cannot make a throwaway certificate: {e}"))?;
    let [ca, cert, key] = made;
    let files = [
        (dir.join(THROWAWAY_CA_FILE), ca),
        (dir.join("tls-cert.pem"), cert),
        (dir.join("tls-key.pem"), key),
    ];
    for (path, pem) in &files {
        std::fs::write(path, pem)
            .map_err(|e| format!("--tls: cannot write {}: {e}", path.display()))?;
    }
    let [(ca, _), (cert, _), (key, _)] = files;
    Ok((cert, key, ca))
}

/// `--tls`: the client's TLS settings, trusting --tls-ca or the embedded broker's throwaway CA.
fn client_tls(
    cli: &Cli,
    store: Option<&tempfile::TempDir>,
) -> Result<Option<apogee_client::TlsConfig>, String> {
    if !cli.tls {
        return Ok(None);
    }
    let ca =
        match (&cli.tls_ca, store) {
            (Some(ca), _) => ca.clone(),
            (None, Some(dir)) => dir.path().join(THROWAWAY_CA_FILE),
            (None, None) => return Err(
                "--tls needs --tls-ca FILE (the CA of the cluster's certificates), or --embedded"
                    .into(),
            ),
        };
    apogee_client::TlsOptions::ca_file(&ca)
        .build()
        .map(Some)
        .map_err(|e| format!("--tls: {e}"))
}

/// A standalone Apogee in this process on a temporary store under the current folder.
fn embedded(cli: &Cli) -> Result<(apogee::Running, tempfile::TempDir, String), String> {
    let cwd = std::env::current_dir()
        .map_or_else(|_| "the current folder".into(), |d| d.display().to_string());
    let dir = tempfile::Builder::new()
        .prefix("apogee-perf-")
        .tempdir_in(".")
        .map_err(|e| format!("cannot create a temporary store in {cwd}: {e}"))?;
    let ns_port = free_port_range(3)? - 1;
    let listen = free_port_range(4 * cli.shards as u16)?;
    let mut c = apogee::BrokerConfig {
        store_path_root_dir: dir.path().to_owned(),
        shards: cli.shards,
        listen_port: listen,
        namesrv_addr: vec![format!("127.0.0.1:{ns_port}")],
        mapped_file_size_commit_log: 256 * 1024 * 1024,
        ..Default::default()
    };
    // The SQL92 filter run and the trace runs need these; they cost nothing otherwise.
    c.enable_property_filter = true;
    c.trace_topic_enable = true;
    if cli.sync_flush {
        c.set("flushDiskType", "SYNC_FLUSH")
            .map_err(|e| e.to_string())?;
    }
    c.set("messageDelayLevel", &cli.message_delay_level)
        .map_err(|e| format!("--message-delay-level: {e}"))?;
    c.transaction_timeout_ms = cli.transaction_timeout_ms;
    c.transaction_check_interval_ms = cli.transaction_check_interval_ms;
    for o in &cli.broker_opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--broker-opt {o}: expected KEY=VALUE"))?;
        if !c
            .set(k.trim(), v)
            .map_err(|e| format!("--broker-opt {o}: {e}"))?
        {
            return Err(format!("--broker-opt {o}: unknown key `{k}`"));
        }
    }
    if cli.tls {
        let (cert, key, ca) = match (&cli.tls_cert, &cli.tls_key, &cli.tls_ca) {
            (Some(c), Some(k), Some(ca)) => (c.clone(), k.clone(), ca.clone()),
            _ => throwaway_certificate(dir.path())?,
        };
        // The broker registers with its name server over TLS too: the name server enforces it.
        for (k, v) in [
            ("tls.server.mode", "enforcing".to_string()),
            ("tls.server.certPath", cert.display().to_string()),
            ("tls.server.keyPath", key.display().to_string()),
            ("tls.enable", "true".to_string()),
            ("tls.client.trustCertPath", ca.display().to_string()),
        ] {
            c.set(k, &v).map_err(|e| format!("--tls: {e}"))?;
        }
    }
    let ns = apogee_nameserver::NameServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], ns_port)),
        broker_expiry_ms: apogee_nameserver::BROKER_EXPIRY_MS_DEFAULT,
        tls: c.tls.server().map_err(|e| format!("--tls: {e}"))?,
        ..Default::default()
    };
    let running = apogee::start(c, Some(ns))
        .map_err(|e| format!("embedded apogee (store {}): {e}", dir.path().display()))?;
    eprintln!(
        "embedded apogee: {} shard(s) at 127.0.0.1:{listen}, name server 127.0.0.1:{ns_port}, store {}",
        cli.shards,
        dir.path().display()
    );
    Ok((running, dir, format!("127.0.0.1:{ns_port}")))
}

fn main() -> ExitCode {
    let cli = match cli::parse::<Cli>("apogee-perf") {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cli.workload == Workload::Delay && cli.batch > 1 {
        eprintln!("apogee-perf: the delay workload sends one message at a time (delay levels are refused for batches; try --batch 1)");
        return ExitCode::from(2);
    }
    if cli.report.is_some()
        && (cli.workload == Workload::Transaction || cli.sql.is_some() || cli.trace_compare)
    {
        eprintln!("apogee-perf: --report draws one run's throughput and latency; the transaction workload, --sql and --trace-compare runs have no such single run (leave out --report)");
        return ExitCode::from(2);
    }
    if let Err(e) = apogee_engine::delay::parse_levels(&cli.message_delay_level) {
        eprintln!("apogee-perf: --message-delay-level: {e}");
        return ExitCode::from(2);
    }
    if cli.tls && cli.sql.is_some() {
        eprintln!("apogee-perf: --tls is not offered for the --sql filter-cost run (its pulls use a plain connection pool); drop one of them");
        return ExitCode::from(2);
    }
    cli::init_logging(cli.log_format, "warn");
    let mut cli = cli;
    let (embedded, _store, namesrv) = if cli.embedded {
        match embedded(&cli) {
            Ok((r, dir, ns)) => (Some(r), Some(dir), ns),
            Err(e) => {
                eprintln!("apogee-perf: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        (None, None, cli.namesrv.clone())
    };
    match client_tls(&cli, _store.as_ref()) {
        Ok(t) => cli.tls_client = t,
        Err(e) => {
            if let Some(r) = embedded {
                r.stop();
            }
            eprintln!("apogee-perf: {e}");
            return ExitCode::FAILURE;
        }
    }
    let baseline = if cli.disk_baseline {
        let dir = _store
            .as_ref()
            .map_or_else(|| std::path::PathBuf::from("."), |d| d.path().to_owned());
        match disk_baseline::measure(&dir, disk_baseline::BASELINE_BYTES) {
            Ok(mb) => {
                eprintln!(
                    "disk baseline: {mb:.1} MB/s ({} MiB written with O_DIRECT in {} KiB blocks, then fdatasync) in {}",
                    disk_baseline::BASELINE_BYTES >> 20,
                    disk_baseline::BLOCK_BYTES >> 10,
                    dir.display()
                );
                Some(mb)
            }
            Err(e) => {
                if let Some(r) = embedded {
                    r.stop();
                }
                eprintln!("apogee-perf: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let outcome = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run_selected(cli.clone(), namesrv)),
        Err(e) => Err(format!("cannot start the tokio runtime: {e}")),
    };
    if let Some(r) = embedded {
        r.stop();
    }
    let outcome = outcome.map(|mut summary| {
        if let (Some(raw), Some(run)) = (baseline, summary["send_mb_per_s"].as_f64()) {
            let share = run / raw * 100.0;
            eprintln!("disk share: this run's {run:.1} MB/s is {share:.1} % of the disk's raw {raw:.1} MB/s");
            summary["disk_baseline_mb_per_s"] = raw.into();
            summary["disk_share_percent"] = share.into();
        }
        summary
    });
    match outcome {
        Ok(summary) => {
            if cli.json {
                println!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("apogee-perf: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes sure the topic exists (creating it on every cluster the name server knows).
async fn ensure_topic(cli: &Cli, namesrv: &str) -> Result<(), String> {
    let admin = cli.admin(namesrv);
    match admin.queues(&cli.topic).await {
        Ok(q) if !q.is_empty() => return Ok(()),
        Ok(_) | Err(ClientError::NoRoute(_)) => {}
        Err(e) => {
            return Err(format!(
                "cannot get the route of topic {} from name server {namesrv}: {e}",
                cli.topic
            ))
        }
    }
    let clusters = admin
        .clusters()
        .await
        .map_err(|e| format!("cannot get the clusters from name server {namesrv}: {e}"))?;
    if clusters.cluster_addr_table.is_empty() {
        return Err(format!(
            "name server {namesrv} knows no broker: start one, or pass --embedded"
        ));
    }
    for cluster in clusters.cluster_addr_table.keys() {
        admin
            .create_topic(cluster, &cli.topic, cli.queues)
            .await
            .map_err(|e| {
                format!(
                    "cannot create topic {} on cluster {cluster}: {e}",
                    cli.topic
                )
            })?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if admin.queues(&cli.topic).await.is_ok_and(|q| !q.is_empty()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "topic {} was created but name server {namesrv} did not route it within 30 s",
                cli.topic
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The workload the flags ask for: the filter cost run, the trace comparison, or one plain run.
async fn run_selected(cli: Cli, namesrv: String) -> Result<serde_json::Value, String> {
    if let (Workload::Consume, Some(sql)) = (cli.workload, &cli.sql) {
        ensure_topic(&cli, &namesrv).await?;
        let messages = cli.messages.unwrap_or(200_000);
        return filter_cost::run(&namesrv, &cli.topic, messages, cli.size, sql).await;
    }
    if cli.trace_compare && cli.workload == Workload::Produce {
        let off = run(
            Cli {
                trace: false,
                ..cli.clone()
            },
            namesrv.clone(),
        )
        .await?;
        let on = run(
            Cli {
                trace: true,
                ..cli.clone()
            },
            namesrv,
        )
        .await?;
        let (a, b) = (
            off["send_msgs_per_s"].as_f64().unwrap_or(0.0),
            on["send_msgs_per_s"].as_f64().unwrap_or(0.0),
        );
        let overhead = if a > 0.0 { (a - b) / a * 100.0 } else { 0.0 };
        eprintln!("trace off: {a:.0} msgs/s; trace on: {b:.0} msgs/s; overhead {overhead:.1} %");
        return Ok(
            serde_json::json!({"trace_off": off, "trace_on": on, "overhead_percent": overhead}),
        );
    }
    run(cli, namesrv).await
}

async fn run(cli: Cli, namesrv: String) -> Result<serde_json::Value, String> {
    ensure_topic(&cli, &namesrv).await?;
    if cli.workload == Workload::Transaction {
        return transaction::run(&cli, &namesrv).await;
    }
    let stats = Arc::new(Stats {
        measuring: AtomicBool::new(false),
        sent: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        consumed: AtomicU64::new(0),
        early: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        send_lat: Mutex::new((hist(), hist())),
        e2e_lat: Mutex::new((hist(), hist())),
        pacing: Mutex::new((hist(), hist())),
        first_failure: Mutex::new(None),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = if cli.workload != Workload::Produce {
        Some(consume(&cli, &namesrv, stats.clone()).await?)
    } else {
        None
    };
    let producer = if cli.workload != Workload::Consume {
        Some(tokio::spawn(produce(
            cli.clone(),
            namesrv.clone(),
            stats.clone(),
            stop.clone(),
        )))
    } else {
        None
    };
    tokio::time::sleep(Duration::from_secs(cli.warmup)).await;
    stats.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let (mut last_sent, mut last_consumed, mut last_bytes) = (0u64, 0u64, 0u64);
    let mut intervals: Vec<report::Interval> = Vec::new();
    // The run ends at `--duration` even when `--interval` is longer (a script that wants only the summary
    // passes a long interval): the last report covers what is left, and each rate is over the time its
    // report really covers.
    let run = Duration::from_secs(cli.duration);
    let mut last_report = started;
    while started.elapsed() < run && !stop.load(Ordering::Relaxed) {
        let left = run.saturating_sub(started.elapsed());
        tokio::time::sleep(Duration::from_secs(cli.interval).min(left)).await;
        let now = Instant::now();
        let secs = now.duration_since(last_report).as_secs_f64().max(1e-6);
        last_report = now;
        let (sent, consumed, bytes) = (
            stats.sent.load(Ordering::Relaxed),
            stats.consumed.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
        );
        let (p50, p99) = take_interval(&stats.send_lat);
        let (e50, e99) = take_interval(&stats.e2e_lat);
        let (_, late99) = take_interval(&stats.pacing);
        let pacing = if cli.rate.is_some() {
            format!(" | pacing p99 {late99} us late")
        } else {
            String::new()
        };
        let line = format!(
            "[{:>4}s] send {:>9.0} msg/s {:>7.1} MB/s fail {} | send p50 {p50} us p99 {p99} us | consume {:>9.0} msg/s e2e p50 {e50} us p99 {e99} us{pacing}",
            started.elapsed().as_secs(),
            (sent - last_sent) as f64 / secs,
            (bytes - last_bytes) as f64 / secs / 1e6,
            stats.failed.load(Ordering::Relaxed),
            (consumed - last_consumed) as f64 / secs,
        );
        intervals.push(report::Interval {
            t_s: started.elapsed().as_secs_f64(),
            send_msgs_per_s: (sent - last_sent) as f64 / secs,
            send_mb_per_s: (bytes - last_bytes) as f64 / secs / 1e6,
            consume_msgs_per_s: (consumed - last_consumed) as f64 / secs,
            send_p50_us: p50,
            send_p99_us: p99,
            e2e_p50_us: e50,
            e2e_p99_us: e99,
        });
        if tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
        (last_sent, last_consumed, last_bytes) = (sent, consumed, bytes);
    }
    if tty {
        eprintln!();
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stats.measuring.store(false, Ordering::Relaxed);
    if let Some(p) = producer {
        match p.await {
            Ok(r) => r?,
            Err(e) => return Err(format!("the producers failed: {e}")),
        }
    }
    if let Some(due_us) = cli.due_after_us() {
        // Messages sent at the end are still waiting: count them too.
        let wait_ms = due_us / 1_000 + 2_000;
        stats.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        stats.measuring.store(false, Ordering::Relaxed);
    }
    if let Some(c) = consumer {
        c.shutdown().await;
    }
    let sent = stats.sent.load(Ordering::Relaxed);
    let send = percentiles(&stats.send_lat.lock().unwrap_or_else(|p| p.into_inner()).1);
    let e2e = percentiles(&stats.e2e_lat.lock().unwrap_or_else(|p| p.into_inner()).1);
    let pacing = percentiles(&stats.pacing.lock().unwrap_or_else(|p| p.into_inner()).1);
    let summary = serde_json::json!({
        "workload": format!("{:?}", cli.workload), "mode": format!("{:?}", cli.mode), "producers": cli.producers,
        "size": cli.size, "batch": cli.batch, "rate": cli.rate, "seconds": elapsed,
        "sent": sent, "failed": stats.failed.load(Ordering::Relaxed), "consumed": stats.consumed.load(Ordering::Relaxed),
        "send_msgs_per_s": sent as f64 / elapsed, "send_mb_per_s": stats.bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        "consume_msgs_per_s": stats.consumed.load(Ordering::Relaxed) as f64 / elapsed,
        "send_latency": send, "e2e_latency": e2e,
        "pacing_error": if cli.rate.is_some() { pacing.clone() } else { serde_json::Value::Null },
    });
    if cli.workload == Workload::Delay {
        eprintln!(
            "delivery-time error (consumed − (sent + delay), level {} of `{}`): p50 {} p90 {} p99 {} p99.9 {} max {} us over {} messages; {} early",
            cli.delay_level, cli.message_delay_level,
            e2e["p50_us"], e2e["p90_us"], e2e["p99_us"], e2e["p999_us"], e2e["max_us"], e2e["count"],
            stats.early.load(Ordering::Relaxed),
        );
    }
    if cli.workload == Workload::Timer {
        eprintln!(
            "delivery-time error (consumed − (sent + TIMER_DELAY_MS {})): p50 {} p90 {} p99 {} p99.9 {} max {} us over {} messages; {} early",
            cli.timer_delay_ms().unwrap_or(0),
            e2e["p50_us"], e2e["p90_us"], e2e["p99_us"], e2e["p999_us"], e2e["max_us"], e2e["count"],
            stats.early.load(Ordering::Relaxed),
        );
    }
    eprintln!(
        "summary: {:.0} msgs/s sent, {:.1} MB/s, {} failed; send→ack p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {} us; e2e p50 {} p99 {} p99.9 {} max {} us ({} consumed)",
        summary["send_msgs_per_s"].as_f64().unwrap_or(0.0),
        summary["send_mb_per_s"].as_f64().unwrap_or(0.0),
        summary["failed"],
        send["p50_us"], send["p90_us"], send["p99_us"], send["p999_us"], send["p9999_us"], send["max_us"],
        e2e["p50_us"], e2e["p99_us"], e2e["p999_us"], e2e["max_us"], summary["consumed"],
    );
    if cli.rate.is_some() {
        eprintln!(
            "pacing: sends started p50 {} p99 {} p99.9 {} max {} us after their intended time ({} sends)",
            pacing["p50_us"], pacing["p99_us"], pacing["p999_us"], pacing["max_us"], pacing["count"],
        );
    }
    if let Some(path) = &cli.report {
        let curves = [
            (
                "send→ack",
                report::percentile_curve(
                    &stats.send_lat.lock().unwrap_or_else(|p| p.into_inner()).1,
                ),
            ),
            (
                if cli.due_after_us().is_some() {
                    "delivery-time error"
                } else {
                    "born→consumed"
                },
                report::percentile_curve(
                    &stats.e2e_lat.lock().unwrap_or_else(|p| p.into_inner()).1,
                ),
            ),
            (
                "pacing error",
                report::percentile_curve(&stats.pacing.lock().unwrap_or_else(|p| p.into_inner()).1),
            ),
        ];
        let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
        report::write_html(path, &command, &summary, &intervals, &curves)
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    let failed = stats.failed.load(Ordering::Relaxed);
    if cli.workload != Workload::Consume && sent == 0 && failed > 0 {
        let first = stats
            .first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(format!(
            "every send to topic {} failed ({failed}); the first: {first}",
            cli.topic
        ));
    }
    Ok(summary)
}
