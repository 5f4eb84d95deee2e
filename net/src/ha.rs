//! RocketMQ's classic HA framing between a master's HA port and its slave (`HAConnection` / `HAClient`):
//! the commit log shipped as raw bytes, with no per-record framing.
//!
//! ```text
//! slave → master:  | max commit log offset the slave holds: i64 |             (8 bytes, repeated)
//! master → slave:  | offset of the first byte: i64 | size: i32 | size raw bytes |
//! ```
//! The slave reports its offset on connect, after each batch it appended and as a heartbeat; the master
//! pushes from that offset on. A push with size 0 is the master's heartbeat. Both sides are byte streams:
//! [`decode_report`] and [`decode_push`] cut whole units out of a buffer and leave partial ones in it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};

/// Bytes of a slave's offset report.
pub const REPORT_BYTES: usize = 8;
/// Bytes of a push header.
pub const PUSH_HEADER_BYTES: usize = 12;
/// The largest push accepted: a master sends `haTransferBatchSize` (32 KiB by default) at a time, so
/// anything near this is not a master talking.
pub const PUSH_SIZE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Writes a slave's offset report.
pub fn encode_report(offset: u64, out: &mut BytesMut) {
    out.put_i64(offset as i64);
}

/// Cuts the next offset report out of `buf`; `None` until 8 bytes are there.
pub fn decode_report(buf: &mut BytesMut) -> Result<Option<u64>> {
    if buf.len() < REPORT_BYTES {
        return Ok(None);
    }
    let offset = buf.get_i64();
    if offset < 0 {
        return Err(ProtocolError::BadField {
            field: "slave offset",
            value: offset.to_string(),
        });
    }
    Ok(Some(offset as u64))
}

/// One push from the master: raw commit log bytes starting at `offset` (empty: a heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub offset: u64,
    pub data: Bytes,
}

/// Writes a push header; the caller writes the `size` bytes after it.
pub fn encode_push_header(offset: u64, size: usize, out: &mut BytesMut) {
    out.put_i64(offset as i64);
    out.put_i32(size as i32);
}

/// Cuts the next push out of `buf`; `None` until the whole push is there. The size is checked against
/// [`PUSH_SIZE_MAX_BYTES`] before anything is buffered.
pub fn decode_push(buf: &mut BytesMut) -> Result<Option<Push>> {
    if buf.len() < PUSH_HEADER_BYTES {
        return Ok(None);
    }
    let offset = i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes"));
    let size = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
    if offset < 0 {
        return Err(ProtocolError::BadField {
            field: "push offset",
            value: offset.to_string(),
        });
    }
    if size < 0 || size as usize > PUSH_SIZE_MAX_BYTES {
        return Err(ProtocolError::FrameTooLarge {
            size: size.max(0) as usize,
            max: PUSH_SIZE_MAX_BYTES,
        });
    }
    let size = size as usize;
    if buf.len() < PUSH_HEADER_BYTES + size {
        buf.reserve(PUSH_HEADER_BYTES + size - buf.len());
        return Ok(None);
    }
    buf.advance(PUSH_HEADER_BYTES);
    Ok(Some(Push {
        offset: offset as u64,
        data: buf.split_to(size).freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_decode_whole_under_any_split() {
        let mut wire = BytesMut::new();
        encode_push_header(4096, 5, &mut wire);
        wire.extend_from_slice(b"hello");
        encode_push_header(4101, 0, &mut wire);
        for split in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(p) = decode_push(&mut buf).unwrap() {
                got.push(p);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Some(p) = decode_push(&mut buf).unwrap() {
                got.push(p);
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(got[0].offset, 4096);
            assert_eq!(&got[0].data[..], b"hello");
            assert_eq!(got[1].data.len(), 0, "a heartbeat");
        }
    }

    #[test]
    fn reports_round_trip_and_garbage_is_refused() {
        let mut buf = BytesMut::new();
        encode_report(123_456, &mut buf);
        assert_eq!(decode_report(&mut buf).unwrap(), Some(123_456));
        assert_eq!(decode_report(&mut buf).unwrap(), None);
        let mut bad = BytesMut::from(&[0xFFu8; 8][..]);
        assert!(decode_report(&mut bad).is_err(), "a negative offset");
        let mut huge = BytesMut::new();
        encode_push_header(0, PUSH_SIZE_MAX_BYTES + 1, &mut huge);
        assert!(decode_push(&mut huge).is_err());
    }
}
