//! The key index: `topic#KEY` (each KEYS token) and `topic#UNIQ_KEY` → commit log offsets, for QUERY_MESSAGE.
//!
//! Like RocketMQ's index files: a hash slot table and entries chained per slot, newest first. One *active*
//! index lives in memory (bounded by `entries_max`); when full it is *sealed*: written once to
//! `<store>/index/<20-digit first commit log offset>` and never changed. Lookups walk the active index, then
//! sealed files newest first; answers are candidates that the engine verifies against the commit log (hashes
//! collide).
//!
//! Sealed file layout (big-endian), padded to a multiple of 4 KiB:
//! ```text
//! header (64): magic "APIX" | version u16 | 0 u16 | slot count u32 | entry count u32 | first log offset u64 |
//!              end log offset u64 | first store time ms i64 | last store time ms i64 | CRC32 of the rest u32 | 0…
//! slots:       slot count × u32   (entry number + 1 of the newest entry in the slot; 0 = empty)
//! entries:     entry count × 20   (key hash u32 | log offset u64 | store time − first store time, s, i32 |
//!                                  previous entry number + 1 in the slot u32)
//! ```
//! The active index is not on disk: after a crash it is rebuilt by scanning the commit log from the last
//! sealed file's end offset. A sealed file that fails its checks at start is deleted and rebuilt the same way.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use glommio::io::{DmaFile, OpenOptions};

use crate::error::{EngineError, Result};
use crate::log::write_buffer::align_up;

pub const MAGIC: &[u8; 4] = b"APIX";
pub const VERSION: u16 = 1;
const HEADER_BYTES: usize = 64;
const ENTRY_BYTES: usize = 20;

/// Default slots per index file.
pub const INDEX_SLOTS_DEFAULT: u32 = 500_000;
/// Default entries per index file (the active index's memory bound: 20 bytes each).
pub const INDEX_ENTRIES_DEFAULT: u32 = 2_000_000;

/// Java's `String.hashCode()` state `h` continued over the UTF-16 code units of `s`. ASCII text (topics,
/// UNIQ_KEYs, nearly every key) is its own UTF-16, so it is hashed byte by byte without transcoding.
fn java_hash_continue(mut h: i32, s: &str) -> i32 {
    if s.is_ascii() {
        for b in s.bytes() {
            h = h.wrapping_mul(31).wrapping_add(b as i32);
        }
    } else {
        for unit in s.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(unit as i32);
        }
    }
    h
}

/// Java's `String.hashCode()` of `topic#key`, made non-negative, as RocketMQ's index does.
pub fn key_hash(topic: &str, key: &str) -> u32 {
    KeyHasher::new(topic).hash(key)
}

/// [`key_hash`] for several keys of one topic: `topic#` is hashed once (the hash is a polynomial over the
/// code units, so hashing the key continues from the prefix's state).
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(i32);

impl KeyHasher {
    pub fn new(topic: &str) -> Self {
        Self(java_hash_continue(java_hash_continue(0, topic), "#"))
    }

    pub fn hash(&self, key: &str) -> u32 {
        java_hash_continue(self.0, key).unsigned_abs()
    }
}

/// The keys a message is indexed under: each KEYS token and its UNIQ_KEY.
pub fn keys_of(properties: &str) -> impl Iterator<Item = &str> {
    IndexedProperties::scan(properties).keys()
}

/// The properties the store looks at on every append (KEYS, UNIQ_KEY, TAGS), found in one pass over the
/// properties string. The first occurrence of a name counts, as [`apogee_net::properties::get`] has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexedProperties<'a> {
    pub keys: Option<&'a str>,
    pub uniq_key: Option<&'a str>,
    pub tags: Option<&'a str>,
}

impl<'a> IndexedProperties<'a> {
    pub fn scan(properties: &'a str) -> Self {
        use apogee_net::properties::{names, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
        let mut found = Self::default();
        for (name, value) in properties
            .split(PROPERTY_SEPARATOR)
            .filter_map(|item| item.split_once(NAME_VALUE_SEPARATOR))
        {
            let slot = match name {
                names::KEYS => &mut found.keys,
                names::UNIQ_KEY => &mut found.uniq_key,
                names::TAGS => &mut found.tags,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        found
    }

    /// Each KEYS token (split on spaces), then the UNIQ_KEY.
    pub fn keys(self) -> impl Iterator<Item = &'a str> {
        self.keys
            .unwrap_or("")
            .split(' ')
            .filter(|k| !k.is_empty())
            .chain(self.uniq_key)
    }
}

/// The key hashes of one message, held inline for the usual one to three keys (a UNIQ_KEY and a KEYS
/// token or two), so that an append allocates nothing for them.
#[derive(Debug, Clone, Default)]
pub struct KeyHashes {
    inline: [u32; KEY_HASHES_INLINE],
    len: usize,
    more: Vec<u32>,
}

/// Key hashes a message holds without allocating.
const KEY_HASHES_INLINE: usize = 3;

impl KeyHashes {
    /// The hashes of every key of `properties`, for `topic`.
    pub fn of(topic: &str, properties: IndexedProperties<'_>) -> Self {
        let hasher = KeyHasher::new(topic);
        let mut out = Self::default();
        for k in properties.keys() {
            out.push(hasher.hash(k));
        }
        out
    }

    pub fn push(&mut self, hash: u32) {
        if self.len < KEY_HASHES_INLINE {
            self.inline[self.len] = hash;
            self.len += 1;
        } else {
            self.more.push(hash);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.inline[..self.len]
            .iter()
            .chain(self.more.iter())
            .copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    hash: u32,
    offset: u64,
    time_diff_s: i32,
    prev: u32,
}

/// The in-memory index being filled.
#[derive(Debug)]
struct Active {
    slots: Vec<u32>,
    entries: Vec<Entry>,
    first_offset: u64,
    end_offset: u64,
    first_time_ms: i64,
    last_time_ms: i64,
}

impl Active {
    fn new(slot_count: u32, first_offset: u64) -> Self {
        Self {
            slots: vec![0; slot_count as usize],
            entries: Vec::new(),
            first_offset,
            end_offset: first_offset,
            first_time_ms: 0,
            last_time_ms: 0,
        }
    }

    fn add(&mut self, hash: u32, offset: u64, time_ms: i64) {
        if self.entries.is_empty() {
            self.first_time_ms = time_ms;
        }
        self.last_time_ms = self.last_time_ms.max(time_ms);
        let slot = (hash % self.slots.len() as u32) as usize;
        let prev = self.slots[slot];
        self.entries.push(Entry {
            hash,
            offset,
            time_diff_s: ((time_ms - self.first_time_ms) / 1000) as i32,
            prev,
        });
        self.slots[slot] = self.entries.len() as u32;
    }

    fn candidates(&self, hash: u32, from_ms: i64, to_ms: i64, max: usize, out: &mut Vec<u64>) {
        let mut n = self.slots[(hash % self.slots.len() as u32) as usize];
        let mut steps = 0;
        while n != 0 && out.len() < max && steps < self.entries.len() {
            let e = self.entries[n as usize - 1];
            let t = self.first_time_ms + e.time_diff_s as i64 * 1000;
            if e.hash == hash && t + 1000 > from_ms && t <= to_ms && !out.contains(&e.offset) {
                out.push(e.offset);
            }
            n = e.prev;
            steps += 1;
        }
    }

    fn encode(&self) -> Vec<u8> {
        let body_len = self.slots.len() * 4 + self.entries.len() * ENTRY_BYTES;
        let mut body = Vec::with_capacity(body_len);
        for s in &self.slots {
            body.put_u32(*s);
        }
        for e in &self.entries {
            body.put_u32(e.hash);
            body.put_u64(e.offset);
            body.put_i32(e.time_diff_s);
            body.put_u32(e.prev);
        }
        let mut out = Vec::with_capacity(align_up((HEADER_BYTES + body_len) as u64) as usize);
        out.extend_from_slice(MAGIC);
        out.put_u16(VERSION);
        out.put_u16(0);
        out.put_u32(self.slots.len() as u32);
        out.put_u32(self.entries.len() as u32);
        out.put_u64(self.first_offset);
        out.put_u64(self.end_offset);
        out.put_i64(self.first_time_ms);
        out.put_i64(self.last_time_ms);
        out.put_u32(crc32fast::hash(&body));
        out.resize(HEADER_BYTES, 0);
        out.extend_from_slice(&body);
        out.resize(align_up(out.len() as u64) as usize, 0);
        out
    }
}

/// A sealed index file: its header in memory, its slots and entries read on lookup.
pub struct Sealed {
    path: PathBuf,
    file: DmaFile,
    slot_count: u32,
    entry_count: u32,
    first_offset: u64,
    end_offset: u64,
    first_time_ms: i64,
    last_time_ms: i64,
}

impl Sealed {
    /// Opens and checks a sealed file (magic, version, counts, checksum).
    pub async fn open(path: PathBuf) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .dma_open(&path)
            .await
            .map_err(|e| EngineError::io(&path, e))?;
        let corrupt = |reason: String| EngineError::Corrupt {
            what: "index file",
            path: path.clone(),
            offset: 0,
            reason,
        };
        let size = file
            .file_size()
            .await
            .map_err(|e| EngineError::io(&path, e))? as usize;
        if size < HEADER_BYTES {
            return Err(corrupt(format!("{size} bytes, shorter than its header")));
        }
        let all = file
            .read_at(0, size)
            .await
            .map_err(|e| EngineError::io(&path, e))?;
        let h = &all[..HEADER_BYTES];
        if &h[0..4] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        let version = u16::from_be_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(corrupt(format!(
                "version {version}, this build reads {VERSION}"
            )));
        }
        let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let (slot_count, entry_count) = (u32_at(8), u32_at(12));
        let body_len = slot_count as usize * 4 + entry_count as usize * ENTRY_BYTES;
        if slot_count == 0 || HEADER_BYTES + body_len > all.len() {
            return Err(corrupt("counts do not fit the file".into()));
        }
        if crc32fast::hash(&all[HEADER_BYTES..HEADER_BYTES + body_len]) != u32_at(48) {
            return Err(corrupt("checksum mismatch".into()));
        }
        Ok(Self {
            file,
            slot_count,
            entry_count,
            first_offset: u64_at(16),
            end_offset: u64_at(24),
            first_time_ms: u64_at(32) as i64,
            last_time_ms: u64_at(40) as i64,
            path,
        })
    }

    async fn read_u32(&self, pos: usize) -> Result<u32> {
        let b = self
            .file
            .read_at(pos as u64, 4)
            .await
            .map_err(|e| EngineError::io(&self.path, e))?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Adds this file's offsets for `hash` stored within the time range to `out`, up to `max` in all.
    pub async fn candidates(
        &self,
        hash: u32,
        from_ms: i64,
        to_ms: i64,
        max: usize,
        out: &mut Vec<u64>,
    ) -> Result<()> {
        if self.last_time_ms + 1000 < from_ms || self.first_time_ms > to_ms {
            return Ok(());
        }
        let slot = (hash % self.slot_count) as usize;
        let mut n = self.read_u32(HEADER_BYTES + slot * 4).await?;
        let entries_at = HEADER_BYTES + self.slot_count as usize * 4;
        let mut steps = 0;
        while n != 0 && n <= self.entry_count && out.len() < max && steps < self.entry_count {
            let pos = entries_at + (n as usize - 1) * ENTRY_BYTES;
            let b: Bytes = {
                let r = self
                    .file
                    .read_at(pos as u64, ENTRY_BYTES)
                    .await
                    .map_err(|e| EngineError::io(&self.path, e))?;
                Bytes::copy_from_slice(&r[..])
            };
            let mut o = [0u8; 8];
            o.copy_from_slice(&b[4..12]);
            let e = Entry {
                hash: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                offset: u64::from_be_bytes(o),
                time_diff_s: i32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                prev: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            };
            let t = self.first_time_ms + e.time_diff_s as i64 * 1000;
            if e.hash == hash && t + 1000 > from_ms && t <= to_ms && !out.contains(&e.offset) {
                out.push(e.offset);
            }
            n = e.prev;
            steps += 1;
        }
        Ok(())
    }
}

/// See the module docs.
pub struct KeyIndex {
    dir: PathBuf,
    slot_count: u32,
    entries_max: u32,
    active: Active,
    /// Full indexes not yet written; still searched.
    sealing: Vec<Arc<Active>>,
    /// Written indexes, oldest first. `Rc` so a lookup can read one after releasing the index's borrow.
    sealed: Vec<Rc<Sealed>>,
}

impl KeyIndex {
    /// Opens the index folder; returns the index and the commit log offset from which records must be fed
    /// to it again (the end of the last good sealed file, or `log_min` when there is none).
    pub async fn open(
        dir: PathBuf,
        slot_count: u32,
        entries_max: u32,
        log_min: u64,
    ) -> Result<(Self, u64)> {
        std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, e))?;
        let mut sealed: Vec<Rc<Sealed>> = Vec::new();
        let mut broken = false;
        for base in crate::log::list_segments(&dir)? {
            let path = dir.join(crate::log::segment_file_name(base));
            if !broken {
                match Sealed::open(path.clone()).await {
                    Ok(s) if sealed.last().is_none_or(|p| p.end_offset <= s.first_offset) => {
                        sealed.push(Rc::new(s));
                        continue;
                    }
                    Ok(_) => tracing::warn!(path = %path.display(), "index file out of order"),
                    Err(e) => tracing::warn!(error = %e, "index file unusable"),
                }
                broken = true;
            }
            // From the first bad file on, everything is rebuilt from the commit log (the scan starts at the
            // last good file's end), so later files would only duplicate entries.
            tracing::warn!(path = %path.display(), "index file dropped; its keys are rebuilt from the commit log");
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_file(dir.join("sealing.tmp"));
        let from = sealed.last().map_or(log_min, |s| s.end_offset).max(log_min);
        Ok((
            Self {
                dir,
                slot_count,
                entries_max,
                active: Active::new(slot_count, from),
                sealing: Vec::new(),
                sealed,
            },
            from,
        ))
    }

    /// Indexes a stored record's keys. Never waits: a full active index is queued for sealing.
    pub fn add(
        &mut self,
        topic: &str,
        properties: &str,
        offset: u64,
        size: u32,
        store_time_ms: i64,
    ) {
        let hashes = KeyHashes::of(topic, IndexedProperties::scan(properties));
        self.add_hashes(hashes.iter(), offset, size, store_time_ms);
    }

    /// Indexes a record under precomputed key hashes.
    pub fn add_hashes(
        &mut self,
        hashes: impl IntoIterator<Item = u32>,
        offset: u64,
        size: u32,
        store_time_ms: i64,
    ) {
        for h in hashes {
            self.active.add(h, offset, store_time_ms);
        }
        self.active.end_offset = offset + size as u64;
        if self.active.entries.len() as u32 >= self.entries_max {
            self.seal_now();
        }
    }

    /// Forgets every key (sealed files deleted) and indexes from `offset` on: a slave that starts its log
    /// over at its master's first offset.
    pub fn reset(&mut self, offset: u64) {
        for s in self.sealed.drain(..) {
            let _ = std::fs::remove_file(&s.path);
        }
        self.sealing.clear();
        self.active = Active::new(self.slot_count, offset);
    }

    /// Queues the active index for sealing, if it holds anything.
    pub fn seal_now(&mut self) {
        if self.active.entries.is_empty() {
            return;
        }
        let next = Active::new(self.slot_count, self.active.end_offset);
        self.sealing
            .push(Arc::new(std::mem::replace(&mut self.active, next)));
    }

    pub fn has_sealing(&self) -> bool {
        !self.sealing.is_empty()
    }

    /// The oldest full index and where [`write_sealed`] puts it (encoded there, off the shard's thread).
    pub fn take_sealing(&self) -> Option<(PathBuf, Sealing)> {
        let a = self.sealing.first()?;
        Some((
            self.dir.join(crate::log::segment_file_name(a.first_offset)),
            Sealing(a.clone()),
        ))
    }

    /// Records that the oldest sealing index is now the opened file `s`. Synchronous on purpose: callers
    /// open the file first, so no borrow of the index is held across that await.
    pub fn sealed_written(&mut self, s: Sealed) {
        self.sealing.remove(0);
        self.sealed.push(Rc::new(s));
    }

    /// Candidate offsets for a key hash from the indexes in memory (active, then waiting to be sealed),
    /// newest first.
    pub fn memory_candidates(&self, hash: u32, from_ms: i64, to_ms: i64, max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        self.active.candidates(hash, from_ms, to_ms, max, &mut out);
        for a in self.sealing.iter().rev() {
            a.candidates(hash, from_ms, to_ms, max, &mut out);
        }
        out
    }

    /// Sealed files, newest first, for lookups that continue after the borrow of the index ends.
    pub fn sealed_newest_first(&self) -> Vec<Rc<Sealed>> {
        self.sealed.iter().rev().cloned().collect()
    }

    /// Forgets sealed files wholly below the commit log's minimum offset; returns their paths, for the
    /// caller to delete (off the shard's thread, without a borrow of the index held).
    pub fn drop_below(&mut self, log_min: u64) -> Vec<PathBuf> {
        let mut dropped = Vec::new();
        while self.sealed.first().is_some_and(|s| s.end_offset <= log_min) {
            dropped.push(self.sealed.remove(0).path.clone());
        }
        dropped
    }

    /// Commit log offset up to which records are indexed, and the last store time indexed.
    pub fn progress(&self) -> (u64, i64) {
        (
            self.active.end_offset,
            self.active
                .last_time_ms
                .max(self.sealed.last().map_or(0, |s| s.last_time_ms)),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A full index waiting to be written, shared with the lookups that still search it in memory.
pub struct Sealing(Arc<Active>);

/// Writes a sealed index file atomically: encoded, written to a temporary file, synced, renamed, the
/// folder synced. All of it runs on the executor's blocking pool: an index of `index_entries_max` entries
/// encodes to tens of MB, a copy and a write the shard's connections would otherwise wait for.
pub async fn write_sealed(dir: &Path, path: &Path, sealing: Sealing) -> Result<()> {
    debug_assert_eq!(
        path.parent(),
        Some(dir),
        "a sealed index goes into its folder"
    );
    let tmp = dir.join("sealing.tmp");
    let to = path.to_owned();
    crate::blocking::run(move || {
        let write = || -> std::io::Result<()> {
            let bytes = sealing.0.encode();
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, &bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &to)?;
            if let Some(dir) = to.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            // Keep no half-written file: it would only hold space (no space left is the likely cause).
            let _ = std::fs::remove_file(&tmp);
            EngineError::io(&to, e)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Java's `String.hashCode()` of `topic#key` the plain way, over UTF-16 code units.
    fn java_key_hash(topic: &str, key: &str) -> u32 {
        let mut h: i32 = 0;
        for unit in format!("{topic}#{key}").encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(unit as i32);
        }
        h.unsigned_abs()
    }

    #[test]
    fn key_hashes_are_java_string_hash_codes_of_topic_hash_key_ascii_or_not() {
        for (topic, key) in [
            ("T", "a"),
            ("Bench", "7F0000010001B4AAC2C40F1C6A3E0000"),
            ("orders", ""),
            ("主题", "键"),
            ("T", "emoji-\u{1F600}-outside-the-BMP"),
            ("Ünïcode", "ascii"),
        ] {
            assert_eq!(
                key_hash(topic, key),
                java_key_hash(topic, key),
                "{topic}#{key}"
            );
            assert_eq!(KeyHasher::new(topic).hash(key), java_key_hash(topic, key));
        }
        // "TopicTest#KEY1".hashCode() is -1656969516 (the polynomial worked out outside Rust), so that
        // the reference above cannot drift along with the code under test.
        assert_eq!(key_hash("TopicTest", "KEY1"), 1_656_969_516);
    }

    #[test]
    fn one_scan_finds_what_separate_lookups_find() {
        use apogee_net::properties::{get, names};
        for props in [
            "",
            "TAGS\u{1}a\u{2}",
            "KEYS\u{1}k1 k2\u{2}TAGS\u{1}t\u{2}UNIQ_KEY\u{1}U1\u{2}WAIT\u{1}true\u{2}",
            "UNIQ_KEY\u{1}first\u{2}UNIQ_KEY\u{1}second\u{2}",
            "no-separator\u{2}KEYS\u{1}\u{2}TAGS\u{1}x\u{1}y\u{2}",
            "KEYS\u{1}  spaced   out \u{2}",
        ] {
            let found = IndexedProperties::scan(props);
            assert_eq!(found.keys, get(props, names::KEYS), "{props:?}");
            assert_eq!(found.uniq_key, get(props, names::UNIQ_KEY), "{props:?}");
            assert_eq!(found.tags, get(props, names::TAGS), "{props:?}");
        }
        let keys: Vec<&str> = keys_of("KEYS\u{1} k1  k2 \u{2}UNIQ_KEY\u{1}U\u{2}").collect();
        assert_eq!(keys, ["k1", "k2", "U"]);
    }

    #[test]
    fn key_hashes_hold_any_number_of_keys_in_order() {
        let props = "KEYS\u{1}a b c d e\u{2}UNIQ_KEY\u{1}U\u{2}";
        let hashes: Vec<u32> = KeyHashes::of("T", IndexedProperties::scan(props))
            .iter()
            .collect();
        let expected: Vec<u32> = ["a", "b", "c", "d", "e", "U"]
            .iter()
            .map(|k| java_key_hash("T", k))
            .collect();
        assert_eq!(hashes, expected);
        assert_eq!(KeyHashes::default().iter().count(), 0);
    }

    #[test]
    fn chains_find_every_entry_of_a_key_newest_first_within_time() {
        let mut a = Active::new(7, 0);
        for i in 0..50u64 {
            a.add(
                key_hash("T", &format!("k{}", i % 5)),
                i * 100,
                1_000_000 + i as i64 * 1000,
            );
        }
        let mut out = Vec::new();
        a.candidates(key_hash("T", "k3"), 0, i64::MAX, 100, &mut out);
        assert_eq!(out.len(), 10);
        assert_eq!(out[0], 4800, "newest first");
        let mut windowed = Vec::new();
        a.candidates(
            key_hash("T", "k3"),
            1_000_000 + 30_000,
            1_000_000 + 40_000,
            100,
            &mut windowed,
        );
        assert_eq!(windowed, vec![3800, 3300]);
    }

    #[test]
    fn keys_are_keys_tokens_and_the_uniq_key() {
        let props = "KEYS\u{1}a b\u{2}UNIQ_KEY\u{1}U1\u{2}";
        assert_eq!(keys_of(props).collect::<Vec<_>>(), vec!["a", "b", "U1"]);
        assert_ne!(key_hash("T", "a"), key_hash("U", "a"));
    }
}
