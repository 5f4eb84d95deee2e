//! Damage at the end of the commit log (a torn write, a flipped bit) is found by recovery, which truncates
//! exactly at the damaged record and keeps everything before it; new appends continue from there.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use crate::common::*;
use apogee_engine::{Engine, FlushMode, ReadStatus};
use apogee_net::record;

/// Appends `n` messages with SYNC_FLUSH and stops without a clean shutdown (the executor just ends);
/// returns (physical offset, size) of each. The checkpoint is removed, as if the crash came before the first
/// one was written, so recovery must scan every record.
fn write_then_crash(path: &std::path::Path, n: u64) -> Vec<(u64, usize)> {
    let p = path.to_owned();
    let stored = run(move || async move {
        let engine = Engine::open(config(&p, FlushMode::Sync)).await.unwrap();
        let mut out = Vec::new();
        for seq in 0..n {
            let a = engine
                .append(&[message("Torn", 0, body_for(seq), "")])
                .await
                .unwrap();
            out.push((a[0].physical_offset, a[0].size));
        }
        out
    });
    std::fs::remove_file(path.join("checkpoint")).unwrap();
    stored
}

fn segment(path: &std::path::Path) -> std::fs::File {
    OpenOptions::new()
        .write(true)
        .read(true)
        .open(path.join("commitlog").join(format!("{:020}", 0)))
        .unwrap()
}

fn recovered_count(path: &std::path::Path) -> (u64, u64) {
    let p = path.to_owned();
    run(move || async move {
        let engine = Engine::open(config(&p, FlushMode::Sync)).await.unwrap();
        let max = engine.max_offset("Torn", 0);
        let r = engine
            .read_queue("Torn", 0, 0, 1024, 8 << 20, &|_| true)
            .await
            .unwrap();
        let recs = record::decode_all(&r.body).unwrap();
        for (i, rec) in recs.iter().enumerate() {
            assert_eq!(&rec.body[..], &body_for(i as u64)[..]);
        }
        // Appending after recovery continues densely where the valid log ended.
        let a = engine
            .append(&[message("Torn", 0, b"next".to_vec(), "")])
            .await
            .unwrap();
        assert_eq!(a[0].queue_offset, max);
        let back = engine
            .read_queue("Torn", 0, max, 1, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(back.status, ReadStatus::Found);
        assert_eq!(&record::decode(&back.body).unwrap().body[..], b"next");
        engine.shutdown().await.unwrap();
        (max, a[0].physical_offset)
    })
}

#[test]
fn torn_tail_is_truncated_at_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let stored = write_then_crash(dir.path(), 20);
    let (last_at, last_size) = stored[19];
    // Zero the second half of the last record, as a torn block write leaves it.
    let half = last_size / 2;
    segment(dir.path())
        .write_all_at(&vec![0u8; last_size - half], last_at + half as u64)
        .unwrap();
    let (max, next_at) = recovered_count(dir.path());
    assert_eq!(max, 19, "the torn record is dropped, the 19 before it kept");
    assert_eq!(
        next_at, last_at,
        "the log was truncated exactly at the torn record"
    );
}

#[test]
fn corrupt_body_byte_truncates_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let stored = write_then_crash(dir.path(), 20);
    let (at, size) = stored[17];
    // Flip a byte in the middle of message 17's body (the body ends 2 + 1 + 5 + 2 bytes before the end).
    let pos = at + size as u64 - 20;
    let f = segment(dir.path());
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, pos).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], pos).unwrap();
    let (max, next_at) = recovered_count(dir.path());
    assert_eq!(max, 17, "records from the corrupt one on are dropped");
    assert_eq!(next_at, at);
}

#[test]
fn recovering_twice_gives_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let stored = write_then_crash(dir.path(), 10);
    let (at, size) = stored[9];
    segment(dir.path())
        .write_all_at(&vec![0u8; size - 8], at + 8)
        .unwrap();
    let p = dir.path().to_owned();
    let first = run(move || async move {
        let e = Engine::open(config(&p, FlushMode::Sync)).await.unwrap();
        (e.max_offset("Torn", 0), e.log_offsets())
    });
    let p = dir.path().to_owned();
    let second = run(move || async move {
        let e = Engine::open(config(&p, FlushMode::Sync)).await.unwrap();
        (e.max_offset("Torn", 0), e.log_offsets())
    });
    assert_eq!(first, second);
    assert_eq!(first.0, 9);
}
