//! A Dledger group for end-to-end tests: three `apogee broker` processes (one shard each) in Raft group
//! `g`, two name servers, raw senders that follow the leader and remember every SEND_OK, and the checks
//! every test makes (each acked message at the offset its SEND_OK named, none twice, offsets consecutive,
//! byte-identical commit logs).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apogee_net::codes::{RequestCode, ResponseCode};
use apogee_net::RemotingCommand;

use super::{free_ports, nameserver, Process, RawConn};

pub const TOPIC: &str = "DledgerTopic";
/// A broker answers a probe within this long, or counts as unreachable (stopped, dead).
const PROBE_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Log lines of a member shown in a failure message: the last ones it printed, which say what it was
/// doing when the group stopped answering (a failure in CI leaves no other trace of it).
const LOG_TAIL_LINES: usize = 12;

/// The last [`LOG_TAIL_LINES`] lines `m` logged, indented; empty for a member that is down. Lines not yet
/// read from its pipe are read here (only for failure messages, so nothing waits for them later).
fn log_tail(m: &Member) -> String {
    let Some(p) = &m.process else {
        return String::new();
    };
    let mut lines: Vec<&str> = p.lines.iter().map(String::as_str).collect();
    let fresh: Vec<String> = std::iter::from_fn(|| p.log.try_recv().ok()).collect();
    lines.extend(fresh.iter().map(String::as_str));
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[from..]
        .iter()
        .map(|l| format!("\n      | {l}"))
        .collect()
}

/// One member of the group.
pub struct Member {
    pub name: String,
    pub port: u16,
    pub peer_port: u16,
    pub store: PathBuf,
    pub process: Option<Process>,
    /// SIGSTOPped (and not yet continued).
    pub stopped: bool,
}

impl Member {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.child.id() as i32)
    }
}

pub struct Group {
    pub dir: tempfile::TempDir,
    pub namesrv: String,
    pub nameservers: Vec<Process>,
    pub members: Vec<Member>,
    pub extra: Vec<String>,
}

impl Group {
    /// Three brokers and two name servers; `extra` are `-o key=value` settings for every broker.
    pub fn start(extra: &[&str]) -> Self {
        let (ns1, a1) = nameserver(10_000);
        let (ns2, a2) = nameserver(10_000);
        let dir = tempfile::tempdir().expect("temp dir");
        let members: Vec<Member> = (0..3)
            .map(|i| {
                // The broker's ports are base-2..=base+1; the Raft peer port base+4 (free_ports checked it).
                let port = free_ports(8);
                Member {
                    name: format!("n{i}"),
                    port,
                    peer_port: port + 4,
                    store: dir.path().join(format!("n{i}")),
                    process: None,
                    stopped: false,
                }
            })
            .collect();
        let mut g = Self {
            dir,
            namesrv: format!("{a1};{a2}"),
            nameservers: vec![ns1, ns2],
            members,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..3 {
            g.spawn(i);
        }
        g
    }

    fn peers(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}-127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Starts member `i` (again) on its ports and store.
    pub fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let mut args: Vec<String> = vec![
            "broker".into(),
            "--store".into(),
            m.store.display().to_string(),
            "--namesrv-addr".into(),
            self.namesrv.clone(),
            "--listen-port".into(),
            m.port.to_string(),
            "--shards".into(),
            "1".into(),
        ];
        for kv in [
            "enableDLegerCommitLog=true".to_owned(),
            "dLegerGroup=g".to_owned(),
            format!("dLegerPeers={}", self.peers()),
            format!("dLegerSelfId={}", m.name),
            "registerIntervalMs=1000".to_owned(),
            "mappedFileSizeCommitLog=1048576".to_owned(),
            "maxMessageSize=65536".to_owned(),
        ]
        .into_iter()
        .chain(self.extra.iter().cloned())
        {
            args.push("-o".into());
            args.push(kv);
        }
        let p = Process::spawn(&args, "apogee started");
        let m = &mut self.members[i];
        m.process = Some(p);
        m.stopped = false;
    }

    /// SIGKILL of member `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            if self.members[i].stopped {
                signal(p.child.id() as i32, libc::SIGCONT);
            }
            p.kill();
        }
        self.members[i].stopped = false;
    }

    pub fn sigstop(&mut self, i: usize) {
        if let Some(pid) = self.members[i].pid() {
            signal(pid, libc::SIGSTOP);
            self.members[i].stopped = true;
        }
    }

    pub fn sigcont(&mut self, i: usize) {
        if let Some(pid) = self.members[i].pid() {
            signal(pid, libc::SIGCONT);
            self.members[i].stopped = false;
        }
    }

    pub fn alive(&self, i: usize) -> bool {
        self.members[i].process.is_some() && !self.members[i].stopped
    }

    /// The member that takes sends now (runtime info says writable), among the live ones.
    pub fn leader(&self) -> Option<usize> {
        (0..3).find(|&i| {
            self.alive(i)
                && runtime(&self.members[i].addr())
                    .is_some_and(|t| t.get("dLegerWritable").map(String::as_str) == Some("true"))
        })
    }

    /// Waits for a writable leader; panics after `timeout`, with every member's view.
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.leader() {
                return l;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no writable leader within {timeout:?}: {}", self.views());
    }

    /// Every live member's Dledger view, for failure messages.
    pub fn views(&self) -> String {
        (0..3)
            .map(|i| {
                let m = &self.members[i];
                let v = if self.alive(i) {
                    runtime(&m.addr())
                        .map(|t| {
                            format!(
                                "role={} term={} leader={} commit={} applied={} writable={} log={}",
                                t.get("dLegerRole").cloned().unwrap_or_default(),
                                t.get("dLegerTerm").cloned().unwrap_or_default(),
                                t.get("dLegerLeader").cloned().unwrap_or_default(),
                                t.get("dLegerCommitIndex").cloned().unwrap_or_default(),
                                t.get("dLegerAppliedIndex").cloned().unwrap_or_default(),
                                t.get("dLegerWritable").cloned().unwrap_or_default(),
                                t.get("commitLogMaxOffset").cloned().unwrap_or_default(),
                            )
                        })
                        .unwrap_or_else(|| "no answer".into())
                } else {
                    "down".into()
                };
                format!("\n  {} ({}): {v}{}", m.name, m.addr(), log_tail(m))
            })
            .collect()
    }

    /// Waits until every live member's commit log ends at the same offset (all applied the same entries).
    pub fn wait_converged(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ends: Vec<Option<u64>> = (0..3)
                .filter(|&i| self.alive(i))
                .map(|i| {
                    runtime(&self.members[i].addr())
                        .and_then(|t| t.get("commitLogMaxOffset").and_then(|v| v.parse().ok()))
                })
                .collect();
            if let Some(Some(first)) = ends.first() {
                if ends.iter().all(|e| *e == Some(*first)) {
                    return *first;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "members did not converge within {timeout:?}: {}",
            self.views()
        );
    }

    /// SIGTERM of every member (clean stop, checkpoint written).
    pub fn stop_all(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.process.take() {
                if m.stopped {
                    signal(p.child.id() as i32, libc::SIGCONT);
                }
                p.stop();
            }
        }
    }

    /// Asserts the three stores' commit logs are byte-identical (every segment, whole files); returns the
    /// segments compared.
    pub fn assert_logs_identical(&self) -> usize {
        let dir = |root: &Path| root.join("shard-0").join("commitlog");
        let mut compared = 0;
        let first = &self.members[0].store;
        for entry in std::fs::read_dir(dir(first)).expect("commit log folder") {
            let entry = entry.expect("dir entry");
            let ours = std::fs::read(entry.path()).expect("segment");
            for m in &self.members[1..] {
                let theirs =
                    std::fs::read(dir(&m.store).join(entry.file_name())).unwrap_or_else(|e| {
                        panic!("{} has no segment {:?}: {e}", m.name, entry.file_name())
                    });
                assert!(
                    ours == theirs,
                    "segment {:?} of n0 and {} differ",
                    entry.file_name(),
                    m.name
                );
            }
            compared += 1;
        }
        compared
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(p) = &m.process {
                if m.stopped {
                    signal(p.child.id() as i32, libc::SIGCONT);
                }
            }
        }
    }
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: a signal to our own child process.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// GET_BROKER_RUNTIME_INFO's table, or None when the broker does not answer within the probe timeout.
pub fn runtime(addr: &str) -> Option<BTreeMap<String, String>> {
    let mut c = RawConn::connect(addr).ok()?;
    c.stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let r = c.call(&RemotingCommand::request(
        RequestCode::GetBrokerRuntimeInfo as i32,
        0,
    ))?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let table = v.get("table")?.as_object()?;
    Some(
        table
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
    )
}

/// What happened to one send.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// SEND_OK: the queue offset and msgId it named, the member that answered, when.
    Acked {
        offset: i64,
        msg_id: String,
        by: usize,
        at: Instant,
    },
    /// Any other answer: its code and remark.
    Refused { code: i32, remark: String },
    /// No answer (the connection broke): may or may not be stored.
    Unknown,
}

/// Every send's outcome by sequence number (its body is `m<seq>`).
#[derive(Default)]
pub struct Ledger {
    pub outcomes: Mutex<BTreeMap<u64, Outcome>>,
    pub next: AtomicU64,
}

impl Ledger {
    pub fn acked(&self) -> BTreeMap<u64, (i64, usize, Instant)> {
        self.outcomes
            .lock()
            .expect("ledger lock")
            .iter()
            .filter_map(|(s, o)| match o {
                Outcome::Acked { offset, by, at, .. } => Some((*s, (*offset, *by, *at))),
                _ => None,
            })
            .collect()
    }

    pub fn record(&self, seq: u64, o: Outcome) {
        self.outcomes.lock().expect("ledger lock").insert(seq, o);
    }
}

/// Bytes of padding in every test body, so that a test's few thousand sends roll 1 MiB segments (whose
/// blanks and padding must be identical on every replica too).
pub const PAD_BYTES: usize = 700;

/// The body of send `seq`: `m<seq>:` and padding.
pub fn body_text(seq: u64) -> String {
    format!("m{seq}:{}", "x".repeat(PAD_BYTES))
}

pub fn body(seq: u64) -> Vec<u8> {
    body_text(seq).into_bytes()
}

/// Sends one message to `addr` on `conn` (connecting when none); records and returns the outcome.
pub fn send_one(conn: &mut Option<RawConn>, addr: &str, by: usize, ledger: &Ledger) -> Outcome {
    let seq = ledger.next.fetch_add(1, Ordering::SeqCst);
    if conn.is_none() {
        *conn = RawConn::connect(addr).ok();
        if let Some(c) = conn.as_mut() {
            let _ = c.stream.set_read_timeout(Some(Duration::from_secs(15)));
        }
    }
    let outcome = match conn.as_mut() {
        None => Outcome::Refused {
            code: -1,
            remark: "cannot connect".into(),
        },
        Some(c) => match c.call(&super::raw_send_v2(TOPIC, &body(seq))) {
            None => {
                *conn = None;
                Outcome::Unknown
            }
            Some(r) if r.code == ResponseCode::Success as i32 => Outcome::Acked {
                offset: r
                    .ext("queueOffset")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(-1),
                msg_id: r.ext("msgId").unwrap_or_default().to_owned(),
                by,
                at: Instant::now(),
            },
            Some(r) => Outcome::Refused {
                code: r.code,
                remark: r.remark.clone().unwrap_or_default(),
            },
        },
    };
    ledger.record(seq, outcome.clone());
    outcome
}

/// `threads` senders that follow the leader (found through runtime info over `addrs`) until `stop`.
pub fn senders(
    addrs: Vec<String>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    threads: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let (addrs, ledger, stop) = (addrs.clone(), ledger.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn: Option<RawConn> = None;
                let mut leader: Option<usize> = None;
                while !stop.load(Ordering::SeqCst) {
                    let Some(l) = leader else {
                        leader = addrs.iter().position(|a| {
                            runtime(a).is_some_and(|t| {
                                t.get("dLegerWritable").map(String::as_str) == Some("true")
                            })
                        });
                        if leader.is_none() {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        continue;
                    };
                    match send_one(&mut conn, &addrs[l], l, &ledger) {
                        Outcome::Acked { .. } => {}
                        _ => {
                            conn = None;
                            leader = None;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Queue 0 of [`TOPIC`] on `addr` from `from`: (queue offset, body) of every record, pulled until the end.
pub fn read_queue(addr: &str, from: i64) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut offset = from;
    let mut conn = RawConn::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    for _ in 0..100_000 {
        let r = conn
            .call(&super::raw_pull("dledger-check", TOPIC, 0, offset))
            .unwrap_or_else(|| panic!("no pull answer from {addr} at {offset}"));
        if r.code != ResponseCode::Success as i32 {
            return out;
        }
        let records = apogee_net::record::decode_all(&bytes::Bytes::from(r.body.to_vec()))
            .expect("pulled records decode");
        if records.is_empty() {
            return out;
        }
        for rec in records {
            out.push((
                rec.queue_offset,
                String::from_utf8(rec.body.to_vec()).expect("test bodies are text"),
            ));
        }
        offset = out.last().map_or(offset, |(o, _)| o + 1);
    }
    out
}

/// The checks after every step, over what `addr` serves from queue offset `from` on: offsets consecutive
/// from `from`; every message acked since then at the offset its SEND_OK named (an ack the reader does not
/// hold yet is a loss); no body twice, here or at another offset than seen before (`seen`, carried over
/// steps). Returns the last offset served + 1.
pub fn check(addr: &str, from: i64, ledger: &Ledger, seen: &mut HashMap<String, i64>) -> i64 {
    // SEND_OK comes once the leader applied the entry; with SYNC_FLUSH its consume queue entry follows
    // the commit log flush a moment later. Read again (bounded) until the last ack is in reach.
    let last_acked = ledger
        .acked()
        .values()
        .map(|(o, _, _)| *o)
        .max()
        .unwrap_or(-1);
    let mut served = read_queue(addr, from);
    for _ in 0..50 {
        if from + served.len() as i64 > last_acked {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        served = read_queue(addr, from);
    }
    for (i, (offset, _)) in served.iter().enumerate() {
        assert_eq!(
            *offset,
            from + i as i64,
            "queue offsets are not consecutive at {addr}"
        );
    }
    let end = from + served.len() as i64;
    for (offset, body) in &served {
        if let Some(before) = seen.insert(body.clone(), *offset) {
            assert_eq!(
                before, *offset,
                "{body} served at {before} and again at {offset}"
            );
        }
    }
    let by_offset: HashMap<i64, &str> = served.iter().map(|(o, b)| (*o, b.as_str())).collect();
    for (seq, (offset, _, _)) in ledger.acked() {
        if offset < from {
            continue;
        }
        let want = body_text(seq);
        assert_eq!(
            by_offset.get(&offset).copied(),
            Some(want.as_str()),
            "acked m{seq} (SEND_OK at queue offset {offset}) is not served there by {addr} (it serves up to {end})"
        );
    }
    end
}
