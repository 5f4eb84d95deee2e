//! `apogee-perf`: TPS and latency of any RocketMQ-compatible cluster, or of an embedded Apogee.
//!
//! - `produce`: N producers send M-byte messages (sync, async or oneway; single or batched), as fast as they
//!   can or at a fixed total rate. Latency is send→ack; at a fixed rate it is measured from the *intended*
//!   send time, so a stall shows up in every message it delayed (no coordinated omission).
//! - `consume`: a push consumer counts messages and born→consumed latency.
//! - `e2e`: both at once; latency is from the send to the handler seeing the message.
//! - `delay`: both at once, every message sent with `--delay-level`; what is measured is the delivery-time
//!   error: when the handler sees a message minus when it was due (its send time + the level's delay from
//!   `--message-delay-level`, which an embedded broker also uses; so the send→store time is included).
//!   Deliveries more than 1 ms early (store times are whole milliseconds) are counted apart.
//!
//! Reports every `--interval` (a live line on a terminal, plain lines otherwise) and a final summary with
//! p50/p90/p99/p99.9/p99.99/max; `--json` prints the summary as JSON.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apogee_client::consumer::ConsumeFrom;
use apogee_client::{
    ConsumeResult, Message, Producer, ProducerConfig, PushConsumer, PushConsumerConfig,
};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;

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
    /// Total messages per second across producers (fixed-rate mode); unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
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
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Produce,
    Consume,
    E2e,
    Delay,
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

fn body(size: usize) -> Vec<u8> {
    // The first 8 bytes carry the send time (µs since the epoch) for end-to-end latency.
    let mut b = vec![0x61u8; size.max(8)];
    b[..8].copy_from_slice(&now_us().to_be_bytes());
    b
}

async fn produce(cli: Cli, namesrv: String, stats: Arc<Stats>, stop: Arc<AtomicBool>) {
    let producer = Producer::start(ProducerConfig::new(&namesrv, "apogee-perf-producer"))
        .await
        .expect("producer");
    let per_producer_rate = cli.rate.map(|r| r / cli.producers as f64);
    let mut tasks = Vec::new();
    for _ in 0..cli.producers {
        let (producer, stats, stop, cli) =
            (producer.clone(), stats.clone(), stop.clone(), cli.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut k: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                // Fixed rate: the k-th send is due at start + k / rate; latency counts from then.
                let intended = match per_producer_rate {
                    Some(r) => {
                        let due = start + Duration::from_secs_f64(k as f64 * cli.batch as f64 / r);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                k += 1;
                let message = || {
                    let m = Message::new(cli.topic.as_str(), body(cli.size));
                    if cli.workload == Workload::Delay {
                        m.with_delay_level(cli.delay_level)
                    } else {
                        m
                    }
                };
                let ok = match (cli.mode, cli.batch) {
                    (Mode::Oneway, _) => producer.send_oneway(message()).await.is_ok(),
                    (_, 1) => match cli.mode {
                        Mode::Async => matches!(producer.send_async(message()).await, Ok(Ok(_))),
                        _ => producer.send(message()).await.is_ok(),
                    },
                    (_, n) => {
                        let msgs: Vec<Message> = (0..n)
                            .map(|_| Message::new(cli.topic.as_str(), body(cli.size)))
                            .collect();
                        producer.send_batch(&msgs).await.is_ok()
                    }
                };
                if stats.measuring.load(Ordering::Relaxed) {
                    if ok {
                        stats.sent.fetch_add(cli.batch as u64, Ordering::Relaxed);
                        stats
                            .bytes
                            .fetch_add((cli.batch * cli.size) as u64, Ordering::Relaxed);
                        record(&stats.send_lat, intended.elapsed().as_micros() as u64);
                    } else {
                        stats.failed.fetch_add(cli.batch as u64, Ordering::Relaxed);
                    }
                }
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
}

async fn consume(cli: &Cli, namesrv: &str, stats: Arc<Stats>) -> PushConsumer {
    let mut config = PushConsumerConfig::new(namesrv, "apogee-perf-consumer");
    config.consume_from = ConsumeFrom::LastOffset;
    let consumer = PushConsumer::new(config);
    consumer.subscribe(&cli.topic, "*");
    // `delay`: a message is due at its store time + its level's delay.
    let delay_us = (cli.workload == Workload::Delay).then(|| {
        let levels = apogee_engine::delay::parse_levels(&cli.message_delay_level)
            .unwrap_or_else(|e| panic!("--message-delay-level: {e}"));
        let level = (cli.delay_level as usize).clamp(1, levels.len());
        levels[level - 1] * 1_000
    });
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
        .expect("consumer start");
    consumer
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50), "p90_us": h.value_at_quantile(0.90), "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999), "p9999_us": h.value_at_quantile(0.9999), "max_us": h.max(),
    })
}

fn free_port_range(span: u16) -> u16 {
    for base in (30_000u16..60_000).step_by(97) {
        if (base - 2..base - 2 + span).all(|p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        {
            return base;
        }
    }
    panic!("no free port range for the embedded broker");
}

fn main() {
    let cli = Cli::parse();
    if cli.workload == Workload::Delay && cli.batch > 1 {
        eprintln!(
            "the delay workload sends one message at a time (delay levels are refused for batches)"
        );
        std::process::exit(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let mut embedded = None;
    let mut _store = None;
    let namesrv = if cli.embedded {
        let dir = tempfile::Builder::new()
            .prefix("apogee-perf-")
            .tempdir_in(".")
            .expect("temporary store");
        let ns_port = free_port_range(3) - 1;
        let listen = free_port_range(4 * cli.shards as u16);
        let mut c = apogee::BrokerConfig {
            store_path_root_dir: dir.path().to_owned(),
            shards: cli.shards,
            listen_port: listen,
            namesrv_addr: vec![format!("127.0.0.1:{ns_port}")],
            mapped_file_size_commit_log: 256 * 1024 * 1024,
            ..Default::default()
        };
        if cli.sync_flush {
            c.set("flushDiskType", "SYNC_FLUSH").expect("a known key");
        }
        if let Err(e) = c.set("messageDelayLevel", &cli.message_delay_level) {
            eprintln!("--message-delay-level: {e}");
            std::process::exit(2);
        }
        let ns = apogee_nameserver::NameServerConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], ns_port)),
            broker_expiry_ms: apogee_nameserver::BROKER_EXPIRY_MS_DEFAULT,
        };
        let running = apogee::start(c.clone(), Some(ns)).expect("embedded apogee starts");
        eprintln!("embedded apogee: {} shard(s) at 127.0.0.1:{listen}, name server 127.0.0.1:{ns_port}, store {}", cli.shards, dir.path().display());
        embedded = Some(running);
        _store = Some(dir);
        format!("127.0.0.1:{ns_port}")
    } else {
        cli.namesrv.clone()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let summary = rt.block_on(run(cli.clone(), namesrv));
    if let Some(r) = embedded {
        r.stop();
    }
    if cli.json {
        println!("{summary}");
    }
}

async fn run(cli: Cli, namesrv: String) -> serde_json::Value {
    let admin = apogee_client::Admin::new(&namesrv);
    if admin.queues(&cli.topic).await.is_err() {
        let clusters = admin
            .clusters()
            .await
            .expect("cluster info from the name server");
        for cluster in clusters.cluster_addr_table.keys() {
            admin
                .create_topic(cluster, &cli.topic, cli.queues)
                .await
                .expect("create topic");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while admin.queues(&cli.topic).await.is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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
    });
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = if cli.workload != Workload::Produce {
        Some(consume(&cli, &namesrv, stats.clone()).await)
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
    while started.elapsed() < Duration::from_secs(cli.duration) && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(cli.interval)).await;
        let secs = cli.interval as f64;
        let (sent, consumed, bytes) = (
            stats.sent.load(Ordering::Relaxed),
            stats.consumed.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
        );
        let (p50, p99) = {
            let mut g = stats.send_lat.lock().unwrap_or_else(|p| p.into_inner());
            let r = (g.0.value_at_quantile(0.5), g.0.value_at_quantile(0.99));
            g.0.reset();
            r
        };
        let (e50, e99) = {
            let mut g = stats.e2e_lat.lock().unwrap_or_else(|p| p.into_inner());
            let r = (g.0.value_at_quantile(0.5), g.0.value_at_quantile(0.99));
            g.0.reset();
            r
        };
        let line = format!(
            "[{:>4}s] send {:>9.0} msg/s {:>7.1} MB/s fail {} | send p50 {p50} us p99 {p99} us | consume {:>9.0} msg/s e2e p50 {e50} us p99 {e99} us",
            started.elapsed().as_secs(),
            (sent - last_sent) as f64 / secs,
            (bytes - last_bytes) as f64 / secs / 1e6,
            stats.failed.load(Ordering::Relaxed),
            (consumed - last_consumed) as f64 / secs,
        );
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
        let _ = p.await;
    }
    if cli.workload == Workload::Delay {
        // Messages sent at the end are still waiting: count them too.
        let levels =
            apogee_engine::delay::parse_levels(&cli.message_delay_level).unwrap_or_default();
        let level = (cli.delay_level as usize).clamp(1, levels.len().max(1));
        let wait_ms = levels.get(level - 1).copied().unwrap_or(0) + 2_000;
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
    let summary = serde_json::json!({
        "workload": format!("{:?}", cli.workload), "mode": format!("{:?}", cli.mode), "producers": cli.producers,
        "size": cli.size, "batch": cli.batch, "rate": cli.rate, "seconds": elapsed,
        "sent": sent, "failed": stats.failed.load(Ordering::Relaxed), "consumed": stats.consumed.load(Ordering::Relaxed),
        "send_msgs_per_s": sent as f64 / elapsed, "send_mb_per_s": stats.bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
        "consume_msgs_per_s": stats.consumed.load(Ordering::Relaxed) as f64 / elapsed,
        "send_latency": send, "e2e_latency": e2e,
    });
    if cli.workload == Workload::Delay {
        eprintln!(
            "delivery-time error (consumed − (sent + delay), level {} of `{}`): p50 {} p90 {} p99 {} p99.9 {} max {} us over {} messages; {} early",
            cli.delay_level, cli.message_delay_level,
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
    summary
}
