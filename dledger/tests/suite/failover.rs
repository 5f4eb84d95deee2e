use std::time::{Duration, Instant};

use apogee_dledger::{ProposeError, Role};

use crate::harness::{data_of, payloads, Group, WAIT};

#[test]
fn stopped_leader_is_replaced_and_catches_up_from_its_checkpoint_after_restart() {
    let mut g = Group::start(3, |_| {});
    let old = g.wait_leader();
    assert!(g
        .node(old)
        .propose(payloads("a", 100, 8), 16)
        .iter()
        .all(|r| r.is_ok()));
    g.wait_applied(100);
    let stopped_at = Instant::now();
    let sm = g.stop(old);
    let new = g.wait_leader();
    let election = stopped_at.elapsed();
    println!("new leader n{new} elected {election:?} after the leader stopped");
    assert_ne!(new, old);
    assert!(
        election < Duration::from_secs(5),
        "election took {election:?}"
    );
    assert!(g
        .node(new)
        .propose(payloads("b", 100, 8), 16)
        .iter()
        .all(|r| r.is_ok()));
    // The restarted node's state machine holds the first 100 entries: its checkpoint is their last index.
    let checkpoint = sm.lock().unwrap().last().map(|c| c.index).unwrap();
    g.restart(old, sm);
    g.wait_applied(200);
    let replayed = data_of(g.node(old));
    assert_eq!(
        replayed,
        data_of(g.node(new)),
        "the restarted node caught up to the same log"
    );
    assert!(
        replayed.windows(2).all(|w| w[0].0 < w[1].0),
        "nothing delivered twice"
    );
    assert!(replayed[100].0 > checkpoint);
}

#[test]
fn deposed_leader_uncommitted_entries_are_truncated_and_applied_nowhere() {
    let g = Group::start(3, |_| {});
    let old = g.wait_leader();
    assert!(g
        .node(old)
        .propose(payloads("before", 10, 8), 4)
        .iter()
        .all(|r| r.is_ok()));
    g.wait_applied(10);
    g.node(old).isolate(true);
    // Appended to the isolated leader's log only: no majority, so they cannot commit.
    let appended_before = g.node(old).status().unwrap().last_index;
    let lost = g.node(old).propose_async(payloads("lost", 5, 8), 5);
    let deadline = Instant::now() + WAIT;
    while g.node(old).status().unwrap().last_index < appended_before + 5 {
        assert!(
            Instant::now() < deadline,
            "the isolated leader never appended the proposals"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // The other two elect a leader among themselves and commit new entries at the same indexes.
    let deadline = Instant::now() + WAIT;
    let new = loop {
        let found = (0..3)
            .filter(|i| *i != old)
            .find(|i| g.node(*i).status().is_some_and(|s| s.role == Role::Leader));
        if let Some(n) = found {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader while the old one is isolated"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(g
        .node(new)
        .propose(payloads("after", 10, 8), 4)
        .iter()
        .all(|r| r.is_ok()));
    let outcomes = lost
        .recv_timeout(WAIT)
        .expect("the isolated leader's proposals resolve");
    assert!(
        outcomes.iter().all(|r| matches!(
            r,
            Err(ProposeError::NotLeader { .. }) | Err(ProposeError::Superseded)
        )),
        "{outcomes:?}"
    );
    g.node(old).isolate(false);
    g.wait_applied(20);
    let reference = data_of(g.node(new));
    for i in 0..3 {
        let d = data_of(g.node(i));
        assert_eq!(d, reference, "node {i} applied the new leader's log");
        assert!(
            !d.iter().any(|(_, x)| x.starts_with(b"lost")),
            "node {i} applied a deposed leader's entry"
        );
    }
    let st = g.node(old).status().unwrap();
    let ref_st = g.node(new).status().unwrap();
    assert_eq!(
        st.last_index, ref_st.last_index,
        "the old leader's conflicting suffix was replaced"
    );
}

#[test]
fn a_follower_down_while_many_entries_commit_catches_up_from_the_leaders_wal() {
    // 4 KiB segments of 200-byte entries: the 800 entries committed while the follower is down leave the
    // leader's memory (RETAIN_ENTRIES = 256 behind the live peers) but not its WAL, which waits for the
    // follower, so its catch-up reads them back from disk.
    let mut g = Group::start(3, |c| c.wal_segment_bytes = 4096);
    let leader = g.wait_leader();
    assert!(g
        .node(leader)
        .propose(payloads("a", 20, 8), 8)
        .iter()
        .all(|r| r.is_ok()));
    g.wait_applied(20);
    let down = (leader + 1) % 3;
    let sm = g.stop(down);
    // The leader counts a peer as down once a check-quorum round (an election timeout, <= 1 s here) passed
    // without hearing from it; until then its memory waits for it too.
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(g
        .node(leader)
        .propose(payloads("b", 800, 200), 32)
        .iter()
        .all(|r| r.is_ok()));
    let leader_files = g.node(leader).segment_files();
    assert!(
        leader_files > 40,
        "the leader's WAL kept the entries the follower lacks ({leader_files} segments)"
    );
    g.restart(down, sm);
    g.wait_applied(820);
    assert_eq!(
        data_of(g.node(down)),
        data_of(g.node(leader)),
        "the follower caught up to the same log"
    );
    // Once every peer matched, retention frees what the follower needed.
    let deadline = Instant::now() + WAIT;
    while g.node(leader).segment_files() >= leader_files {
        assert!(
            Instant::now() < deadline,
            "segments not deleted after the follower caught up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_peer_down_across_a_leader_change_catches_up_from_the_new_leaders_wal() {
    // A follower cannot know who lags, so it keeps its applied log (up to wal_lagging_retain_bytes): when the
    // old leader is cut off and the remaining follower leads, the returning peer still finds its entries.
    let mut g = Group::start(3, |c| c.wal_segment_bytes = 4096);
    let old = g.wait_leader();
    assert!(g
        .node(old)
        .propose(payloads("a", 20, 8), 8)
        .iter()
        .all(|r| r.is_ok()));
    g.wait_applied(20);
    let (down, other) = ((old + 1) % 3, (old + 2) % 3);
    let sm = g.stop(down);
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(g
        .node(old)
        .propose(payloads("b", 800, 200), 32)
        .iter()
        .all(|r| r.is_ok()));
    g.wait_applied(820);
    g.node(old).isolate(true);
    g.restart(down, sm);
    let deadline = Instant::now() + WAIT;
    while g
        .node(other)
        .status()
        .is_none_or(|s| s.role != Role::Leader)
    {
        assert!(Instant::now() < deadline, "n{other} did not take over");
        std::thread::sleep(Duration::from_millis(10));
    }
    let deadline = Instant::now() + WAIT;
    while g.node(down).applied_len() < 820 {
        assert!(
            Instant::now() < deadline,
            "the returning peer did not catch up: {}",
            g.node(down).applied_len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    g.node(old).isolate(false);
    g.wait_applied(820);
    assert_eq!(data_of(g.node(down)), data_of(g.node(other)));
    assert_eq!(data_of(g.node(old)), data_of(g.node(other)));
}
