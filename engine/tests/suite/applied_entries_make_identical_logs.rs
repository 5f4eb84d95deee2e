//! Dledger mode's engine half: replicas that apply the same committed entries (same messages, the
//! leader's store timestamp and host) write byte-identical commit logs, whatever their flush mode and
//! own store host, with the same queue offsets and key index; a replica cut back to an applied
//! checkpoint and fed the entries after it again ends identical too.

use crate::common;

use std::net::SocketAddr;

use apogee_engine::{Engine, FlushMode, Message};
use common::*;

/// Entries: batches of 1..=4 messages over two topics and three queues, with keys.
fn entries() -> Vec<(i64, Vec<Message>)> {
    (0..700u64)
        .map(|i| {
            let n = 1 + (i % 4) as usize;
            let msgs = (0..n)
                .map(|k| {
                    let seq = i * 4 + k as u64;
                    let topic = if seq.is_multiple_of(3) { "A" } else { "B" };
                    message(
                        topic,
                        (seq % 3) as i32,
                        body_for(seq),
                        &format!("KEYS\u{1}k{seq}\u{2}"),
                    )
                })
                .collect();
            (1_700_000_000_000 + i as i64, msgs)
        })
        .collect()
}

fn leader() -> SocketAddr {
    "127.0.0.9:10911".parse().unwrap()
}

async fn apply(engine: &Engine, from: usize, entries: &[(i64, Vec<Message>)]) -> Vec<(u64, u64)> {
    let mut at = Vec::new();
    for (ts, msgs) in &entries[from..] {
        let stored = engine.append_applied(msgs, *ts, leader()).await.unwrap();
        at.extend(stored.iter().map(|a| (a.physical_offset, a.queue_offset)));
    }
    at
}

fn segments_equal(a: &std::path::Path, b: &std::path::Path, upto: u64) -> usize {
    let mut compared = 0;
    for seg in std::fs::read_dir(a.join("commitlog")).unwrap() {
        let seg = seg.unwrap();
        let name = seg.file_name();
        let start: u64 = name.to_str().unwrap().parse().unwrap();
        let ours = std::fs::read(seg.path()).unwrap();
        let theirs = std::fs::read(b.join("commitlog").join(&name)).unwrap();
        let n = (upto.saturating_sub(start) as usize).min(ours.len());
        assert!(ours[..n] == theirs[..n], "segment {name:?} differs");
        compared += 1;
    }
    compared
}

#[test]
fn applied_entries_make_identical_logs_and_a_cut_back_replica_catches_up_identically() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let all = entries();
        let a = Engine::open(config(&root.join("a"), FlushMode::Async))
            .await
            .unwrap();
        let mut bc = config(&root.join("b"), FlushMode::Sync);
        bc.store_host = "127.0.0.2:20911".parse().unwrap();
        let b = Engine::open(bc).await.unwrap();
        let at_a = apply(&a, 0, &all).await;
        // B applies the first half, checkpoints (flush + remember the end), applies a bit more, and is
        // cut back to the checkpoint as at a restart.
        let half = all.len() / 2;
        let first = apply(&b, 0, &all[..half]).await;
        b.flush().await.unwrap();
        let (ckpt, _, _) = b.log_offsets();
        apply(&b, half, &all[..half + 40]).await;
        let dropped = b.truncate_replicated(ckpt).await.unwrap();
        assert!(dropped > 0, "entries past the checkpoint were cut");
        let rest = apply(&b, half, &all).await;
        let at_b: Vec<(u64, u64)> = first.into_iter().chain(rest).collect();
        assert_eq!(
            at_a, at_b,
            "same physical and queue offsets on both replicas"
        );
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        let (wa, _, _) = a.log_offsets();
        let (wb, db, _) = b.log_offsets();
        assert_eq!(wa, wb);
        assert_eq!(db, wb, "SYNC_FLUSH replica durable after its flush");
        for (topic, q) in [("A", 0), ("B", 1), ("B", 2)] {
            assert_eq!(
                a.max_offset(topic, q),
                b.max_offset(topic, q),
                "{topic}@{q}"
            );
        }
        let hit = b.query_by_key("B", "k2000", 4, 0, i64::MAX).await.unwrap();
        assert_eq!(hit.len(), 1, "the key index holds applied messages");
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        assert!(segments_equal(&root.join("a"), &root.join("b"), wa) >= 2);
    });
}
