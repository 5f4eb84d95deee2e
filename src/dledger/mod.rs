//! Dledger mode (`enableDLegerCommitLog=true`): each shard's commit log is replicated by Raft among the
//! three processes of `dLegerPeers`, shard i with shard i, which elect their master. Consensus is
//! `apogee_dledger` (tikv/raft-rs driven by the shard's own executor); this module is the broker's side.
//!
//! | file | owns |
//! |---|---|
//! | [`entry`] | the Raft entry: one send or batch as commit log records, plus the leader's store timestamp and host |
//! | [`checkpoint`] | the applied checkpoint `(Raft index, commit log offset)` |
//! | [`apply`] | the apply task (committed entries → `Engine::append_applied`) and the checkpoint task |
//! | [`role`] | the role watcher: when a leader may take sends, re-registration on every change |
//! | this file | [`Dledger`] (one shard's state), the send path [`store`], its refusals |
//!
//! # Life of a send
//! The leader checks the send as any broker does, encodes it as one entry and proposes it. Raft commits it
//! once a majority holds it in its WAL (fdatasynced first when `flushDiskType=SYNC_FLUSH`); every replica
//! applies committed entries in index order, assigning queue and physical offsets at apply time, so the
//! three commit logs are byte-identical. The leader answers SEND_OK once the entry is committed and it
//! applied it, with the offsets the apply assigned. A send that is not known to be committed (the leader
//! was deposed, the entry was cut away by a new leader's log) is answered SERVICE_NOT_AVAILABLE; it may
//! still have been committed (at-least-once, as any failed RocketMQ send).
//!
//! # Roles
//! A leader takes sends only after it applied its whole log: on election it proposes an empty barrier
//! entry and becomes writable once it applied it (every earlier entry is applied by then). The writable
//! leader registers as brokerId 0; the others register with their Raft id (n0 → 1) as slaves, refuse
//! sends naming the group and the leader, serve pulls of what they applied, and copy topics, offsets and
//! groups from the leader as classic slaves do (`crate::ha::sync`).
//!
//! # Restart
//! The commit log is cut back to the applied checkpoint and Raft delivers every entry after it again.
//!
//! # Left out
//! Static membership (the three peers of `dLegerPeers`; changing it would take Raft configuration changes
//! through joint consensus and a way to copy a store to a new peer, i.e. snapshots, which there are none
//! of: a peer that falls behind the WAL's first index cannot catch up). Timer and transactional half
//! messages are refused (their progress files are not replicated). No TLS on peer links.

pub mod apply;
pub mod checkpoint;
pub mod entry;
pub mod role;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use apogee_dledger::{Node, NodeConfig, Peer, ProposeError, Role};
use apogee_engine::notify::Notify;
use apogee_engine::{Appended, Engine, FlushMode, Message};
use apogee_net::codes::ResponseCode;
use futures::channel::oneshot;
use futures::future::{select, Either};
use tracing::info;

use crate::broker::Broker;
use crate::config::BrokerConfig;

/// A send waits this long at most for its committed entry to be applied on the leader.
pub const APPLY_WAIT_MAX_MS: u64 = 10_000;
/// A stored record's bytes besides its body, topic and properties, at most (IPv6 hosts), plus the blank
/// that must fit after it in a segment.
const RECORD_FIXED_MAX_BYTES: usize = 115 + apogee_net::record::BLANK_MIN_BYTES;
/// Sends of one shard waiting for their entries at most (each is also a request in flight).
pub const PROPOSALS_WAITING_MAX: usize = 65_536;

/// What a proposal's waiter is told once its entry is applied here.
type Waiter = oneshot::Sender<Vec<Appended>>;

/// One shard's Dledger state. Owned by the shard (`Rc`, `!Send`).
pub struct Dledger {
    pub node: Rc<Node>,
    /// `dLegerGroup` (the broker name by default) and shard: how refusals and logs name the group.
    pub group: String,
    pub self_id: u64,
    /// Raft id, peer name, peer address (this shard's ports).
    pub peers: Vec<(u64, String, SocketAddr)>,
    /// `<store>/shard-i/dledger`: the WAL and the applied checkpoint.
    pub dir: PathBuf,
    /// Proposals of this process waiting for their entry to be applied, by proposal id.
    waiters: RefCell<HashMap<u64, Waiter>>,
    /// The next proposal id: this node's Raft id in the top byte, a per-process start value below.
    next_proposal: Cell<u64>,
    /// The last entry applied and the commit log's end right after it (a consistent pair).
    applied: Cell<checkpoint::Applied>,
    /// What the checkpoint file holds.
    checkpointed: Cell<checkpoint::Applied>,
    /// The term in which this node is a leader that applied its whole log (0: not writable).
    writable_term: Cell<u64>,
    /// Wakes the role watcher (a barrier was applied).
    pub role_news: Notify,
    /// Set when an entry could not be applied for good: the shard takes no sends.
    failed: RefCell<Option<String>>,
}

impl Dledger {
    /// Opens shard `shard`'s Raft node: reads the applied checkpoint, cuts the commit log back to it and
    /// starts the node, which delivers every committed entry after it.
    pub async fn start(
        config: &BrokerConfig,
        shard: usize,
        engine: &Engine,
    ) -> Result<Rc<Self>, String> {
        let dir = config.engine_config(shard).store_dir.join("dledger");
        apogee_engine::blocking::create_dir_all(dir.clone())
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let ckpt = checkpoint::read(&dir).map_err(|e| e.to_string())?;
        let (written, _, _) = engine.log_offsets();
        if written < ckpt.offset {
            return Err(format!(
                "the commit log ends at {written}, before the Dledger checkpoint's offset {} (index {}) in {}: the store lost records it had flushed",
                ckpt.offset,
                ckpt.index,
                checkpoint::path(&dir).display()
            ));
        }
        let dropped = engine.truncate_replicated(ckpt.offset).await.map_err(|e| {
            format!("cannot cut the commit log back to the Dledger checkpoint: {e}")
        })?;
        let (self_id, peers) = config.dledger_shard_peers(shard);
        let group = format!("{}-{shard}", config.dledger_group_name());
        info!(
            shard,
            group = %group,
            applied_index = ckpt.index,
            offset = ckpt.offset,
            dropped_bytes = dropped,
            "Dledger: commit log at the applied checkpoint; Raft delivers the rest"
        );
        let mut nc = NodeConfig::new(
            self_id,
            peers
                .iter()
                .map(|(id, name, addr)| Peer {
                    id: *id,
                    name: name.clone(),
                    addr: *addr,
                })
                .collect(),
            dir.join("wal"),
        );
        nc.sync_wal = config.flush_disk_type == FlushMode::Sync;
        nc.max_entry_bytes = nc
            .max_entry_bytes
            .max(config.max_message_size + entry::HEADER_BYTES + 64 * 1024);
        let node = Node::start(nc, ckpt.index)
            .await
            .map_err(|e| format!("shard {shard}: Dledger node of group {group}: {e}"))?;
        let start = apogee_engine::store::now_ms() as u64 & 0x00FF_FFFF_FFFF_FFFF;
        Ok(Rc::new(Self {
            node,
            group,
            self_id,
            peers,
            dir,
            waiters: RefCell::new(HashMap::new()),
            next_proposal: Cell::new((self_id << 56) | (start << 16)),
            applied: Cell::new(ckpt),
            checkpointed: Cell::new(ckpt),
            writable_term: Cell::new(0),
            role_news: Notify::default(),
            failed: RefCell::new(None),
        }))
    }

    /// Whether this node takes sends now: the leader of the term in which it applied its whole log.
    pub fn is_writable(&self) -> bool {
        let term = self.writable_term.get();
        if term == 0 || self.failed.borrow().is_some() {
            return false;
        }
        let s = self.node.status();
        s.role == Role::Leader && s.term == term
    }

    /// The brokerId this node registers with: 0 while writable, else its Raft id (RocketMQ's Dledger: n0
    /// registers as 1).
    pub fn broker_id(&self) -> i64 {
        if self.is_writable() {
            0
        } else {
            self.self_id as i64
        }
    }

    /// The leader as `name (address)`, or why there is none.
    pub fn leader_text(&self) -> String {
        let s = self.node.status();
        match s
            .leader_id
            .and_then(|id| self.peers.iter().find(|p| p.0 == id))
        {
            Some((_, name, addr)) => format!("{name} ({addr})"),
            None => "none elected yet".into(),
        }
    }

    /// SERVICE_NOT_AVAILABLE's remark for a send this node does not take.
    pub fn refusal(&self) -> String {
        let s = self.node.status();
        let me = self
            .peers
            .iter()
            .find(|p| p.0 == self.self_id)
            .map_or("?", |p| p.1.as_str());
        let why = if let Some(f) = self.failed.borrow().as_ref() {
            format!("it stopped applying entries: {f}")
        } else if s.role == Role::Leader {
            "it was just elected leader and is applying its log first".to_owned()
        } else {
            format!("it is a {:?}", s.role).to_lowercase()
        };
        format!(
            "Dledger group {}: {me} does not take sends, {why} (term {}); the leader is {}",
            self.group,
            s.term,
            self.leader_text()
        )
    }

    /// The last Raft index applied to this shard's commit log.
    pub fn applied_index(&self) -> u64 {
        self.applied.get().index
    }

    fn next_proposal_id(&self) -> u64 {
        let id = self.next_proposal.get();
        self.next_proposal.set(id.wrapping_add(1));
        id
    }
}

/// Stores `messages` through Raft (Dledger mode's append): proposes them as one entry and waits until it
/// is committed and applied here. Errors carry the response code and remark to answer.
pub async fn store(
    broker: &Broker,
    d: &Dledger,
    messages: &[Message],
) -> Result<Vec<Appended>, (ResponseCode, String)> {
    if !d.is_writable() {
        return Err((ResponseCode::ServiceNotAvailable, d.refusal()));
    }
    // A full disk refuses here as in classic mode (SERVICE_NOT_AVAILABLE naming the disk), before Raft
    // holds an entry this leader could not apply. Followers' disks are theirs to report: one that cannot
    // apply retries, and its lag shows in its runtime info.
    if let Err(e) = broker.engine.check_space() {
        return Err((ResponseCode::ServiceNotAvailable, e.to_string()));
    }
    if d.waiters.borrow().len() >= PROPOSALS_WAITING_MAX {
        return Err((
            ResponseCode::SystemBusy,
            format!(
                "[TOO_MANY_REQUESTS] {PROPOSALS_WAITING_MAX} sends wait for Raft on this shard"
            ),
        ));
    }
    // A record that could never be stored must not reach the Raft log: every replica would refuse it.
    let segment = broker.engine.config().commitlog_segment_size_bytes;
    if let Some(m) = messages.iter().find(|m| {
        (RECORD_FIXED_MAX_BYTES + m.body.len() + m.topic.len() + m.properties.len()) as u64
            > segment
    }) {
        return Err((
            ResponseCode::MessageIllegal,
            format!(
                "a message of {} bytes does not fit a commit log segment of {segment} bytes",
                m.body.len()
            ),
        ));
    }
    let id = d.next_proposal_id();
    let data = entry::encode(
        id,
        apogee_engine::store::now_ms(),
        broker.engine.config().store_host,
        messages,
    );
    let (tx, rx) = oneshot::channel();
    d.waiters.borrow_mut().insert(id, tx);
    let proposed = d.node.propose(data).await;
    let index = match proposed {
        Ok(index) => index,
        Err(e) => {
            d.waiters.borrow_mut().remove(&id);
            return Err(propose_refusal(d, e));
        }
    };
    let timeout = glommio::timer::sleep(Duration::from_millis(APPLY_WAIT_MAX_MS));
    match select(rx, Box::pin(timeout)).await {
        Either::Left((Ok(stored), _)) => Ok(stored),
        Either::Left((Err(_), _)) => Err((
            ResponseCode::ServiceNotAvailable,
            format!(
                "Dledger group {}: entry {index} is committed but this broker stopped before applying it",
                d.group
            ),
        )),
        Either::Right(_) => {
            d.waiters.borrow_mut().remove(&id);
            Err((
                ResponseCode::FlushSlaveTimeout,
                format!(
                    "Dledger group {}: entry {index} is committed (a majority holds it) but was not applied here within {APPLY_WAIT_MAX_MS} ms; it will be",
                    d.group
                ),
            ))
        }
    }
}

fn propose_refusal(d: &Dledger, e: ProposeError) -> (ResponseCode, String) {
    match e {
        ProposeError::TooLarge { bytes, max } => (
            ResponseCode::MessageIllegal,
            format!("the send is {bytes} bytes as a Dledger entry, over the entry limit {max}"),
        ),
        ProposeError::NotLeader { .. } => (
            ResponseCode::ServiceNotAvailable,
            format!(
                "Dledger group {}: leadership moved before the send was committed; the leader is {}",
                d.group,
                d.leader_text()
            ),
        ),
        ProposeError::Superseded => (
            ResponseCode::ServiceNotAvailable,
            format!(
                "Dledger group {}: the send was not committed (a new leader's log replaced it); the leader is {}",
                d.group,
                d.leader_text()
            ),
        ),
        ProposeError::Stopped => (
            ResponseCode::ServiceNotAvailable,
            format!("Dledger group {}: the node is stopping", d.group),
        ),
    }
}

/// The engine append of this shard: through Raft in Dledger mode, else the engine's own. For writers
/// other than the send path (send-back, replies, the delay scheduler), which map errors themselves.
pub async fn append(broker: &Broker, messages: &[Message]) -> Result<Vec<Appended>, AppendError> {
    match &broker.dledger {
        Some(d) => store(broker, d, messages)
            .await
            .map_err(|(code, remark)| AppendError::Refused(code, remark)),
        None => broker
            .engine
            .append(messages)
            .await
            .map_err(AppendError::Engine),
    }
}

/// Why [`append`] did not store.
#[derive(Debug)]
pub enum AppendError {
    Engine(apogee_engine::EngineError),
    Refused(ResponseCode, String),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Engine(e) => e.fmt(f),
            Self::Refused(code, remark) => write!(f, "{code:?}: {remark}"),
        }
    }
}
