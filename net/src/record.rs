//! The stored message record: RocketMQ's commit log layout, byte for byte. A pull answer's body is these
//! records back to back, exactly as stored, so the engine writes them and clients read them with this module.
//!
//! | field | bytes |
//! |---|---|
//! | TOTALSIZE | 4, the whole record |
//! | MAGICCODE | 4: [`MESSAGE_MAGIC`] (topic length in 1 byte) or [`MESSAGE_MAGIC_V2`] (2 bytes) |
//! | BODYCRC | 4: CRC32 of the body `& 0x7FFFFFFF` (RocketMQ's `UtilAll.crc32`) |
//! | QUEUEID | 4 |
//! | FLAG | 4 |
//! | QUEUEOFFSET | 8: entry index in the consume queue |
//! | PHYSICALOFFSET | 8: byte offset of this record in the commit log |
//! | SYSFLAG | 4 |
//! | BORNTIMESTAMP | 8 (ms) |
//! | BORNHOST | 8 (IPv4 + port i32) or 20 (IPv6, [`sys_flag::BORN_HOST_V6`]) |
//! | STORETIMESTAMP | 8 (ms) |
//! | STOREHOSTADDRESS | 8 or 20 ([`sys_flag::STORE_HOST_V6`]) |
//! | RECONSUMETIMES | 4 |
//! | PREPARED TRANSACTION OFFSET | 8 |
//! | BODY | 4 + n |
//! | TOPIC | 1 + n (2 + n with the V2 magic) |
//! | PROPERTIES | 2 + n |
//!
//! At the end of a commit log file, a record that does not fit is preceded by a blank:
//! `[remaining i32][BLANK_MAGIC]`, and the next record starts the next file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use crate::error::{ProtocolError, Result};

/// Magic of a record whose topic length is 1 byte (`MESSAGE_MAGIC_CODE`, -626843481).
pub const MESSAGE_MAGIC: u32 = 0xDAA3_20A7;
/// Magic of a record whose topic length is 2 bytes (`MESSAGE_MAGIC_CODE_V2`).
pub const MESSAGE_MAGIC_V2: u32 = 0xDAA3_20AB;
/// Magic of the blank that fills the end of a commit log file (`BLANK_MAGIC_CODE`, -875286124).
pub const BLANK_MAGIC: u32 = 0xCBD4_3194;
/// A blank is at least its length and magic; a record must leave room for one in its file.
pub const BLANK_MIN_BYTES: usize = 8;

/// SYSFLAG bits.
pub mod sys_flag {
    pub const COMPRESSED: i32 = 0x1;
    pub const MULTI_TAGS: i32 = 0x2;
    pub const TRANSACTION_NOT_TYPE: i32 = 0;
    pub const TRANSACTION_PREPARED: i32 = 0x1 << 2;
    pub const TRANSACTION_COMMIT: i32 = 0x2 << 2;
    pub const TRANSACTION_ROLLBACK: i32 = 0x3 << 2;
    pub const TRANSACTION_MASK: i32 = 0x3 << 2;
    pub const BORN_HOST_V6: i32 = 0x1 << 4;
    pub const STORE_HOST_V6: i32 = 0x1 << 5;
}

/// Byte offsets of the fixed fields, for writers that patch them and readers that peek.
pub mod at {
    pub const TOTAL_SIZE: usize = 0;
    pub const MAGIC: usize = 4;
    pub const BODY_CRC: usize = 8;
    pub const QUEUE_ID: usize = 12;
    pub const FLAG: usize = 16;
    pub const QUEUE_OFFSET: usize = 20;
    pub const PHYSICAL_OFFSET: usize = 28;
    pub const SYS_FLAG: usize = 36;
    pub const BORN_TIMESTAMP: usize = 40;
    pub const BORN_HOST: usize = 48;
}

/// RocketMQ's body checksum: CRC32 masked to 31 bits.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

/// What a writer knows about a message before the engine gives it offsets.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub properties: &'a str,
}

fn host_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv6() {
        20
    } else {
        8
    }
}

impl NewRecord<'_> {
    /// The sys flag with the host-address bits set from the addresses.
    fn effective_sys_flag(&self) -> i32 {
        let mut f = self.sys_flag & !(sys_flag::BORN_HOST_V6 | sys_flag::STORE_HOST_V6);
        if self.born_host.is_ipv6() {
            f |= sys_flag::BORN_HOST_V6;
        }
        if self.store_host.is_ipv6() {
            f |= sys_flag::STORE_HOST_V6;
        }
        f
    }

    /// Bytes this record takes in the commit log.
    pub fn encoded_len(&self) -> usize {
        4 + 4
            + 4
            + 4
            + 4
            + 8
            + 8
            + 4
            + 8
            + host_len(&self.born_host)
            + 8
            + host_len(&self.store_host)
            + 4
            + 8
            + 4
            + self.body.len()
            + 1
            + self.topic.len()
            + 2
            + self.properties.len()
    }

    /// Appends the record with its queue offset, physical offset and a body CRC already computed.
    ///
    /// The caller has checked the topic (≤ 127 bytes) and the properties (≤ i16::MAX bytes).
    pub fn encode(&self, queue_offset: i64, physical_offset: i64, crc: u32, out: &mut Vec<u8>) {
        let start = out.len();
        let len = self.encoded_len();
        assert!(
            self.topic.len() <= i8::MAX as usize,
            "topic `{}` longer than 127 bytes",
            self.topic
        );
        assert!(
            self.properties.len() <= i16::MAX as usize,
            "properties longer than i16::MAX"
        );
        out.reserve(len);
        out.put_i32(len as i32);
        out.put_u32(MESSAGE_MAGIC);
        out.put_u32(crc);
        out.put_i32(self.queue_id);
        out.put_i32(self.flag);
        out.put_i64(queue_offset);
        out.put_i64(physical_offset);
        out.put_i32(self.effective_sys_flag());
        out.put_i64(self.born_timestamp);
        put_host(out, &self.born_host);
        out.put_i64(self.store_timestamp);
        put_host(out, &self.store_host);
        out.put_i32(self.reconsume_times);
        out.put_i64(self.prepared_transaction_offset);
        out.put_i32(self.body.len() as i32);
        out.put_slice(self.body);
        out.put_u8(self.topic.len() as u8);
        out.put_slice(self.topic.as_bytes());
        out.put_i16(self.properties.len() as i16);
        out.put_slice(self.properties.as_bytes());
        assert_eq!(
            out.len() - start,
            len,
            "record encoded to a different length than computed"
        );
    }
}

fn put_host(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(addr.port() as i32);
}

/// Writes the blank that fills the `remaining` bytes at the end of a commit log file.
pub fn encode_blank(remaining: usize, out: &mut Vec<u8>) {
    assert!(
        remaining >= BLANK_MIN_BYTES,
        "a blank needs {BLANK_MIN_BYTES} bytes, only {remaining} left"
    );
    out.put_i32(remaining as i32);
    out.put_u32(BLANK_MAGIC);
}

/// A stored record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub total_size: i32,
    pub body_crc: u32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    pub topic: String,
    pub properties: String,
}

/// What sits at a position of a commit log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A whole, valid record of this many bytes.
    Record(usize),
    /// The end-of-file blank; the rest of the file is unused.
    Blank,
    /// Zeros: nothing was ever written here.
    End,
    /// Not a valid record: torn, or corrupt.
    Corrupt(&'static str),
}

/// Looks at `bytes` (which start at a record boundary) and says what is there, checking size, magic and,
/// if `check_crc`, the body CRC. `Corrupt` also covers a record cut off by the end of `bytes`.
pub fn probe(bytes: &[u8], check_crc: bool) -> Probe {
    if bytes.len() < 8 {
        return if bytes.iter().all(|b| *b == 0) {
            Probe::End
        } else {
            Probe::Corrupt("torn header")
        };
    }
    let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let magic = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if size == 0 && magic == 0 {
        return Probe::End;
    }
    if magic == BLANK_MAGIC {
        return Probe::Blank;
    }
    if magic != MESSAGE_MAGIC && magic != MESSAGE_MAGIC_V2 {
        return Probe::Corrupt("bad magic code");
    }
    if size <= 0 || size as usize > bytes.len() {
        return Probe::Corrupt("TOTALSIZE runs past the written data");
    }
    match decode(&bytes[..size as usize]) {
        Ok(r) => {
            if check_crc && body_crc(&r.body) != r.body_crc {
                return Probe::Corrupt("body CRC mismatch");
            }
            Probe::Record(size as usize)
        }
        Err(ProtocolError::Record { reason, .. }) => Probe::Corrupt(reason),
        Err(_) => Probe::Corrupt("undecodable record"),
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, why: &'static str) -> Result<&'a [u8]> {
        if self.pos + n > self.b.len() {
            return Err(ProtocolError::Record {
                at: self.pos,
                reason: why,
            });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i32(&mut self, why: &'static str) -> Result<i32> {
        let s = self.take(4, why)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i64(&mut self, why: &'static str) -> Result<i64> {
        let s = self.take(8, why)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }
    fn host(&mut self, v6: bool, why: &'static str) -> Result<SocketAddr> {
        let ip: IpAddr = if v6 {
            let s = self.take(16, why)?;
            let mut o = [0u8; 16];
            o.copy_from_slice(s);
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            let s = self.take(4, why)?;
            IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
        };
        let port = self.i32(why)?;
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// Decodes one record from exactly its bytes (`bytes.len()` is its TOTALSIZE).
pub fn decode(bytes: &[u8]) -> Result<StoredRecord> {
    decode_shared(&Bytes::copy_from_slice(bytes), 0).map(|(r, _)| r)
}

/// Decodes the record starting at `pos` of `src`, sharing `src` for the body; returns it and its size.
pub fn decode_shared(src: &Bytes, pos: usize) -> Result<(StoredRecord, usize)> {
    let mut c = Cursor { b: &src[..], pos };
    let total_size = c.i32("torn TOTALSIZE")?;
    if total_size < 4 || pos + total_size as usize > src.len() {
        return Err(ProtocolError::Record {
            at: pos,
            reason: "TOTALSIZE runs past the data",
        });
    }
    let end = pos + total_size as usize;
    let mut c = Cursor {
        b: &src[..end],
        pos: pos + 4,
    };
    let magic = c.i32("torn magic")? as u32;
    let topic_len_bytes = match magic {
        MESSAGE_MAGIC => 1,
        MESSAGE_MAGIC_V2 => 2,
        _ => {
            return Err(ProtocolError::Record {
                at: pos,
                reason: "bad magic code",
            })
        }
    };
    let body_crc = c.i32("torn body CRC")? as u32;
    let queue_id = c.i32("torn queue id")?;
    let flag = c.i32("torn flag")?;
    let queue_offset = c.i64("torn queue offset")?;
    let physical_offset = c.i64("torn physical offset")?;
    let sys_flag = c.i32("torn sys flag")?;
    let born_timestamp = c.i64("torn born timestamp")?;
    let born_host = c.host(sys_flag & sys_flag::BORN_HOST_V6 != 0, "torn born host")?;
    let store_timestamp = c.i64("torn store timestamp")?;
    let store_host = c.host(sys_flag & sys_flag::STORE_HOST_V6 != 0, "torn store host")?;
    let reconsume_times = c.i32("torn reconsume times")?;
    let prepared_transaction_offset = c.i64("torn prepared transaction offset")?;
    let body_len = c.i32("torn body length")?;
    if body_len < 0 {
        return Err(ProtocolError::Record {
            at: c.pos,
            reason: "negative body length",
        });
    }
    let body_start = c.pos;
    c.take(body_len as usize, "body runs past TOTALSIZE")?;
    let body = src.slice(body_start..body_start + body_len as usize);
    let topic_len = if topic_len_bytes == 1 {
        c.take(1, "torn topic length")?[0] as usize
    } else {
        let s = c.take(2, "torn topic length")?;
        u16::from_be_bytes([s[0], s[1]]) as usize
    };
    let topic = std::str::from_utf8(c.take(topic_len, "topic runs past TOTALSIZE")?)
        .map_err(|_| ProtocolError::Record {
            at: c.pos,
            reason: "topic is not UTF-8",
        })?
        .to_owned();
    let s = c.take(2, "torn properties length")?;
    let props_len = i16::from_be_bytes([s[0], s[1]]);
    if props_len < 0 {
        return Err(ProtocolError::Record {
            at: c.pos,
            reason: "negative properties length",
        });
    }
    let properties =
        std::str::from_utf8(c.take(props_len as usize, "properties run past TOTALSIZE")?)
            .map_err(|_| ProtocolError::Record {
                at: c.pos,
                reason: "properties are not UTF-8",
            })?
            .to_owned();
    if c.pos != end {
        return Err(ProtocolError::Record {
            at: c.pos,
            reason: "fields end before TOTALSIZE",
        });
    }
    Ok((
        StoredRecord {
            total_size,
            body_crc,
            queue_id,
            flag,
            queue_offset,
            physical_offset,
            sys_flag,
            born_timestamp,
            born_host,
            store_timestamp,
            store_host,
            reconsume_times,
            prepared_transaction_offset,
            body,
            topic,
            properties,
        },
        total_size as usize,
    ))
}

/// The properties string of one stored record (`bytes` is exactly the record), found by skipping the
/// fields before it: nothing is copied, so a filter can look at every record a pull reads. `None` when
/// the record is malformed or its properties are not UTF-8.
pub fn properties_of(bytes: &[u8]) -> Option<&str> {
    let be_i32 = |at: usize| -> Option<i32> {
        let s = bytes.get(at..at + 4)?;
        Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let magic = be_i32(at::MAGIC)? as u32;
    let sys_flag = be_i32(at::SYS_FLAG)?;
    let host = |flag: i32| if sys_flag & flag != 0 { 20 } else { 8 };
    // BORN_HOST, then STORETIMESTAMP (8), STOREHOST, RECONSUMETIMES (4), PREPARED OFFSET (8).
    let mut pos = at::BORN_HOST + host(sys_flag::BORN_HOST_V6) + 8;
    pos += host(sys_flag::STORE_HOST_V6) + 4 + 8;
    let body_len = usize::try_from(be_i32(pos)?).ok()?;
    pos += 4 + body_len;
    let topic_len = match magic {
        MESSAGE_MAGIC => {
            let n = *bytes.get(pos)? as usize;
            pos += 1;
            n
        }
        MESSAGE_MAGIC_V2 => {
            let s = bytes.get(pos..pos + 2)?;
            pos += 2;
            u16::from_be_bytes([s[0], s[1]]) as usize
        }
        _ => return None,
    };
    pos += topic_len;
    let s = bytes.get(pos..pos + 2)?;
    let len = usize::try_from(i16::from_be_bytes([s[0], s[1]])).ok()?;
    std::str::from_utf8(bytes.get(pos + 2..pos + 2 + len)?).ok()
}

/// Decodes records back to back, as a pull answer carries them.
pub fn decode_all(src: &Bytes) -> Result<Vec<StoredRecord>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < src.len() {
        let (r, n) = decode_shared(src, pos)?;
        out.push(r);
        pos += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(body: &'a [u8], props: &'a str) -> NewRecord<'a> {
        NewRecord {
            topic: "T",
            queue_id: 2,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 0x0102,
            born_host: "10.0.0.1:5000".parse().unwrap(),
            store_timestamp: 0x0304,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties: props,
        }
    }

    #[test]
    fn properties_are_found_in_place_for_v4_and_v6_hosts() {
        let mut out = Vec::new();
        let rec = sample(b"body", "a\u{1}1\u{2}");
        rec.encode(0, 0, body_crc(b"body"), &mut out);
        assert_eq!(properties_of(&out), Some("a\u{1}1\u{2}"));
        let mut v6 = sample(b"", "TAGS\u{1}x\u{2}");
        v6.store_host = "[::1]:10911".parse().unwrap();
        let mut out6 = Vec::new();
        v6.encode(0, 0, body_crc(b""), &mut out6);
        assert_eq!(properties_of(&out6), Some("TAGS\u{1}x\u{2}"));
        assert_eq!(properties_of(&out6[..out6.len() - 1]), None, "cut short");
        assert_eq!(properties_of(&[]), None);
    }

    #[test]
    fn record_matches_hand_written_rocketmq_layout() {
        let rec = sample(b"hi", "K\u{1}V\u{2}");
        let mut out = Vec::new();
        rec.encode(5, 4096, body_crc(b"hi"), &mut out);
        let crc = (crc32fast::hash(b"hi") & 0x7FFF_FFFF).to_be_bytes();
        #[rustfmt::skip]
        let mut expect: Vec<u8> = vec![
            0, 0, 0, 98,                    // TOTALSIZE
            0xDA, 0xA3, 0x20, 0xA7,         // MAGICCODE
        ];
        expect.extend_from_slice(&crc);
        #[rustfmt::skip]
        expect.extend_from_slice(&[
            0, 0, 0, 2,                     // QUEUEID
            0, 0, 0, 0,                     // FLAG
            0, 0, 0, 0, 0, 0, 0, 5,         // QUEUEOFFSET
            0, 0, 0, 0, 0, 0, 0x10, 0,      // PHYSICALOFFSET
            0, 0, 0, 0,                     // SYSFLAG
            0, 0, 0, 0, 0, 0, 1, 2,         // BORNTIMESTAMP
            10, 0, 0, 1, 0, 0, 0x13, 0x88,  // BORNHOST
            0, 0, 0, 0, 0, 0, 3, 4,         // STORETIMESTAMP
            127, 0, 0, 1, 0, 0, 0x2A, 0x9F, // STOREHOSTADDRESS
            0, 0, 0, 0,                     // RECONSUMETIMES
            0, 0, 0, 0, 0, 0, 0, 0,         // PREPARED TRANSACTION OFFSET
            0, 0, 0, 2, b'h', b'i',         // BODY
            1, b'T',                        // TOPIC
            0, 4, b'K', 1, b'V', 2,         // PROPERTIES
        ]);
        assert_eq!(out, expect);
        assert_eq!(rec.encoded_len(), out.len());
        let back = decode(&out).unwrap();
        assert_eq!(back.queue_offset, 5);
        assert_eq!(back.physical_offset, 4096);
        assert_eq!(&back.body[..], b"hi");
        assert_eq!(back.topic, "T");
        assert_eq!(back.properties, "K\u{1}V\u{2}");
        assert_eq!(probe(&out, true), Probe::Record(98));
    }

    #[test]
    fn probe_tells_torn_corrupt_blank_and_end() {
        let mut out = Vec::new();
        sample(b"payload", "").encode(0, 0, body_crc(b"payload"), &mut out);
        assert_eq!(
            probe(&out[..out.len() - 1], true),
            Probe::Corrupt("TOTALSIZE runs past the written data")
        );
        let mut bad = out.clone();
        let body_at = bad.len() - 2 - 2 - 7;
        bad[body_at] ^= 0xFF;
        assert_eq!(probe(&bad, true), Probe::Corrupt("body CRC mismatch"));
        assert_eq!(probe(&[0u8; 64], true), Probe::End);
        let mut blank = Vec::new();
        encode_blank(100, &mut blank);
        assert_eq!(probe(&blank, true), Probe::Blank);
    }

    #[test]
    fn ipv6_hosts_set_their_sys_flag_bits() {
        let mut rec = sample(b"x", "");
        rec.store_host = "[::1]:10911".parse().unwrap();
        let mut out = Vec::new();
        rec.encode(0, 0, body_crc(b"x"), &mut out);
        let back = decode(&out).unwrap();
        assert_eq!(back.store_host, rec.store_host);
        assert_ne!(back.sys_flag & sys_flag::STORE_HOST_V6, 0);
    }
}
