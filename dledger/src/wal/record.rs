//! One WAL record: its byte layout, encoder and decoder. Pure functions over byte slices, no I/O.
//!
//! ```text
//! offset  size  field
//! 0       4     len    u32 big-endian: bytes after the crc field (17 + data length)
//! 4       4     crc    u32 big-endian: CRC-32 (IEEE, crc32fast) of the `len` bytes that follow
//! 8       8     index  u64 big-endian
//! 16      8     term   u64 big-endian
//! 24      1     type   u8, see [`RecordType`]
//! 25      len-17 data
//! ```
//!
//! Record types and what `index`/`term`/`data` mean for each:
//! - `Normal` (0), `ConfChange` (1), `ConfChangeV2` (2): a Raft entry (`data` = the entry's payload).
//! - `Meta` (16): the first record of every segment. `index`/`term` = the index and term of the entry just
//!   before the segment's first entry (so `term(first_index - 1)` survives retention); `data` = the commit
//!   index at the time the segment was opened (u64 big-endian).
//! - `Commit` (17): the commit index advanced to `index` (no data). Commit records are advisory: a lost one only
//!   makes recovery start from an older commit index, which Raft re-learns from the leader.
//!
//! Invariant: entry records in the log have consecutive indexes (a conflicting suffix is cut physically before
//! the new entries are written), so recovery can check continuity.

use bytes::{Buf, BufMut, Bytes};

/// Bytes before `data`: len, crc, index, term, type.
pub const HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 1;
/// The part of the header counted by `len` and covered by the CRC.
pub const CHECKED_HEADER_BYTES: usize = 8 + 8 + 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Normal,
    ConfChange,
    ConfChangeV2,
    Meta,
    Commit,
}

impl RecordType {
    pub fn code(self) -> u8 {
        match self {
            RecordType::Normal => 0,
            RecordType::ConfChange => 1,
            RecordType::ConfChangeV2 => 2,
            RecordType::Meta => 16,
            RecordType::Commit => 17,
        }
    }

    pub fn from_code(code: u8) -> Option<RecordType> {
        Some(match code {
            0 => RecordType::Normal,
            1 => RecordType::ConfChange,
            2 => RecordType::ConfChangeV2,
            16 => RecordType::Meta,
            17 => RecordType::Commit,
            _ => return None,
        })
    }

    pub fn is_entry(self) -> bool {
        matches!(
            self,
            RecordType::Normal | RecordType::ConfChange | RecordType::ConfChangeV2
        )
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub index: u64,
    pub term: u64,
    pub kind: RecordType,
    pub data: Bytes,
}

/// Appends the encoded record to `out`; returns its length in bytes.
pub fn encode(out: &mut Vec<u8>, index: u64, term: u64, kind: RecordType, data: &[u8]) -> usize {
    let start = out.len();
    let len = (CHECKED_HEADER_BYTES + data.len()) as u32;
    out.put_u32(len);
    out.put_u32(0); // crc, filled below
    out.put_u64(index);
    out.put_u64(term);
    out.put_u8(kind.code());
    out.put_slice(data);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    out.len() - start
}

/// Why bytes at some offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes remain than the header or than `len` says: a write that did not finish.
    Truncated {
        needed: usize,
        available: usize,
    },
    /// `len` is below the fixed part or above the largest record the log may hold.
    BadLength(u64),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    UnknownType(u8),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => {
                write!(f, "record needs {needed} bytes, {available} remain")
            }
            DecodeError::BadLength(len) => write!(f, "record length {len} is out of range"),
            DecodeError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "crc mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            DecodeError::UnknownType(t) => write!(f, "unknown record type {t}"),
        }
    }
}

/// Decodes the record at the start of `buf` (which shares the file's buffer, so `data` is not copied);
/// returns it and its encoded length. `max_len` bounds `len` before anything is trusted.
pub fn decode(buf: &Bytes, max_len: u64) -> Result<(Record, usize), DecodeError> {
    if buf.len() < 8 {
        return Err(DecodeError::Truncated {
            needed: 8,
            available: buf.len(),
        });
    }
    let mut head = &buf[..8];
    let len = head.get_u32() as u64;
    let stored = head.get_u32();
    if len < CHECKED_HEADER_BYTES as u64 || len > max_len {
        return Err(DecodeError::BadLength(len));
    }
    let total = 8 + len as usize;
    if buf.len() < total {
        return Err(DecodeError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let computed = crc32fast::hash(&buf[8..total]);
    if computed != stored {
        return Err(DecodeError::BadCrc { stored, computed });
    }
    let mut body = &buf[8..total];
    let index = body.get_u64();
    let term = body.get_u64();
    let code = body.get_u8();
    let kind = RecordType::from_code(code).ok_or(DecodeError::UnknownType(code))?;
    let data = buf.slice(8 + CHECKED_HEADER_BYTES..total);
    Ok((
        Record {
            index,
            term,
            kind,
            data,
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let mut out = Vec::new();
        let n = encode(&mut out, 7, 3, RecordType::Normal, b"hello");
        assert_eq!(n, HEADER_BYTES + 5);
        let (r, len) = decode(&Bytes::from(out), 1 << 20).unwrap();
        assert_eq!(len, n);
        assert_eq!(
            (r.index, r.term, r.kind, &r.data[..]),
            (7, 3, RecordType::Normal, &b"hello"[..])
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_crc_and_a_short_buffer_is_truncated() {
        let mut out = Vec::new();
        encode(&mut out, 1, 1, RecordType::Normal, b"abc");
        let mut bad = out.clone();
        bad[20] ^= 1;
        assert!(matches!(
            decode(&Bytes::from(bad), 1 << 20),
            Err(DecodeError::BadCrc { .. })
        ));
        let short = Bytes::copy_from_slice(&out[..out.len() - 1]);
        assert!(matches!(
            decode(&short, 1 << 20),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&Bytes::from_static(&[0; 12]), 1 << 20),
            Err(DecodeError::BadLength(0))
        ));
    }
}
