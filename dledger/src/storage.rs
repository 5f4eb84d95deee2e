//! `raft::Storage` over the in-memory copy of the retained log.
//!
//! The driver keeps every retained entry in memory (a `VecDeque` of protobuf entries whose payloads are
//! `Bytes`), so raft-rs's synchronous `Storage` calls never touch the disk on the shard thread. What is in
//! memory is exactly what the WAL holds durably, minus what was compacted in memory ahead of the WAL's whole-
//! segment retention: the driver appends here only after the WAL persisted the same entries (raft-rs's Ready
//! contract), and truncates here when the WAL cut a conflicting suffix.
//!
//! Memory bound: the retained log, which retention keeps to what is not yet applied everywhere it matters
//! (see `crate::driver`'s compaction). No snapshots: a peer that needs an entry below `first_index` gets
//! `SnapshotTemporarilyUnavailable` and a logged reason (a warning at most every `SNAPSHOT_WARN_MS`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tracing::warn;

const SNAPSHOT_WARN_MS: u64 = 5_000;

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// The entry before `entries[0]` (or before the next appended entry when `entries` is empty).
    prev_index: u64,
    prev_term: u64,
    entries: VecDeque<Entry>,
}

/// Rc-shared: the RawNode owns one clone, the driver another (to append/compact after persisting).
#[derive(Clone)]
pub struct LogStore {
    core: Rc<RefCell<Core>>,
    last_snapshot_warn: Rc<Cell<Option<Instant>>>,
}

impl LogStore {
    pub fn new(
        voters: Vec<u64>,
        hard_state: HardState,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
    ) -> LogStore {
        let conf_state = ConfState {
            voters,
            ..ConfState::default()
        };
        LogStore {
            core: Rc::new(RefCell::new(Core {
                hard_state,
                conf_state,
                prev_index,
                prev_term,
                entries: entries.into(),
            })),
            last_snapshot_warn: Rc::new(Cell::new(None)),
        }
    }

    pub fn set_hard_state(&self, hs: HardState) {
        self.core.borrow_mut().hard_state = hs;
    }

    pub fn set_commit(&self, commit: u64) {
        self.core.borrow_mut().hard_state.commit = commit;
    }

    /// Appends persisted entries, dropping any in-memory suffix they replace.
    pub fn append(&self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        let mut core = self.core.borrow_mut();
        assert!(
            first.index > core.prev_index,
            "append at {} below the compacted prefix (through {})",
            first.index,
            core.prev_index
        );
        let keep = (first.index - core.prev_index - 1) as usize;
        assert!(
            keep <= core.entries.len(),
            "append at {} leaves a gap after {}",
            first.index,
            core.prev_index + core.entries.len() as u64
        );
        core.entries.truncate(keep);
        core.entries.extend(new.iter().cloned());
    }

    /// Drops entries below `index` from memory (keeping the term of `index - 1` for log matching).
    pub fn compact(&self, index: u64) {
        let mut core = self.core.borrow_mut();
        let last = core.prev_index + core.entries.len() as u64;
        let index = index.min(last + 1);
        while core.prev_index + 1 < index {
            let Some(e) = core.entries.pop_front() else {
                break;
            };
            core.prev_index = e.index;
            core.prev_term = e.term;
        }
    }

    pub fn first_index_now(&self) -> u64 {
        self.core.borrow().prev_index + 1
    }

    pub fn last_index_now(&self) -> u64 {
        let core = self.core.borrow();
        core.prev_index + core.entries.len() as u64
    }
}

impl raft::Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.core.borrow();
        Ok(RaftState::new(
            core.hard_state.clone(),
            core.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.core.borrow();
        if low <= core.prev_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = core.prev_index + core.entries.len() as u64;
        if high > last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity((high - low) as usize);
        let mut size = 0u64;
        for i in low..high {
            let e = &core.entries[(i - core.prev_index - 1) as usize];
            size += e.data.len() as u64 + 24;
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.core.borrow();
        if idx == core.prev_index {
            return Ok(core.prev_term);
        }
        if idx < core.prev_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match core.entries.get((idx - core.prev_index - 1) as usize) {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first_index_now())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index_now())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let now = Instant::now();
        let due = self
            .last_snapshot_warn
            .get()
            .is_none_or(|t| now.duration_since(t) >= Duration::from_millis(SNAPSHOT_WARN_MS));
        if due {
            self.last_snapshot_warn.set(Some(now));
            warn!(
                peer = to,
                request_index,
                first_index = self.first_index_now(),
                "dledger: peer {to} needs entries below this node's first retained index and snapshots are not \
                 supported; it cannot catch up from this leader (restore its state machine from a replica)"
            );
        }
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}
