//! The commit log: every message of a shard, in arrival order, in RocketMQ's record layout
//! ([`apogee_net::record`] draws it), on a [`SegmentedLog`] in `<store>/commitlog/`.
//!
//! - A record never spans two segments. When a record and an 8-byte blank would not fit in what is left of
//!   a segment, the rest of the segment is marked with a blank (`[remaining i32][0xCBD43194]`, RocketMQ's
//!   `END_FILE_MIN_BLANK_LENGTH` rule) and the record starts the next segment.
//! - PHYSICALOFFSET is the record's log offset; QUEUEOFFSET is given by the caller (the engine owns the
//!   per-queue counters).
//! - [`recovery`] finds the valid end of the log after a crash.

pub mod recovery;

use apogee_net::record::{self, NewRecord, BLANK_MIN_BYTES};

use crate::error::{EngineError, Result};
use crate::log::SegmentedLog;

pub struct CommitLog {
    pub log: SegmentedLog,
}

impl CommitLog {
    /// Appends one record with its queue offset; returns its physical offset and size. Never waits.
    pub fn append(&self, rec: &NewRecord<'_>, queue_offset: i64, crc: u32) -> Result<(u64, usize)> {
        let len = rec.encoded_len();
        let segment = self.log.segment_size();
        if (len + BLANK_MIN_BYTES) as u64 > segment {
            return Err(EngineError::RecordLargerThanSegment { size: len, segment });
        }
        let remaining = self.log.segment_remaining();
        if (len + BLANK_MIN_BYTES) as u64 > remaining {
            let remaining = remaining as usize;
            self.log
                .append_with(BLANK_MIN_BYTES, |out| record::encode_blank(remaining, out));
            self.log.skip_to_next_segment();
        }
        let at = self.log.written();
        let offset = self
            .log
            .append_with(len, |out| rec.encode(queue_offset, at as i64, crc, out));
        debug_assert_eq!(offset, at);
        Ok((offset, len))
    }

    /// Reads one record by physical offset and size.
    pub async fn read(&self, offset: u64, size: usize) -> Result<bytes::Bytes> {
        self.log.read(offset, size).await
    }
}
