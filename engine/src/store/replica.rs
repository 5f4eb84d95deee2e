//! Replication's two ends in the engine (RocketMQ's classic HA, reference §9).
//!
//! - **Master**: [`Engine::read_for_slave`] hands out the commit log as it is, from memory or disk, so a
//!   slave gets the same bytes; [`Engine::appended`] wakes shippers whenever the written offset moves.
//! - **Slave**: [`Engine::append_replicated`] appends shipped bytes verbatim at the slave's written offset
//!   (splitting them at segment boundaries only) and then dispatches every record that became whole: the
//!   same consume queue entries and key index entries a master makes, in the same order, under the same
//!   flush rules (SYNC_FLUSH: visible once durable). The master's blanks and the padding after them arrive
//!   as bytes too, so both logs are byte-identical.
//!
//! # Invariants
//! - A slave's log only grows by [`Engine::append_replicated`], contiguously: bytes for any other offset
//!   are refused ([`EngineError::Replication`]).
//! - `parsed` (records up to it are dispatched or pending) never passes the written offset, and only stops
//!   at a record boundary or inside a record that has not wholly arrived.

use std::rc::Rc;

use bytes::Bytes;

use apogee_net::record;

use super::{Dispatch, Engine};
use crate::consumequeue::CqEntry;
use crate::error::{EngineError, Result};
use crate::index;
use crate::log::align_down_segment;
use crate::FlushMode;

impl Engine {
    /// Up to `max` bytes of the commit log from `offset` (within one segment), for a slave. `None` when
    /// there is nothing new; [`EngineError::Deleted`] below the log's minimum.
    ///
    /// In SYNC_FLUSH only durable bytes are shipped: a slave never holds what a crash of this master can
    /// take back, so it can always follow the restarted master. In ASYNC_FLUSH everything written is
    /// shipped (a crashed master may then restart behind its slave, which it refuses with a logged reason).
    pub async fn read_for_slave(&self, offset: u64, max: usize) -> Result<Option<Bytes>> {
        let log = &self.commitlog.log;
        if offset < log.min_offset() {
            return Err(EngineError::Deleted {
                offset,
                min_offset: log.min_offset(),
            });
        }
        let limit = match self.config.flush_mode {
            FlushMode::Sync => log.durable(),
            FlushMode::Async => log.written(),
        };
        if offset >= limit {
            return Ok(None);
        }
        let max = max.min((limit - offset) as usize);
        log.read_for_shipping(offset, max).await
    }

    /// Wakes whoever waits for the written offset to move (a master's shippers).
    pub fn appended(&self) -> &crate::notify::Notify {
        &self.appended
    }

    /// Whether nothing was ever stored (a new slave may then start at its master's minimum offset).
    pub fn is_empty(&self) -> bool {
        self.commitlog.log.written() == self.commitlog.log.min_offset()
            && self.queues.borrow().is_empty()
    }

    /// Moves an empty store's write position to `offset`, a segment start: a new slave whose master's log
    /// no longer starts at 0 begins where the master's does.
    pub async fn start_empty_log_at(&self, offset: u64) -> Result<()> {
        let log = &self.commitlog.log;
        assert!(self.is_empty(), "only an empty store may move its start");
        assert_eq!(
            offset % log.segment_size(),
            0,
            "a log starts at a segment boundary, not at {offset}"
        );
        log.set_position(offset).await?;
        self.waiters.borrow_mut().truncated(offset);
        log.raise_min_offset(offset);
        self.dispatched.set(offset);
        self.parsed.set(offset);
        Ok(())
    }

    /// Appends bytes a master shipped, which must start at this log's written offset, then dispatches
    /// the records they complete. Refused for space like any append (the master keeps the bytes; the
    /// slave asks again later).
    pub async fn append_replicated(&self, offset: u64, data: &[u8]) -> Result<()> {
        if self.closing.get() {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(f) = self.failed.borrow().as_ref() {
            return Err(EngineError::Failed(f.clone()));
        }
        self.check_space()?;
        let log = &self.commitlog.log;
        if offset != log.written() {
            return Err(EngineError::Replication(format!(
                "the master shipped bytes at {offset}, this log ends at {}",
                log.written()
            )));
        }
        let mut at = 0;
        while at < data.len() {
            // Written offsets cannot move while this runs (only this method appends on a slave).
            let n = (log.segment_remaining() as usize).min(data.len() - at);
            let through = log.written() + n as u64;
            if !log.is_allocated(through) {
                self.ensure_log_allocated(through).await?;
            }
            log.append(&data[at..at + n]);
            at += n;
        }
        self.dispatch_replicated().await?;
        self.appended.notify();
        match self.config.flush_mode {
            FlushMode::Sync => self.flush_wanted.notify(),
            FlushMode::Async => {
                if log.pending_bytes() as usize > self.config.write_buffer_max_bytes / 2 {
                    self.flush_wanted.notify();
                }
            }
        }
        Ok(())
    }

    /// Cuts this slave's log back to `offset`, where its restarted master's log now ends (an ASYNC_FLUSH
    /// master that crashed lost what it had not flushed, but had shipped it). Everything at and past
    /// `offset` goes: commit log bytes (zeroed on disk), consume queue entries, queue offsets. Returns the
    /// bytes dropped. `offset` must be a record boundary of this log, which it is: the logs are identical
    /// up to the master's end.
    pub async fn truncate_replicated(&self, offset: u64) -> Result<u64> {
        let log = &self.commitlog.log;
        let written = log.written();
        if offset >= written {
            return Ok(0);
        }
        if offset < log.min_offset() {
            return Err(EngineError::Replication(format!(
                "the master's log ends at {offset}, below this log's start {}",
                log.min_offset()
            )));
        }
        // Make everything durable and dispatched first, so that what follows works on disk alone.
        if log.pending_bytes() > 0 {
            self.flush_commitlog().await?;
        }
        self.pending.borrow_mut().retain(|d| d.end <= offset);
        // Queue truncation rewrites from disk, so their entries must be there too.
        for q in self.all_queues() {
            q.flush().await?;
            q.truncate_from_log_offset(offset).await?;
        }
        {
            let queues = self.queues.borrow();
            let mut next = self.next_queue_offset.borrow_mut();
            for (topic, per) in next.iter_mut() {
                for (id, n) in per.iter_mut() {
                    if let Some(q) = queues.get(topic).and_then(|t| t.get(id)) {
                        *n = q.max_index();
                    }
                }
            }
        }
        log.set_position(offset).await?;
        self.waiters.borrow_mut().truncated(offset);
        log.zero_range(offset, written).await?;
        self.dispatched.set(self.dispatched.get().min(offset));
        self.parsed.set(offset);
        // The checkpoint must not vouch for what was dropped.
        self.checkpoint_once(false).await?;
        Ok(written - offset)
    }

    /// Throws this slave's log away and starts over, empty, at `offset` (a segment start): its master no
    /// longer holds where this log ends (retention deleted it while the slave was away), so the only way to
    /// follow again is from the master's first offset. Commit log segments, consume queues and the key
    /// index go; consumer offsets stay (they are copied from the master anyway). Returns the bytes dropped.
    pub async fn restart_log_at(&self, offset: u64) -> Result<u64> {
        let log = &self.commitlog.log;
        let dropped = log.written() - log.min_offset();
        if log.pending_bytes() > 0 {
            self.flush_commitlog().await?;
        }
        self.pending.borrow_mut().clear();
        let queues: Vec<Rc<crate::consumequeue::ConsumeQueue>> = self
            .queues
            .borrow_mut()
            .drain()
            .flat_map(|(_, q)| q.into_values())
            .collect();
        self.next_queue_offset.borrow_mut().clear();
        for q in queues {
            q.close().await;
        }
        let root = self.config.store_dir.join("consumequeue");
        let emptied = root.clone();
        crate::blocking::run(move || {
            for t in std::fs::read_dir(&emptied)? {
                std::fs::remove_dir_all(t?.path())?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| EngineError::io(&root, e))?;
        self.index.borrow_mut().reset(offset);
        log.reset_at(offset).await?;
        self.waiters.borrow_mut().truncated(offset);
        self.dispatched.set(offset);
        self.parsed.set(offset);
        self.checkpoint_once(false).await?;
        Ok(dropped)
    }

    /// Dispatches every record that is wholly in the log past `parsed`.
    async fn dispatch_replicated(&self) -> Result<()> {
        let log = &self.commitlog.log;
        let size = log.segment_size();
        let corrupt = |at: u64, reason: String| EngineError::Corrupt {
            what: "replicated commit log record",
            path: log.dir().to_owned(),
            offset: at,
            reason,
        };
        loop {
            let at = self.parsed.get();
            let written = log.written();
            if at + record::BLANK_MIN_BYTES as u64 > written {
                return Ok(());
            }
            let head = log.read(at, 8).await?;
            let total = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let magic = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let seg_end = align_down_segment(at, size) + size;
            if magic == record::BLANK_MAGIC {
                if total as u64 != seg_end - at {
                    return Err(corrupt(
                        at,
                        format!(
                            "blank of {total} bytes, {} left in the segment",
                            seg_end - at
                        ),
                    ));
                }
                self.parsed.set(seg_end);
                self.settle_dispatched(seg_end);
                continue;
            }
            if magic != record::MESSAGE_MAGIC && magic != record::MESSAGE_MAGIC_V2 || total <= 0 {
                return Err(corrupt(at, format!("bad magic {magic:#x} or size {total}")));
            }
            let end = at + total as u64;
            if end > seg_end {
                return Err(corrupt(
                    at,
                    format!("record of {total} bytes crosses the segment end"),
                ));
            }
            if end > written {
                return Ok(()); // the rest of it comes with the next push
            }
            let bytes = log.read(at, total as usize).await?;
            let rec = record::decode(&bytes).map_err(|e| corrupt(at, e.to_string()))?;
            // A queue first seen past offset 0 (this slave started at its master's minimum) begins there.
            let seen = self
                .next_queue_offset
                .borrow()
                .get(rec.topic.as_str())
                .is_some_and(|q| q.contains_key(&rec.queue_id));
            if rec.queue_offset > 0 && !seen {
                self.create_queue_at(&rec.topic, rec.queue_id, rec.queue_offset as u64)
                    .await?;
            }
            let expected = {
                let mut next = self.next_queue_offset.borrow_mut();
                let (_, queues) = super::topic_slot(&mut next, &rec.topic);
                let slot = queues.entry(rec.queue_id).or_insert(0);
                let expected = *slot;
                if rec.queue_offset as u64 == expected {
                    *slot += 1;
                }
                expected
            };
            if rec.queue_offset as u64 != expected {
                return Err(corrupt(
                    at,
                    format!(
                        "queue offset {} of {}@{} does not follow {expected}",
                        rec.queue_offset, rec.topic, rec.queue_id
                    ),
                ));
            }
            let topic = {
                let mut next = self.next_queue_offset.borrow_mut();
                super::topic_slot(&mut next, &rec.topic).0
            };
            let d = Dispatch {
                topic,
                queue_id: rec.queue_id,
                queue_offset: rec.queue_offset as u64,
                entry: CqEntry {
                    commit_log_offset: at,
                    size: total as u32,
                    // As on the master: schedule-topic entries carry their delivery time.
                    tag_hash: crate::delay::cq_tag_code(
                        &self.config.delay_levels_ms,
                        &rec.topic,
                        &rec.properties,
                        rec.store_timestamp,
                    ),
                },
                end,
                store_timestamp: rec.store_timestamp,
                key_hashes: index::KeyHashes::of(
                    &rec.topic,
                    index::IndexedProperties::scan(&rec.properties),
                ),
            };
            self.parsed.set(end);
            match self.config.flush_mode {
                FlushMode::Async => {
                    self.dispatch(d)?;
                    self.dispatched.set(end);
                }
                FlushMode::Sync => self.pending.borrow_mut().push_back(d),
            }
        }
    }

    /// After a blank: in ASYNC_FLUSH the padding is visible at once; in SYNC_FLUSH the flusher moves
    /// `dispatched` when it becomes durable.
    fn settle_dispatched(&self, to: u64) {
        if self.config.flush_mode == FlushMode::Async {
            self.dispatched.set(self.dispatched.get().max(to));
        }
    }
}
