//! The driver task: the only owner of the `RawNode`. One loop per node, on the node's executor:
//!
//! 1. tick raft-rs every `tick_ms`;
//! 2. report failed links (`report_unreachable`), step inbound messages (at most [`STEP_BATCH_MSGS_MAX`] per
//!    turn), turn queued proposals into `MsgPropose` (leader only; others are answered `NotLeader` at once);
//! 3. handle a `Ready` in raft-rs's order: send `messages` (a leader may send appends before its own write),
//!    deliver `committed_entries`, **persist** entries + hard state to the WAL (on the blocking pool; with
//!    `sync_wal` fdatasync'd), append them to [`LogStore`], then send `persisted_messages` (votes, append
//!    responses: they promise what was just persisted), `advance`, and do the same for the `LightReady`;
//! 4. serve cold reads: entries raft-rs wants for a peer that lags behind the in-memory tier are read from the
//!    WAL on the blocking pool and handed back (`on_entries_fetched`), see `crate::storage`;
//! 5. compact, minus [`RETAIN_ENTRIES`] in every case: memory below what is applied here and (on a leader)
//!    matched by every recently active peer; whole WAL segments (a) on the leader below what every peer, up or
//!    down, matched, and (b) on any node, oldest first below what is applied here, but only while the WAL is
//!    larger than `wal_lagging_retain_bytes`. A follower knows no peer's progress, so it keeps its applied log up
//!    to that budget: if it becomes leader, a peer that was down can still catch up from it. A peer behind what
//!    (b) deleted needs a rebuilt replica (no snapshots; the leader logs it).
//!
//! Proposal resolution (no proposal ever hangs): an entry delivered as committed at the proposal's index
//! resolves it — `Ok(index)` if the term matches, `Err(Superseded)` if another leader's entry took the index;
//! losing leadership resolves every pending proposal `Err(NotLeader)` (the entry may still commit under the
//! next leader: the caller cannot tell, as with any timeout); shutdown or a WAL error resolves them `Stopped`.
//!
//! A WAL error stops the driver (the node then answers `Stopped`): continuing would let Raft promise entries
//! the disk does not hold.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::select;
use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::{GetEntriesContext, LightReady, RawNode, StateRole};
use tracing::{debug, error, info, warn};

use crate::config::NodeConfig;
use crate::error::{DledgerError, ProposeError};
use crate::limits::{
    COMMITTED_BATCH_ENTRIES_MAX, FETCH_BYTES_MAX, FETCH_REQUESTS_MAX, RETAIN_ENTRIES,
    STEP_BATCH_MSGS_MAX,
};
use crate::node::{Committed, Role, Status};
use crate::notify::Notify;
use crate::storage::LogStore;
use crate::transport::{Inbox, Transport};
use crate::wal::{PersistBatch, Wal};

pub type Reply = oneshot::Sender<Result<u64, ProposeError>>;

/// A finished cold read: its first index, the entries (or why not), and the raft-rs context that asked.
pub type Fetched = (u64, Result<Vec<Entry>, DledgerError>, GetEntriesContext);

pub struct Proposal {
    pub data: Bytes,
    pub reply: Reply,
}

/// State shared by the [`crate::Node`] handle and the driver (single thread, so `Cell`/`RefCell`).
pub struct Shared {
    pub config: NodeConfig,
    pub status: RefCell<Status>,
    /// Role/term/leader changed.
    pub changed: Notify,
    pub inbox: Rc<Inbox>,
    pub proposals: RefCell<VecDeque<Proposal>>,
    /// Proposals queued or awaiting commit (bounded by PENDING_PROPOSALS_MAX).
    pub in_flight: Cell<usize>,
    /// Room freed for proposals.
    pub room: Notify,
    pub committed: RefCell<VecDeque<Committed>>,
    pub committed_ready: Notify,
    /// What the state machine reported through `applied()`.
    pub applied: Cell<u64>,
    pub stopping: Cell<bool>,
    pub stopped: Cell<bool>,
    pub stopped_notify: Notify,
    pub transport: RefCell<Option<Transport>>,
    /// Cold entries read back from the WAL, with the raft-rs context that asked for them.
    pub fetched: RefCell<Vec<Fetched>>,
}

impl Shared {
    fn wake(&self) -> &Notify {
        &self.inbox.wake
    }
}

pub struct Driver {
    pub shared: Rc<Shared>,
    pub raw: RawNode<LogStore>,
    pub store: LogStore,
    pub wal: Option<Wal>,
    /// (term, vote) last written to the hardstate file.
    pub persisted_term_vote: (u64, u64),
    /// A commit index learned from a LightReady, written with the next batch.
    pub unwritten_commit: Option<u64>,
    /// Entries at or below this are not delivered (the state machine already holds them).
    pub deliver_after: u64,
    pub pending: BTreeMap<u64, (u64, Reply)>,
    pub last_role: (StateRole, u64, u64),
    /// First indexes of the cold reads under way (bounded by FETCH_REQUESTS_MAX).
    pub fetching: Vec<u64>,
}

impl Driver {
    pub async fn run(mut self) {
        let tick = Duration::from_millis(self.shared.config.tick_ms);
        let mut next_tick = Instant::now() + tick;
        let outcome = loop {
            if self.shared.stopping.get() {
                break Ok(());
            }
            let shared = self.shared.clone();
            let wake = shared.wake().notified();
            let now = Instant::now();
            if now >= next_tick {
                self.raw.tick();
                // One tick per turn; a shard that stalled for many ticks does not replay them all at once.
                next_tick = if now - next_tick > tick * 4 {
                    now + tick
                } else {
                    next_tick + tick
                };
            }
            self.step_inbox();
            self.take_proposals();
            if self.raw.has_ready() {
                if let Err(e) = self.handle_ready().await {
                    break Err(e);
                }
            }
            self.after_turn();
            self.fetch_cold();
            if let Err(e) = self.compact().await {
                break Err(e);
            }
            let busy = !self.shared.inbox.messages.borrow().is_empty()
                || !self.shared.proposals.borrow().is_empty()
                || self.raw.has_ready();
            if busy {
                glommio::yield_if_needed().await;
                continue;
            }
            let sleep = std::pin::pin!(glommio::timer::sleep(
                next_tick.saturating_duration_since(Instant::now())
            ));
            let _ = select(wake, sleep).await;
        };
        if let Err(e) = outcome {
            error!(node = self.shared.config.self_id, error = %e, "dledger: driver stopped on a WAL error");
        }
        self.finish();
    }

    fn finish(&mut self) {
        let sh = &self.shared;
        sh.stopping.set(true);
        if let Some(t) = sh.transport.borrow().as_ref() {
            t.stop();
        }
        for (_, (_, reply)) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(ProposeError::Stopped));
        }
        for p in sh.proposals.borrow_mut().drain(..) {
            let _ = p.reply.send(Err(ProposeError::Stopped));
        }
        sh.in_flight.set(0);
        {
            // A stopped node leads nothing: the broker must not keep taking sends on a stale Leader status.
            let mut st = sh.status.borrow_mut();
            st.role = Role::Follower;
            st.leader_id = None;
        }
        sh.stopped.set(true);
        sh.stopped_notify.notify();
        sh.committed_ready.notify();
        sh.changed.notify();
        sh.room.notify();
    }

    fn step_inbox(&mut self) {
        let unreachable = std::mem::take(&mut *self.shared.inbox.unreachable.borrow_mut());
        for id in unreachable {
            self.raw.report_unreachable(id);
        }
        for _ in 0..STEP_BATCH_MSGS_MAX {
            let Some(m) = self.shared.inbox.messages.borrow_mut().pop_front() else {
                break;
            };
            if let Err(e) = self.raw.step(m) {
                debug!(node = self.shared.config.self_id, error = %e, "dledger: message not stepped");
            }
        }
    }

    fn take_proposals(&mut self) {
        loop {
            let Some(p) = self.shared.proposals.borrow_mut().pop_front() else {
                break;
            };
            if self.raw.raft.state != StateRole::Leader {
                self.resolve_now(
                    p.reply,
                    Err(ProposeError::NotLeader {
                        leader_id: self.leader_id(),
                    }),
                );
                continue;
            }
            // What RawNode::propose does, but with the payload's Bytes moved in instead of copied.
            let mut m = Message::default();
            m.set_msg_type(MessageType::MsgPropose);
            m.from = self.raw.raft.id;
            m.mut_entries().push(Entry {
                data: p.data,
                ..Entry::default()
            });
            match self.raw.raft.step(m) {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    let term = self.raw.raft.term;
                    self.pending.insert(index, (term, p.reply));
                }
                Err(e) => {
                    debug!(error = %e, "dledger: proposal dropped by raft");
                    self.resolve_now(
                        p.reply,
                        Err(ProposeError::NotLeader {
                            leader_id: self.leader_id(),
                        }),
                    );
                }
            }
        }
    }

    fn resolve_now(&self, reply: Reply, r: Result<u64, ProposeError>) {
        let _ = reply.send(r);
        self.shared
            .in_flight
            .set(self.shared.in_flight.get().saturating_sub(1));
        self.shared.room.notify();
    }

    fn leader_id(&self) -> Option<u64> {
        Some(self.raw.raft.leader_id).filter(|id| *id != 0)
    }

    fn send(&self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        if let Some(t) = self.shared.transport.borrow().as_ref() {
            for m in msgs {
                t.send(m);
            }
        }
    }

    async fn handle_ready(&mut self) -> Result<(), DledgerError> {
        let mut rd = self.raw.ready();
        self.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            // Never produced: our Storage refuses snapshots, so no leader sends one.
            warn!("dledger: ignoring a snapshot in Ready (snapshots are not supported)");
        }
        self.deliver(rd.take_committed_entries());
        let entries = rd.take_entries();
        let mut batch = PersistBatch {
            entries,
            ..PersistBatch::default()
        };
        if let Some(hs) = rd.hs() {
            if (hs.term, hs.vote) != self.persisted_term_vote {
                batch.term_vote = Some((hs.term, hs.vote));
            }
            batch.commit = Some(hs.commit);
            self.store.set_hard_state(hs.clone());
        }
        if let Some(c) = self.unwritten_commit.take() {
            batch.commit = Some(batch.commit.map_or(c, |b| b.max(c)));
        }
        let batch = self.persist(batch).await?;
        self.store.append(&batch.entries);
        self.send(rd.take_persisted_messages());
        let light = self.raw.advance(rd);
        self.handle_light(light);
        Ok(())
    }

    fn handle_light(&mut self, mut light: LightReady) {
        if let Some(c) = light.commit_index() {
            self.store.set_commit(c);
            self.unwritten_commit = Some(c);
        }
        self.send(light.take_messages());
        self.deliver(light.take_committed_entries());
        self.raw.advance_apply();
    }

    /// Writes `batch` on the blocking pool (the WAL moves there and back) and returns it for the in-memory log.
    async fn persist(&mut self, batch: PersistBatch) -> Result<PersistBatch, DledgerError> {
        if batch.entries.is_empty() && batch.term_vote.is_none() && batch.commit.is_none() {
            return Ok(batch);
        }
        let Some(mut wal) = self.wal.take() else {
            return Err(DledgerError::Config(
                "WAL unavailable after an earlier failure".into(),
            ));
        };
        let (wal, batch, r) = glommio::executor()
            .spawn_blocking(move || {
                let r = wal.persist(&batch);
                (wal, batch, r)
            })
            .await;
        self.wal = Some(wal);
        r?;
        if let Some(tv) = batch.term_vote {
            self.persisted_term_vote = tv;
        }
        Ok(batch)
    }

    fn deliver(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut out = self.shared.committed.borrow_mut();
        for e in entries {
            // Anything pending below this index can no longer commit at its index.
            while let Some((&i, _)) = self.pending.first_key_value() {
                if i >= e.index {
                    break;
                }
                if let Some((_, (_, reply))) = self.pending.pop_first() {
                    let _ = reply.send(Err(ProposeError::Superseded));
                    self.shared
                        .in_flight
                        .set(self.shared.in_flight.get().saturating_sub(1));
                }
            }
            if let Some((term, reply)) = self.pending.remove(&e.index) {
                let r = if term == e.term {
                    Ok(e.index)
                } else {
                    Err(ProposeError::Superseded)
                };
                let _ = reply.send(r);
                self.shared
                    .in_flight
                    .set(self.shared.in_flight.get().saturating_sub(1));
            }
            if e.index > self.deliver_after
                && e.get_entry_type() == EntryType::EntryNormal
                && !e.data.is_empty()
            {
                out.push_back(Committed {
                    index: e.index,
                    term: e.term,
                    data: e.data,
                });
            }
        }
        drop(out);
        self.shared.committed_ready.notify();
        self.shared.room.notify();
    }

    fn after_turn(&mut self) {
        let r = &self.raw.raft;
        let now = (r.state, r.term, r.leader_id);
        if now != self.last_role {
            let was_leader = self.last_role.0 == StateRole::Leader;
            info!(
                node = self.shared.config.self_id,
                role = ?now.0,
                term = now.1,
                leader = now.2,
                "dledger: role changed"
            );
            self.last_role = now;
            if was_leader && now.0 != StateRole::Leader {
                let leader_id = self.leader_id();
                let n = self.pending.len();
                for (_, (_, reply)) in std::mem::take(&mut self.pending) {
                    let _ = reply.send(Err(ProposeError::NotLeader { leader_id }));
                }
                self.shared
                    .in_flight
                    .set(self.shared.in_flight.get().saturating_sub(n));
                self.shared.room.notify();
            }
            self.shared.changed.notify();
        }
        let r = &self.raw.raft;
        let mut st = self.shared.status.borrow_mut();
        st.role = match r.state {
            StateRole::Leader => Role::Leader,
            StateRole::Follower => Role::Follower,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
        };
        st.term = r.term;
        st.leader_id = Some(r.leader_id).filter(|id| *id != 0);
        st.commit_index = r.raft_log.committed;
        st.last_index = r.raft_log.last_index();
        st.applied_index = self.shared.applied.get();
    }

    /// Drops what everyone that matters has: in memory below the target, whole WAL segments below it.
    async fn compact(&mut self) -> Result<(), DledgerError> {
        let r = &self.raw.raft;
        let leader = r.state == StateRole::Leader;
        let peers = || r.prs().iter().filter(|(id, _)| **id != r.id);
        // Memory waits only for peers that are up; the WAL also for those that are down, up to a bound.
        let active_matched = leader.then(|| {
            peers()
                .filter(|(_, pr)| pr.recent_active)
                .map(|(_, pr)| pr.matched)
                .min()
        });
        let all_matched = leader.then(|| peers().map(|(_, pr)| pr.matched).min());
        let (applied_sm, applied_raft) = (self.shared.applied.get(), r.raft_log.applied);
        let hot_below = compact_below(applied_sm, applied_raft, active_matched.flatten());
        if hot_below > self.store.hot_first_index() {
            self.store.compact(hot_below);
        }
        let Some(wal) = self.wal.as_ref() else {
            return Ok(());
        };
        // Two rules (see the module docs): below what every peer matched (leader only), and, past the lagging
        // budget, below what is applied here whoever still lacks it.
        let cap = self.shared.config.wal_lagging_retain_bytes;
        let all_below = all_matched
            .flatten()
            .map(|m| compact_below(applied_sm, applied_raft, Some(m)));
        let eager = all_below.filter(|b| wal.can_compact(*b, 0));
        let capped = wal.can_compact(hot_below, cap);
        if eager.is_none() && !capped {
            return Ok(());
        }
        if capped && leader && all_below.is_some_and(|b| b < hot_below) {
            warn!(
                node = self.shared.config.self_id,
                kept_for_lagging_peer_from = all_below,
                "dledger: the WAL passed wal_lagging_retain_bytes ({cap} bytes): deleting entries a peer that is \
                 down or behind still lacks; it will need a rebuilt replica (no snapshots)"
            );
        }
        let Some(mut wal) = self.wal.take() else {
            return Ok(());
        };
        let (wal, r) = glommio::executor()
            .spawn_blocking(move || {
                let r = match eager {
                    Some(b) => wal.compact(b, 0),
                    None => Ok(0),
                };
                let r = r.and_then(|n| Ok(n + wal.compact(hot_below, cap)?));
                (wal, r)
            })
            .await;
        let first = wal.first_index();
        self.wal = Some(wal);
        let n = r?;
        self.store.wal_compacted(first);
        debug!(
            node = self.shared.config.self_id,
            segments = n,
            first,
            "dledger: WAL segments deleted"
        );
        Ok(())
    }

    /// Starts reads of cold entries raft-rs asked for (on the blocking pool) and hands finished ones back to it.
    fn fetch_cold(&mut self) {
        let done = std::mem::take(&mut *self.shared.fetched.borrow_mut());
        for (low, r, ctx) in done {
            self.fetching.retain(|l| *l != low);
            match r {
                Ok(entries) => {
                    self.store.add_chunk(entries);
                    self.raw.on_entries_fetched(ctx);
                }
                Err(e) => {
                    warn!(node = self.shared.config.self_id, error = %e, "dledger: reading cold entries failed")
                }
            }
        }
        let requests = self.store.take_fetch_requests();
        let Some(wal) = self.wal.as_ref() else { return };
        for (low, ctx) in requests {
            if self.fetching.contains(&low) {
                continue; // its context is not needed: one on_entries_fetched re-sends to the peer
            }
            if self.fetching.len() >= FETCH_REQUESTS_MAX {
                break; // raft-rs asks again on the peer's next response
            }
            let Some(span) = wal.locate(low, FETCH_BYTES_MAX) else {
                continue;
            };
            let max_record = (self.shared.config.max_entry_bytes
                + crate::wal::record::CHECKED_HEADER_BYTES) as u64;
            debug!(
                node = self.shared.config.self_id,
                low,
                entries = span.count,
                "dledger: reading cold entries from the WAL"
            );
            self.fetching.push(low);
            let shared = self.shared.clone();
            glommio::spawn_local(async move {
                let r = glommio::executor()
                    .spawn_blocking(move || crate::wal::read_span(&span, max_record))
                    .await;
                shared.fetched.borrow_mut().push((low, r, ctx));
                shared.inbox.wake.notify();
            })
            .detach();
        }
    }
}

/// The retention decision: entries below the returned index may go (in memory, and whole WAL segments).
/// `applied_sm` is what the state machine reported, `applied_raft` what the driver delivered, `peers_matched`
/// (leader only) the lowest index every recently active peer holds. [`RETAIN_ENTRIES`] stay behind the lowest.
pub fn compact_below(applied_sm: u64, applied_raft: u64, peers_matched: Option<u64>) -> u64 {
    let target = applied_sm
        .min(applied_raft)
        .min(peers_matched.unwrap_or(u64::MAX));
    target.saturating_sub(RETAIN_ENTRIES) + 1
}

/// How many committed entries `next_committed` hands out at once.
pub fn take_committed(shared: &Shared) -> Vec<Committed> {
    let mut q = shared.committed.borrow_mut();
    let n = q.len().min(COMMITTED_BATCH_ENTRIES_MAX);
    q.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_waits_for_the_slowest_of_state_machine_delivery_and_live_peers() {
        let r = RETAIN_ENTRIES;
        assert_eq!(compact_below(10_000, 20_000, None), 10_000 - r + 1);
        assert_eq!(compact_below(10_000, 8_000, None), 8_000 - r + 1);
        assert_eq!(compact_below(10_000, 10_000, Some(5_000)), 5_000 - r + 1);
        assert_eq!(
            compact_below(10, 10, Some(3)),
            1,
            "nothing goes before RETAIN_ENTRIES are applied"
        );
    }
}
