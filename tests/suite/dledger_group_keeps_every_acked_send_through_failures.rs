//! A Dledger group (three broker processes, one shard each, two name servers, SYNC_FLUSH: the WAL is
//! fdatasynced before an entry counts) keeps every send it answered SEND_OK through the failures of
//! issue 9, one after the other:
//!
//! 1. the leader is SIGKILLed under load: a new leader takes sends within 10 s (the time is printed), and
//!    serves every acked message in queue order;
//! 2. a follower is killed: sends go on with two of three;
//! 3. the other follower too: sends stop with an answer naming Dledger; what was committed is still
//!    pulled; one member back: sends resume;
//! 4. all three SIGKILLed and restarted: nothing acked is lost;
//! 5. the leader is SIGSTOPped with sends queued in its socket; after a new leader is elected it is
//!    continued: it steps down, those sends are not acked and never served.
//!
//! After each step every acked message is served at the offset its SEND_OK named, none twice, offsets
//! consecutive; at the end the three commit logs are byte-identical.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apogee_net::codes::ResponseCode;
use common::dledger::{body, body_text, check, send_one, senders, Group, Ledger, Outcome, TOPIC};
use common::RawConn;

/// How long the test waits for a new leader's first SEND_OK after the old one is killed. Issue 9 asks for
/// 10 s and the time is printed each run (1-2 s when the machine is not saturated; `perf/scripts/
/// dledger_failover.sh` reports min/median/max over 20 rounds); the wait itself is longer because the suite
/// shares 2 cores with other tests' brokers. A time over 10 s is printed as such; a group that does not
/// elect at all fails here, with each member's view and the tail of its log (which is how a follower's
/// engine panic after a SIGSTOP, the flush race fixed in `flush_commitlog`, was found).
const ELECTION_MAX: Duration = Duration::from_secs(30);
/// What issue 9 asks of an election after a SIGKILL.
const ELECTION_ASKED: Duration = Duration::from_secs(10);

/// Sends `n` messages one by one to the leader; returns how many were acked.
fn send_n(g: &Group, ledger: &Ledger, n: usize) -> usize {
    let mut acked = 0;
    let mut conn = None;
    let mut leader = g.wait_leader(Duration::from_secs(20));
    for _ in 0..n {
        match send_one(&mut conn, &g.members[leader].addr(), leader, ledger) {
            Outcome::Acked { .. } => acked += 1,
            other => {
                println!("send refused: {other:?}");
                conn = None;
                leader = g.wait_leader(Duration::from_secs(20));
            }
        }
    }
    acked
}

#[test]
fn dledger_group_keeps_every_acked_send_through_failures() {
    let mut g = Group::start(&["flushDiskType=SYNC_FLUSH"]);
    let ledger = Arc::new(Ledger::default());
    let mut seen: HashMap<String, i64> = HashMap::new();
    let addrs: Vec<String> = g.members.iter().map(|m| m.addr()).collect();
    let first = g.wait_leader(Duration::from_secs(30));
    println!("leader elected: {}", g.members[first].name);
    assert_eq!(
        send_n(&g, &ledger, 50),
        50,
        "a healthy group acks every send"
    );

    // 1. SIGKILL of the leader under load.
    let stop = Arc::new(AtomicBool::new(false));
    let load = senders(addrs.clone(), ledger.clone(), stop.clone(), 3);
    std::thread::sleep(Duration::from_secs(2));
    let old = g.wait_leader(Duration::from_secs(5));
    let killed_at = Instant::now();
    g.kill(old);
    let deadline = killed_at + ELECTION_MAX;
    let elected = loop {
        let first_ack = ledger
            .acked()
            .values()
            .filter(|(_, by, at)| *by != old && *at > killed_at)
            .map(|(_, _, at)| *at)
            .min();
        if let Some(at) = first_ack {
            break at - killed_at;
        }
        assert!(
            Instant::now() < deadline,
            "no send acked by a new leader within {ELECTION_MAX:?} of the SIGKILL: {}",
            g.views()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "ELECTION after SIGKILL of the leader: {} ms to the first SEND_OK from the new leader{}",
        elected.as_millis(),
        if elected > ELECTION_ASKED {
            " (over issue 9's 10 s)"
        } else {
            ""
        }
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().expect("sender thread");
    }
    let leader = g.wait_leader(Duration::from_secs(10));
    assert_ne!(leader, old);
    let end = check(&g.members[leader].addr(), 0, &ledger, &mut seen);
    println!(
        "step 1: {} acked, {end} served by the new leader",
        ledger.acked().len()
    );
    g.spawn(old);

    // 2. A follower down: two of three go on.
    let leader = g.wait_leader(Duration::from_secs(20));
    let f1 = (0..3).find(|&i| i != leader).expect("a follower");
    g.kill(f1);
    assert_eq!(send_n(&g, &ledger, 100), 100, "two of three ack every send");
    check(&g.members[leader].addr(), 0, &ledger, &mut seen);

    // 3. Both followers down: no majority, no sends; committed data still pulled.
    let f2 = (0..3)
        .find(|&i| i != leader && i != f1)
        .expect("the other follower");
    g.kill(f2);
    let mut conn = None;
    let refused = loop {
        match send_one(&mut conn, &g.members[leader].addr(), leader, &ledger) {
            Outcome::Refused { code, remark } => break (code, remark),
            Outcome::Unknown => conn = None,
            Outcome::Acked { .. } => {} // still the leader for an instant: the entry had a majority
        }
    };
    println!("step 3: a lone member answers {refused:?}");
    assert_eq!(refused.0, ResponseCode::ServiceNotAvailable as i32);
    assert!(refused.1.contains("Dledger group"), "{}", refused.1);
    let served = check(&g.members[leader].addr(), 0, &ledger, &mut seen);
    assert!(
        served > 150,
        "the lone member still serves committed data ({served})"
    );
    g.spawn(f1);
    let back = Instant::now();
    assert_eq!(
        send_n(&g, &ledger, 50),
        50,
        "sends resume once a majority is back"
    );
    println!(
        "step 3: sends resumed {} ms after a member came back",
        back.elapsed().as_millis()
    );
    g.spawn(f2);

    // 4. SIGKILL of all three, then a restart: nothing acked is lost.
    let leader = g.wait_leader(Duration::from_secs(20));
    check(&g.members[leader].addr(), 0, &ledger, &mut seen);
    for i in 0..3 {
        g.kill(i);
    }
    for i in 0..3 {
        g.spawn(i);
    }
    let leader = g.wait_leader(Duration::from_secs(30));
    check(&g.members[leader].addr(), 0, &ledger, &mut seen);
    assert_eq!(
        send_n(&g, &ledger, 50),
        50,
        "the restarted group takes sends"
    );

    // 5. The leader SIGSTOPped with sends waiting in its socket; continued after a new leader exists.
    let old = g.wait_leader(Duration::from_secs(20));
    let mut stale = RawConn::connect(&g.members[old].addr()).expect("connect to the leader");
    stale
        .stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    g.sigstop(old);
    let queued: Vec<u64> = (0..20)
        .map(|_| ledger.next.fetch_add(1, Ordering::SeqCst))
        .collect();
    for seq in &queued {
        stale
            .send(&common::raw_send_v2(TOPIC, &body(*seq)))
            .expect("queue a send in the stopped leader's socket");
    }
    let new = g.wait_leader(Duration::from_secs(20));
    assert_ne!(new, old);
    assert_eq!(send_n(&g, &ledger, 20), 20, "the new leader takes sends");
    g.sigcont(old);
    let mut answers = Vec::new();
    for seq in &queued {
        let r = stale.recv();
        let code = r.as_ref().map(|r| r.code);
        assert_ne!(
            code,
            Some(ResponseCode::Success as i32),
            "m{seq}, queued at the deposed leader, was acked: {:?}",
            r.map(|r| r.remark)
        );
        answers.push(code);
    }
    println!(
        "step 5: the {} sends queued at the stopped leader were answered {answers:?}",
        queued.len()
    );
    let leader = g.wait_leader(Duration::from_secs(20));
    assert_ne!(leader, old, "the old leader stepped down");
    assert_eq!(send_n(&g, &ledger, 20), 20);
    let end = g.wait_converged(Duration::from_secs(30));
    for i in 0..3 {
        check(&g.members[i].addr(), 0, &ledger, &mut seen);
    }
    for seq in &queued {
        assert!(
            !seen.contains_key(&body_text(*seq)),
            "m{seq}, sent to the deposed leader, is served"
        );
    }
    println!(
        "total: {} acked, commit logs end at {end}",
        ledger.acked().len()
    );
    g.stop_all();
    let compared = g.assert_logs_identical();
    assert!(compared >= 1);
    println!("the three commit logs are byte-identical ({compared} segments)");
}
