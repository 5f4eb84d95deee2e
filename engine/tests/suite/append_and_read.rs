//! Appends are read back byte for byte, in both flush modes, across segment rolls and restarts.

use crate::common::*;
use apogee_engine::{Engine, FlushMode, ReadStatus};
use apogee_net::record;

#[test]
fn sync_appends_read_back_byte_identical_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let mut stored = Vec::new();
        for seq in 0..800u64 {
            let m = message("Orders", (seq % 3) as i32, body_for(seq), "TAGS\u{1}a\u{2}");
            let a = engine.append(&[m]).await.unwrap();
            stored.push((seq, a[0].clone()));
        }
        // 800 messages of up to ~3 KiB in 1 MiB segments: at least one roll with a blank.
        assert!(engine.log_offsets().0 > 1024 * 1024);
        for q in 0..3 {
            let mut offset = 0;
            let mut seen = 0;
            loop {
                let r = engine
                    .read_queue("Orders", q, offset, 32, 1 << 20, &|_| true)
                    .await
                    .unwrap();
                if r.status != ReadStatus::Found {
                    assert_eq!(r.status, ReadStatus::OffsetOverflowOne);
                    break;
                }
                for rec in record::decode_all(&r.body).unwrap() {
                    let seq = stored
                        .iter()
                        .find(|(_, a)| a.physical_offset == rec.physical_offset as u64)
                        .unwrap()
                        .0;
                    assert_eq!(&rec.body[..], &body_for(seq)[..]);
                    assert_eq!(rec.queue_offset as u64, seen, "queue offsets are dense");
                    seen += 1;
                }
                offset = r.next_offset;
            }
            assert_eq!(engine.max_offset("Orders", q), offset);
        }
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn group_commit_shares_one_sync_among_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let before = engine.commitlog_sync_count();
        let tasks: Vec<_> = (0..256u64)
            .map(|i| {
                let e = engine.clone();
                glommio::spawn_local(async move {
                    e.append(&[message("G", 0, body_for(i), "")]).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let syncs = engine.commitlog_sync_count() - before;
        assert!(
            syncs <= 8,
            "256 concurrent sync appends took {syncs} fdatasyncs; group commit should share them"
        );
        assert_eq!(engine.max_offset("G", 0), 256);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn restart_keeps_messages_offsets_and_queue_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        for seq in 0..100u64 {
            engine
                .append(&[message("R", 1, body_for(seq), "")])
                .await
                .unwrap();
        }
        engine.commit_offset("R", "g1", 1, 42).unwrap();
        engine.shutdown().await.unwrap();
        drop(engine);

        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        assert_eq!(engine.max_offset("R", 1), 100);
        assert_eq!(engine.query_offset("R", "g1", 1), Some(42));
        let a = engine
            .append(&[message("R", 1, b"after".to_vec(), "")])
            .await
            .unwrap();
        assert_eq!(
            a[0].queue_offset, 100,
            "queue offsets continue densely after a restart"
        );
        let r = engine
            .read_queue("R", 1, 99, 2, 1 << 20, &|_| true)
            .await
            .unwrap();
        let recs = record::decode_all(&r.body).unwrap();
        assert_eq!(&recs[0].body[..], &body_for(99)[..]);
        assert_eq!(&recs[1].body[..], b"after");
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn tag_filter_skips_by_hash_and_reports_no_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        for i in 0..10 {
            let tag = if i % 2 == 0 {
                "TAGS\u{1}even\u{2}"
            } else {
                "TAGS\u{1}odd\u{2}"
            };
            engine
                .append(&[message("F", 0, vec![i as u8; 10], tag)])
                .await
                .unwrap();
        }
        let even = apogee_net::properties::tag_hash("even");
        let r = engine
            .read_queue("F", 0, 0, 32, 1 << 20, &|h| h == even)
            .await
            .unwrap();
        assert_eq!(r.messages, 5);
        assert_eq!(r.next_offset, 10);
        let none = engine
            .read_queue("F", 0, 0, 32, 1 << 20, &|_| false)
            .await
            .unwrap();
        assert_eq!(none.status, ReadStatus::NoMatchedMessage);
        assert_eq!(none.next_offset, 10);
        let past = engine
            .read_queue("F", 0, 11, 32, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(past.status, ReadStatus::OffsetOverflowBadly);
        assert_eq!(past.next_offset, 10, "past the end: go on from the end");
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn a_record_filter_leaves_refused_records_out_of_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        for i in 0..10u8 {
            let props = format!("a\u{1}{i}\u{2}");
            engine
                .append(&[message("P", 0, vec![i; 10], &props)])
                .await
                .unwrap();
        }
        // Keep records whose property `a` is a multiple of 3, looking at the stored bytes only.
        let keep = |bytes: &[u8]| {
            apogee_net::record::properties_of(bytes)
                .and_then(|p| apogee_net::filter::property(p, "a"))
                .and_then(|a| a.parse::<u8>().ok())
                .is_some_and(|a| a % 3 == 0)
        };
        let r = engine
            .read_queue_filtered("P", 0, 0, 32, 1 << 20, &|_| true, Some(&keep))
            .await
            .unwrap();
        assert_eq!(r.messages, 4, "0, 3, 6, 9");
        assert_eq!(r.next_offset, 10);
        let records = apogee_net::record::decode_all(&r.body).unwrap();
        let bodies: Vec<u8> = records.iter().map(|r| r.body[0]).collect();
        assert_eq!(
            bodies,
            [0, 3, 6, 9],
            "only the kept records, whole and in order"
        );
        let two = engine
            .read_queue_filtered("P", 0, 0, 2, 1 << 20, &|_| true, Some(&keep))
            .await
            .unwrap();
        assert_eq!(
            (two.messages, two.next_offset),
            (2, 4),
            "stops after 3, goes on at 4"
        );
        let tags_first = engine
            .read_queue_filtered("P", 0, 0, 32, 1 << 20, &|_| false, Some(&keep))
            .await
            .unwrap();
        assert_eq!(
            tags_first.status,
            ReadStatus::NoMatchedMessage,
            "the tag filter comes first"
        );
        let none = engine
            .read_queue_filtered("P", 0, 0, 32, 1 << 20, &|_| true, Some(&|_| false))
            .await
            .unwrap();
        assert_eq!(none.status, ReadStatus::NoMatchedMessage);
        assert!(none.body.is_empty());
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn view_by_physical_offset_and_search_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let first = engine
            .append(&[message("V", 0, b"one".to_vec(), "")])
            .await
            .unwrap();
        glommio::timer::sleep(std::time::Duration::from_millis(20)).await;
        let second = engine
            .append(&[message("V", 0, b"two".to_vec(), "")])
            .await
            .unwrap();
        let rec = engine
            .read_record(second[0].physical_offset)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&record::decode(&rec).unwrap().body[..], b"two");
        assert!(engine
            .read_record(second[0].physical_offset + 1)
            .await
            .unwrap()
            .is_none());
        let (addr, off) = apogee_net::msgid::decode(&first[0].msg_id).unwrap();
        assert_eq!(
            (addr, off),
            (engine.config().store_host, first[0].physical_offset)
        );
        assert_eq!(
            engine
                .search_offset_by_time("V", 0, second[0].store_timestamp)
                .await
                .unwrap(),
            1
        );
        assert_eq!(engine.search_offset_by_time("V", 0, 0).await.unwrap(), 0);
        assert_eq!(
            engine
                .search_offset_by_time("V", 0, i64::MAX)
                .await
                .unwrap(),
            2
        );
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn limits_are_typed_errors_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let engine = Engine::open(config(&path, FlushMode::Sync)).await.unwrap();
        let big = engine
            .append(&[message("L", 0, vec![0; 64 * 1024 + 1], "")])
            .await
            .unwrap_err();
        assert!(big.to_string().contains("maxMessageSize"), "{big}");
        let bad = engine
            .append(&[message("bad topic", 0, vec![1], "")])
            .await
            .unwrap_err();
        assert!(bad.to_string().contains("bad topic"), "{bad}");
        assert_eq!(engine.log_offsets().0, 0, "nothing was written");
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn writes_are_refused_above_the_disk_ratio_and_nothing_stored_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let mut c = config(&path, FlushMode::Sync);
        let engine = Engine::open(c.clone()).await.unwrap();
        engine
            .append(&[message("D", 0, b"kept".to_vec(), "")])
            .await
            .unwrap();
        engine.shutdown().await.unwrap();
        drop(engine);
        c.disk_refuse_ratio = 0.0; // any used disk is "full"
        let engine = Engine::open(c).await.unwrap();
        let err = engine
            .append(&[message("D", 0, b"refused".to_vec(), "")])
            .await
            .unwrap_err();
        assert!(
            matches!(err, apogee_engine::EngineError::DiskFull { .. }),
            "{err}"
        );
        let r = engine
            .read_queue("D", 0, 0, 8, 1 << 20, &|_| true)
            .await
            .unwrap();
        assert_eq!(r.messages, 1);
        engine.shutdown().await.unwrap();
    });
}

#[test]
fn windowed_disk_reads_answer_the_same_bytes_as_record_by_record_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        // Five queues interleaved in the log, on disk after a restart, then a tail in the write buffer: a
        // pull reads its records through the read window below the buffer and from the buffer above it.
        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        for seq in 0..600u64 {
            let m = message("W", (seq % 5) as i32, body_for(seq), "TAGS\u{1}a\u{2}");
            engine.append(&[m]).await.unwrap();
        }
        engine.shutdown().await.unwrap();
        drop(engine);
        let engine = Engine::open(config(&path, FlushMode::Async)).await.unwrap();
        for seq in 600..700u64 {
            let m = message("W", (seq % 5) as i32, body_for(seq), "TAGS\u{1}a\u{2}");
            engine.append(&[m]).await.unwrap();
        }
        for q in 0..5 {
            for (batch, max_bytes) in [(1, 1 << 20), (32, 1 << 20), (1024, 10_000)] {
                let mut offset = 0;
                loop {
                    let r = engine
                        .read_queue("W", q, offset, batch, max_bytes, &|_| true)
                        .await
                        .unwrap();
                    if r.status != ReadStatus::Found {
                        assert_eq!(r.status, ReadStatus::OffsetOverflowOne);
                        break;
                    }
                    let recs = record::decode_all(&r.body).unwrap();
                    assert_eq!(recs.len(), r.messages);
                    for rec in recs {
                        assert_eq!(rec.queue_id, q);
                        assert_eq!(rec.queue_offset as u64, offset, "queue order, no gaps");
                        let alone = engine
                            .read_record(rec.physical_offset as u64)
                            .await
                            .unwrap()
                            .expect("a record starts there");
                        let bytes = record::decode(&alone).unwrap();
                        assert_eq!(bytes.body, rec.body);
                        offset += 1;
                    }
                    assert_eq!(offset, r.next_offset);
                }
                assert_eq!(
                    offset, 140,
                    "every record of the queue, on disk and in memory"
                );
            }
        }
        engine.shutdown().await.unwrap();
    });
}
