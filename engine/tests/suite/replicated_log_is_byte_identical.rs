//! A slave engine fed the master's log in arbitrary pieces ends byte-identical to it, blanks and padding
//! included, and serves the same queues and keys; a crash in the middle of a record loses only that
//! record's tail, which the master ships again.

use crate::common::*;
use apogee_engine::{Engine, EngineError, FlushMode, ReadStatus};

async fn ship(master: &Engine, slave: &Engine, piece_max: usize) {
    loop {
        let (from, _, _) = slave.log_offsets();
        match master.read_for_slave(from, piece_max).await.unwrap() {
            None => return,
            Some(bytes) => slave.append_replicated(from, &bytes).await.unwrap(),
        }
    }
}

async fn queue_bodies(engine: &Engine, topic: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = engine.min_offset(topic, 0);
    loop {
        let r = engine
            .read_queue(topic, 0, offset, 256, 8 << 20, &|_| true)
            .await
            .unwrap();
        if r.status != ReadStatus::Found {
            return out;
        }
        out.extend(
            apogee_net::record::decode_all(&r.body)
                .unwrap()
                .into_iter()
                .map(|m| m.body.to_vec()),
        );
        offset = r.next_offset;
    }
}

#[test]
fn replicated_log_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let master = Engine::open(config(&root.join("master"), FlushMode::Async))
            .await
            .unwrap();
        let slave = Engine::open(config(&root.join("slave"), FlushMode::Sync))
            .await
            .unwrap();
        // Enough to roll several 1 MiB segments (each roll writes a blank and leaves padding).
        for seq in 0..1200u64 {
            let keys = format!("KEYS\u{1}k{seq}\u{2}");
            let topic = if seq % 3 == 0 { "A" } else { "B" };
            master
                .append(&[message(topic, 0, body_for(seq), &keys)])
                .await
                .unwrap();
        }
        // Pieces that cut records anywhere.
        ship(&master, &slave, 7_777).await;
        let err = slave.append_replicated(5, b"x").await.unwrap_err();
        assert!(matches!(err, EngineError::Replication(_)), "{err}");
        master.flush().await.unwrap();
        slave.flush().await.unwrap();
        let (mw, _, _) = master.log_offsets();
        let (sw, sd, _) = slave.log_offsets();
        assert_eq!(sw, mw, "the slave holds everything");
        assert_eq!(sd, sw, "and has it durable");
        for topic in ["A", "B"] {
            assert_eq!(slave.max_offset(topic, 0), master.max_offset(topic, 0));
            assert_eq!(
                queue_bodies(&slave, topic).await,
                queue_bodies(&master, topic).await
            );
        }
        let hit = slave
            .query_by_key("B", "k1000", 4, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(hit.len(), 1, "the slave indexes keys too");
        master.shutdown().await.unwrap();
        slave.shutdown().await.unwrap();
        for seg in std::fs::read_dir(root.join("master").join("commitlog")).unwrap() {
            let seg = seg.unwrap();
            let name = seg.file_name();
            let theirs = std::fs::read(seg.path()).unwrap();
            let ours = std::fs::read(root.join("slave").join("commitlog").join(&name)).unwrap();
            let upto = (mw as usize)
                .saturating_sub(name.to_str().unwrap().parse::<usize>().unwrap())
                .min(theirs.len());
            assert!(
                theirs[..upto] == ours[..upto],
                "segment {name:?} differs between master and slave"
            );
        }
    });
}

#[test]
fn a_new_slave_starts_at_the_masters_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let slave = Engine::open(config(&root.join("slave"), FlushMode::Async))
            .await
            .unwrap();
        assert!(slave.is_empty());
        slave.start_empty_log_at(3 * 1024 * 1024).await.unwrap();
        let (w, _, _) = slave.log_offsets();
        assert_eq!(w, 3 * 1024 * 1024);
        assert_eq!(slave.commitlog_min_offset(), 3 * 1024 * 1024);
        slave.shutdown().await.unwrap();
    });
}

/// A master whose retention deleted its first segments: a new slave starts at the master's minimum, its
/// queues begin at the master's queue offsets, and a restart keeps them there.
#[test]
fn a_new_slave_follows_a_master_whose_log_no_longer_starts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let mut mc = config(&root.join("master"), FlushMode::Sync);
        mc.file_reserved_time_hours = 0;
        mc.delete_when_hour = ((apogee_engine::store::now_ms() / 3_600_000) % 24) as u32;
        let master = Engine::open(mc).await.unwrap();
        for seq in 0..1500u64 {
            master
                .append(&[message("Old", 0, body_for(seq), "")])
                .await
                .unwrap();
        }
        assert!(!master.retention_once().await.unwrap().is_empty());
        let (log_min, queue_min) = (master.commitlog_min_offset(), master.min_offset("Old", 0));
        assert!(log_min > 0 && queue_min > 0);
        let slave_dir = root.join("slave");
        let slave = Engine::open(config(&slave_dir, FlushMode::Sync))
            .await
            .unwrap();
        slave.start_empty_log_at(log_min).await.unwrap();
        ship(&master, &slave, 64 * 1024).await;
        slave.flush().await.unwrap();
        assert_eq!(slave.max_offset("Old", 0), 1500);
        assert_eq!(slave.min_offset("Old", 0), queue_min);
        assert_eq!(
            queue_bodies(&slave, "Old").await,
            queue_bodies(&master, "Old").await
        );
        slave.shutdown().await.unwrap();
        let slave = Engine::open(config(&slave_dir, FlushMode::Sync))
            .await
            .unwrap();
        assert_eq!(slave.min_offset("Old", 0), queue_min, "after a restart too");
        assert_eq!(slave.max_offset("Old", 0), 1500);
        assert_eq!(
            queue_bodies(&slave, "Old").await,
            queue_bodies(&master, "Old").await
        );
        slave.shutdown().await.unwrap();
        master.shutdown().await.unwrap();
    });
}

/// A slave that was away while its master's retention deleted what it needed next starts its log over at
/// the master's first offset and ends holding exactly what the master holds.
#[test]
fn a_slave_left_behind_by_retention_starts_over_at_the_masters_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    run(move || async move {
        let mut mc = config(&root.join("master"), FlushMode::Async);
        mc.file_reserved_time_hours = 0;
        mc.delete_when_hour = ((apogee_engine::store::now_ms() / 3_600_000) % 24) as u32;
        let master = Engine::open(mc).await.unwrap();
        let slave_dir = root.join("slave");
        let slave = Engine::open(config(&slave_dir, FlushMode::Async))
            .await
            .unwrap();
        for seq in 0..100u64 {
            let keys = format!("KEYS\u{1}early{seq}\u{2}");
            master
                .append(&[message("Old", 0, body_for(seq), &keys)])
                .await
                .unwrap();
        }
        ship(&master, &slave, 32 * 1024).await;
        assert_eq!(slave.max_offset("Old", 0), 100);
        // The slave is away; the master goes on and retention deletes its first segments.
        for seq in 100..1500u64 {
            master
                .append(&[message("Old", 0, body_for(seq), "")])
                .await
                .unwrap();
        }
        master.flush().await.unwrap();
        assert!(!master.retention_once().await.unwrap().is_empty());
        let log_min = master.commitlog_min_offset();
        let (slave_end, _, _) = slave.log_offsets();
        assert!(
            slave_end < log_min,
            "the slave's end is gone from the master"
        );
        let dropped = slave.restart_log_at(log_min).await.unwrap();
        assert_eq!(dropped, slave_end);
        ship(&master, &slave, 32 * 1024).await;
        assert_eq!(slave.min_offset("Old", 0), master.min_offset("Old", 0));
        assert_eq!(slave.max_offset("Old", 0), 1500);
        assert_eq!(
            queue_bodies(&slave, "Old").await,
            queue_bodies(&master, "Old").await
        );
        assert!(
            slave
                .query_by_key("Old", "early5", 4, 0, i64::MAX)
                .await
                .unwrap()
                .is_empty(),
            "keys of the dropped log are forgotten"
        );
        slave.shutdown().await.unwrap();
        let slave = Engine::open(config(&slave_dir, FlushMode::Async))
            .await
            .unwrap();
        assert_eq!(slave.max_offset("Old", 0), 1500, "after a restart too");
        assert_eq!(slave.min_offset("Old", 0), master.min_offset("Old", 0));
        slave.shutdown().await.unwrap();
        master.shutdown().await.unwrap();
    });
}
