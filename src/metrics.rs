//! The Prometheus endpoint (`metricsPort`, off by default): `GET /metrics` in Prometheus's text format
//! (version 0.0.4).
//!
//! # Why it is built this way
//!
//! - Counting stays on each shard's core ([`crate::broker::stats`]). Once a second, and only when the
//!   endpoint is on, each shard's sampler copies its figures into a [`ShardSnapshot`] behind a `Mutex` that
//!   only that shard and the HTTP thread touch: the lock is taken once a second by the shard, never on the
//!   send or pull path, and a scrape never waits for a shard.
//! - The HTTP server is a std `TcpListener` on a thread of its own, serving one connection at a time with
//!   read and write timeouts: a scrape is a few KiB every few seconds, and no async runtime is added to
//!   the shards' threads.
//! - The text format is written here by hand rather than through the `prometheus-client` crate: what is
//!   exposed is a handful of counters, gauges and one fixed-bucket histogram copied from plain structs,
//!   the format's rules for that subset are short (HELP/TYPE lines, escaped label values, cumulative
//!   `_bucket{le=..}` with `+Inf`, `_sum`, `_count`) and pinned by the unit test below and by a real
//!   Prometheus scraping it (`tests/suite/prometheus_alerts_fire_on_consumer_lag.rs`); the crate would bring
//!   its registry and encoder types for no gain here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::broker::stats::{Histogram, Item, SEND_LATENCY_BUCKETS_US};
use crate::broker::Broker;
use crate::config::BrokerRole;

/// A scrape request's bytes read at most (the request line and headers).
const REQUEST_SIZE_MAX_BYTES: usize = 8 * 1024;
/// How long a scraper may take to send its request or read the answer.
const SCRAPE_IO_TIMEOUT_MS: u64 = 2_000;

/// One shard's figures at one moment.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    pub broker: String,
    pub shard: usize,
    pub taken_ms: u64,
    /// topic → (messages, bytes) put.
    pub put: BTreeMap<String, (u64, u64)>,
    /// `topic@group` → (messages, bytes) got.
    pub get: BTreeMap<String, (u64, u64)>,
    /// `topic@group` → messages sent back.
    pub send_back: BTreeMap<String, u64>,
    /// group → messages dead-lettered.
    pub dlq: BTreeMap<String, u64>,
    pub sends: u64,
    pub send_failures: u64,
    pub send_latency: Histogram,
    pub flush_latency: Histogram,
    pub fdatasyncs: u64,
    pub commitlog_min_offset: u64,
    pub commitlog_max_offset: u64,
    pub disk_used_ratio: f64,
    pub connections: usize,
    pub long_polls_parked: usize,
    /// (topic, group, queue) → max offset − committed offset.
    pub lag: BTreeMap<(String, String, i32), i64>,
    /// `ASYNC_MASTER`, `SYNC_MASTER` or `SLAVE`.
    pub role: &'static str,
    /// Masters: each connected slave's address and how many bytes of this shard's log it lacks.
    pub slave_lag_bytes: Vec<(String, u64)>,
    /// The shard's reactor stalls since start ([`crate::stall`]).
    pub stalls: crate::stall::StallSummary,
}

/// Where each shard publishes its snapshot; shared by the shards and the HTTP thread.
pub type Slot = Arc<Mutex<ShardSnapshot>>;

impl ShardSnapshot {
    /// Takes a shard's figures (on the shard's own thread); `disk_used_ratio` was read off it
    /// ([`crate::broker::reports::disk_used_ratio`]).
    pub fn take(broker: &Broker, disk_used_ratio: f64) -> Self {
        let now = crate::broker::now_ms();
        let stats = broker.stats.borrow();
        let pairs = |nums: Item, size: Item| -> BTreeMap<String, (u64, u64)> {
            stats
                .keys(nums)
                .map(|(k, c)| {
                    let bytes = stats.counter(size, k).map_or(0, |s| s.value);
                    (k.clone(), (c.value, bytes))
                })
                .collect()
        };
        let values = |item: Item| -> BTreeMap<String, u64> {
            stats
                .keys(item)
                .map(|(k, c)| (k.clone(), c.value))
                .collect()
        };
        let lag = broker
            .engine
            .committed_offsets()
            .into_iter()
            .map(|(topic, group, queue, committed)| {
                let max = broker.engine.max_offset(&topic, queue) as i64;
                ((topic, group, queue), (max - committed.max(0)).max(0))
            })
            .collect();
        let (written, _, _) = broker.engine.log_offsets();
        let clients = broker.clients.borrow();
        Self {
            broker: broker.name.clone(),
            shard: broker.shard,
            taken_ms: now,
            put: pairs(Item::TopicPutNums, Item::TopicPutSize),
            get: pairs(Item::GroupGetNums, Item::GroupGetSize),
            send_back: values(Item::SndbckPutNums),
            dlq: values(Item::DlqPutNums),
            sends: stats.sends,
            send_failures: stats.send_failures,
            send_latency: stats.send_latency.clone(),
            flush_latency: broker.engine.flush_latency(),
            fdatasyncs: broker.engine.commitlog_sync_count(),
            commitlog_min_offset: broker.engine.commitlog_min_offset(),
            commitlog_max_offset: written,
            disk_used_ratio,
            connections: clients.producers.values().map(|g| g.len()).sum::<usize>()
                + clients
                    .consumers
                    .values()
                    .map(|g| g.members.len())
                    .sum::<usize>(),
            long_polls_parked: broker.long_poll.parked(),
            lag,
            role: match broker.config.broker_role {
                BrokerRole::AsyncMaster => "ASYNC_MASTER",
                BrokerRole::SyncMaster => "SYNC_MASTER",
                BrokerRole::Slave => "SLAVE",
            },
            slave_lag_bytes: broker
                .ha
                .slave_offsets()
                .into_iter()
                .map(|(peer, held)| (peer, written.saturating_sub(held)))
                .collect(),
            stalls: crate::stall::snapshot(),
        }
    }
}

/// A label value, escaped as the text format asks.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `topic@group` split (groups may not contain `@`; topics cannot).
fn topic_group(key: &str) -> (&str, &str) {
    key.split_once('@').unwrap_or((key, ""))
}

/// Renders every shard's snapshot.
pub fn render(shards: &[ShardSnapshot]) -> String {
    let mut o = String::new();
    let b = |s: &ShardSnapshot| format!("broker=\"{}\",shard=\"{}\"", esc(&s.broker), s.shard);
    family(
        &mut o,
        "apogee_messages_in_total",
        "counter",
        "Messages stored by sends, per topic.",
    );
    for s in shards {
        for (t, (n, _)) in &s.put {
            let _ = writeln!(
                o,
                "apogee_messages_in_total{{{},topic=\"{}\"}} {n}",
                b(s),
                esc(t)
            );
        }
    }
    family(
        &mut o,
        "apogee_bytes_in_total",
        "counter",
        "Message body bytes stored by sends, per topic.",
    );
    for s in shards {
        for (t, (_, bytes)) in &s.put {
            let _ = writeln!(
                o,
                "apogee_bytes_in_total{{{},topic=\"{}\"}} {bytes}",
                b(s),
                esc(t)
            );
        }
    }
    family(
        &mut o,
        "apogee_messages_out_total",
        "counter",
        "Messages pulled, per topic and consumer group.",
    );
    for s in shards {
        for (k, (n, _)) in &s.get {
            let (t, g) = topic_group(k);
            let _ = writeln!(
                o,
                "apogee_messages_out_total{{{},topic=\"{}\",group=\"{}\"}} {n}",
                b(s),
                esc(t),
                esc(g)
            );
        }
    }
    family(
        &mut o,
        "apogee_bytes_out_total",
        "counter",
        "Stored bytes pulled, per topic and consumer group.",
    );
    for s in shards {
        for (k, (_, bytes)) in &s.get {
            let (t, g) = topic_group(k);
            let _ = writeln!(
                o,
                "apogee_bytes_out_total{{{},topic=\"{}\",group=\"{}\"}} {bytes}",
                b(s),
                esc(t),
                esc(g)
            );
        }
    }
    family(
        &mut o,
        "apogee_send_back_total",
        "counter",
        "Messages consumers sent back for a retry.",
    );
    for s in shards {
        for (k, n) in &s.send_back {
            let (t, g) = topic_group(k);
            let _ = writeln!(
                o,
                "apogee_send_back_total{{{},topic=\"{}\",group=\"{}\"}} {n}",
                b(s),
                esc(t),
                esc(g)
            );
        }
    }
    family(
        &mut o,
        "apogee_dead_letters_total",
        "counter",
        "Messages moved to a group's dead-letter queue.",
    );
    for s in shards {
        for (g, n) in &s.dlq {
            let _ = writeln!(
                o,
                "apogee_dead_letters_total{{{},group=\"{}\"}} {n}",
                b(s),
                esc(g)
            );
        }
    }
    family(
        &mut o,
        "apogee_consumer_lag_messages",
        "gauge",
        "Broker max offset minus the group's committed offset, per queue.",
    );
    for s in shards {
        for ((t, g, q), lag) in &s.lag {
            let _ = writeln!(
                o,
                "apogee_consumer_lag_messages{{{},topic=\"{}\",group=\"{}\",queue=\"{q}\"}} {lag}",
                b(s),
                esc(t),
                esc(g)
            );
        }
    }
    let scalar = |o: &mut String,
                  name: &str,
                  kind: &str,
                  help: &str,
                  v: &dyn Fn(&ShardSnapshot) -> String| {
        family(o, name, kind, help);
        for s in shards {
            let _ = writeln!(o, "{name}{{{}}} {}", b(s), v(s));
        }
    };
    scalar(
        &mut o,
        "apogee_send_requests_total",
        "counter",
        "Send requests answered.",
        &|s| s.sends.to_string(),
    );
    scalar(
        &mut o,
        "apogee_send_failures_total",
        "counter",
        "Send requests answered with an error.",
        &|s| s.send_failures.to_string(),
    );
    scalar(
        &mut o,
        "apogee_fdatasyncs_total",
        "counter",
        "fdatasync calls on the commit log (group commit).",
        &|s| s.fdatasyncs.to_string(),
    );
    scalar(
        &mut o,
        "apogee_commitlog_min_offset_bytes",
        "gauge",
        "First commit log offset still stored.",
        &|s| s.commitlog_min_offset.to_string(),
    );
    scalar(
        &mut o,
        "apogee_commitlog_max_offset_bytes",
        "gauge",
        "Commit log offset written up to.",
        &|s| s.commitlog_max_offset.to_string(),
    );
    scalar(
        &mut o,
        "apogee_commitlog_size_bytes",
        "gauge",
        "Commit log bytes stored (max - min offset).",
        &|s| {
            s.commitlog_max_offset
                .saturating_sub(s.commitlog_min_offset)
                .to_string()
        },
    );
    scalar(
        &mut o,
        "apogee_disk_used_ratio",
        "gauge",
        "Used fraction of the store's file system.",
        &|s| format!("{:.4}", s.disk_used_ratio),
    );
    scalar(
        &mut o,
        "apogee_connections",
        "gauge",
        "Clients known from heartbeats.",
        &|s| s.connections.to_string(),
    );
    scalar(
        &mut o,
        "apogee_long_polls_parked",
        "gauge",
        "Pulls waiting for a message.",
        &|s| s.long_polls_parked.to_string(),
    );
    // Replication, on masters: how many slaves are connected (labelled with the role, so that a rule can
    // tell a SYNC_MASTER, whose sends need a slave, from an ASYNC_MASTER), and how far behind each is.
    family(
        &mut o,
        "apogee_ha_slaves_connected",
        "gauge",
        "Slaves replicating from this master shard now.",
    );
    for s in shards.iter().filter(|s| s.role != "SLAVE") {
        let _ = writeln!(
            o,
            "apogee_ha_slaves_connected{{{},role=\"{}\"}} {}",
            b(s),
            s.role,
            s.slave_lag_bytes.len()
        );
    }
    family(
        &mut o,
        "apogee_slave_lag_bytes",
        "gauge",
        "Bytes of this master shard's commit log a connected slave has not acknowledged.",
    );
    for s in shards {
        for (slave, lag) in &s.slave_lag_bytes {
            let _ = writeln!(
                o,
                "apogee_slave_lag_bytes{{{},slave=\"{}\"}} {lag}",
                b(s),
                esc(slave)
            );
        }
    }
    scalar(
        &mut o,
        "apogee_snapshot_timestamp_seconds",
        "gauge",
        "When the shard took these figures.",
        &|s| format!("{:.3}", s.taken_ms as f64 / 1000.0),
    );
    histogram(
        &mut o,
        shards,
        "apogee_send_latency_seconds",
        "Send request dispatch to answer.",
        |s| &s.send_latency,
    );
    histogram(
        &mut o,
        shards,
        "apogee_flush_latency_seconds",
        "Commit log flush (write and fdatasync).",
        |s| &s.flush_latency,
    );
    family(
        &mut o,
        "apogee_reactor_stall_seconds",
        "histogram",
        "How late the shard's stall probe woke from each 1 ms sleep: time the reactor did not poll.",
    );
    for s in shards {
        let b = b(s);
        let mut cumulative = 0;
        for (i, bound) in crate::stall::STALL_BUCKETS_US.iter().enumerate() {
            cumulative += s.stalls.buckets[i];
            let _ = writeln!(
                o,
                "apogee_reactor_stall_seconds_bucket{{{b},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let n = s.stalls.count;
        let _ = writeln!(
            o,
            "apogee_reactor_stall_seconds_bucket{{{b},le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            o,
            "apogee_reactor_stall_seconds_sum{{{b}}} {}",
            s.stalls.sum_us as f64 / 1e6
        );
        let _ = writeln!(o, "apogee_reactor_stall_seconds_count{{{b}}} {n}");
    }
    scalar(
        &mut o,
        "apogee_reactor_stall_max_seconds",
        "gauge",
        "The shard's longest reactor stall since start.",
        &|s| format!("{}", s.stalls.max_us as f64 / 1e6),
    );
    family(
        &mut o,
        "apogee_reactor_stall_on_cpu_seconds",
        "histogram",
        "Reactor stalls bounded by the shard thread's CPU time over each probe sleep: the part spent running the shard's own code rather than waiting for a CPU.",
    );
    for s in shards {
        let b = b(s);
        let mut cumulative = 0;
        for (i, bound) in crate::stall::STALL_BUCKETS_US.iter().enumerate() {
            cumulative += s.stalls.on_cpu_buckets[i];
            let _ = writeln!(
                o,
                "apogee_reactor_stall_on_cpu_seconds_bucket{{{b},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let n = s.stalls.count;
        let _ = writeln!(
            o,
            "apogee_reactor_stall_on_cpu_seconds_bucket{{{b},le=\"+Inf\"}} {n}"
        );
        let _ = writeln!(
            o,
            "apogee_reactor_stall_on_cpu_seconds_sum{{{b}}} {}",
            s.stalls.on_cpu_sum_us as f64 / 1e6
        );
        let _ = writeln!(o, "apogee_reactor_stall_on_cpu_seconds_count{{{b}}} {n}");
    }
    scalar(
        &mut o,
        "apogee_reactor_stall_on_cpu_max_seconds",
        "gauge",
        "The shard's longest on-CPU reactor stall since start.",
        &|s| format!("{}", s.stalls.on_cpu_max_us as f64 / 1e6),
    );
    o
}

fn histogram(
    o: &mut String,
    shards: &[ShardSnapshot],
    name: &str,
    help: &str,
    of: impl Fn(&ShardSnapshot) -> &Histogram,
) {
    family(o, name, "histogram", help);
    for s in shards {
        let b = format!("broker=\"{}\",shard=\"{}\"", esc(&s.broker), s.shard);
        let h = of(s);
        let mut cumulative = 0;
        for (i, bound) in SEND_LATENCY_BUCKETS_US.iter().enumerate() {
            cumulative += h.buckets[i];
            let _ = writeln!(
                o,
                "{name}_bucket{{{b},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        let _ = writeln!(o, "{name}_bucket{{{b},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(o, "{name}_sum{{{b}}} {}", h.sum_us as f64 / 1e6);
        let _ = writeln!(o, "{name}_count{{{b}}} {}", h.count);
    }
}

/// The running endpoint: its thread and the switch that stops it.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub port: u16,
}

impl MetricsServer {
    /// Listens on `0.0.0.0:port` and serves the shards' slots; an error names the port.
    pub fn start(port: u16, slots: Vec<Slot>) -> Result<Self, String> {
        let listener = TcpListener::bind(("0.0.0.0", port))
            .map_err(|e| format!("cannot serve metrics on port {port} (metricsPort): {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("metrics port {port}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Err(e) = serve(stream, &slots) {
                                tracing::debug!(error = %e, "metrics scrape failed");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics endpoint accept failed");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        tracing::info!(port, "metrics endpoint serving /metrics");
        Ok(Self {
            stop,
            thread: Some(thread),
            port,
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, slots: &[Slot]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(SCRAPE_IO_TIMEOUT_MS)))?;
    stream.set_write_timeout(Some(Duration::from_millis(SCRAPE_IO_TIMEOUT_MS)))?;
    let mut request = Vec::new();
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < REQUEST_SIZE_MAX_BYTES {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, content_type, body) =
        if line.starts_with("GET ") && (path == "/metrics" || path.starts_with("/metrics?")) {
            let snapshots: Vec<ShardSnapshot> = slots
                .iter()
                .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
                .collect();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render(&snapshots),
            )
        } else {
            (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "only GET /metrics is served here\n".to_owned(),
            )
        };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_has_types_escaped_labels_and_cumulative_buckets() {
        let mut s = ShardSnapshot {
            broker: "b-0".into(),
            ..Default::default()
        };
        s.put.insert("T".into(), (3, 30));
        s.lag.insert(("T".into(), "g\"x".into(), 1), 7);
        s.send_latency.observe(50);
        s.send_latency.observe(300);
        s.sends = 2;
        s.role = "SYNC_MASTER";
        s.slave_lag_bytes.push(("127.0.0.1:4000".into(), 512));
        s.stalls = crate::stall::StallSummary {
            buckets: [5, 1, 0, 0, 0, 0, 0, 0],
            count: 7,
            sum_us: 150_000,
            max_us: 140_000,
            p99_us: 140_000,
            p999_us: 140_000,
            ..Default::default()
        };
        let text = render(&[s]);
        assert!(text.contains("# TYPE apogee_reactor_stall_seconds histogram\n"));
        assert!(text.contains(
            "apogee_reactor_stall_seconds_bucket{broker=\"b-0\",shard=\"0\",le=\"0.001\"} 6\n"
        ));
        assert!(text.contains(
            "apogee_reactor_stall_seconds_bucket{broker=\"b-0\",shard=\"0\",le=\"+Inf\"} 7\n"
        ));
        assert!(
            text.contains("apogee_reactor_stall_max_seconds{broker=\"b-0\",shard=\"0\"} 0.14\n")
        );
        assert!(text.contains(
            "apogee_ha_slaves_connected{broker=\"b-0\",shard=\"0\",role=\"SYNC_MASTER\"} 1\n"
        ));
        assert!(text.contains(
            "apogee_slave_lag_bytes{broker=\"b-0\",shard=\"0\",slave=\"127.0.0.1:4000\"} 512\n"
        ));
        assert!(text.contains("# TYPE apogee_messages_in_total counter\n"));
        assert!(
            text.contains("apogee_messages_in_total{broker=\"b-0\",shard=\"0\",topic=\"T\"} 3\n")
        );
        assert!(text.contains("apogee_consumer_lag_messages{broker=\"b-0\",shard=\"0\",topic=\"T\",group=\"g\\\"x\",queue=\"1\"} 7\n"));
        assert!(text.contains(
            "apogee_send_latency_seconds_bucket{broker=\"b-0\",shard=\"0\",le=\"0.0001\"} 1\n"
        ));
        assert!(text.contains(
            "apogee_send_latency_seconds_bucket{broker=\"b-0\",shard=\"0\",le=\"0.0005\"} 2\n"
        ));
        assert!(text.contains(
            "apogee_send_latency_seconds_bucket{broker=\"b-0\",shard=\"0\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("apogee_send_latency_seconds_count{broker=\"b-0\",shard=\"0\"} 2\n"));
        // Every sample line is `name{labels} value`, every family typed before its samples.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
