//! The in-memory write buffer of a segmented log: plain Rust, no I/O, so its rules are unit-tested alone.
//!
//! The buffer holds everything from the last aligned block at or below the durable offset up to the written
//! offset, as *chunks*: contiguous byte runs that each lie inside one segment. A chunk starts on a
//! [`DIRECT_IO_ALIGN_BYTES`] boundary, so a flush writes whole blocks straight from it; the partial block at
//! the tail stays in the buffer after the flush and is written again, completed, by the next one. That is how
//! O_DIRECT's whole-block writes never lose the tail.
//!
//! ```text
//!   durable          written
//!  ───┼────────────────┼────
//!  |blk|blk|blk|blk|bl… chunk (starts at align_down(durable))
//! ```
//!
//! Offsets here are *log offsets* (bytes since the log began), not file positions.

use std::collections::VecDeque;

use crate::limits::DIRECT_IO_ALIGN_BYTES;

/// Rounds down to the I/O alignment.
pub fn align_down(x: u64) -> u64 {
    x & !(DIRECT_IO_ALIGN_BYTES - 1)
}

/// Rounds up to the I/O alignment.
pub fn align_up(x: u64) -> u64 {
    align_down(x + DIRECT_IO_ALIGN_BYTES - 1)
}

/// Bytes of one segment that sit in memory, from an aligned start.
#[derive(Debug)]
pub struct Chunk {
    pub start: u64,
    pub data: Vec<u8>,
}

impl Chunk {
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// One write a flush issues: `len` bytes of the chunk at `chunk_index`, from the chunk's start. `len` is
/// rounded up to the alignment by the writer, which pads with zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPiece {
    pub chunk_index: usize,
    pub start: u64,
    pub len: usize,
}

/// Where the bytes at an offset are; see [`WriteBuffer::span_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Memory,
    Disk,
    Padding,
}

#[derive(Debug)]
pub struct WriteBuffer {
    chunks: VecDeque<Chunk>,
    segment_size: u64,
    written: u64,
    durable: u64,
}

impl WriteBuffer {
    /// A buffer that continues a log at `position`, given the bytes of its partial last block
    /// (`position - align_down(position)` of them, read back from disk).
    pub fn new(segment_size: u64, position: u64, tail: Vec<u8>) -> Self {
        let start = align_down(position);
        assert_eq!(
            start + tail.len() as u64,
            position,
            "tail must cover align_down(position)..position"
        );
        assert_eq!(
            segment_size % DIRECT_IO_ALIGN_BYTES,
            0,
            "segment size must be aligned"
        );
        let mut chunks = VecDeque::new();
        chunks.push_back(Chunk { start, data: tail });
        Self {
            chunks,
            segment_size,
            written: position,
            durable: position,
        }
    }

    /// Offset the next append lands at.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Offset below which everything is on disk and synced.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Bytes held that are not yet durable.
    pub fn pending_bytes(&self) -> u64 {
        self.written - self.durable
    }

    /// Bytes left in the segment the next append lands in.
    pub fn segment_remaining(&self) -> u64 {
        self.segment_size - self.written % self.segment_size
    }

    /// Appends `len` bytes written by `fill`, which must push exactly `len` bytes; returns their offset.
    ///
    /// An append never crosses a segment boundary: callers pad the segment first ([`Self::skip_to_next_segment`]).
    pub fn append_with(&mut self, len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> u64 {
        assert!(
            len as u64 <= self.segment_remaining(),
            "append of {len} bytes at {} crosses a segment boundary ({} left)",
            self.written,
            self.segment_remaining()
        );
        // At a segment boundary the bytes belong to the next file: they need a chunk of their own unless
        // an empty one already starts here.
        if self.written.is_multiple_of(self.segment_size)
            && self.chunks.back().is_some_and(|c| c.start != self.written)
        {
            self.chunks.push_back(Chunk {
                start: self.written,
                data: Vec::new(),
            });
        }
        let chunk = self
            .chunks
            .back_mut()
            .expect("a write buffer always has a chunk");
        let before = chunk.data.len();
        fill(&mut chunk.data);
        assert_eq!(
            chunk.data.len() - before,
            len,
            "fill wrote a different length than announced"
        );
        let at = self.written;
        self.written += len as u64;
        at
    }

    /// Appends bytes; returns their offset.
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        self.append_with(bytes.len(), |v| v.extend_from_slice(bytes))
    }

    /// Moves the write position to the start of the next segment (the caller has written its blank).
    pub fn skip_to_next_segment(&mut self) {
        let next = self.written + self.segment_remaining();
        self.written = next;
        self.chunks.push_back(Chunk {
            start: next,
            data: Vec::new(),
        });
    }

    /// The bytes `[offset, offset + len)` if the buffer holds all of them.
    pub fn read(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let end = offset + len as u64;
        if end > self.written {
            return None;
        }
        self.chunks
            .iter()
            .find(|c| c.start <= offset && end <= c.end())
            .map(|c| {
                let from = (offset - c.start) as usize;
                &c.data[from..from + len]
            })
    }

    /// For a range that starts below a chunk and ends inside it: where the chunk starts, and the bytes the
    /// chunk holds of the range. The part below is durable and on disk (a chunk starts at or below the durable
    /// offset, or at a segment start, and ranges never cross segments).
    pub fn read_split(&self, offset: u64, len: usize) -> Option<(u64, &[u8])> {
        let end = offset + len as u64;
        if end > self.written {
            return None;
        }
        self.chunks
            .iter()
            .find(|c| offset < c.start && c.start < end && end <= c.end())
            .map(|c| {
                assert!(
                    c.start <= self.durable.max(c.start),
                    "split read below a non-durable chunk start"
                );
                (c.start, &c.data[..(end - c.start) as usize])
            })
    }

    /// What lies at `offset` (below the written offset) and up to where, for shipping the log as it is:
    /// bytes held in memory (up to the end of their chunk), bytes only on disk (below the memory start,
    /// all durable), or the padding after a segment's blank, which was never written and reads as zeros.
    /// `None` at or past the written offset.
    pub fn span_at(&self, offset: u64) -> Option<(Span, u64)> {
        if offset >= self.written {
            return None;
        }
        if let Some(c) = self
            .chunks
            .iter()
            .find(|c| c.start <= offset && offset < c.end())
        {
            return Some((Span::Memory, c.end()));
        }
        if offset < self.memory_start() {
            return Some((Span::Disk, self.memory_start()));
        }
        let next = self
            .chunks
            .iter()
            .map(|c| c.start)
            .find(|s| *s > offset)
            .unwrap_or(self.written);
        Some((Span::Padding, next))
    }

    /// The lowest offset held in memory.
    pub fn memory_start(&self) -> u64 {
        self.chunks.front().map_or(self.written, |c| c.start)
    }

    /// The writes a flush of everything written so far must issue, and the offset it makes durable.
    pub fn flush_plan(&self) -> (Vec<FlushPiece>, u64) {
        let target = self.written;
        // A chunk that ends at or below the durable offset is on disk already; every other one is written
        // whole, from its aligned start (which re-writes the partial tail block).
        let pieces = self
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.data.is_empty() && c.end() > self.durable)
            .map(|(i, c)| FlushPiece {
                chunk_index: i,
                start: c.start,
                len: c.data.len(),
            })
            .collect();
        (pieces, target)
    }

    pub fn chunk(&self, index: usize) -> &Chunk {
        &self.chunks[index]
    }

    /// Records that everything below `target` (from [`Self::flush_plan`]) is durable, and drops what no
    /// longer needs to stay: whole chunks before the last, and the last chunk's whole blocks.
    pub fn flushed(&mut self, target: u64) {
        assert!(
            target <= self.written,
            "flushed past the written offset: {target} > {}",
            self.written
        );
        assert!(
            target >= self.durable,
            "durable offset went back: {target} < {}",
            self.durable
        );
        self.durable = target;
        while self.chunks.len() > 1 && self.chunks[0].end() <= target {
            self.chunks.pop_front();
        }
        let first = self
            .chunks
            .front_mut()
            .expect("a write buffer always has a chunk");
        let keep_from = align_down(target).max(first.start);
        if keep_from > first.start && keep_from <= first.end() {
            first.data.drain(..(keep_from - first.start) as usize);
            first.start = keep_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_block_stays_in_memory_after_a_flush() {
        let mut b = WriteBuffer::new(65536, 0, Vec::new());
        b.append(&[1u8; 5000]);
        let (pieces, target) = b.flush_plan();
        assert_eq!(
            pieces,
            vec![FlushPiece {
                chunk_index: 0,
                start: 0,
                len: 5000
            }]
        );
        b.flushed(target);
        assert_eq!(b.durable(), 5000);
        assert_eq!(b.memory_start(), 4096);
        assert_eq!(b.read(4096, 904), Some(&[1u8; 904][..]));
        b.append(&[2u8; 10]);
        let (pieces, _) = b.flush_plan();
        assert_eq!(
            pieces,
            vec![FlushPiece {
                chunk_index: 0,
                start: 4096,
                len: 914
            }]
        );
    }

    #[test]
    fn appends_after_a_segment_skip_form_a_new_chunk() {
        let mut b = WriteBuffer::new(65536, 65536 - 100, vec![9u8; 4096 - 100]);
        b.append(&[1u8; 50]);
        b.skip_to_next_segment();
        assert_eq!(b.written(), 65536);
        assert_eq!(b.append(&[3u8; 10]), 65536);
        let (pieces, target) = b.flush_plan();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].start, 65536);
        b.flushed(target);
        assert_eq!(b.memory_start(), 65536);
        assert!(b.read(65536, 10).is_some());
    }

    #[test]
    fn spans_tell_memory_disk_and_the_padding_after_a_blank() {
        let mut b = WriteBuffer::new(64 * 1024, 0, Vec::new());
        b.append(&[1u8; 10_000]);
        let (plan, target) = b.flush_plan();
        assert!(!plan.is_empty());
        b.flushed(target);
        b.append(&[2u8; 100]);
        b.skip_to_next_segment();
        b.append(&[3u8; 10]);
        assert_eq!(
            b.span_at(0),
            Some((Span::Disk, 8192)),
            "whole flushed blocks left memory"
        );
        assert_eq!(b.span_at(9_000), Some((Span::Memory, 10_100)));
        assert_eq!(b.span_at(10_100), Some((Span::Padding, 64 * 1024)));
        assert_eq!(b.span_at(64 * 1024), Some((Span::Memory, 64 * 1024 + 10)));
        assert_eq!(b.span_at(64 * 1024 + 10), None);
    }

    #[test]
    #[should_panic(expected = "crosses a segment boundary")]
    fn an_append_may_not_cross_a_segment() {
        let mut b = WriteBuffer::new(65536, 65530, vec![0u8; 4096 - 6]);
        b.append(&[0u8; 7]);
    }

    #[test]
    fn appends_written_during_a_flush_stay_for_the_next() {
        let mut b = WriteBuffer::new(65536, 0, Vec::new());
        b.append(&[1u8; 9000]);
        let (_, target) = b.flush_plan();
        b.append(&[2u8; 100]); // arrives while the flush is in flight
        b.flushed(target);
        assert_eq!(b.durable(), 9000);
        assert_eq!(b.pending_bytes(), 100);
        assert_eq!(b.read(9000, 100), Some(&[2u8; 100][..]));
    }
}
