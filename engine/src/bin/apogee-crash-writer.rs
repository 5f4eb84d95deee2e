//! Test support for the engine's crash tests (not shipped as a user tool): appends with SYNC_FLUSH to the
//! store given as the first argument, from several concurrent appenders, and prints one line per
//! acknowledged message, `ACK <queue> <queue offset> <physical offset> <seq>`, flushed at once, so a parent
//! that SIGKILLs it knows exactly what was acknowledged. The sequence numbers start at the second argument.
//! Stops by itself after 60 s or 200,000 messages.

use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use apogee_engine::{Engine, EngineConfig, FlushMode, Message};
use bytes::Bytes;
use glommio::{LocalExecutorBuilder, Placement};

const APPENDERS: u64 = 8;
const RUN_MAX: Duration = Duration::from_secs(60);
const MESSAGES_MAX: u64 = 200_000;

/// Kept in step with `engine/tests/suite/common/mod.rs::body_for`.
fn body_for(seq: u64) -> Vec<u8> {
    let unit = format!("m{seq}:");
    let len = 50 + (seq * 7919 % 3000) as usize;
    unit.bytes().cycle().take(len).collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(store) = args.next() else {
        eprintln!("usage: apogee-crash-writer <store dir> <first seq>");
        std::process::exit(2);
    };
    let first: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let mut c = EngineConfig::new(&store);
            c.flush_mode = FlushMode::Sync;
            c.commitlog_segment_size_bytes = 1024 * 1024;
            c.message_size_max_bytes = 64 * 1024;
            c.write_buffer_max_bytes = 512 * 1024;
            let engine = match Engine::open(c).await {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("open failed: {e}");
                    std::process::exit(3);
                }
            };
            println!("READY");
            let start = Instant::now();
            let tasks: Vec<_> = (0..APPENDERS)
                .map(|a| {
                    let engine: Rc<Engine> = engine.clone();
                    glommio::spawn_local(async move {
                        let mut seq = first + a;
                        while start.elapsed() < RUN_MAX && seq < first + MESSAGES_MAX {
                            let queue = (seq % 4) as i32;
                            let m = Message {
                                topic: "Crash".into(),
                                queue_id: queue,
                                flag: 0,
                                sys_flag: 0,
                                born_timestamp: 1,
                                born_host: "127.0.0.1:1".parse().expect("literal address"),
                                reconsume_times: 0,
                                prepared_transaction_offset: 0,
                                body: Bytes::from(body_for(seq)),
                                properties: format!("KEYS\u{1}k{seq}\u{2}"),
                            };
                            match engine.append(&[m]).await {
                                Ok(a) => {
                                    let mut out = std::io::stdout().lock();
                                    let _ = writeln!(
                                        out,
                                        "ACK {queue} {} {} {seq}",
                                        a[0].queue_offset, a[0].physical_offset
                                    );
                                    let _ = out.flush();
                                }
                                Err(e) => {
                                    eprintln!("append failed: {e}");
                                    std::process::exit(4);
                                }
                            }
                            seq += APPENDERS;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let _ = engine.shutdown().await;
        })
        .expect("glommio executor starts (root, or ulimit -l of at least 16 MiB)");
    let _ = handle.join();
}
