use std::time::Instant;

use apogee_dledger::ProposeError;

use crate::harness::{data_of, payloads, Group};

#[test]
fn thousand_proposals_apply_in_the_same_order_on_every_node() {
    let g = Group::start(3, |_| {});
    let leader = g.wait_leader();
    let data = payloads("p", 1000, 16);
    let started = Instant::now();
    let results = g.node(leader).propose(data.clone(), 64);
    let took = started.elapsed();
    let indexes: Vec<u64> = results.into_iter().map(|r| r.expect("committed")).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "indexes follow the proposal order"
    );
    g.wait_applied(1000);
    println!("1000 proposals committed in {took:?}");
    let first = data_of(g.node(0));
    assert_eq!(
        first.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
        data,
        "applied in proposal order"
    );
    assert_eq!(
        first.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        indexes,
        "at the indexes the proposals resolved to"
    );
    for i in 1..3 {
        assert_eq!(
            data_of(g.node(i)),
            first,
            "node {i} applied the same entries in the same order"
        );
    }
    // A follower refuses proposals and names the leader; an oversized entry is refused before Raft sees it.
    let follower = (leader + 1) % 3;
    let refused = g.node(follower).propose(payloads("f", 1, 0), 1);
    assert_eq!(
        refused,
        vec![Err(ProposeError::NotLeader {
            leader_id: Some(leader as u64 + 1)
        })]
    );
    let max = apogee_dledger::NodeConfig::new(1, Vec::new(), "x".into()).max_entry_bytes;
    let big = g
        .node(leader)
        .propose(vec![bytes::Bytes::from(vec![0u8; max + 1])], 1);
    assert_eq!(
        big,
        vec![Err(ProposeError::TooLarge {
            bytes: max + 1,
            max
        })]
    );
}

#[test]
fn wal_retention_deletes_old_segments() {
    // 4 KiB segments hold three 1 KiB entries: 600 entries make ~200 segments without retention.
    // Followers keep their applied log up to wal_lagging_retain_bytes (for a peer that may lag behind them
    // once they lead): 64 KiB here.
    let g = Group::start(3, |c| {
        c.wal_segment_bytes = 4096;
        c.wal_lagging_retain_bytes = 64 * 1024;
    });
    let leader = g.wait_leader();
    let results = g.node(leader).propose(payloads("r", 600, 1000), 32);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    g.wait_applied(600);
    let deadline = Instant::now() + crate::harness::WAIT;
    loop {
        let files: Vec<usize> = (0..3).map(|i| g.node(i).segment_files()).collect();
        // RETAIN_ENTRIES (256) entries behind the applied index: ~86 segments plus the active one.
        if files.iter().all(|f| *f <= 100) {
            println!("segment files after retention: {files:?}");
            let first = apogee_dledger::wal::list_segments(&g.wal_dir(0)).unwrap()[0].0;
            assert!(first > 300, "the oldest retained segment starts at {first}");
            break;
        }
        assert!(Instant::now() < deadline, "segments not deleted: {files:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
