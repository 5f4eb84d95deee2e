//! [`ExtFields`]: a request's or response's header fields (`extFields`), kept in RocketMQ's binary wire
//! layout instead of a map of owned strings.
//!
//! ```text
//! fields := repeated ( key length: i16 | key: UTF-8 | value length: i32 | value: UTF-8 )
//! ```
//!
//! Why: a send carries a dozen fields, and a `HashMap<String, String>` cost a map plus two allocations per
//! field for every message, on the broker and again in the client. A binary header's fields are already in
//! this layout inside the frame, so decoding keeps a reference to those bytes ([`Bytes`], shared with the
//! frame's body) and an index of where each key and value lies; fields written by Apogee are appended to
//! one buffer in the same layout, which the binary encoder then copies in one piece. Lookups by name scan
//! the index: headers hold a few dozen fields at most, and comparing a handful of short keys costs less than
//! hashing one.
//!
//! Invariants (kept by this module alone, which is why the fields are private):
//! - every key and value range in the index was checked to be UTF-8 when it entered, so reading it back as
//!   text needs no second check;
//! - keys are unique: a binary header that repeats a key keeps its last value, as the map it replaces did
//!   (and as RocketMQ's Java decoder does), at the key's first position;
//! - when `wire` is set, the buffer is exactly the index's fields in order, in the layout above.

use std::collections::HashMap;
use std::fmt;

use bytes::{BufMut, Bytes};

use crate::error::{ProtocolError, Result};
use crate::limits::{EXT_FIELDS_MAX, EXT_KEY_SIZE_MAX_BYTES};

/// Fields kept in the index before a duplicate check switches from a scan to a hash map: a scan per field
/// is quadratic, and a frame may carry [`EXT_FIELDS_MAX`] of them.
const DUPLICATE_SCAN_FIELDS_MAX: usize = 32;

/// Fields a fresh index has room for: a send header has 13, a pull header 12.
const FIELDS_CAPACITY_DEFAULT: usize = 16;

/// Where one field's key and value lie in the buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key_at: usize,
    key_len: usize,
    value_at: usize,
    value_len: usize,
}

#[derive(Clone)]
enum Store {
    /// Bytes of a decoded frame, shared with it.
    Shared(Bytes),
    /// Fields written here (or copied from a frame on the first change).
    Owned(Vec<u8>),
}

impl Store {
    fn bytes(&self) -> &[u8] {
        match self {
            Store::Shared(b) => b,
            Store::Owned(v) => v,
        }
    }
}

/// Fields checked in borrowed bytes, waiting to be joined to them ([`ExtFields::from_parsed`]).
#[derive(Debug)]
pub(crate) struct Parsed {
    entries: Vec<Entry>,
    unique: bool,
    wire_len: usize,
}

/// A header's fields, by name; see the module docs.
#[derive(Clone)]
pub struct ExtFields {
    store: Store,
    entries: Vec<Entry>,
    /// The buffer is exactly the fields, in order, in the wire layout.
    wire: bool,
}

impl Default for ExtFields {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtFields {
    /// No fields; allocates nothing until one is added.
    pub fn new() -> Self {
        Self {
            store: Store::Owned(Vec::new()),
            entries: Vec::new(),
            wire: true,
        }
    }

    /// No fields yet, with room for `fields` fields of `bytes` bytes of keys and values in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Self {
            store: Store::Owned(Vec::with_capacity(bytes + 6 * fields)),
            entries: Vec::with_capacity(fields),
            wire: true,
        }
    }

    /// Reads fields in the wire layout, checking each length against the bytes that remain and each key
    /// and value for UTF-8, once. The fields keep `wire` alive (it is usually a slice of the frame).
    pub fn decode_binary(wire: Bytes) -> Result<Self> {
        let parsed = Self::parse_binary(&wire)?;
        Ok(Self::from_parsed(wire, parsed))
    }

    /// The checking half of [`decode_binary`](Self::decode_binary), on borrowed bytes: the frame decoder
    /// checks a header before it takes the frame off its buffer.
    pub(crate) fn parse_binary(b: &[u8]) -> Result<Parsed> {
        let mut entries = Vec::with_capacity(FIELDS_CAPACITY_DEFAULT);
        let mut unique = true;
        let mut at = 0usize;
        // Past DUPLICATE_SCAN_FIELDS_MAX fields, duplicates are found through this map instead.
        let mut index: Option<HashMap<&[u8], usize>> = None;
        while at < b.len() {
            if entries.len() >= EXT_FIELDS_MAX {
                return Err(ProtocolError::BinaryHeader("too many extFields"));
            }
            let key_len = read_len(b, &mut at, 2, "extFields key length")?;
            let key_at = at;
            let key = take(
                b,
                &mut at,
                key_len,
                "extFields key length exceeds the header",
            )?;
            std::str::from_utf8(key).map_err(|_| ProtocolError::Utf8("extFields key"))?;
            let value_len = read_len(b, &mut at, 4, "extFields value length")?;
            let value_at = at;
            let value = take(
                b,
                &mut at,
                value_len,
                "extFields value length exceeds the header",
            )?;
            std::str::from_utf8(value).map_err(|_| ProtocolError::Utf8("extFields value"))?;
            let earlier = match &index {
                Some(map) => map.get(key).copied(),
                None => entries
                    .iter()
                    .position(|e: &Entry| &b[e.key_at..e.key_at + e.key_len] == key),
            };
            if let Some(i) = earlier {
                // Last value wins, as in a map; the layout no longer matches the index.
                entries[i].value_at = value_at;
                entries[i].value_len = value_len;
                unique = false;
                continue;
            }
            entries.push(Entry {
                key_at,
                key_len,
                value_at,
                value_len,
            });
            if let Some(map) = &mut index {
                map.insert(key, entries.len() - 1);
            } else if entries.len() > DUPLICATE_SCAN_FIELDS_MAX {
                index = Some(
                    entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (&b[e.key_at..e.key_at + e.key_len], i))
                        .collect(),
                );
            }
        }
        Ok(Parsed {
            entries,
            unique,
            wire_len: b.len(),
        })
    }

    /// Joins fields [`parse_binary`](Self::parse_binary) checked to their bytes, shared.
    ///
    /// `wire` must be the very bytes that were parsed: the index's UTF-8 guarantee is about them. Only this
    /// crate's frame decoder calls it, with a slice of the frame it has just parsed.
    pub(crate) fn from_parsed(wire: Bytes, parsed: Parsed) -> Self {
        assert_eq!(
            wire.len(),
            parsed.wire_len,
            "extFields joined to bytes other than the parsed ones"
        );
        Self {
            store: Store::Shared(wire),
            entries: parsed.entries,
            wire: parsed.unique,
        }
    }

    /// The bytes these fields take in a binary header (without the i32 total length before them).
    pub fn wire_len(&self) -> usize {
        if self.wire {
            return self.store.bytes().len();
        }
        self.entries
            .iter()
            .map(|e| 2 + e.key_len + 4 + e.value_len)
            .sum()
    }

    /// Writes the fields as a binary header does: their total length, then each field.
    pub fn encode_binary(&self, out: &mut impl BufMut) {
        out.put_i32(self.wire_len() as i32);
        if self.wire {
            out.put_slice(self.store.bytes());
            return;
        }
        let b = self.store.bytes();
        for e in &self.entries {
            out.put_i16(e.key_len as i16);
            out.put_slice(&b[e.key_at..e.key_at + e.key_len]);
            out.put_i32(e.value_len as i32);
            out.put_slice(&b[e.value_at..e.value_at + e.value_len]);
        }
    }

    fn text(&self, at: usize, len: usize) -> &str {
        let bytes = &self.store.bytes()[at..at + len];
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: every range in the index was checked to be UTF-8 when it entered (`decode_binary`) or
        // came from a `&str` (`put`), and the bytes behind a range never change afterwards.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    fn find(&self, key: &str) -> Option<usize> {
        let b = self.store.bytes();
        let key = key.as_bytes();
        self.entries
            .iter()
            .position(|e| e.key_len == key.len() && &b[e.key_at..e.key_at + e.key_len] == key)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key)
            .map(|i| self.text(self.entries[i].value_at, self.entries[i].value_len))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every field, in the order it arrived or was added.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            fields: self,
            entries: self.entries.iter(),
        }
    }

    /// The buffer, made writable (a frame's bytes are copied once, on the first change).
    fn owned(&mut self) -> &mut Vec<u8> {
        if let Store::Shared(b) = &self.store {
            self.store = Store::Owned(b.to_vec());
        }
        match &mut self.store {
            Store::Owned(v) => v,
            Store::Shared(_) => unreachable!("made owned above"),
        }
    }

    /// Appends a new field's key in the wire layout and a placeholder for its value's length; returns the
    /// entry with the value still empty.
    fn begin(&mut self, key: &str) -> Entry {
        debug_assert!(
            key.len() <= EXT_KEY_SIZE_MAX_BYTES,
            "a header key of {} bytes",
            key.len()
        );
        let buf = self.owned();
        buf.put_i16(key.len() as i16);
        let key_at = buf.len();
        buf.put_slice(key.as_bytes());
        buf.put_i32(0);
        Entry {
            key_at,
            key_len: key.len(),
            value_at: buf.len(),
            value_len: 0,
        }
    }

    /// Closes a field [`begin`](Self::begin) opened: its value is the bytes written since.
    fn finish(&mut self, mut entry: Entry) {
        let buf = self.owned();
        entry.value_len = buf.len() - entry.value_at;
        buf[entry.value_at - 4..entry.value_at]
            .copy_from_slice(&(entry.value_len as i32).to_be_bytes());
        self.entries.push(entry);
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub fn put(&mut self, key: &str, value: &str) {
        if let Some(i) = self.find(key) {
            let buf = self.owned();
            let value_at = buf.len();
            buf.put_slice(value.as_bytes());
            self.entries[i].value_at = value_at;
            self.entries[i].value_len = value.len();
            self.wire = false;
            return;
        }
        let entry = self.begin(key);
        self.owned().put_slice(value.as_bytes());
        self.finish(entry);
    }

    /// Sets `key` to `value` as text, written straight into the buffer (numbers need no `String`).
    pub fn put_display(&mut self, key: &str, value: impl fmt::Display) {
        if self.contains_key(key) {
            self.put(key, &value.to_string());
            return;
        }
        let entry = self.begin(key);
        struct Out<'a>(&'a mut Vec<u8>);
        impl fmt::Write for Out<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.0.extend_from_slice(s.as_bytes());
                Ok(())
            }
        }
        // Writing into a Vec cannot fail.
        let _ = fmt::Write::write_fmt(&mut Out(self.owned()), format_args!("{value}"));
        self.finish(entry);
    }

    /// Sets `key` to `value` (the map-like form; [`put`](Self::put) takes borrowed text).
    pub fn insert(&mut self, key: String, value: String) {
        self.put(&key, &value);
    }

    /// Removes `key`, answering its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key)?;
        let e = self.entries.remove(i);
        let value = self.text(e.value_at, e.value_len).to_owned();
        self.wire = false;
        Some(value)
    }
}

/// Reads a big-endian length of `width` bytes (2 or 4) at `at`; a negative one is malformed.
fn read_len(b: &[u8], at: &mut usize, width: usize, what: &'static str) -> Result<usize> {
    let raw = take(b, at, width, what)?;
    let len = match *raw {
        [x, y] => i16::from_be_bytes([x, y]) as i64,
        [w, x, y, z] => i32::from_be_bytes([w, x, y, z]) as i64,
        _ => unreachable!("lengths are 2 or 4 bytes"),
    };
    usize::try_from(len).map_err(|_| ProtocolError::BinaryHeader(what))
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize, what: &'static str) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|end| *end <= b.len())
        .ok_or(ProtocolError::BinaryHeader(what))?;
    let out = &b[*at..end];
    *at = end;
    Ok(out)
}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Equal when they hold the same fields, in any order (as maps are).
impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for ExtFields {}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut out = Self::new();
        out.extend(iter);
        out
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for ExtFields {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.put(k.as_ref(), v.as_ref());
        }
    }
}

/// Borrowed `(key, value)` pairs of an [`ExtFields`], in order (no allocation: the ACL check walks them
/// for every signed request).
pub struct Iter<'a> {
    fields: &'a ExtFields,
    entries: std::slice::Iter<'a, Entry>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let e = self.entries.next()?;
        Some((
            self.fields.text(e.key_at, e.key_len),
            self.fields.text(e.value_at, e.value_len),
        ))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl<'a> IntoIterator for &'a ExtFields {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Owned pairs, for callers that collect the fields into a map of their own.
impl IntoIterator for ExtFields {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in fields {
            out.put_i16(k.len() as i16);
            out.put_slice(k.as_bytes());
            out.put_i32(v.len() as i32);
            out.put_slice(v.as_bytes());
        }
        out
    }

    #[test]
    fn decoded_fields_are_found_by_name_and_re_encoded_byte_for_byte() {
        let bytes = wire(&[("a", "group"), ("b", "TopicA"), ("i", "TAGS\u{1}x\u{2}")]);
        let ext = ExtFields::decode_binary(Bytes::from(bytes.clone())).unwrap();
        assert_eq!(ext.get("b"), Some("TopicA"));
        assert_eq!(ext.get("i"), Some("TAGS\u{1}x\u{2}"));
        assert_eq!(ext.get("c"), None);
        assert_eq!(ext.len(), 3);
        let mut out = Vec::new();
        ext.encode_binary(&mut out);
        assert_eq!(&out[4..], &bytes[..]);
        assert_eq!(out.len() - 4, ext.wire_len());
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_once() {
        let bytes = wire(&[("a", "1"), ("b", "2"), ("a", "3")]);
        let ext = ExtFields::decode_binary(Bytes::from(bytes)).unwrap();
        assert_eq!(ext.len(), 2);
        assert_eq!(ext.get("a"), Some("3"));
        let mut out = Vec::new();
        ext.encode_binary(&mut out);
        assert_eq!(&out[4..], &wire(&[("a", "3"), ("b", "2")])[..]);
        // Past the scan limit, duplicates are found through the hash index, with the same result.
        let many: Vec<(String, String)> = (0..DUPLICATE_SCAN_FIELDS_MAX + 10)
            .map(|i| (format!("k{i}"), i.to_string()))
            .chain([("k3".to_owned(), "last".to_owned())])
            .collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let ext = ExtFields::decode_binary(Bytes::from(wire(&pairs))).unwrap();
        assert_eq!(ext.len(), DUPLICATE_SCAN_FIELDS_MAX + 10);
        assert_eq!(ext.get("k3"), Some("last"));
    }

    #[test]
    fn lengths_past_the_end_negative_or_not_utf8_are_refused() {
        let mut short = wire(&[("key", "value")]);
        short.pop();
        assert!(ExtFields::decode_binary(Bytes::from(short)).is_err());
        let mut negative = Vec::new();
        negative.put_i16(-1);
        assert!(ExtFields::decode_binary(Bytes::from(negative)).is_err());
        let mut bad = Vec::new();
        bad.put_i16(1);
        bad.put_u8(0xff);
        bad.put_i32(0);
        assert_eq!(
            ExtFields::decode_binary(Bytes::from(bad)).err(),
            Some(ProtocolError::Utf8("extFields key"))
        );
        let too_many: Vec<(&str, &str)> = vec![("", ""); EXT_FIELDS_MAX + 1];
        // All the same key, so they collapse; distinct keys are needed to hit the count limit.
        assert_eq!(
            ExtFields::decode_binary(Bytes::from(wire(&too_many)))
                .unwrap()
                .len(),
            1
        );
        let keys: Vec<String> = (0..=EXT_FIELDS_MAX).map(|i| i.to_string()).collect();
        let distinct: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "")).collect();
        assert_eq!(
            ExtFields::decode_binary(Bytes::from(wire(&distinct))).err(),
            Some(ProtocolError::BinaryHeader("too many extFields"))
        );
    }

    #[test]
    fn changes_replace_remove_and_still_encode_every_field() {
        let bytes = wire(&[("a", "1"), ("b", "2")]);
        let mut ext = ExtFields::decode_binary(Bytes::from(bytes)).unwrap();
        ext.put("a", "one");
        ext.put_display("n", 42i64);
        assert_eq!(ext.remove("b").as_deref(), Some("2"));
        assert_eq!(ext.remove("b"), None);
        ext.put_display("n", 43);
        assert_eq!(ext.get("a"), Some("one"));
        assert_eq!(ext.get("n"), Some("43"));
        let mut out = Vec::new();
        ext.encode_binary(&mut out);
        assert_eq!(&out[4..], &wire(&[("a", "one"), ("n", "43")])[..]);
        let back = ExtFields::decode_binary(Bytes::copy_from_slice(&out[4..])).unwrap();
        assert_eq!(back, ext);
    }

    #[test]
    fn fields_written_here_are_in_the_wire_layout_and_compare_in_any_order() {
        let mut a = ExtFields::new();
        a.put("x", "1");
        a.put_display("y", 2);
        let b: ExtFields = [("y", "2"), ("x", "1")].into_iter().collect();
        assert_eq!(a, b);
        let mut out = Vec::new();
        a.encode_binary(&mut out);
        assert_eq!(&out[4..], &wire(&[("x", "1"), ("y", "2")])[..]);
        let c: ExtFields = [("x", "1"), ("y", "3")].into_iter().collect();
        assert_ne!(a, c);
    }
}
