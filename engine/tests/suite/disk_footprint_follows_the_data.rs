//! A store's disk blocks follow what it holds, not its number of queues or its segment size: segments
//! are full-length files (RocketMQ's layout, which its tools check) whose blocks are allocated in steps as
//! data arrives (`log`'s module docs). Measured as `du` does, from the files' allocated blocks.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::*;
use apogee_engine::{Engine, EngineConfig, FlushMode, ReadStatus};

/// Allocated bytes of every file under `dir`, as `du` counts them (directories included).
fn allocated_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

fn full_size_config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.flush_mode = FlushMode::Async;
    c.flush_interval_ms = 20;
    c
}

/// Queues in the footprint test; `APOGEE_FOOTPRINT_QUEUES` measures more (each queue's first checkpoint
/// costs an fdatasync, so thousands take a while).
fn queues() -> i32 {
    std::env::var("APOGEE_FOOTPRINT_QUEUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}
const QUEUES_PER_TOPIC: i32 = 8;

#[test]
fn thousands_of_queues_with_one_message_each_take_kilobytes_per_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let queues = queues();
    run(move || async move {
        let engine = Engine::open(full_size_config(&path)).await.unwrap();
        for q in 0..queues {
            let topic = format!("T{}", q / QUEUES_PER_TOPIC);
            engine
                .append(&[message(&topic, q % QUEUES_PER_TOPIC, b"x".to_vec(), "")])
                .await
                .unwrap();
        }
        engine.flush().await.unwrap();
        engine.shutdown().await.unwrap();
    });
    let used = allocated_bytes(dir.path());
    eprintln!("{queues} queues with one message each: {used} bytes allocated on disk");
    // Per queue: its first allocation step (8 KiB) and its folder; plus the commit log's first step and
    // the metadata files.
    let bound = queues as u64 * 16 * 1024 + 8 * 1024 * 1024;
    assert!(
        used < bound,
        "{queues} queues with one message each take {used} bytes on disk, more than {bound}"
    );
    let segment = dir.path().join("commitlog").join("00000000000000000000");
    let meta = std::fs::metadata(&segment).unwrap();
    assert_eq!(
        meta.len(),
        apogee_engine::limits::COMMITLOG_SEGMENT_SIZE_BYTES_DEFAULT,
        "a commit log segment has RocketMQ's full length, sparse"
    );
    assert!(
        meta.blocks() * 512 <= 4 * 1024 * 1024,
        "a commit log holding {queues} tiny records allocates a few MiB, not 1 GiB: {}",
        meta.blocks() * 512
    );

    // The sparse store reopens, serves what it holds and takes more.
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(full_size_config(&path)).await.unwrap();
        let r = engine
            .read_queue("T7", 3, 0, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(r.status, ReadStatus::Found);
        engine
            .append(&[message("T7", 3, b"y".to_vec(), "")])
            .await
            .unwrap();
        assert_eq!(engine.max_offset("T7", 3), 2);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn segments_fill_through_many_allocation_steps_and_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let count = run(move || async move {
        // 1 MiB segments: allocation steps of 4 KiB doubling to 64 KiB, a roll every ~300 messages.
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let mut count = 0u64;
        for seq in 0..2_000 {
            engine
                .append(&[message("T", 0, body_for(seq), "")])
                .await
                .unwrap();
            count += 1;
        }
        engine.shutdown().await.unwrap();
        count
    });
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let mut offset = 0;
        let mut seq = 0u64;
        loop {
            let r = engine
                .read_queue("T", 0, offset, 256, 8 << 20, &|_| true)
                .await
                .unwrap();
            if r.status != ReadStatus::Found {
                break;
            }
            for rec in apogee_net::record::decode_all(&r.body).unwrap() {
                assert_eq!(rec.body.as_ref(), body_for(seq).as_slice(), "record {seq}");
                seq += 1;
            }
            offset = r.next_offset;
        }
        assert_eq!(seq, count, "every append reads back after a reopen");
        engine.shutdown().await.unwrap();
    });
}
