//! Randomized failovers of a Dledger group (three broker processes, two name servers) under a steady
//! load of sends: each round SIGKILLs the leader, a follower or two members, or SIGSTOPs a random member
//! for a while, brings them back, and then checks what the round added: every SEND_OK at the offset it
//! named on the current leader, offsets consecutive, no message served twice at different offsets. The
//! time from a leader's SIGKILL to the new leader's first SEND_OK is measured (min/median/max printed).
//!
//! The seed is printed; `APOGEE_DLEDGER_SEED=<seed>` replays a run, `APOGEE_DLEDGER_ROUNDS` sets the
//! rounds (default 5 here; `perf/scripts/dledger_failover.sh` runs 20). At the end the three commit logs
//! are byte-identical.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dledger::{check, senders, Group, Ledger};

const ROUNDS_DEFAULT: u64 = 5;
/// How long the test waits for a new leader's first SEND_OK after the old one is killed. Issue 9 asks for
/// 10 s and the time is printed each run (1-2 s when the machine is not saturated; `perf/scripts/
/// dledger_failover.sh` reports min/median/max over 20 rounds); the wait itself is longer because the suite
/// shares 2 cores with other tests' brokers. A time over 10 s is printed as such; a group that does not
/// elect at all fails here, with each member's view and the tail of its log (which is how a follower's
/// engine panic after a SIGSTOP, the flush race fixed in `flush_commitlog`, was found).
const ELECTION_MAX: Duration = Duration::from_secs(30);
/// What issue 9 asks of an election after a SIGKILL.
const ELECTION_ASKED: Duration = Duration::from_secs(10);

/// xorshift64*: enough randomness for choosing faults, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    KillLeaderAndFollower,
    StopOne,
}

#[test]
fn dledger_random_failovers_keep_every_acked_send() {
    let seed = env_u64("APOGEE_DLEDGER_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    let rounds = env_u64("APOGEE_DLEDGER_ROUNDS").unwrap_or(ROUNDS_DEFAULT);
    println!("APOGEE_DLEDGER_SEED={seed} APOGEE_DLEDGER_ROUNDS={rounds}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut g = Group::start(&[]);
    let ledger = Arc::new(Ledger::default());
    let addrs: Vec<String> = g.members.iter().map(|m| m.addr()).collect();
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut from = 0i64;
    let mut elections: Vec<u128> = Vec::new();
    g.wait_leader(Duration::from_secs(30));
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let load = senders(addrs.clone(), ledger.clone(), stop.clone(), 3);
        std::thread::sleep(rng.ms(500, 1_500));
        let leader = g.wait_leader(Duration::from_secs(20));
        let follower = (leader + 1 + rng.below(2) as usize) % 3;
        let fault = match rng.below(4) {
            0 => Fault::KillLeader,
            1 => Fault::KillFollower,
            2 => Fault::KillLeaderAndFollower,
            _ => Fault::StopOne,
        };
        let down_for = rng.ms(500, 3_000);
        let names = (
            g.members[leader].name.clone(),
            g.members[follower].name.clone(),
        );
        let at = Instant::now();
        match fault {
            Fault::KillLeader => {
                g.kill(leader);
                let t = wait_new_leader_ack(&g, &ledger, leader, at);
                elections.push(t.as_millis());
                std::thread::sleep(down_for);
                g.spawn(leader);
            }
            Fault::KillFollower => {
                g.kill(follower);
                std::thread::sleep(down_for);
                g.spawn(follower);
            }
            Fault::KillLeaderAndFollower => {
                g.kill(leader);
                g.kill(follower);
                std::thread::sleep(down_for);
                g.spawn(follower);
                let t = wait_new_leader_ack(&g, &ledger, leader, at);
                println!("  (the new leader's first SEND_OK came {} ms after the SIGKILL, with a member restarted meanwhile)", t.as_millis());
                g.spawn(leader);
            }
            Fault::StopOne => {
                let who = rng.below(3) as usize;
                println!("  (SIGSTOP of {})", g.members[who].name);
                g.sigstop(who);
                std::thread::sleep(down_for);
                g.sigcont(who);
            }
        }
        g.wait_leader(Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        for t in load {
            t.join().expect("sender thread");
        }
        let leader = g.wait_leader(Duration::from_secs(20));
        let end = check(&g.members[leader].addr(), from, &ledger, &mut seen);
        println!(
            "round {round}: {fault:?} (leader was {}, follower {}, {} ms down; leader now {}): queue 0 grew {from}..{end}, {} acked so far",
            names.0,
            names.1,
            down_for.as_millis(),
            g.members[leader].name,
            ledger.acked().len()
        );
        assert!(end > from, "round {round} stored nothing");
        from = end;
    }
    let end = g.wait_converged(Duration::from_secs(60));
    for i in 0..3 {
        check(&g.members[i].addr(), 0, &ledger, &mut seen);
    }
    elections.sort_unstable();
    if !elections.is_empty() {
        println!(
            "ELECTION after SIGKILL of the leader over {} rounds: min {} ms, median {} ms, max {} ms; {} over issue 9's 10 s",
            elections.len(),
            elections[0],
            elections[elections.len() / 2],
            elections[elections.len() - 1],
            elections.iter().filter(|&&ms| ms > ELECTION_ASKED.as_millis()).count()
        );
    }
    g.stop_all();
    let compared = g.assert_logs_identical();
    println!(
        "{rounds} rounds in {} s (seed {seed}): {} acked, logs end at {end}, {compared} segments byte-identical",
        started.elapsed().as_secs(),
        ledger.acked().len()
    );
}

/// Waits for the first SEND_OK from a member other than `old` after `since`; returns how long after.
fn wait_new_leader_ack(g: &Group, ledger: &Ledger, old: usize, since: Instant) -> Duration {
    let deadline = since + ELECTION_MAX;
    loop {
        let first = ledger
            .acked()
            .values()
            .filter(|(_, by, at)| *by != old && *at > since)
            .map(|(_, _, at)| *at)
            .min();
        if let Some(at) = first {
            return at - since;
        }
        assert!(
            Instant::now() < deadline,
            "no SEND_OK from a new leader within {ELECTION_MAX:?}: {}",
            g.views()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
