//! The sidecar Raft log: entries, the commit index and (term, vote), in `NodeConfig::wal_dir`.
//!
//! Files:
//! - `<first index, 20 digits>.wal`: segments, each starting with a Meta record and then entry/commit records
//!   (layout in [`record`]). A segment is rolled once the next record would pass `wal_segment_bytes` (a single
//!   entry larger than that gets a segment of its own).
//! - `hardstate`: (term, vote), replaced atomically (layout in [`hardstate`]).
//!
//! Invariants:
//! - entry indexes are consecutive across all segments; segment k+1's Meta names segment k's last entry;
//! - a conflicting suffix is removed physically (later segments deleted, the segment holding the first
//!   conflicting index cut at that record) before the new entries are written, so the log on disk is always
//!   one Raft log, never a log plus overrides;
//! - only whole segments are deleted by retention, and never the active (last) one.
//!
//! Everything here is blocking `std::fs` I/O: [`Wal`] is `Send` and the driver moves it into the executor's
//! blocking pool for each call (see `crate::driver`), so the shard thread never waits on the disk.

pub mod hardstate;
pub mod record;
pub mod recovery;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft::eraftpb::{Entry, EntryType};

use crate::error::DledgerError;
use record::RecordType;

const SEGMENT_SUFFIX: &str = ".wal";

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    /// The entry before the first retained one (0/0 for a log that never lost a segment).
    pub prev_index: u64,
    pub prev_term: u64,
    /// Entries from `keep_from` (see [`Wal::open`]) on; their payloads own their bytes (no segment buffer is
    /// kept alive by them).
    pub entries: Vec<Entry>,
    /// Terms of the retained entries below `keep_from`, run-length: (first index of the run, term).
    pub cold_terms: Vec<(u64, u64)>,
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
    /// Torn tails that were cut, for the log.
    pub cut: Vec<String>,
}

/// One durable step of the driver: what a Ready asks to persist.
#[derive(Debug, Default)]
pub struct PersistBatch {
    /// Changed (term, vote), written before anything else.
    pub term_vote: Option<(u64, u64)>,
    /// New entries; the first may be at or below the last index (a conflicting suffix to replace).
    pub entries: Vec<Entry>,
    /// The commit index, when it advanced.
    pub commit: Option<u64>,
}

struct Segment {
    path: PathBuf,
    prev_index: u64,
    prev_term: u64,
    /// Offset of each entry record in the file: entry `prev_index + 1 + k` is at `offsets[k]`.
    offsets: Vec<u64>,
    terms: Vec<u64>,
    bytes: u64,
}

impl Segment {
    fn last_index(&self) -> u64 {
        self.prev_index + self.offsets.len() as u64
    }
    fn last_term(&self) -> u64 {
        self.terms.last().copied().unwrap_or(self.prev_term)
    }
}

/// The open log (see the module docs).
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    sync: bool,
    max_record_bytes: u64,
    /// Oldest first; never empty; the last is the one appended to.
    segments: Vec<Segment>,
    active: File,
    commit: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DledgerError + '_ {
    move |source| DledgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), DledgerError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{first_index:020}{SEGMENT_SUFFIX}"))
}

/// Segment files in `dir`, by first index.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, DledgerError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Opens (recovering) or creates the log in `dir`. Blocking. Every record is read and checked; only entries
    /// from `keep_from` on are returned whole (the driver keeps those in memory), older ones as terms.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        sync: bool,
        max_record_bytes: u64,
        keep_from: u64,
    ) -> Result<(Wal, Recovered), DledgerError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let (term, vote) = hardstate::load(dir)?;
        let files = list_segments(dir)?;
        let mut segments: Vec<Segment> = Vec::new();
        let mut entries = Vec::new();
        let mut commit = 0;
        let mut cut = Vec::new();
        let mut cold_terms = Vec::new();
        let n = files.len();
        for (k, (first, path)) in files.into_iter().enumerate() {
            let is_last = k + 1 == n;
            let buf = Bytes::from(std::fs::read(&path).map_err(io_err(&path))?);
            let Some(scanned) = recovery::scan(&path, &buf, is_last, max_record_bytes)? else {
                cut.push(format!("{}: no whole Meta record, removed", path.display()));
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                sync_dir(dir)?;
                continue;
            };
            if scanned.prev_index + 1 != first {
                return Err(DledgerError::Corrupt {
                    path,
                    offset: 0,
                    reason: format!(
                        "named for index {first} but its Meta record says it follows {}",
                        scanned.prev_index
                    ),
                });
            }
            if let Some(prev) = segments.last() {
                if prev.last_index() != scanned.prev_index || prev.last_term() != scanned.prev_term
                {
                    return Err(DledgerError::Corrupt {
                        path,
                        offset: 0,
                        reason: format!(
                            "follows index {} term {} but the previous segment ends at index {} term {}",
                            scanned.prev_index,
                            scanned.prev_term,
                            prev.last_index(),
                            prev.last_term()
                        ),
                    });
                }
            }
            if let Some(reason) = &scanned.torn {
                cut.push(format!("{}: torn tail cut ({reason})", path.display()));
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(scanned.valid_bytes).map_err(io_err(&path))?;
                f.sync_all().map_err(io_err(&path))?;
            }
            commit = commit.max(scanned.commit);
            let mut seg = Segment {
                path,
                prev_index: scanned.prev_index,
                prev_term: scanned.prev_term,
                offsets: Vec::with_capacity(scanned.entries.len()),
                terms: Vec::with_capacity(scanned.entries.len()),
                bytes: scanned.valid_bytes,
            };
            for (rec, offset) in scanned.entries {
                seg.offsets.push(offset);
                seg.terms.push(rec.term);
                if rec.index >= keep_from {
                    let mut rec = rec;
                    rec.data = Bytes::copy_from_slice(&rec.data);
                    entries.push(to_entry(rec));
                } else if cold_terms.last().is_none_or(|(_, t)| *t != rec.term) {
                    cold_terms.push((rec.index, rec.term));
                }
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(create_segment(dir, 0, 0, 0)?);
            sync_dir(dir)?;
        }
        let last = segments.last().map_or(0, Segment::last_index);
        let prev_index = segments[0].prev_index;
        let prev_term = segments[0].prev_term;
        // Segments are deleted only below what was applied, hence committed: whatever the last commit record
        // says, everything before the first retained entry was committed (raft-rs needs commit >= that).
        commit = commit.max(prev_index);
        if commit > last {
            cut.push(format!(
                "commit index {commit} beyond the last entry {last}: lowered"
            ));
            commit = last;
        }
        let active_path = segments[segments.len() - 1].path.clone();
        let active = OpenOptions::new()
            .write(true)
            .open(&active_path)
            .map_err(io_err(&active_path))?;
        let wal = Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            sync,
            max_record_bytes,
            segments,
            active,
            commit,
        };
        Ok((
            wal,
            Recovered {
                prev_index,
                prev_term,
                entries,
                cold_terms,
                term,
                vote,
                commit,
                cut,
            },
        ))
    }

    pub fn first_index(&self) -> u64 {
        self.segments[0].prev_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.segments[self.segments.len() - 1].last_index()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Persists one batch (blocking): (term, vote), then the cut of a conflicting suffix, the entries, the
    /// commit index, and with `sync` an fdatasync of what was written.
    pub fn persist(&mut self, batch: &PersistBatch) -> Result<(), DledgerError> {
        if let Some((term, vote)) = batch.term_vote {
            hardstate::store(&self.dir, term, vote)?;
        }
        let mut dirty = false;
        if let Some(first) = batch.entries.first() {
            if first.index <= self.last_index() {
                self.truncate_from(first.index)?;
                dirty = true;
            } else if first.index != self.last_index() + 1 {
                return Err(DledgerError::Corrupt {
                    path: self.dir.clone(),
                    offset: 0,
                    reason: format!(
                        "append at index {} would leave a gap after {}",
                        first.index,
                        self.last_index()
                    ),
                });
            }
        }
        let mut buf = Vec::new();
        for e in &batch.entries {
            let kind = match e.get_entry_type() {
                EntryType::EntryNormal => RecordType::Normal,
                EntryType::EntryConfChange => RecordType::ConfChange,
                EntryType::EntryConfChangeV2 => RecordType::ConfChangeV2,
            };
            let rec_bytes = (record::HEADER_BYTES + e.data.len()) as u64;
            if rec_bytes > self.max_record_bytes + record::HEADER_BYTES as u64 {
                return Err(DledgerError::Config(format!(
                    "entry {} of {} bytes exceeds the WAL's record limit ({} bytes)",
                    e.index,
                    e.data.len(),
                    self.max_record_bytes
                )));
            }
            let seg = self.segments.len() - 1;
            let pending = buf.len() as u64;
            if self.segments[seg].bytes + pending + rec_bytes > self.segment_bytes
                && !(self.segments[seg].offsets.is_empty() && pending == 0)
            {
                self.write_out(&mut buf)?;
                self.roll()?;
            }
            let last = self.segments.len() - 1;
            let seg = &mut self.segments[last];
            seg.offsets.push(seg.bytes + buf.len() as u64);
            seg.terms.push(e.term);
            record::encode(&mut buf, e.index, e.term, kind, &e.data);
        }
        if let Some(c) = batch.commit {
            self.commit = self.commit.max(c);
        }
        if batch.commit.is_some() || dirty {
            record::encode(&mut buf, self.commit, 0, RecordType::Commit, &[]);
        }
        self.write_out(&mut buf)?;
        // A batch that only moves the commit index is not synced: commit records are advisory (see `record`).
        if self.sync && (dirty || !batch.entries.is_empty()) {
            let seg = &self.segments[self.segments.len() - 1];
            self.active.sync_data().map_err(io_err(&seg.path))?;
        }
        Ok(())
    }

    fn write_out(&mut self, buf: &mut Vec<u8>) -> Result<(), DledgerError> {
        if buf.is_empty() {
            return Ok(());
        }
        let seg = self.segments.len() - 1;
        let seg = &mut self.segments[seg];
        self.active
            .write_all_at(buf, seg.bytes)
            .map_err(io_err(&seg.path))?;
        seg.bytes += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    fn roll(&mut self) -> Result<(), DledgerError> {
        let last = &self.segments[self.segments.len() - 1];
        if self.sync {
            self.active.sync_data().map_err(io_err(&last.path))?;
        }
        let seg = create_segment(&self.dir, last.last_index(), last.last_term(), self.commit)?;
        if self.sync {
            sync_dir(&self.dir)?;
        }
        self.active = OpenOptions::new()
            .write(true)
            .open(&seg.path)
            .map_err(io_err(&seg.path))?;
        self.segments.push(seg);
        Ok(())
    }

    /// Removes entries `index..` from disk: later segments deleted (newest first, so a crash leaves a prefix),
    /// the segment holding `index` cut at its record.
    fn truncate_from(&mut self, index: u64) -> Result<(), DledgerError> {
        if index <= self.segments[0].prev_index {
            return Err(DledgerError::Corrupt {
                path: self.dir.clone(),
                offset: 0,
                reason: format!(
                    "cannot truncate from {index}: entries up to {} were compacted",
                    self.segments[0].prev_index
                ),
            });
        }
        let mut removed = false;
        while self.segments.len() > 1 && self.segments[self.segments.len() - 1].prev_index >= index
        {
            if let Some(seg) = self.segments.pop() {
                std::fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
                removed = true;
            }
        }
        let k = self.segments.len() - 1;
        let seg = &mut self.segments[k];
        let keep = (index - seg.prev_index - 1) as usize;
        let cut_at = seg.offsets[keep];
        seg.offsets.truncate(keep);
        seg.terms.truncate(keep);
        seg.bytes = cut_at;
        let path = seg.path.clone();
        self.active = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        self.active.set_len(cut_at).map_err(io_err(&path))?;
        if self.sync {
            self.active.sync_data().map_err(io_err(&path))?;
            if removed {
                sync_dir(&self.dir)?;
            }
        }
        self.commit = self.commit.min(self.last_index());
        Ok(())
    }

    /// Deletes the oldest sealed segments all of whose entries are below `below`, while the log is larger than
    /// `keep_bytes` (blocking). Returns how many went.
    pub fn compact(&mut self, below: u64, keep_bytes: u64) -> Result<usize, DledgerError> {
        let mut n = 0;
        while self.segments.len() > 1
            && self.segments[0].last_index() < below
            && self.total_bytes() > keep_bytes
        {
            let seg = self.segments.remove(0);
            std::fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            n += 1;
        }
        if n > 0 && self.sync {
            sync_dir(&self.dir)?;
        }
        Ok(n)
    }
}

fn create_segment(
    dir: &Path,
    prev_index: u64,
    prev_term: u64,
    commit: u64,
) -> Result<Segment, DledgerError> {
    let path = segment_path(dir, prev_index + 1);
    let mut buf = Vec::new();
    record::encode(
        &mut buf,
        prev_index,
        prev_term,
        RecordType::Meta,
        &commit.to_be_bytes(),
    );
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err(&path))?;
    f.write_all_at(&buf, 0).map_err(io_err(&path))?;
    Ok(Segment {
        path,
        prev_index,
        prev_term,
        offsets: Vec::new(),
        terms: Vec::new(),
        bytes: buf.len() as u64,
    })
}

fn to_entry(rec: record::Record) -> Entry {
    let entry_type = match rec.kind {
        RecordType::ConfChange => EntryType::EntryConfChange,
        RecordType::ConfChangeV2 => EntryType::EntryConfChangeV2,
        _ => EntryType::EntryNormal,
    };
    let mut e = Entry {
        index: rec.index,
        term: rec.term,
        data: rec.data,
        ..Entry::default()
    };
    e.set_entry_type(entry_type);
    e
}

impl Wal {
    /// Whether [`Wal::compact`] would delete anything (an in-memory check, no I/O).
    pub fn can_compact(&self, below: u64, keep_bytes: u64) -> bool {
        self.segments.len() > 1
            && self.segments[0].last_index() < below
            && self.total_bytes() > keep_bytes
    }

    /// Bytes of all segments.
    pub fn total_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }
}

/// Where to read entries from `first_index` on: one byte range of one segment file (it may also hold commit
/// records, which the reader skips).
#[derive(Debug, Clone)]
pub struct ReadSpan {
    pub path: PathBuf,
    pub first_index: u64,
    pub count: usize,
    pub start: u64,
    pub end: u64,
}

impl Wal {
    /// The span holding entries from `low` on, within one segment and about `max_bytes` (at least one entry);
    /// `None` if `low` is not retained. An in-memory lookup, no I/O.
    pub fn locate(&self, low: u64, max_bytes: u64) -> Option<ReadSpan> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.prev_index < low && low <= s.last_index())?;
        let k = (low - seg.prev_index - 1) as usize;
        let start = seg.offsets[k];
        let mut n = 1;
        while k + n < seg.offsets.len() && seg.offsets[k + n] - start < max_bytes {
            n += 1;
        }
        let end = seg.offsets.get(k + n).copied().unwrap_or(seg.bytes);
        Some(ReadSpan {
            path: seg.path.clone(),
            first_index: low,
            count: n,
            start,
            end,
        })
    }
}

/// Reads the entries of `span` (blocking). Any record that does not decode, or an entry other than the one
/// expected next, is corruption: sealed data below the commit index never changes.
pub fn read_span(span: &ReadSpan, max_record_bytes: u64) -> Result<Vec<Entry>, DledgerError> {
    let f = File::open(&span.path).map_err(io_err(&span.path))?;
    let mut buf = vec![0u8; (span.end - span.start) as usize];
    f.read_exact_at(&mut buf, span.start)
        .map_err(io_err(&span.path))?;
    let buf = Bytes::from(buf);
    let mut out = Vec::with_capacity(span.count);
    let mut at = 0usize;
    while out.len() < span.count && at < buf.len() {
        let offset = span.start + at as u64;
        let (rec, len) = record::decode(&buf.slice(at..), max_record_bytes).map_err(|e| {
            DledgerError::Corrupt {
                path: span.path.clone(),
                offset,
                reason: e.to_string(),
            }
        })?;
        at += len;
        if !rec.kind.is_entry() {
            continue;
        }
        let expected = span.first_index + out.len() as u64;
        if rec.index != expected {
            return Err(DledgerError::Corrupt {
                path: span.path.clone(),
                offset,
                reason: format!("entry {} where {expected} was expected", rec.index),
            });
        }
        out.push(to_entry(rec));
    }
    Ok(out)
}
