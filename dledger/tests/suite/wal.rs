use std::path::Path;

use apogee_dledger::wal::record::HEADER_BYTES;
use apogee_dledger::wal::{list_segments, PersistBatch, Wal};
use apogee_dledger::{DledgerError, Node, Peer};
use bytes::Bytes;
use raft::eraftpb::Entry;

const MAX_RECORD: u64 = 1 << 20;

fn entries(from: u64, to: u64, term: u64, size: usize) -> Vec<Entry> {
    (from..=to)
        .map(|i| Entry {
            index: i,
            term,
            data: Bytes::from(vec![(i % 251) as u8; size]),
            ..Entry::default()
        })
        .collect()
}

fn write(dir: &Path, segment_bytes: u64, batch: Vec<Entry>) {
    let (mut wal, _) = Wal::open(dir, segment_bytes, true, MAX_RECORD, 0).unwrap();
    wal.persist(&PersistBatch {
        entries: batch,
        ..PersistBatch::default()
    })
    .unwrap();
}

/// Offset of entry `k` (1-based) in the first segment: the Meta record (8 data bytes) then equal records.
fn entry_offset(k: u64, size: usize) -> u64 {
    (HEADER_BYTES + 8) as u64 + (k - 1) * (HEADER_BYTES + size) as u64
}

#[test]
fn torn_tail_is_cut_on_recovery() {
    let dir = tempfile::TempDir::new().unwrap();
    write(dir.path(), 1 << 20, entries(1, 10, 1, 100));
    let (_, path) = list_segments(dir.path()).unwrap().pop().unwrap();
    let good_len = std::fs::metadata(&path).unwrap().len();
    // Half of an 11th record: its header promises more bytes than the file holds.
    let mut torn = Vec::new();
    apogee_dledger::wal::record::encode(
        &mut torn,
        11,
        1,
        apogee_dledger::wal::record::RecordType::Normal,
        &[7; 100],
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&torn[..60]);
    std::fs::write(&path, &bytes).unwrap();
    let (wal, rec) = Wal::open(dir.path(), 1 << 20, true, MAX_RECORD, 0).unwrap();
    assert_eq!(rec.entries.len(), 10);
    assert_eq!(wal.last_index(), 10);
    assert_eq!(rec.cut.len(), 1, "{:?}", rec.cut);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good_len,
        "the torn bytes were cut from the file"
    );
}

#[test]
fn bad_crc_mid_log_is_reported_with_file_and_offset() {
    let dir = tempfile::TempDir::new().unwrap();
    write(dir.path(), 1 << 20, entries(1, 10, 1, 100));
    let (_, path) = list_segments(dir.path()).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = entry_offset(4, 100);
    bytes[at as usize + HEADER_BYTES + 50] ^= 0x01; // a bit of entry 4's payload
    std::fs::write(&path, &bytes).unwrap();
    match Wal::open(dir.path(), 1 << 20, true, MAX_RECORD, 0) {
        Err(DledgerError::Corrupt {
            path: p,
            offset,
            reason,
        }) => {
            assert_eq!((p.as_path(), offset), (path.as_path(), at), "{reason}");
            assert!(reason.contains("crc"), "{reason}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a corrupt WAL opened"),
    }
    // Node::start refuses it too, with the same error.
    let wal_dir = dir.path().to_path_buf();
    let r = glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let peer = Peer {
                id: 1,
                name: "n0".into(),
                addr: ([127, 0, 0, 1], crate::harness::free_port()).into(),
            };
            let cfg = apogee_dledger::NodeConfig::new(1, vec![peer], wal_dir);
            Node::start(cfg, 0).await.err().map(|e| e.to_string())
        })
        .unwrap()
        .join()
        .unwrap();
    let msg = r.expect("start fails");
    assert!(
        msg.contains(&format!("at offset {at}")) && msg.contains(&path.display().to_string()),
        "{msg}"
    );
}

#[test]
fn conflicting_tail_across_segments_is_truncated() {
    let dir = tempfile::TempDir::new().unwrap();
    // 4 KiB segments of 500-byte entries: 7 per segment, 40 entries over 6 segments.
    write(dir.path(), 4096, entries(1, 40, 1, 500));
    let before = list_segments(dir.path()).unwrap();
    assert!(before.len() >= 5, "{before:?}");
    {
        let (mut wal, _) = Wal::open(dir.path(), 4096, true, MAX_RECORD, 0).unwrap();
        // A new leader's entries from index 10 on replace 10..=40, which span the later segments.
        wal.persist(&PersistBatch {
            entries: entries(10, 12, 2, 500),
            commit: Some(9),
            ..PersistBatch::default()
        })
        .unwrap();
        assert_eq!(wal.last_index(), 12);
    }
    let after = list_segments(dir.path()).unwrap();
    assert!(
        after.iter().all(|(first, _)| *first <= 12),
        "segments past the cut are gone: {after:?}"
    );
    let (wal, rec) = Wal::open(dir.path(), 4096, true, MAX_RECORD, 0).unwrap();
    let got: Vec<(u64, u64)> = rec.entries.iter().map(|e| (e.index, e.term)).collect();
    let want: Vec<(u64, u64)> = (1..=12).map(|i| (i, if i < 10 { 1 } else { 2 })).collect();
    assert_eq!(got, want);
    assert_eq!((wal.last_index(), rec.commit), (12, 9));
    assert_eq!(
        rec.entries[10].data[0], 11,
        "the new entry's payload, not the old one's"
    );
}

#[test]
fn a_restarted_single_node_recovers_its_log_and_hard_state() {
    let dir = tempfile::TempDir::new().unwrap();
    let wal_dir = dir.path().join("n0");
    let port = crate::harness::free_port();
    let run = move |wal_dir: std::path::PathBuf, propose: usize, applied: u64| {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let peer = Peer {
                    id: 1,
                    name: "n0".into(),
                    addr: ([127, 0, 0, 1], port).into(),
                };
                let mut cfg = apogee_dledger::NodeConfig::new(1, vec![peer], wal_dir);
                cfg.tick_ms = 10;
                cfg.sync_wal = true;
                let node = Node::start(cfg, applied).await.unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while node.status().role != apogee_dledger::Role::Leader {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "single node never led"
                    );
                    glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                }
                for i in 0..propose {
                    node.propose(Bytes::from(format!("e{i}"))).await.unwrap();
                }
                let mut got = Vec::new();
                while got.len() < propose + 5 {
                    let next = futures::future::select(
                        Box::pin(node.next_committed()),
                        Box::pin(glommio::timer::sleep(std::time::Duration::from_millis(300))),
                    );
                    match next.await {
                        futures::future::Either::Left((Some(b), _)) => got.extend(b),
                        _ => break,
                    }
                }
                let st = node.status();
                node.shutdown().await;
                assert!(node.next_committed().await.is_none());
                assert_eq!(
                    node.propose(Bytes::from_static(b"late")).await,
                    Err(apogee_dledger::ProposeError::Stopped)
                );
                (got.into_iter().map(|c| c.data).collect::<Vec<_>>(), st.term)
            })
            .unwrap()
            .join()
            .unwrap()
    };
    let (first, term1) = run(wal_dir.clone(), 20, 0);
    assert_eq!(first.len(), 20);
    // Restart with a checkpoint after the 10th entry (index 11: index 1 is the first leader's empty entry).
    let (second, term2) = run(wal_dir.clone(), 0, 11);
    assert_eq!(
        second,
        first[10..].to_vec(),
        "entries after the checkpoint are re-delivered, in order"
    );
    assert!(
        term2 > term1,
        "the term survived the restart and a new election raised it"
    );
}

#[test]
fn entries_kept_on_disk_only_are_read_back_by_span() {
    let dir = tempfile::TempDir::new().unwrap();
    write(dir.path(), 4096, entries(1, 30, 1, 500));
    write(dir.path(), 4096, entries(31, 40, 2, 500));
    let (wal, rec) = Wal::open(dir.path(), 4096, true, MAX_RECORD, 25).unwrap();
    assert_eq!(
        rec.entries.first().map(|e| e.index),
        Some(25),
        "only entries from keep_from are loaded"
    );
    assert_eq!(rec.cold_terms, vec![(1, 1)]);
    assert_eq!(wal.last_index(), 40);
    // A span stays within one segment: reading on from its end crosses into the next.
    let mut next = 3;
    let mut got = Vec::new();
    while next <= 40 {
        let span = wal.locate(next, 2000).expect("retained");
        let read = apogee_dledger::wal::read_span(&span, MAX_RECORD).unwrap();
        assert!(
            !read.is_empty() && read.len() <= 4,
            "{} entries for ~2000 bytes",
            read.len()
        );
        next += read.len() as u64;
        got.extend(read);
    }
    assert_eq!(
        got.iter().map(|e| e.index).collect::<Vec<_>>(),
        (3..=40).collect::<Vec<_>>()
    );
    assert!(
        got.iter()
            .all(|e| e.term == if e.index <= 30 { 1 } else { 2 }
                && e.data[0] == (e.index % 251) as u8)
    );
    assert!(wal.locate(41, 2000).is_none());
}
