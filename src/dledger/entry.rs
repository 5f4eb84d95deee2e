//! The Raft entry of Dledger mode: one send (or one batch) as RocketMQ commit log records, plus what the
//! leader decided when it took them (store timestamp, store host) and who is waiting for them.
//!
//! ```text
//! offset size  field
//!      0    4  magic 0x444C_4531 ("DLE1"), big-endian like everything here
//!      4    1  version (1)
//!      5    3  zero
//!      8    8  proposal id: the proposing process's waiter key (not stored in the commit log)
//!     16    8  store timestamp (ms), the leader's clock when it took the send
//!     24    1  store host family: 4 or 6
//!     25   16  store host IP (IPv4 in the first 4 bytes, the rest zero)
//!     41    2  store host port
//!     43    4  record count n (0..=RECORDS_PER_ENTRY_MAX; 0: a new leader's barrier, nothing to store)
//!     47    …  n records in RocketMQ's commit log layout (`apogee_net::record`), QUEUEOFFSET and
//!              PHYSICALOFFSET 0, STORETIMESTAMP and STOREHOST as in the header
//! ```
//!
//! The records are what every replica's commit log will hold once its engine fills in the two offsets at
//! apply time (`Engine::append_applied`), so the three logs are byte-identical: nothing in an entry
//! depends on the replica that applies it. Decoding checks every length before reading and shares the
//! entry's buffer for the bodies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use apogee_engine::Message;
use apogee_net::record::{self, NewRecord};
use bytes::{BufMut, Bytes};
use thiserror::Error;

/// "DLE1".
pub const ENTRY_MAGIC: u32 = 0x444C_4531;
pub const ENTRY_VERSION: u8 = 1;
/// Bytes before the first record.
pub const HEADER_BYTES: usize = 47;
/// Records one entry carries at most (a batch is one entry; RocketMQ's client batches far fewer).
pub const RECORDS_PER_ENTRY_MAX: usize = 65_536;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("Dledger entry of {len} bytes is shorter than its {HEADER_BYTES}-byte header")]
    Short { len: usize },
    #[error("Dledger entry has magic {found:#010x}, expected {ENTRY_MAGIC:#010x}")]
    Magic { found: u32 },
    #[error("Dledger entry version {found} is not {ENTRY_VERSION}")]
    Version { found: u8 },
    #[error("Dledger entry store host family {found} is neither 4 nor 6")]
    Family { found: u8 },
    #[error("Dledger entry names {count} records; 0..={RECORDS_PER_ENTRY_MAX} allowed")]
    Count { count: u32 },
    #[error("Dledger entry record {index} at byte {at}: {reason}")]
    Record {
        index: usize,
        at: usize,
        reason: String,
    },
    #[error("Dledger entry has {extra} bytes after its {count} records")]
    Trailing { count: u32, extra: usize },
}

/// A decoded entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub proposal_id: u64,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub messages: Vec<Message>,
}

/// A new leader's barrier: an entry with no records. Once the leader applied it, it applied every entry
/// before it (see `super::role`).
pub fn encode_barrier(proposal_id: u64, store_host: SocketAddr) -> Bytes {
    encode_records(proposal_id, 0, store_host, &[])
}

/// Encodes `messages` as one entry (see the module docs). The caller has checked topics, sizes and
/// properties as for an ordinary append.
pub fn encode(
    proposal_id: u64,
    store_timestamp: i64,
    store_host: SocketAddr,
    messages: &[Message],
) -> Bytes {
    assert!(
        !messages.is_empty() && messages.len() <= RECORDS_PER_ENTRY_MAX,
        "an entry holds 1..={RECORDS_PER_ENTRY_MAX} records, not {}",
        messages.len()
    );
    encode_records(proposal_id, store_timestamp, store_host, messages)
}

fn encode_records(
    proposal_id: u64,
    store_timestamp: i64,
    store_host: SocketAddr,
    messages: &[Message],
) -> Bytes {
    let records: Vec<NewRecord<'_>> = messages
        .iter()
        .map(|m| NewRecord {
            topic: &m.topic,
            queue_id: m.queue_id,
            flag: m.flag,
            sys_flag: m.sys_flag,
            born_timestamp: m.born_timestamp,
            born_host: m.born_host,
            store_timestamp,
            store_host,
            reconsume_times: m.reconsume_times,
            prepared_transaction_offset: m.prepared_transaction_offset,
            body: &m.body,
            properties: &m.properties,
        })
        .collect();
    let len = HEADER_BYTES + records.iter().map(NewRecord::encoded_len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.put_u32(ENTRY_MAGIC);
    out.put_u8(ENTRY_VERSION);
    out.put_slice(&[0; 3]);
    out.put_u64(proposal_id);
    out.put_i64(store_timestamp);
    match store_host.ip() {
        IpAddr::V4(ip) => {
            out.put_u8(4);
            out.put_slice(&ip.octets());
            out.put_slice(&[0; 12]);
        }
        IpAddr::V6(ip) => {
            out.put_u8(6);
            out.put_slice(&ip.octets());
        }
    }
    out.put_u16(store_host.port());
    out.put_u32(records.len() as u32);
    debug_assert_eq!(out.len(), HEADER_BYTES);
    for r in &records {
        r.encode(0, 0, record::body_crc(r.body), &mut out);
    }
    assert_eq!(
        out.len(),
        len,
        "entry encoded to a different length than computed"
    );
    Bytes::from(out)
}

/// Decodes an entry, sharing `data` for the bodies.
pub fn decode(data: &Bytes) -> Result<Entry, EntryError> {
    if data.len() < HEADER_BYTES {
        return Err(EntryError::Short { len: data.len() });
    }
    let u32_at =
        |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&data[at..at + 8]);
        u64::from_be_bytes(a)
    };
    let magic = u32_at(0);
    if magic != ENTRY_MAGIC {
        return Err(EntryError::Magic { found: magic });
    }
    if data[4] != ENTRY_VERSION {
        return Err(EntryError::Version { found: data[4] });
    }
    let proposal_id = u64_at(8);
    let store_timestamp = u64_at(16) as i64;
    let ip = match data[24] {
        4 => IpAddr::V4(Ipv4Addr::new(data[25], data[26], data[27], data[28])),
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&data[25..41]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
        found => return Err(EntryError::Family { found }),
    };
    let store_host = SocketAddr::new(ip, u16::from_be_bytes([data[41], data[42]]));
    let count = u32_at(43);
    if count as usize > RECORDS_PER_ENTRY_MAX {
        return Err(EntryError::Count { count });
    }
    let mut messages = Vec::with_capacity(count as usize);
    let mut at = HEADER_BYTES;
    for index in 0..count as usize {
        let bad = |reason: String| EntryError::Record { index, at, reason };
        if at >= data.len() {
            return Err(bad("the entry ends before it".into()));
        }
        let (r, size) = record::decode_shared(data, at).map_err(|e| bad(e.to_string()))?;
        if r.store_timestamp != store_timestamp || r.store_host != store_host {
            return Err(bad(format!(
                "stored at {} by {}, the entry says {store_timestamp} by {store_host}",
                r.store_timestamp, r.store_host
            )));
        }
        if r.queue_offset != 0 || r.physical_offset != 0 {
            return Err(bad("offsets are set; an entry's records carry 0".into()));
        }
        if record::body_crc(&r.body) != r.body_crc {
            return Err(bad("body CRC mismatch".into()));
        }
        messages.push(Message {
            topic: r.topic,
            queue_id: r.queue_id,
            flag: r.flag,
            sys_flag: r.sys_flag,
            born_timestamp: r.born_timestamp,
            born_host: r.born_host,
            reconsume_times: r.reconsume_times,
            prepared_transaction_offset: r.prepared_transaction_offset,
            body: r.body,
            properties: r.properties,
        });
        at += size;
    }
    if at != data.len() {
        return Err(EntryError::Trailing {
            count,
            extra: data.len() - at,
        });
    }
    Ok(Entry {
        proposal_id,
        store_timestamp,
        store_host,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, queue_id: i32, body: &'static [u8], properties: &str) -> Message {
        Message {
            topic: topic.into(),
            queue_id,
            flag: 7,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: "10.0.0.9:5555".parse().expect("literal"),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::from_static(body),
            properties: properties.into(),
        }
    }

    #[test]
    fn a_batch_round_trips_with_the_leaders_timestamp_and_host() {
        let host: SocketAddr = "127.0.0.1:10911".parse().expect("literal");
        let msgs = vec![
            message("T", 0, b"one", "KEYS\u{1}k1\u{2}"),
            message("T", 3, b"", ""),
            message("Other", 1, b"three", "UNIQ_KEY\u{1}abc\u{2}"),
        ];
        let data = encode(42, 1_234, host, &msgs);
        let e = decode(&data).expect("decodes");
        assert_eq!(
            (e.proposal_id, e.store_timestamp, e.store_host),
            (42, 1_234, host)
        );
        assert_eq!(e.messages.len(), 3);
        for (a, b) in e.messages.iter().zip(&msgs) {
            assert_eq!(
                (
                    &a.topic,
                    a.queue_id,
                    a.flag,
                    &a.body,
                    &a.properties,
                    a.born_host
                ),
                (
                    &b.topic,
                    b.queue_id,
                    b.flag,
                    &b.body,
                    &b.properties,
                    b.born_host
                )
            );
        }
    }

    #[test]
    fn a_barrier_has_no_records() {
        let host: SocketAddr = "127.0.0.1:10911".parse().expect("literal");
        let e = decode(&encode_barrier(5, host)).expect("decodes");
        assert_eq!(e.proposal_id, 5);
        assert!(e.messages.is_empty());
    }

    #[test]
    fn an_ipv6_store_host_round_trips() {
        let host: SocketAddr = "[::1]:10911".parse().expect("literal");
        let data = encode(1, 5, host, &[message("T", 0, b"x", "")]);
        assert_eq!(decode(&data).expect("decodes").store_host, host);
    }

    #[test]
    fn every_truncation_and_a_bad_header_are_refused_with_a_reason() {
        let host: SocketAddr = "127.0.0.1:10911".parse().expect("literal");
        let data = encode(
            9,
            5,
            host,
            &[message("T", 0, b"body", ""), message("T", 1, b"b2", "")],
        );
        for cut in 0..data.len() {
            assert!(
                decode(&data.slice(..cut)).is_err(),
                "a cut at {cut} decoded"
            );
        }
        let mut bad = data.to_vec();
        bad[0] ^= 1;
        assert!(matches!(
            decode(&Bytes::from(bad)),
            Err(EntryError::Magic { .. })
        ));
        let mut bad = data.to_vec();
        bad[4] = 2;
        assert_eq!(
            decode(&Bytes::from(bad)).unwrap_err(),
            EntryError::Version { found: 2 }
        );
        let mut longer = data.to_vec();
        longer.push(0);
        assert!(matches!(
            decode(&Bytes::from(longer)),
            Err(EntryError::Trailing { extra: 1, .. })
        ));
        let mut flipped = data.to_vec();
        let body_at = flipped
            .windows(4)
            .position(|w| w == b"body")
            .expect("the body is in the entry");
        flipped[body_at] ^= 0xff;
        assert!(matches!(
            decode(&Bytes::from(flipped)),
            Err(EntryError::Record { index: 0, ref reason, .. }) if reason.contains("CRC")
        ));
    }
}
