//! Finding the valid end of the commit log.
//!
//! From a start offset (the checkpoint, which is always a record boundary), every record's size, magic and
//! body CRC is checked, segment by segment, following blanks to the next segment. The first torn or corrupt
//! record, or the first zeros, ends the log. Past that end, the rest of that segment's written bytes are
//! found (scanning until an all-zero block) so that the caller can zero them: stale bytes must never be
//! readable as records after new ones are written over the start of them.
//!
//! RocketMQ's CRC covers the body only: a record whose topic or properties bytes were damaged but whose
//! size, magic, field lengths and body survive is indistinguishable from a good one. Torn writes zero whole
//! blocks, which breaks the lengths or the body CRC, so they are caught.
//!
//! [`scan_block`] is the decision, plain Rust over bytes; [`scan`] feeds it from disk.

use apogee_net::record::{self, Probe, StoredRecord};
use bytes::Bytes;

use crate::error::Result;
use crate::limits::RECOVERY_READ_BYTES;
use crate::log::{align_down_segment, SegmentedLog};

/// How the valid part of a block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockEnd {
    /// The block ran out mid-record or at its end; read on from the given offset.
    NeedMore,
    /// A blank: the segment is complete, go on at the next one.
    Blank,
    /// Zeros: the log ends here.
    End,
    /// A torn or corrupt record: the log ends here.
    Corrupt(&'static str),
}

/// Checks records in `block` (read from log offset `block_start`, starting on a record boundary) and hands
/// each valid one to `on_record`. Returns how it ended and the offset after the last valid record.
///
/// `block_is_segment_end` says the block reaches the end of its segment, so a record cut off by the block's
/// end is torn rather than waiting for more bytes.
pub fn scan_block(
    block: &Bytes,
    block_start: u64,
    block_is_segment_end: bool,
    on_record: &mut dyn FnMut(StoredRecord, u64),
) -> (BlockEnd, u64) {
    let mut pos = 0usize;
    loop {
        let rest = &block[pos..];
        let at = block_start + pos as u64;
        if rest.len() < 8 {
            // Fewer than 8 bytes can only be the unused end of a segment (a record always leaves room
            // for a blank), or the end of this read.
            if block_is_segment_end {
                return (BlockEnd::End, at);
            }
            return (BlockEnd::NeedMore, at);
        }
        match record::probe(rest, true) {
            Probe::Record(n) => match record::decode_shared(block, pos) {
                Ok((rec, _)) => {
                    on_record(rec, at);
                    pos += n;
                }
                Err(_) => return (BlockEnd::Corrupt("undecodable record"), at),
            },
            Probe::Blank => return (BlockEnd::Blank, at),
            Probe::End => return (BlockEnd::End, at),
            Probe::Corrupt(reason) => {
                // A record whose declared size runs past this block may simply continue in the next read.
                let declared = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let magic_ok = matches!(
                    u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
                    record::MESSAGE_MAGIC | record::MESSAGE_MAGIC_V2
                );
                if magic_ok
                    && declared > 0
                    && declared as usize > rest.len()
                    && !block_is_segment_end
                {
                    return (BlockEnd::NeedMore, at);
                }
                return (BlockEnd::Corrupt(reason), at);
            }
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// Offset after the last valid record: the new write position.
    pub end: u64,
    /// End of bytes written past `end` in its segment (to be zeroed); `end` if there are none.
    pub dirty_end: u64,
    /// Why the scan stopped, if at a corrupt record.
    pub corrupt: Option<&'static str>,
}

/// Scans the log from `start` to its valid end, calling `on_record` for each valid record in order.
pub async fn scan(
    log: &SegmentedLog,
    start: u64,
    on_record: &mut dyn FnMut(StoredRecord, u64),
) -> Result<ScanResult> {
    let segment_size = log.segment_size();
    let bases = log.segment_bases();
    let mut pos = start;
    loop {
        let base = align_down_segment(pos, segment_size);
        if !bases.contains(&base) {
            // Nothing was ever written at `pos` (a roll had not yet created the next segment).
            return Ok(ScanResult {
                end: pos,
                dirty_end: pos,
                corrupt: None,
            });
        }
        let seg_end = base + segment_size;
        let read_len = (RECOVERY_READ_BYTES as u64).min(seg_end - pos) as usize;
        let block = log.read_disk(pos, read_len).await?;
        let at_seg_end = pos + read_len as u64 == seg_end;
        let (how, next) = scan_block(&block, pos, at_seg_end, on_record);
        match how {
            BlockEnd::NeedMore => {
                if next == pos {
                    // A record larger than one read: read exactly it.
                    let declared =
                        i32::from_be_bytes([block[0], block[1], block[2], block[3]]) as u64;
                    let len = declared.min(seg_end - pos) as usize;
                    let whole = log.read_disk(pos, len).await?;
                    let (how, after) = scan_block(&whole, pos, true, on_record);
                    if after == pos {
                        let reason = match how {
                            BlockEnd::Corrupt(r) => Some(r),
                            _ => Some("torn record"),
                        };
                        return finish(log, pos, reason).await;
                    }
                    pos = after;
                } else {
                    pos = next;
                }
            }
            BlockEnd::Blank => pos = seg_end,
            BlockEnd::End => return finish(log, next, None).await,
            BlockEnd::Corrupt(reason) => return finish(log, next, Some(reason)).await,
        }
    }
}

/// Finds how far written bytes reach past `end` in its segment: up to the first all-zero read block.
async fn finish(log: &SegmentedLog, end: u64, corrupt: Option<&'static str>) -> Result<ScanResult> {
    let segment_size = log.segment_size();
    let seg_end = align_down_segment(end, segment_size) + segment_size;
    let mut dirty_end = end;
    let mut pos = end;
    while pos < seg_end {
        let len = (RECOVERY_READ_BYTES as u64).min(seg_end - pos) as usize;
        let block = log.read_disk(pos, len).await?;
        match block.iter().rposition(|b| *b != 0) {
            Some(last) => {
                dirty_end = pos + last as u64 + 1;
                if last + 1 < block.len() && block[last + 1..].len() >= 4096 {
                    break;
                }
            }
            None => break,
        }
        pos += len as u64;
    }
    Ok(ScanResult {
        end,
        dirty_end,
        corrupt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_net::record::{body_crc, NewRecord};

    fn rec(body: &[u8], offset: u64, out: &mut Vec<u8>) {
        let r = NewRecord {
            topic: "T",
            queue_id: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 2,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties: "",
        };
        r.encode(0, offset as i64, body_crc(body), out);
    }

    #[test]
    fn torn_tail_ends_the_scan_at_the_last_whole_record() {
        let mut bytes = Vec::new();
        rec(b"one", 0, &mut bytes);
        let first = bytes.len();
        rec(b"two", first as u64, &mut bytes);
        // A torn O_DIRECT write leaves zeros where the unwritten blocks were: cut into the second record.
        bytes.truncate(first + 40);
        bytes.resize(4096, 0);
        let mut seen = Vec::new();
        let (how, end) = scan_block(&Bytes::from(bytes), 0, true, &mut |r, at| {
            seen.push((r.body, at))
        });
        assert_eq!(seen.len(), 1);
        assert_eq!(end, first as u64);
        assert!(matches!(how, BlockEnd::Corrupt(_)), "{how:?}");
    }

    #[test]
    fn flipped_body_byte_is_caught_by_the_crc() {
        let mut bytes = Vec::new();
        rec(b"payload", 0, &mut bytes);
        let n = bytes.len();
        bytes[n - 3 - 2 - 2] ^= 1; // inside the body
        bytes.resize(4096, 0);
        let (how, end) = scan_block(&Bytes::from(bytes), 0, true, &mut |_, _| {});
        assert_eq!(how, BlockEnd::Corrupt("body CRC mismatch"));
        assert_eq!(end, 0);
    }

    #[test]
    fn a_record_cut_by_the_read_asks_for_more() {
        let mut bytes = Vec::new();
        rec(b"0123456789", 0, &mut bytes);
        let cut = Bytes::from(bytes[..40].to_vec());
        let (how, end) = scan_block(&cut, 0, false, &mut |_, _| {});
        assert_eq!((how, end), (BlockEnd::NeedMore, 0));
    }
}
