//! Engine append throughput against the raw O_DIRECT write bandwidth of the same disk, in one run.
//!
//! `cargo bench -p apogee-engine --bench append` (set APOGEE_BENCH_DIR to pick the disk; default: a
//! temporary folder under the current directory). Prints, for 1 KiB messages: ASYNC_FLUSH, and SYNC_FLUSH
//! with 1, 16 and 256 concurrent appenders: msgs/s, MB/s of commit log written, p50/p99 append latency, and
//! the ratio to the raw sequential bandwidth measured first. The executor spins before parking as the
//! broker's shards do (300 µs; `APOGEE_SPIN_US` changes it).
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

fn message(seq: u64) -> Message {
    Message {
        topic: "Bench".into(),
        queue_id: (seq % 8) as i32,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 0,
        born_host: "127.0.0.1:1".parse().expect("literal"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(vec![0x42u8; MESSAGE_BYTES]),
        properties: String::new(),
    }
}

async fn phase(
    dir: &std::path::Path,
    name: &str,
    mode: FlushMode,
    appenders: u64,
    raw_mb_s: f64,
    length: Duration,
) {
    let store = dir.join(name.replace(' ', "-"));
    let mut c = EngineConfig::new(&store);
    c.flush_mode = mode;
    c.commitlog_segment_size_bytes = 256 * 1024 * 1024;
    let engine = Engine::open(c).await.expect("open engine");
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|a| {
            let engine: Rc<Engine> = engine.clone();
            glommio::spawn_local(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                let mut seq = a;
                let mut n = 0u64;
                while start.elapsed() < length {
                    let t = Instant::now();
                    engine.append(&[message(seq)]).await.expect("append");
                    h.record(t.elapsed().as_micros() as u64).expect("record");
                    seq += appenders;
                    n += 1;
                    if n.is_multiple_of(64) {
                        glommio::yield_if_needed().await;
                    }
                }
                h
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        hist.add(t.await).expect("merge");
    }
    engine.flush().await.expect("final flush");
    let secs = start.elapsed().as_secs_f64();
    let (written, _, _) = engine.log_offsets();
    let msgs = hist.len() as f64 / secs;
    let mb_s = written as f64 / secs / 1e6;
    println!(
        "{name:<22} {msgs:>10.0} msgs/s {mb_s:>8.1} MB/s  p50 {:>6} us  p99 {:>6} us  syncs {:>6}  ratio to raw {:>5.1}%",
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        engine.commitlog_sync_count(),
        100.0 * mb_s / raw_mb_s
    );
    engine.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(&store);
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
            let raw = raw_bandwidth(&path, raw_bytes).await;
            println!(
                "raw O_DIRECT sequential write: {raw:.1} MB/s ({} MiB in 1 MiB writes, 4 in flight)",
                raw_bytes >> 20
            );
            println!(
                "engine appends of {MESSAGE_BYTES}-byte messages, {} ms per phase:",
                length.as_millis()
            );
            phase(&path, "ASYNC_FLUSH x256", FlushMode::Async, 256, raw, length).await;
            phase(&path, "SYNC_FLUSH x1", FlushMode::Sync, 1, raw, length).await;
            phase(&path, "SYNC_FLUSH x16", FlushMode::Sync, 16, raw, length).await;
            phase(&path, "SYNC_FLUSH x256", FlushMode::Sync, 256, raw, length).await;
        })
        .expect("executor")
        .join()
        .expect("bench panicked");
}
