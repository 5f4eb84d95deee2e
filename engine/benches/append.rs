//! Engine append throughput against the raw O_DIRECT write bandwidth of the same disk, in one run.
//!
//! `cargo bench -p apogee-engine --bench append` (set APOGEE_BENCH_DIR to pick the disk; default: a
//! temporary folder under the current directory). Prints, for 1 KiB messages: ASYNC_FLUSH, and SYNC_FLUSH
//! with 1, 16 and 256 concurrent appenders: msgs/s, MB/s of commit log written, p50/p99 append latency, and
//! the ratio to the raw sequential bandwidth measured first. The executor spins before parking as the
//! broker's shards do (300 µs; `APOGEE_SPIN_US` changes it).
//!
//! Each message carries the properties a Java producer sends (UNIQ_KEY, unique per message, TAGS, WAIT), so
//! the key index and the tag hash do the work they do in the broker. Each line also gives the CPU time the
//! process spent per message (user + system, every thread: the shard and glommio's blocking pool), the
//! figure the "≤ 1 µs per 1 KiB append on one core" aim is about. The raw bandwidth is measured before and
//! after the phases (the disk is shared); ratios are to the mean of the two.
//!
//! Knobs for profiling: `APOGEE_BENCH_ONLY=ASYNC` runs only the phases whose name contains it,
//! `APOGEE_BENCH_MESSAGES=N` ends each phase after N messages instead of after its time (so that
//! `valgrind --tool=callgrind` counts a fixed amount of work; the difference of two counts over the
//! difference of N is instructions per append), `APOGEE_BENCH_RAW_MIB=0` skips the raw measurement.
//!
//! `cargo test` runs it too (without cargo bench's `--bench` argument): a smoke run with short phases and a
//! small raw write, so that the command in the README keeps working.

use std::rc::Rc;
use std::time::{Duration, Instant};

use apogee_engine::{Engine, EngineConfig, FlushMode, Message};
use bytes::Bytes;
use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;

const MESSAGE_BYTES: usize = 1024;
const RAW_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;
const RAW_WRITE_BYTES: usize = 1024 * 1024;
const PHASE: Duration = Duration::from_secs(5);
/// Under `cargo test`: phases this long, and this much raw writing.
const SMOKE_PHASE: Duration = Duration::from_millis(200);
const SMOKE_RAW_TOTAL_BYTES: u64 = 16 * 1024 * 1024;

async fn raw_bandwidth(dir: &std::path::Path, total_bytes: u64) -> f64 {
    if total_bytes == 0 {
        return f64::NAN;
    }
    let path = dir.join("raw-bandwidth");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(&path)
        .await
        .expect("open raw file");
    f.pre_allocate(total_bytes, false)
        .await
        .expect("preallocate");
    let start = Instant::now();
    let mut pos = 0;
    // Four writes in flight, like the engine's flushes of a full buffer.
    while pos < total_bytes {
        let mut batch = Vec::new();
        for _ in 0..4 {
            if pos >= total_bytes {
                break;
            }
            let mut buf = f.alloc_dma_buffer(RAW_WRITE_BYTES);
            buf.as_bytes_mut().fill(0x5A);
            batch.push(f.write_at(buf, pos));
            pos += RAW_WRITE_BYTES as u64;
        }
        for w in futures::future::join_all(batch).await {
            w.expect("raw write");
        }
    }
    f.fdatasync().await.expect("raw sync");
    let secs = start.elapsed().as_secs_f64();
    f.close().await.expect("close");
    let _ = std::fs::remove_file(&path);
    total_bytes as f64 / secs / 1e6
}

/// The properties of a message from a Java producer: a unique UNIQ_KEY (32 hex digits, its last 8 the
/// sequence number), a tag, and WAIT.
fn properties(seq: u64) -> String {
    format!(
        "TAGS\u{1}created\u{2}UNIQ_KEY\u{1}7F0000010001B4AAC2C40F1C{seq:08X}\u{2}WAIT\u{1}true\u{2}"
    )
}

/// A message as the broker hands it over; the body is shared (the broker's comes from the request frame,
/// not copied).
fn message(seq: u64, body: &Bytes) -> Message {
    Message {
        topic: "Bench".into(),
        queue_id: (seq % 8) as i32,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: "127.0.0.1:1".parse().expect("literal"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: body.clone(),
        properties: properties(seq),
    }
}

/// CPU time (user + system) this process has used so far, every thread.
fn process_cpu() -> Duration {
    // SAFETY: getrusage writes one struct we own; RUSAGE_SELF always exists.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// How a phase ends: after a time, or after a number of messages (all appenders together).
#[derive(Clone, Copy)]
enum Until {
    Elapsed(Duration),
    Messages(u64),
}

async fn phase(
    dir: &std::path::Path,
    name: &str,
    mode: FlushMode,
    appenders: u64,
    until: Until,
) -> (String, f64) {
    let store = dir.join(name.replace(' ', "-"));
    let mut c = EngineConfig::new(&store);
    c.flush_mode = mode;
    c.commitlog_segment_size_bytes = 256 * 1024 * 1024;
    let engine = Engine::open(c).await.expect("open engine");
    let body = Bytes::from(vec![0x42u8; MESSAGE_BYTES]);
    let start = Instant::now();
    let cpu_start = process_cpu();
    // One histogram for all appenders: one each (tens of KB apiece) cost the bench itself 6 % of a SYNC
    // x256 profile in cache misses, counted in the CPU per message.
    let hist = Rc::new(std::cell::RefCell::new(
        Histogram::<u64>::new(3).expect("histogram"),
    ));
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let engine: Rc<Engine> = engine.clone();
            let body = body.clone();
            let h = hist.clone();
            glommio::spawn_local(async move {
                let mut seq = a;
                let mut n = 0u64;
                let more = |n: u64| match until {
                    Until::Elapsed(length) => start.elapsed() < length,
                    Until::Messages(total) => n < total.div_ceil(appenders),
                };
                while more(n) {
                    let t = Instant::now();
                    engine.append(&[message(seq, &body)]).await.expect("append");
                    h.borrow_mut()
                        .record(t.elapsed().as_micros() as u64)
                        .expect("record");
                    seq += appenders;
                    n += 1;
                    if n.is_multiple_of(64) {
                        glommio::yield_if_needed().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    engine.flush().await.expect("final flush");
    let hist = hist.borrow().clone();
    let secs = start.elapsed().as_secs_f64();
    let cpu_us = (process_cpu() - cpu_start).as_secs_f64() * 1e6;
    let (written, _, _) = engine.log_offsets();
    let msgs = hist.len() as f64 / secs;
    let mb_s = written as f64 / secs / 1e6;
    let line = format!(
        "{name:<18} {msgs:>8.0} msgs/s {mb_s:>6.1} MB/s  p50 {:>5} us  p99 {:>6} us  syncs {:>6}  cpu {:>5.2} us/msg",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        engine.commitlog_sync_count(),
        cpu_us / hist.len().max(1) as f64,
    );
    println!("{line}");
    engine.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&store);
    (line, mb_s)
}

fn main() {
    let base = std::env::var("APOGEE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| ".".into());
    let dir = tempfile::Builder::new()
        .prefix("apogee-bench-")
        .tempdir_in(base)
        .expect("bench dir");
    let path = dir.path().to_owned();
    // `cargo bench` passes --bench; `cargo test` does not: then a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (length, raw_bytes) = if full {
        (PHASE, RAW_TOTAL_BYTES)
    } else {
        (SMOKE_PHASE, SMOKE_RAW_TOTAL_BYTES)
    };
    let env_u64 = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    let until = env_u64("APOGEE_BENCH_MESSAGES").map_or(Until::Elapsed(length), Until::Messages);
    let raw_bytes = env_u64("APOGEE_BENCH_RAW_MIB").map_or(raw_bytes, |m| m << 20);
    let only = std::env::var("APOGEE_BENCH_ONLY").unwrap_or_default();
    // The broker's default (spinBeforeParkUs); APOGEE_SPIN_US=0 shows what parking costs.
    let spin_us: u64 = std::env::var("APOGEE_SPIN_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut builder = LocalExecutorBuilder::new(Placement::Fixed(0));
    if spin_us > 0 {
        builder = builder.spin_before_park(Duration::from_micros(spin_us));
    }
    println!("executor spins {spin_us} us before parking (APOGEE_SPIN_US)");
    builder
        .spawn(move || async move {
            // Before any other O_DIRECT file: glommio decides per device whether reads may be polled from
            // the first file opened, and a new empty one (the raw file) would make it decide wrongly.
            apogee_engine::log::prime_iopoll_probe(&path)
                .await
                .expect("iopoll probe");
            let raw_before = raw_bandwidth(&path, raw_bytes).await;
            println!(
                "raw O_DIRECT sequential write: {raw_before:.1} MB/s ({} MiB in 1 MiB writes, 4 in flight)",
                raw_bytes >> 20
            );
            match until {
                Until::Elapsed(l) => println!(
                    "engine appends of {MESSAGE_BYTES}-byte messages, {} ms per phase:",
                    l.as_millis()
                ),
                Until::Messages(n) => {
                    println!("engine appends of {MESSAGE_BYTES}-byte messages, {n} per phase:")
                }
            }
            let phases = [
                ("ASYNC_FLUSH x256", FlushMode::Async, 256),
                ("SYNC_FLUSH x1", FlushMode::Sync, 1),
                ("SYNC_FLUSH x16", FlushMode::Sync, 16),
                ("SYNC_FLUSH x256", FlushMode::Sync, 256),
            ];
            let mut results = Vec::new();
            for (name, mode, appenders) in phases {
                if name.contains(only.as_str()) {
                    results.push(phase(&path, name, mode, appenders, until).await);
                }
            }
            let raw_after = raw_bandwidth(&path, raw_bytes).await;
            let raw = (raw_before + raw_after) / 2.0;
            println!(
                "raw O_DIRECT sequential write again: {raw_after:.1} MB/s; mean of the two {raw:.1} MB/s"
            );
            println!("ratios to the mean raw bandwidth:");
            for (line, mb_s) in results {
                println!("{line}  ratio to raw {:>5.1}%", 100.0 * mb_s / raw);
            }
        })
        .expect("executor")
        .join()
        .expect("bench panicked");
}
