//! The read path: queue reads (with tag and filter checks), records by physical offset, store times,
//! offset search by time, and lookups through the key index.

use apogee_net::record;
use bytes::{Bytes, BytesMut};

use crate::consumequeue::CqEntry;
use crate::error::{EngineError, Result};
use crate::index;
use crate::limits::*;

use super::{Engine, QueueRead, ReadStatus, RecordFilter};

impl Engine {
    /// Messages of `topic` with `key` (a KEYS token or the UNIQ_KEY) stored within `[from_ms, to_ms]`,
    /// newest first, at most `max`: the stored records, verified against the commit log.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bytes>> {
        let max = max.clamp(1, READ_MESSAGES_MAX);
        // Ask for more candidates than wanted: hash collisions are filtered out below. The in-memory part is
        // searched under a short borrow; sealed files are read after it is released (no borrow crosses an
        // await), through their own `Rc`s.
        let want = max * 4;
        let hash = index::key_hash(topic, key);
        let (mut candidates, sealed) = {
            let idx = self.index.borrow();
            (
                idx.memory_candidates(hash, from_ms, to_ms, want),
                idx.sealed_newest_first(),
            )
        };
        for file in sealed {
            if candidates.len() >= want {
                break;
            }
            file.candidates(hash, from_ms, to_ms, want, &mut candidates)
                .await?;
        }
        let mut out = Vec::new();
        for offset in candidates {
            if out.len() >= max {
                break;
            }
            let Some(bytes) = self.read_record(offset).await? else {
                continue;
            };
            let Ok(rec) = record::decode(&bytes) else {
                continue;
            };
            if rec.topic == topic && index::keys_of(&rec.properties).any(|k| k == key) {
                out.push(bytes);
            }
        }
        Ok(out)
    }

    /// Commit log offset up to which messages are indexed, and the newest store time indexed.
    pub fn index_progress(&self) -> (u64, i64) {
        self.index.borrow().progress()
    }

    /// Reads up to `max_messages` / `max_bytes` of a queue from `offset`, skipping messages whose tag hash
    /// `filter` rejects.
    pub async fn read_queue(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_messages: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
    ) -> Result<QueueRead> {
        self.read_queue_filtered(
            topic,
            queue_id,
            offset,
            max_messages,
            max_bytes,
            filter,
            None,
        )
        .await
    }

    /// [`Self::read_queue`] with a second filter over each stored record's bytes (an SQL92 selector
    /// looks at its properties), asked only for entries whose tag hash passed `filter`. A record it
    /// refuses is skipped like a tag mismatch: it is read but not in the answer. Records on disk (and every
    /// record, with a record filter) are read [`FILTER_READ_WINDOW_BYTES`] at a time: one O_DIRECT read
    /// serves the entries that lie in that window (the filter looks at records where they lie in it), and
    /// only the records kept are copied into the answer. Records in the write buffer are copied from it.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_queue_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_messages: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
        record_filter: Option<&RecordFilter<'_>>,
    ) -> Result<QueueRead> {
        let max_messages = max_messages.clamp(1, READ_MESSAGES_MAX);
        let max_bytes = max_bytes.clamp(1, READ_BYTES_MAX);
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(QueueRead {
                status: ReadStatus::NoMessageInQueue,
                body: Bytes::new(),
                messages: 0,
                next_offset: 0,
                min_offset: 0,
                max_offset: 0,
                last_log_offset: 0,
            });
        };
        let (min, max) = (q.min_index(), q.max_index());
        let mut read = QueueRead {
            status: ReadStatus::Found,
            body: Bytes::new(),
            messages: 0,
            next_offset: offset,
            min_offset: min,
            max_offset: max,
            last_log_offset: 0,
        };
        if max == 0 {
            read.status = ReadStatus::NoMessageInQueue;
            read.next_offset = 0;
            return Ok(read);
        }
        if offset < min {
            read.status = ReadStatus::OffsetTooSmall;
            read.next_offset = min;
            return Ok(read);
        }
        if offset == max {
            read.status = ReadStatus::OffsetOverflowOne;
            return Ok(read);
        }
        if offset > max {
            read.status = ReadStatus::OffsetOverflowBadly;
            // RocketMQ 5's DefaultMessageStore: go on from the end (4.x sent a queue whose minimum is 0
            // back to 0, re-delivering everything).
            read.next_offset = max;
            return Ok(read);
        }
        let mut body = BytesMut::new();
        let mut next = offset;
        // Entries whose records retention deleted while this read ran (the queue minimum is raised before
        // files go, but a read may have started earlier): skipped, and reported as "offset moved".
        let mut dead = 0usize;
        // Scan a bounded number of entries, so a filter that matches nothing cannot hold the shard.
        let scan_max = (max_messages * 16).max(READ_MESSAGES_MAX) as u64;
        // The read window: its bytes and the log offset they start at.
        let (mut window, mut window_start) = (BytesMut::new(), 0u64);
        while next < max && next - offset < scan_max && read.messages < max_messages {
            let want = (max_messages - read.messages).min(256);
            let entries = match q.entries(next, want).await {
                Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                    read.status = ReadStatus::OffsetTooSmall;
                    read.next_offset = q.min_index();
                    read.min_offset = q.min_index();
                    return Ok(read);
                }
                r => r?,
            };
            if entries.is_empty() {
                break;
            }
            for e in entries {
                if e.size == 0 {
                    return Err(EngineError::Corrupt {
                        what: "consume queue entry",
                        path: self.queue_dir(topic, queue_id),
                        offset: next * CQ_ENTRY_BYTES,
                        reason: "entry below the queue's max offset has size 0".into(),
                    });
                }
                if !filter(e.tag_hash) {
                    next += 1;
                    continue;
                }
                let (start, size) = (e.commit_log_offset, e.size as usize);
                // A record still in the write buffer is copied from there alone; one on disk is read
                // through the window, so the records of a pull that lie close together in the log cost one
                // O_DIRECT read instead of one each (the window never reaches into the buffer).
                let in_window = record_filter.is_some()
                    || start + size as u64 <= self.commitlog.log.memory_start();
                if in_window
                    && (start < window_start
                        || start + size as u64 > window_start + window.len() as u64)
                {
                    window.clear();
                    match self.read_window(start, size, &mut window).await {
                        Ok(()) => window_start = start,
                        Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                            dead += 1;
                            next += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if in_window {
                    let at = (start - window_start) as usize;
                    let record = &window[at..at + size];
                    if record_filter.is_some_and(|keep| !keep(record)) {
                        next += 1;
                        continue;
                    }
                    if read.messages > 0 && body.len() + size > max_bytes {
                        read.next_offset = next;
                        read.body = body.freeze();
                        return Ok(read);
                    }
                    body.extend_from_slice(record);
                } else {
                    if read.messages > 0 && body.len() + size > max_bytes {
                        read.next_offset = next;
                        read.body = body.freeze();
                        return Ok(read);
                    }
                    match self.commitlog.log.read_into(start, size, &mut body).await {
                        Ok(()) => {}
                        Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                            dead += 1;
                            next += 1;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                if read.messages == 0 {
                    // Sized once for the whole answer (the records of a queue are alike), not grown
                    // record by record.
                    let left = (max - offset).min(max_messages as u64) as usize;
                    body.reserve((size * left).min(max_bytes));
                }
                read.messages += 1;
                read.last_log_offset = start;
                next += 1;
                if read.messages >= max_messages {
                    break;
                }
            }
        }
        read.next_offset = next;
        read.body = body.freeze();
        if read.messages == 0 {
            read.status = if dead > 0 {
                read.min_offset = q.min_index().max(next);
                ReadStatus::OffsetTooSmall
            } else {
                ReadStatus::NoMatchedMessage
            };
        }
        Ok(read)
    }

    /// Reads the log from `start` into `window`: [`FILTER_READ_WINDOW_BYTES`], or less at the end of the
    /// segment, of what is dispatched or of what is on disk, and never less than the record of `size` bytes
    /// there. Bytes
    /// past that record are a read-ahead only: if they cannot be read (the unwritten tail after a
    /// segment's blank), the record alone is read.
    pub(super) async fn read_window(
        &self,
        start: u64,
        size: usize,
        window: &mut BytesMut,
    ) -> Result<()> {
        let log = &self.commitlog.log;
        let segment_end = start - start % log.segment_size() + log.segment_size();
        // Never past what is on disk alone: bytes in the write buffer are copied from there, record by
        // record, and a window reaching into it would copy them twice.
        let end = segment_end
            .min(self.dispatched.get())
            .min(log.memory_start())
            .min(start + FILTER_READ_WINDOW_BYTES as u64);
        let len = (end.saturating_sub(start) as usize).max(size);
        match log.read_into(start, len, window).await {
            Ok(()) => Ok(()),
            Err(e @ EngineError::Deleted { .. }) => Err(e),
            Err(_) if len > size => {
                window.clear();
                log.read_into(start, size, window).await
            }
            Err(e) => Err(e),
        }
    }

    /// Up to `max` consume queue entries of a queue from `offset` (fewer at its end; none for an unknown
    /// queue or an offset outside it). The delay scheduler reads delivery times from them.
    pub async fn queue_entries(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<CqEntry>> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(Vec::new());
        };
        if offset < q.min_index() || offset >= q.max_index() {
            return Ok(Vec::new());
        }
        q.entries(offset, max.clamp(1, READ_MESSAGES_MAX)).await
    }

    /// The stored record at a physical offset (view by message id), if one starts there.
    pub async fn read_record(&self, physical_offset: u64) -> Result<Option<Bytes>> {
        let log = &self.commitlog.log;
        // The offset comes from a request (a message id): checked, so u64::MAX is "not found", not a wrap.
        let dispatched = self.dispatched.get();
        if physical_offset < log.min_offset()
            || physical_offset
                .checked_add(8)
                .is_none_or(|end| end > dispatched)
        {
            return Ok(None);
        }
        let head = match log.read(physical_offset, 8).await {
            Err(EngineError::Deleted { .. }) => return Ok(None),
            r => r?,
        };
        let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let magic = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if size <= 0 || (magic != record::MESSAGE_MAGIC && magic != record::MESSAGE_MAGIC_V2) {
            return Ok(None);
        }
        if physical_offset
            .checked_add(size as u64)
            .is_none_or(|end| end > self.dispatched.get())
        {
            return Ok(None);
        }
        match log.read(physical_offset, size as usize).await {
            Err(EngineError::Deleted { .. }) => Ok(None),
            r => r.map(Some),
        }
    }

    /// Store timestamp of the message at a queue offset.
    pub async fn store_time(&self, topic: &str, queue_id: i32, offset: u64) -> Result<Option<i64>> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(None);
        };
        let Some(e) = q.entry(offset).await? else {
            return Ok(None);
        };
        let rec = match self
            .commitlog
            .read(e.commit_log_offset, e.size as usize)
            .await
        {
            Err(EngineError::Deleted { .. }) => return Ok(None),
            r => r?,
        };
        let r = record::decode(&rec).map_err(|err| EngineError::Corrupt {
            what: "commit log record",
            path: self.commitlog.log.dir().to_owned(),
            offset: e.commit_log_offset,
            reason: err.to_string(),
        })?;
        Ok(Some(r.store_timestamp))
    }

    /// The first queue offset whose message was stored at or after `timestamp_ms` (the max offset if none).
    pub async fn search_offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> Result<u64> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (q.min_index(), q.max_index());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.store_time(topic, queue_id, mid).await? {
                Some(t) if t < timestamp_ms => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }
}
