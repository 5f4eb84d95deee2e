//! A child process appends with SYNC_FLUSH and prints every acknowledgement; it is SIGKILLed at random
//! moments, again and again on the same store. After each kill the store is recovered and every
//! acknowledged message must be present, byte-identical, at its queue offset; queue offsets must be dense
//! and every visible record whole and valid.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use apogee_engine::{Engine, FlushMode, ReadStatus};
use apogee_net::record;

const ROUNDS: usize = 6;

struct Ack {
    queue: i32,
    queue_offset: u64,
    physical: u64,
    seq: u64,
}

fn parse(line: &str) -> Option<Ack> {
    let mut p = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        queue: p.next()?.parse().ok()?,
        queue_offset: p.next()?.parse().ok()?,
        physical: p.next()?.parse().ok()?,
        seq: p.next()?.parse().ok()?,
    })
}

#[test]
fn acked_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill-timing seed {seed}");
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let wait_ms = 100 + seed % 500;
        let mut child = Command::new(env!("CARGO_BIN_EXE_apogee-crash-writer"))
            .arg(dir.path())
            .arg((round as u64 * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn crash writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until it is writing, then let it run for a random while.
        let ready = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("writer reports READY");
        assert_eq!(ready, "READY");
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(5)) {
                acked.extend(parse(&line));
            }
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        reader.join().unwrap();
        acked.extend(rx.try_iter().filter_map(|l| parse(&l)));
        eprintln!(
            "round {round}: killed after {wait_ms} ms, {} acknowledged so far",
            acked.len()
        );

        let path = dir.path().to_owned();
        let expect: Vec<(i32, u64, u64, u64)> = acked
            .iter()
            .map(|a| (a.queue, a.queue_offset, a.physical, a.seq))
            .collect();
        run(move || async move {
            let engine = Engine::open(config(&path, FlushMode::Sync))
                .await
                .expect("recovery after SIGKILL");
            // Every acknowledged message is there, byte-identical.
            let mut by_queue: HashMap<i32, Vec<(u64, u64, u64)>> = HashMap::new();
            for (q, off, phys, seq) in &expect {
                by_queue.entry(*q).or_default().push((*off, *phys, *seq));
            }
            for (q, acks) in &by_queue {
                for (off, phys, seq) in acks {
                    let r = engine
                        .read_queue("Crash", *q, *off, 1, 1 << 20, &|_| true)
                        .await
                        .unwrap();
                    assert_eq!(
                        r.status,
                        ReadStatus::Found,
                        "acked message {seq} at {q}/{off} is missing"
                    );
                    let rec = record::decode(&r.body).unwrap();
                    assert_eq!(
                        rec.physical_offset as u64, *phys,
                        "acked message {seq} moved"
                    );
                    assert_eq!(
                        &rec.body[..],
                        &body_for(*seq)[..],
                        "acked message {seq} changed"
                    );
                }
            }
            // Every visible record is whole and valid, at dense queue offsets.
            for q in 0..4 {
                let mut offset = 0;
                loop {
                    let r = engine
                        .read_queue("Crash", q, offset, 64, 1 << 20, &|_| true)
                        .await
                        .unwrap();
                    if r.status != ReadStatus::Found {
                        break;
                    }
                    for rec in record::decode_all(&r.body).unwrap() {
                        assert_eq!(rec.queue_offset as u64, offset, "queue {q} is not dense");
                        assert_eq!(
                            record::body_crc(&rec.body),
                            rec.body_crc,
                            "visible record fails its CRC"
                        );
                        offset += 1;
                    }
                }
                assert_eq!(offset, engine.max_offset("Crash", q));
            }
            engine.shutdown().await.unwrap();
        });
    }
    assert!(
        acked.len() > 100,
        "the writer acknowledged only {} messages in {ROUNDS} rounds",
        acked.len()
    );
}
