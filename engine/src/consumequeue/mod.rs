//! Consume queues: per (topic, queue id), the index from queue offset to commit log record.
//!
//! Layout, in `<store>/consumequeue/<topic>/<queueId>/<20-digit start byte>` segments of
//! [`CQ_SEGMENT_ENTRIES`] entries:
//!
//! ```text
//! entry i at byte i * 20:  | commit log offset i64 | size i32 | tag hash i64 |
//! ```
//! The tag hash is Java's `String.hashCode()` of TAGS (0 without tags). Entry i is the message with queue
//! offset i, so lookup is O(1). A zero size never occurs in a written entry: the first zero size is the end.
//!
//! Consume queues are derived data: recovery rebuilds whatever lies past the checkpoint from the commit log.

use std::cell::Cell;

use bytes::{BufMut, Bytes};

use crate::error::{EngineError, Result};
use crate::limits::{CQ_ENTRY_BYTES, CQ_SEGMENT_ENTRIES};
use crate::log::SegmentedLog;

/// Size a placeholder entry claims (never read: its commit log offset is below the log's minimum).
const PLACEHOLDER_SIZE: u32 = 1;

/// Size of one consume queue segment.
pub const CQ_SEGMENT_SIZE_BYTES: u64 = CQ_ENTRY_BYTES * CQ_SEGMENT_ENTRIES;

/// One decoded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub commit_log_offset: u64,
    pub size: u32,
    pub tag_hash: i64,
}

impl CqEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_i64(self.commit_log_offset as i64);
        out.put_i32(self.size as i32);
        out.put_i64(self.tag_hash);
    }

    pub fn decode(b: &[u8]) -> Self {
        let mut o = [0u8; 8];
        o.copy_from_slice(&b[0..8]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[12..20]);
        Self {
            commit_log_offset: i64::from_be_bytes(o) as u64,
            size: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            tag_hash: i64::from_be_bytes(t),
        }
    }
}

pub struct ConsumeQueue {
    pub topic: String,
    pub queue_id: i32,
    log: SegmentedLog,
    /// First entry still backed by the commit log (raised by retention).
    min_index: Cell<u64>,
}

impl ConsumeQueue {
    /// Opens (or creates) the queue in `dir` and finds its end: the first entry with size 0.
    pub async fn open(dir: std::path::PathBuf, topic: &str, queue_id: i32) -> Result<Self> {
        let log = SegmentedLog::open(&dir, CQ_SEGMENT_SIZE_BYTES).await?;
        // The last segments may be allocated ahead of the write head and hold nothing yet: the end is
        // in the last segment whose first entry is written.
        let mut end_index = log
            .segment_bases()
            .first()
            .map_or(0, |b| b / CQ_ENTRY_BYTES);
        for base in log.segment_bases().into_iter().rev() {
            let first = log.read_disk(base, CQ_ENTRY_BYTES as usize).await?;
            if CqEntry::decode(&first).size == 0 {
                continue;
            }
            // Entries are written densely from the segment start: binary search for the first empty one.
            let (mut lo, mut hi) = (1u64, CQ_SEGMENT_ENTRIES);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let e = log
                    .read_disk(base + mid * CQ_ENTRY_BYTES, CQ_ENTRY_BYTES as usize)
                    .await?;
                if CqEntry::decode(&e).size == 0 {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            end_index = base / CQ_ENTRY_BYTES + lo;
            break;
        }
        log.set_position(end_index * CQ_ENTRY_BYTES).await?;
        let min_index = log.min_offset() / CQ_ENTRY_BYTES;
        Ok(Self {
            topic: topic.to_owned(),
            queue_id,
            log,
            min_index: Cell::new(min_index),
        })
    }

    /// Index the next entry gets (the queue's max offset).
    pub fn max_index(&self) -> u64 {
        self.log.written() / CQ_ENTRY_BYTES
    }

    pub fn min_index(&self) -> u64 {
        self.min_index.get()
    }

    /// Appends the entry for queue offset `index`, which must be the next one (queues are dense).
    pub fn append(&self, index: u64, entry: CqEntry) {
        assert_eq!(
            index,
            self.max_index(),
            "consume queue {}@{} must be dense: appending offset {index} at {}",
            self.topic,
            self.queue_id,
            self.max_index()
        );
        assert!(entry.size > 0, "a consume queue entry needs a size");
        self.log
            .append_with(CQ_ENTRY_BYTES as usize, |out| entry.encode(out));
    }

    /// Reads up to `count` entries from `index`, stopping at the end of the queue or of a segment.
    pub async fn entries(&self, index: u64, count: usize) -> Result<Vec<CqEntry>> {
        let max = self.max_index();
        if index >= max || count == 0 {
            return Ok(Vec::new());
        }
        let seg_left = CQ_SEGMENT_ENTRIES - index % CQ_SEGMENT_ENTRIES;
        let n = (count as u64).min(max - index).min(seg_left);
        let bytes: Bytes = self
            .log
            .read(index * CQ_ENTRY_BYTES, (n * CQ_ENTRY_BYTES) as usize)
            .await?;
        Ok(bytes
            .chunks_exact(CQ_ENTRY_BYTES as usize)
            .map(CqEntry::decode)
            .collect())
    }

    pub async fn entry(&self, index: u64) -> Result<Option<CqEntry>> {
        Ok(self.entries(index, 1).await?.into_iter().next())
    }

    /// Drops entries that point at or past `log_offset` (recovery: they are re-dispatched from the log).
    pub async fn truncate_from_log_offset(&self, log_offset: u64) -> Result<()> {
        let (mut lo, mut hi) = (self.min_index(), self.max_index());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = self.entry(mid).await?.ok_or_else(|| EngineError::Corrupt {
                what: "consume queue",
                path: self.log.dir().to_owned(),
                offset: mid * CQ_ENTRY_BYTES,
                reason: "entry vanished during truncation".into(),
            })?;
            if e.commit_log_offset >= log_offset {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let old_end = self.max_index();
        if lo < old_end {
            self.log.set_position(lo * CQ_ENTRY_BYTES).await?;
            self.log
                .zero_range(lo * CQ_ENTRY_BYTES, old_end * CQ_ENTRY_BYTES)
                .await?;
        }
        Ok(())
    }

    /// Raises the min index past entries whose records are gone (commit log min offset `log_min`), and deletes
    /// segments wholly below it.
    pub async fn drop_below_log_offset(&self, log_min: u64) -> Result<()> {
        let (mut lo, mut hi) = (self.min_index(), self.max_index());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.entry(mid).await? {
                Some(e) if e.commit_log_offset < log_min => lo = mid + 1,
                _ => hi = mid,
            }
        }
        self.min_index.set(self.min_index.get().max(lo));
        // A segment goes when all its entries are dead and a later segment holds durable entries: the last
        // segment with entries always stays, so a reopened queue still knows where it ends.
        for base in self.log.segment_bases() {
            if (base + CQ_SEGMENT_SIZE_BYTES) / CQ_ENTRY_BYTES <= lo
                && base + CQ_SEGMENT_SIZE_BYTES < self.log.durable()
            {
                self.log.delete_segment(base).await?;
            }
        }
        Ok(())
    }

    pub async fn flush(&self) -> Result<u64> {
        self.log.flush().await
    }

    pub async fn close(&self) {
        self.log.close().await;
    }
}

impl ConsumeQueue {
    /// A new, empty queue (no files until its first flush).
    pub fn create(dir: std::path::PathBuf, topic: &str, queue_id: i32) -> Result<Self> {
        let log = SegmentedLog::create_empty(dir, CQ_SEGMENT_SIZE_BYTES)?;
        Ok(Self {
            topic: topic.to_owned(),
            queue_id,
            log,
            min_index: Cell::new(0),
        })
    }

    /// A new, empty queue whose first entry will be `first_index` (a slave that starts at its master's
    /// minimum offset sees queues that begin past 0). The entries of its first segment below `first_index`
    /// are filled with placeholders pointing at commit log offset 0, which lies below the log's minimum:
    /// entries are dense from a segment's start as [`Self::open`] needs, and recovery's minimum correction
    /// (`drop_below_log_offset`) skips them like any entry whose record is gone.
    pub async fn create_at(
        dir: std::path::PathBuf,
        topic: &str,
        queue_id: i32,
        first_index: u64,
    ) -> Result<Self> {
        let log = SegmentedLog::create_empty(dir, CQ_SEGMENT_SIZE_BYTES)?;
        let seg_first = first_index - first_index % CQ_SEGMENT_ENTRIES;
        log.set_position(seg_first * CQ_ENTRY_BYTES).await?;
        let placeholder = CqEntry {
            commit_log_offset: 0,
            size: PLACEHOLDER_SIZE,
            tag_hash: 0,
        };
        for _ in seg_first..first_index {
            log.append_with(CQ_ENTRY_BYTES as usize, |out| placeholder.encode(out));
        }
        Ok(Self {
            topic: topic.to_owned(),
            queue_id,
            log,
            min_index: Cell::new(first_index),
        })
    }
}
