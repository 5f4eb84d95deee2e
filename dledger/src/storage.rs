//! `raft::Storage` over two tiers of the retained log.
//!
//! - **Hot**: the recent entries, in memory (a `VecDeque` of protobuf entries whose payloads are `Bytes`): what
//!   is not yet applied, plus what a recently active peer still lacks, plus `RETAIN_ENTRIES`. Every read on the
//!   hot path (delivery of committed entries, appends to peers that keep up) is served from here, so raft-rs's
//!   synchronous `Storage` calls never wait on the disk.
//! - **Cold**: older entries that only the WAL holds (kept there for a peer that is down or far behind). Their
//!   terms are here, run-length (terms change only on elections), so `term()` stays synchronous; their payloads
//!   are fetched when raft-rs asks for them to send an append: `entries()` records the request and answers
//!   `LogTemporarilyUnavailable`, the driver reads the range from the WAL on the blocking pool, hands the chunk
//!   back ([`LogStore::add_chunk`]) and calls `on_entries_fetched`, and raft-rs asks again.
//!
//! `first_index` is the WAL's first retained entry: a peer behind it would need a snapshot, which is not
//! supported; it gets `SnapshotTemporarilyUnavailable` and a logged reason (a warning at most every
//! `SNAPSHOT_WARN_MS`).
//!
//! The driver appends here only after the WAL persisted the same entries (raft-rs's Ready contract), and a
//! conflicting suffix is replaced here as on disk. Cold entries are all committed, so they never change.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};
use tracing::warn;

use crate::limits::{FETCHED_CHUNKS_MAX, FETCH_REQUESTS_MAX};

const SNAPSHOT_WARN_MS: u64 = 5_000;

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// The entry before the WAL's first retained entry.
    wal_prev_index: u64,
    wal_prev_term: u64,
    /// Terms of the cold entries (wal_prev_index, prev_index], run-length: (first index of the run, term).
    cold_terms: Vec<(u64, u64)>,
    /// The entry before `entries[0]` (or before the next appended entry when `entries` is empty).
    prev_index: u64,
    prev_term: u64,
    entries: VecDeque<Entry>,
    /// Cold ranges raft-rs asked for (first index, its context), for the driver to fetch.
    fetch_requests: Vec<(u64, GetEntriesContext)>,
    /// Cold entries read back from the WAL, contiguous within each chunk; oldest first.
    chunks: VecDeque<Vec<Entry>>,
}

/// Rc-shared: the RawNode owns one clone, the driver another (to append/compact after persisting).
#[derive(Clone)]
pub struct LogStore {
    core: Rc<RefCell<Core>>,
    last_snapshot_warn: Rc<Cell<Option<Instant>>>,
}

/// What the WAL recovered, split into tiers.
pub struct Recovered {
    pub wal_prev_index: u64,
    pub wal_prev_term: u64,
    pub cold_terms: Vec<(u64, u64)>,
    pub entries: Vec<Entry>,
    pub last_index: u64,
}

impl LogStore {
    pub fn new(voters: Vec<u64>, hard_state: HardState, rec: Recovered) -> LogStore {
        let conf_state = ConfState {
            voters,
            ..ConfState::default()
        };
        // The hot tier starts right after the cold one.
        let prev_index = rec.entries.first().map_or(rec.last_index, |e| e.index - 1);
        let mut core = Core {
            hard_state,
            conf_state,
            wal_prev_index: rec.wal_prev_index,
            wal_prev_term: rec.wal_prev_term,
            cold_terms: rec.cold_terms,
            prev_index,
            prev_term: 0,
            entries: rec.entries.into(),
            fetch_requests: Vec::new(),
            chunks: VecDeque::new(),
        };
        core.prev_term = core.cold_term(prev_index).unwrap_or(core.wal_prev_term);
        LogStore {
            core: Rc::new(RefCell::new(core)),
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
            "append at {} below the hot tier (from {}): cold entries are committed",
            first.index,
            core.prev_index + 1
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

    /// Moves entries below `index` from the hot tier to the cold one (their terms stay).
    pub fn compact(&self, index: u64) {
        let mut core = self.core.borrow_mut();
        let last = core.prev_index + core.entries.len() as u64;
        let index = index.min(last + 1);
        while core.prev_index + 1 < index {
            let Some(e) = core.entries.pop_front() else {
                break;
            };
            if core.cold_terms.last().is_none_or(|(_, t)| *t != e.term) {
                core.cold_terms.push((e.index, e.term));
            }
            core.prev_index = e.index;
            core.prev_term = e.term;
        }
    }

    /// The WAL deleted everything below `first_index`: forget it here too.
    pub fn wal_compacted(&self, first_index: u64) {
        self.compact(first_index);
        let mut core = self.core.borrow_mut();
        let prev = first_index - 1;
        if prev <= core.wal_prev_index {
            return;
        }
        core.wal_prev_term = core.cold_term(prev).unwrap_or(core.prev_term);
        core.wal_prev_index = prev;
        // Runs that end at or below `prev` go; the run holding `prev` + 1 starts there now.
        let runs = std::mem::take(&mut core.cold_terms);
        let mut kept: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
        for (k, (start, term)) in runs.iter().enumerate() {
            let end = runs.get(k + 1).map_or(u64::MAX, |(s, _)| s - 1);
            if end > prev {
                kept.push(((*start).max(first_index), *term));
            }
        }
        core.cold_terms = kept;
        core.chunks
            .retain(|c| c.last().is_some_and(|e| e.index >= first_index));
    }

    /// Cold ranges raft-rs asked for since the last call, less those a chunk fetched meanwhile now serves.
    pub fn take_fetch_requests(&self) -> Vec<(u64, GetEntriesContext)> {
        let mut core = self.core.borrow_mut();
        let mut requests = std::mem::take(&mut core.fetch_requests);
        requests.retain(|(low, _)| core.chunk_holding(*low).is_none());
        requests
    }

    /// Cold entries read back from the WAL (bounded: the oldest chunk goes past FETCHED_CHUNKS_MAX).
    pub fn add_chunk(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut core = self.core.borrow_mut();
        core.chunks
            .retain(|c| c.first().map(|e| e.index) != Some(entries[0].index));
        if core.chunks.len() >= FETCHED_CHUNKS_MAX {
            core.chunks.pop_front();
        }
        core.chunks.push_back(entries);
    }

    pub fn first_index_now(&self) -> u64 {
        self.core.borrow().wal_prev_index + 1
    }

    /// First index of the hot tier.
    pub fn hot_first_index(&self) -> u64 {
        self.core.borrow().prev_index + 1
    }

    pub fn last_index_now(&self) -> u64 {
        let core = self.core.borrow();
        core.prev_index + core.entries.len() as u64
    }
}

impl Core {
    fn chunk_holding(&self, low: u64) -> Option<&Vec<Entry>> {
        self.chunks.iter().find(|c| {
            c.first()
                .is_some_and(|e| e.index <= low && low < e.index + c.len() as u64)
        })
    }

    /// The term of a cold index (wal_prev_index, prev_index].
    fn cold_term(&self, idx: u64) -> Option<u64> {
        if idx == self.wal_prev_index {
            return Some(self.wal_prev_term);
        }
        if idx < self.wal_prev_index || idx > self.prev_index {
            return None;
        }
        let k = self.cold_terms.partition_point(|(start, _)| *start <= idx);
        k.checked_sub(1).map(|k| self.cold_terms[k].1)
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
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let mut core = self.core.borrow_mut();
        if low <= core.wal_prev_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let last = core.prev_index + core.entries.len() as u64;
        if high > last + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::with_capacity((high - low).min(1024) as usize);
        let mut size = 0u64;
        let mut push = |e: &Entry, out: &mut Vec<Entry>| {
            size += e.data.len() as u64 + 24;
            if !out.is_empty() && size > max {
                return false;
            }
            out.push(e.clone());
            true
        };
        if low <= core.prev_index {
            // Cold: from a fetched chunk, or ask the driver to fetch it.
            let Some(chunk) = core.chunk_holding(low) else {
                if !context.can_async() {
                    // Not reached: raft-rs reads only unapplied entries synchronously, and those are hot.
                    warn!(
                        low,
                        high, "dledger: a synchronous read of cold entries was refused"
                    );
                    return Err(raft::Error::Store(StorageError::Unavailable));
                }
                if core.fetch_requests.len() < FETCH_REQUESTS_MAX
                    && !core.fetch_requests.iter().any(|(l, _)| *l == low)
                {
                    core.fetch_requests.push((low, context));
                }
                return Err(raft::Error::Store(StorageError::LogTemporarilyUnavailable));
            };
            let first = chunk[0].index;
            for e in &chunk[(low - first) as usize..] {
                if e.index >= high || !push(e, &mut out) {
                    break;
                }
            }
            // A short answer is fine: raft-rs sends what it got and asks for the rest later.
            return Ok(out);
        }
        for i in low..high {
            let e = &core.entries[(i - core.prev_index - 1) as usize];
            if !push(e, &mut out) {
                break;
            }
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.core.borrow();
        if idx < core.wal_prev_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx == core.prev_index {
            return Ok(core.prev_term);
        }
        if idx < core.prev_index {
            return core
                .cold_term(idx)
                .ok_or(raft::Error::Store(StorageError::Unavailable));
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
                "dledger: peer {to} needs entries below this node's first retained WAL entry and snapshots are \
                 not supported; it cannot catch up from this leader (rebuild it from a replica's store)"
            );
        }
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Storage;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    fn store(n: u64) -> LogStore {
        let rec = Recovered {
            wal_prev_index: 0,
            wal_prev_term: 0,
            cold_terms: Vec::new(),
            entries: (1..=n).map(|i| entry(i, 1)).collect(),
            last_index: n,
        };
        LogStore::new(vec![1], HardState::default(), rec)
    }

    fn unavailable(r: raft::Result<Vec<Entry>>) -> Option<StorageError> {
        match r {
            Err(raft::Error::Store(e)) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn append_replaces_a_conflicting_suffix_and_compaction_keeps_terms() {
        let s = store(5);
        s.append(&[entry(4, 2), entry(5, 2), entry(6, 2)]);
        assert_eq!((s.first_index_now(), s.last_index_now()), (1, 6));
        assert_eq!((s.term(3).unwrap(), s.term(4).unwrap()), (1, 2));
        s.compact(5);
        assert_eq!(
            (s.first_index_now(), s.hot_first_index()),
            (1, 5),
            "the WAL still holds 1..=4"
        );
        assert_eq!(
            (s.term(3).unwrap(), s.term(4).unwrap(), s.term(5).unwrap()),
            (1, 2, 2),
            "cold terms kept"
        );
        let got = s
            .entries(5, 7, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(
            got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            vec![(5, 2), (6, 2)]
        );
        assert!(s.snapshot(1, 2).is_err(), "no snapshots");
    }

    #[test]
    fn cold_entries_are_fetched_asynchronously_and_forgotten_with_their_segments() {
        let s = store(6);
        s.compact(5);
        assert_eq!(
            unavailable(s.entries(2, 6, None, GetEntriesContext::empty(true))),
            Some(StorageError::LogTemporarilyUnavailable)
        );
        assert_eq!(
            s.take_fetch_requests()
                .iter()
                .map(|(l, _)| *l)
                .collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(
            unavailable(s.entries(2, 6, None, GetEntriesContext::empty(false))),
            Some(StorageError::Unavailable)
        );
        s.add_chunk(vec![entry(2, 1), entry(3, 1)]);
        let got = s
            .entries(2, 6, None, GetEntriesContext::empty(true))
            .unwrap();
        assert_eq!(
            got.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![2, 3],
            "a short answer from the chunk"
        );
        s.wal_compacted(3);
        assert_eq!(s.first_index_now(), 3);
        assert_eq!(
            s.term(2).unwrap(),
            1,
            "the term before the first retained entry stays known"
        );
        assert_eq!(
            unavailable(s.entries(2, 4, None, GetEntriesContext::empty(true))),
            Some(StorageError::Compacted)
        );
        assert!(matches!(
            s.term(1),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
    }
}
