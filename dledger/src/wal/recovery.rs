//! Recovery of one segment's bytes: which records are good, where a torn tail starts, what is corruption.
//! Plain functions over a byte buffer (no I/O), so every case is unit-tested.
//!
//! The rule that separates a torn tail from corruption: in the **last** segment, a record that cannot be
//! decoded is a torn write when nothing decodable could follow it — its claimed length runs past the end of
//! the file, or every byte from it to the end of the file is zero (a page that was allocated but never
//! written). The tail is then cut at that record's start. Any other undecodable record (a bad CRC or length
//! with bytes after it, or any bad record in a sealed, non-last segment) is corruption, reported with the
//! file and the record's offset: silently dropping entries in the middle of a Raft log would un-commit them.

use std::path::Path;

use bytes::Bytes;

use super::record::{self, DecodeError, Record, RecordType};
use crate::error::DledgerError;

/// What a segment holds.
#[derive(Debug)]
pub struct ScannedSegment {
    /// From the Meta record: the entry before this segment's first entry.
    pub prev_index: u64,
    pub prev_term: u64,
    /// Highest commit index seen (Meta or Commit records).
    pub commit: u64,
    /// The entries, in order, with the offset of each record.
    pub entries: Vec<(Record, u64)>,
    /// Bytes of the segment that are good; less than the file's length when a torn tail must be cut.
    pub valid_bytes: u64,
    /// Why the tail was cut, when it was.
    pub torn: Option<String>,
}

/// Scans one segment. `None` means the last segment holds not even a whole Meta record (a crash right after it
/// was created): the caller removes it.
pub fn scan(
    path: &Path,
    buf: &Bytes,
    is_last: bool,
    max_record_bytes: u64,
) -> Result<Option<ScannedSegment>, DledgerError> {
    let corrupt = |offset: u64, reason: String| DledgerError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut offset = 0usize;
    let mut seg: Option<ScannedSegment> = None;
    while offset < buf.len() {
        let rest = buf.slice(offset..);
        match record::decode(&rest, max_record_bytes) {
            Ok((rec, len)) => {
                match (&mut seg, rec.kind) {
                    (None, RecordType::Meta) => {
                        let commit = meta_commit(&rec).ok_or_else(|| {
                            corrupt(offset as u64, "meta record without a commit index".into())
                        })?;
                        seg = Some(ScannedSegment {
                            prev_index: rec.index,
                            prev_term: rec.term,
                            commit,
                            entries: Vec::new(),
                            valid_bytes: 0,
                            torn: None,
                        });
                    }
                    (None, _) => {
                        return Err(corrupt(
                            0,
                            format!("segment starts with a {:?} record, not Meta", rec.kind),
                        ))
                    }
                    (Some(_), RecordType::Meta) => {
                        return Err(corrupt(
                            offset as u64,
                            "a second Meta record inside a segment".into(),
                        ))
                    }
                    (Some(s), RecordType::Commit) => s.commit = s.commit.max(rec.index),
                    (Some(s), _) => {
                        let expected = s.prev_index + s.entries.len() as u64 + 1;
                        if rec.index != expected {
                            return Err(corrupt(
                                offset as u64,
                                format!("entry index {} where {expected} was expected", rec.index),
                            ));
                        }
                        let prev_term = s.entries.last().map_or(s.prev_term, |(r, _)| r.term);
                        if rec.term < prev_term {
                            return Err(corrupt(
                                offset as u64,
                                format!(
                                    "entry {} has term {} below the previous entry's {prev_term}",
                                    rec.index, rec.term
                                ),
                            ));
                        }
                        s.entries.push((rec, offset as u64));
                    }
                }
                offset += len;
                if let Some(s) = &mut seg {
                    s.valid_bytes = offset as u64;
                }
            }
            Err(e) => {
                if is_last && is_torn(&rest, &e) {
                    return Ok(seg.map(|mut s| {
                        s.torn = Some(format!("{e} at offset {offset}"));
                        s
                    }));
                }
                return Err(corrupt(offset as u64, e.to_string()));
            }
        }
    }
    match seg {
        Some(s) => Ok(Some(s)),
        None if is_last => Ok(None),
        None => Err(corrupt(0, "empty sealed segment".into())),
    }
}

fn is_torn(rest: &Bytes, e: &DecodeError) -> bool {
    matches!(e, DecodeError::Truncated { .. }) || rest.iter().all(|b| *b == 0)
}

fn meta_commit(rec: &Record) -> Option<u64> {
    let d: [u8; 8] = rec.data.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(prev: u64, entries: &[(u64, u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        record::encode(&mut out, prev, 1, RecordType::Meta, &5u64.to_be_bytes());
        for (i, t, d) in entries {
            record::encode(&mut out, *i, *t, RecordType::Normal, d);
        }
        out
    }

    #[test]
    fn a_torn_last_record_is_cut_in_the_last_segment_only() {
        let mut buf = segment(0, &[(1, 1, b"a"), (2, 1, b"b")]);
        let good = buf.len();
        buf.extend_from_slice(&segment(0, &[])[..10]); // a half-written record
        let s = scan(Path::new("x"), &Bytes::from(buf.clone()), true, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((s.entries.len(), s.valid_bytes), (2, good as u64));
        assert!(s.torn.is_some());
        let err = scan(Path::new("x"), &Bytes::from(buf), false, 1 << 20).unwrap_err();
        assert!(
            matches!(err, DledgerError::Corrupt { offset, .. } if offset == good as u64),
            "{err}"
        );
    }

    #[test]
    fn a_bad_crc_followed_by_records_is_corruption_naming_the_offset() {
        let mut buf = segment(0, &[(1, 1, b"a"), (2, 1, b"b"), (3, 1, b"c")]);
        let second = segment(0, &[(1, 1, b"a")]).len();
        buf[second + 20] ^= 0xff;
        let err = scan(Path::new("seg"), &Bytes::from(buf), true, 1 << 20).unwrap_err();
        assert!(
            matches!(err, DledgerError::Corrupt { offset, ref reason, .. } if offset == second as u64 && reason.contains("crc")),
            "{err}"
        );
    }

    #[test]
    fn zeroed_tail_is_torn_and_a_gap_in_indexes_is_corruption() {
        let mut buf = segment(4, &[(5, 2, b"a")]);
        let good = buf.len() as u64;
        buf.extend_from_slice(&[0u8; 100]);
        let s = scan(Path::new("x"), &Bytes::from(buf), true, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((s.prev_index, s.valid_bytes, s.commit), (4, good, 5));
        let gap = segment(4, &[(5, 2, b"a"), (7, 2, b"b")]);
        assert!(scan(Path::new("x"), &Bytes::from(gap), true, 1 << 20).is_err());
    }
}
