//! The public handle: [`Node::start`] recovers the WAL, binds the peer port and spawns the transport tasks and
//! the driver (see `crate::driver`) on the **current** glommio executor. `Node` is `!Send` on purpose: it and
//! its tasks belong to that executor's thread.
//!
//! # Cancel safety
//! Dropping a `propose` future does not withdraw the entry: it may still commit and be delivered. Dropping
//! `next_committed` loses nothing (entries stay queued). Dropping the last `Rc<Node>` without `shutdown` leaves
//! the tasks running until the executor ends: call `shutdown`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::Task;
use raft::eraftpb::HardState;
use raft::{RawNode, StateRole};
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::driver::{self, Driver, Proposal, Shared};
use crate::error::{DledgerError, ProposeError};
use crate::limits::{MSG_BYTES_SOFT_MAX, PENDING_PROPOSALS_MAX};
use crate::storage::LogStore;
use crate::transport::{self, Inbox, Transport};
use crate::wal::{self, Wal};

/// This node's Raft role (a pre-candidate counts as `Candidate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
}

/// A snapshot of the node's Raft state. `applied_index` is what the state machine last reported via
/// [`Node::applied`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub commit_index: u64,
    pub last_index: u64,
    pub applied_index: u64,
}

/// One committed entry (only normal, non-empty entries are delivered; a new leader's empty entry is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub index: u64,
    pub term: u64,
    pub data: Bytes,
}

/// A running Raft node (Rc-shared, `!Send`: it lives on the executor that started it).
pub struct Node {
    shared: Rc<Shared>,
    driver: RefCell<Option<Task<()>>>,
    shut: Cell<bool>,
}

impl Node {
    /// Opens/recovers the WAL (torn tail cut, CRC checked, errors name file and offset), binds the peer port
    /// (`peers[self].addr`), starts the tick/ready/transport tasks on the current executor. `applied_index` is
    /// what the state machine already holds: committed entries are delivered from `applied_index + 1` on.
    pub async fn start(config: NodeConfig, applied_index: u64) -> Result<Rc<Node>, DledgerError> {
        config.validate()?;
        let self_id = config.self_id;
        let addr = config
            .self_peer()
            .map(|p| p.addr)
            .ok_or_else(|| DledgerError::Config("self not in peers".into()))?;
        let dir = config.wal_dir.clone();
        // Entries the state machine applied long ago stay on disk only (see `storage`).
        let keep_from = crate::driver::compact_below(applied_index, applied_index, None);
        let (segment_bytes, sync, max_record) = (
            config.wal_segment_bytes,
            config.sync_wal,
            (config.max_entry_bytes + crate::wal::record::CHECKED_HEADER_BYTES) as u64,
        );
        let (wal, rec) = glommio::executor()
            .spawn_blocking(move || Wal::open(&dir, segment_bytes, sync, max_record, keep_from))
            .await?;
        for c in &rec.cut {
            warn!(node = self_id, "dledger WAL recovery: {c}");
        }
        let last_index = wal.last_index();
        let first_index = rec.prev_index + 1;
        if applied_index + 1 < first_index {
            return Err(DledgerError::Config(format!(
                "the state machine holds entries up to {applied_index} but the WAL in {} starts at {first_index}: \
                 the entries between were deleted and there are no snapshots",
                config.wal_dir.display()
            )));
        }
        if applied_index > last_index {
            warn!(
                node = self_id,
                applied_index, last_index, "dledger: the state machine is ahead of the WAL; entries up to {applied_index} will not be re-delivered"
            );
        }
        info!(
            node = self_id,
            first_index,
            last_index,
            term = rec.term,
            vote = rec.vote,
            commit = rec.commit,
            applied_index,
            segments = wal.segment_count(),
            "dledger: WAL recovered"
        );
        let hs = HardState {
            term: rec.term,
            vote: rec.vote,
            commit: rec.commit,
            ..HardState::default()
        };
        let store = LogStore::new(
            config.peers.iter().map(|p| p.id).collect(),
            hs,
            crate::storage::Recovered {
                wal_prev_index: rec.prev_index,
                wal_prev_term: rec.prev_term,
                cold_terms: rec.cold_terms,
                entries: rec.entries,
                last_index,
            },
        );
        let raft_config = raft::Config {
            id: self_id,
            election_tick: config.election_ticks,
            heartbeat_tick: config.heartbeat_ticks,
            applied: applied_index.min(rec.commit).max(rec.prev_index),
            max_size_per_msg: MSG_BYTES_SOFT_MAX,
            max_inflight_msgs: config.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            ..raft::Config::default()
        };
        raft_config
            .validate()
            .map_err(|e| DledgerError::Config(format!("raft config: {e}")))?;
        let raw = RawNode::new(&raft_config, store.clone(), &crate::logger::raft_logger())
            .map_err(|e| DledgerError::Config(format!("raft node: {e}")))?;
        let listener = transport::bind(addr)?;
        let inbox = Rc::new(Inbox::default());
        let shared = Rc::new(Shared {
            status: RefCell::new(Status {
                role: Role::Follower,
                term: rec.term,
                leader_id: None,
                commit_index: rec.commit,
                last_index,
                applied_index,
            }),
            changed: Default::default(),
            inbox: inbox.clone(),
            proposals: RefCell::new(VecDeque::new()),
            in_flight: Cell::new(0),
            room: Default::default(),
            committed: RefCell::new(VecDeque::new()),
            committed_ready: Default::default(),
            applied: Cell::new(applied_index),
            stopping: Cell::new(false),
            stopped: Cell::new(false),
            stopped_notify: Default::default(),
            transport: RefCell::new(None),
            fetched: RefCell::new(Vec::new()),
            config,
        });
        let t = Transport::start(self_id, &shared.config.peers, listener, inbox);
        *shared.transport.borrow_mut() = Some(t);
        let d = Driver {
            shared: shared.clone(),
            raw,
            store,
            wal: Some(wal),
            persisted_term_vote: (rec.term, rec.vote),
            unwritten_commit: None,
            deliver_after: applied_index,
            pending: BTreeMap::new(),
            last_role: (StateRole::Follower, rec.term, 0),
            fetching: Vec::new(),
        };
        let task = glommio::spawn_local(d.run());
        Ok(Rc::new(Node {
            shared,
            driver: RefCell::new(Some(task)),
            shut: Cell::new(false),
        }))
    }

    /// Leader only: appends `data` as one entry. Resolves with the entry's index once it is committed (a
    /// majority persisted it). `Err(NotLeader)` when not leader or deposed before commit, `Err(Superseded)` when
    /// another leader's entry took the index, `Err(TooLarge)`, `Err(Stopped)`. Waits (backpressure) while
    /// [`PENDING_PROPOSALS_MAX`] proposals are in flight.
    pub async fn propose(&self, data: Bytes) -> Result<u64, ProposeError> {
        let sh = &self.shared;
        let max = sh.config.max_entry_bytes;
        if data.len() > max {
            return Err(ProposeError::TooLarge {
                bytes: data.len(),
                max,
            });
        }
        loop {
            if sh.stopping.get() || sh.stopped.get() {
                return Err(ProposeError::Stopped);
            }
            let st = sh.status.borrow().clone();
            if st.role != Role::Leader {
                return Err(ProposeError::NotLeader {
                    leader_id: st.leader_id,
                });
            }
            if sh.in_flight.get() < PENDING_PROPOSALS_MAX {
                break;
            }
            sh.room.notified().await;
        }
        let (tx, rx) = oneshot::channel();
        sh.in_flight.set(sh.in_flight.get() + 1);
        sh.proposals
            .borrow_mut()
            .push_back(Proposal { data, reply: tx });
        sh.inbox.wake.notify();
        rx.await.unwrap_or(Err(ProposeError::Stopped))
    }

    /// Committed entries in index order, each delivered once per process life. Returns `None` after shutdown.
    ///
    /// Entries wait in memory until taken: the queue is bounded only by how far Raft commits ahead of the state
    /// machine (on the leader, by `PENDING_PROPOSALS_MAX` in-flight proposals), so keep calling this.
    pub async fn next_committed(&self) -> Option<Vec<Committed>> {
        loop {
            let ready = self.shared.committed_ready.notified();
            if self.shared.stopped.get() || self.shut.get() {
                return None;
            }
            let batch = driver::take_committed(&self.shared);
            if !batch.is_empty() {
                return Some(batch);
            }
            ready.await;
        }
    }

    /// The state machine has applied (and, for restarts from its checkpoint, made durable) everything up to
    /// `index`. Drives retention: the WAL keeps `RETAIN_ENTRIES` below min(this, what live peers matched).
    pub fn applied(&self, index: u64) {
        let sh = &self.shared;
        if index > sh.applied.get() {
            sh.applied.set(index);
            sh.status.borrow_mut().applied_index = index;
        }
    }

    pub fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    /// Resolves whenever role, term or leader changes (or the node stops).
    pub async fn changed(&self) {
        if self.shared.stopped.get() {
            return;
        }
        self.shared.changed.notified().await
    }

    /// Stops the driver and transport tasks and closes every socket; pending proposals resolve `Stopped`.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.shut.set(true);
        self.shared.stopping.set(true);
        self.shared.inbox.wake.notify();
        let task = self.driver.borrow_mut().take();
        match task {
            Some(t) => t.await,
            None => {
                while !self.shared.stopped.get() {
                    self.shared.stopped_notify.notified().await;
                }
            }
        }
        if let Some(t) = self.shared.transport.borrow_mut().take() {
            t.stop();
        }
        // Let the executor drop the cancelled tasks (and so close their sockets) before returning.
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        self.shared.committed_ready.notify();
    }

    /// Fault seam for tests: cuts (`true`) or restores this node's network — outbound messages are dropped and
    /// every peer connection is closed and refused while cut.
    #[doc(hidden)]
    pub fn set_isolated(&self, on: bool) {
        if let Some(t) = self.shared.transport.borrow().as_ref() {
            t.set_isolated(on);
        }
    }

    /// Number of WAL segment files in the node's folder (for tests and diagnostics; reads the folder).
    #[doc(hidden)]
    pub fn wal_segment_files(&self) -> usize {
        wal::list_segments(&self.shared.config.wal_dir).map_or(0, |v| v.len())
    }
}
