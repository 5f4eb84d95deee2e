//! Retention deletes whole sealed segments once they expire (at the delete hour), never the one being
//! written; queue minimums rise with them, and a read below the new minimum says so.

use crate::common::*;
use apogee_engine::{Engine, FlushMode, ReadStatus};

#[test]
fn retention_deletes_expired_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let mut c = config(&path, FlushMode::Sync);
        c.file_reserved_time_hours = 0; // everything sealed is expired
        c.delete_when_hour = ((apogee_engine::store::now_ms() / 3_600_000) % 24) as u32; // it is the delete hour
        let engine = Engine::open(c).await.unwrap();
        for seq in 0..1500u64 {
            engine
                .append(&[message("Old", 0, body_for(seq), "")])
                .await
                .unwrap();
        }
        let segments_before = std::fs::read_dir(path.join("commitlog")).unwrap().count();
        assert!(
            segments_before >= 3,
            "the test needs several segments, got {segments_before}"
        );
        let deleted = engine.retention_once().await.unwrap();
        assert!(!deleted.is_empty(), "expired sealed segments are deleted");
        let (written, _, _) = engine.log_offsets();
        let active = written - written % (1024 * 1024);
        assert!(
            !deleted.contains(&active),
            "the active segment is never deleted"
        );
        for base in &deleted {
            assert!(!path.join("commitlog").join(format!("{base:020}")).exists());
        }
        let min = engine.min_offset("Old", 0);
        assert!(min > 0, "the queue minimum rose past the deleted records");
        assert_eq!(engine.max_offset("Old", 0), 1500);
        let below = engine
            .read_queue("Old", 0, 0, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(below.status, ReadStatus::OffsetTooSmall);
        assert_eq!(below.next_offset, min);
        let at_min = engine
            .read_queue("Old", 0, min, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(
            at_min.status,
            ReadStatus::Found,
            "messages from the minimum on are still readable"
        );
        engine.shutdown().await.unwrap();
    });
}

/// After retention and a restart, every queue still starts past the deleted records (recovery derives the
/// minimum from the commit log's, as RocketMQ's `correctMinOffset`): reads below it say "offset moved", the
/// time search, the key index and reads by offset never hand out or fail on deleted records.
#[test]
fn queue_minimums_stay_past_deleted_records_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let mut c = config(&path, FlushMode::Sync);
        c.file_reserved_time_hours = 0;
        c.delete_when_hour = ((apogee_engine::store::now_ms() / 3_600_000) % 24) as u32;
        let engine = Engine::open(c.clone()).await.unwrap();
        for seq in 0..1500u64 {
            let keys = format!("KEYS\u{1}k{seq}\u{2}");
            engine
                .append(&[message("Old", 0, body_for(seq), &keys)])
                .await
                .unwrap();
        }
        assert!(!engine.retention_once().await.unwrap().is_empty());
        let min = engine.min_offset("Old", 0);
        assert!(min > 0);
        engine.shutdown().await.unwrap();

        // Neither the next start nor a checkpoint lays an older minimum back.
        c.file_reserved_time_hours = 72;
        let engine = Engine::open(c).await.unwrap();
        assert_eq!(
            engine.min_offset("Old", 0),
            min,
            "the minimum survives a restart"
        );
        assert_eq!(engine.max_offset("Old", 0), 1500);
        let below = engine
            .read_queue("Old", 0, 0, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(below.status, ReadStatus::OffsetTooSmall);
        assert_eq!(below.next_offset, min);
        let at_min = engine
            .read_queue("Old", 0, min, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(at_min.status, ReadStatus::Found);
        let first = apogee_net::record::decode_all(&at_min.body).unwrap();
        assert_eq!(first[0].queue_offset as u64, min);
        assert_eq!(
            engine.search_offset_by_time("Old", 0, 0).await.unwrap(),
            min,
            "a search by time starts at the first stored message"
        );
        assert!(
            engine.read_record(0).await.unwrap().is_none(),
            "a deleted offset is not found, not an error"
        );
        let gone = engine
            .query_by_key("Old", "k0", 10, 0, i64::MAX)
            .await
            .unwrap();
        assert!(gone.is_empty(), "the key index hands out no deleted record");
        let kept = engine
            .query_by_key("Old", "k1499", 10, 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(kept.len(), 1);
        engine.shutdown().await.unwrap();
    });
}
