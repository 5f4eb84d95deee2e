//! The peer wire format: one raft-rs `Message` per frame. Pure codec, no I/O.
//!
//! ```text
//! offset  size  field
//! 0       4     len   u32 big-endian: body length, 1..=FRAME_BYTES_MAX
//! 4       4     crc   u32 big-endian: CRC-32 (IEEE) of the body
//! 8       len   body  the protobuf (rust-protobuf 2, eraftpb.Message) encoding of one Message
//! ```
//!
//! The length is checked before the body is read or allocated; the CRC before the body is parsed. A frame
//! failing either, or naming another node as its receiver, closes the link (see `super::link`).

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::Message;

use crate::limits::FRAME_BYTES_MAX;

pub const HEADER_BYTES: usize = 8;

/// The keepalive a dialler sends on an idle link: a `MsgHup` (a message raft-rs only ever creates locally, so no
/// peer sends it for real) from the sender to the receiver. Readers drop it instead of stepping it.
pub fn keepalive(from: u64, to: u64) -> Message {
    let mut m = Message {
        from,
        to,
        ..Message::default()
    };
    m.set_msg_type(raft::eraftpb::MessageType::MsgHup);
    m
}

pub fn is_keepalive(m: &Message) -> bool {
    m.get_msg_type() == raft::eraftpb::MessageType::MsgHup
}

/// Why a frame is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    BadLength(u32),
    BadCrc { stored: u32, computed: u32 },
    Undecodable(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadLength(len) => write!(
                f,
                "frame length {len} outside 1..={FRAME_BYTES_MAX} (FRAME_BYTES_MAX)"
            ),
            FrameError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "frame crc mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            FrameError::Undecodable(e) => write!(f, "frame body is not a raft Message: {e}"),
        }
    }
}

/// Appends one frame for `msg` to `out`. Returns the body length, or `None` (nothing appended) for a message
/// that cannot be encoded within FRAME_BYTES_MAX.
pub fn encode(msg: &Message, out: &mut Vec<u8>) -> Option<usize> {
    let size = msg.compute_size() as u64;
    if size == 0 || size > FRAME_BYTES_MAX {
        return None;
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    if msg.write_to_vec(out).is_err() {
        out.truncate(start);
        return None;
    }
    let body = &out[start + HEADER_BYTES..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Some(len as usize)
}

/// Reads a header: (body length, crc).
pub fn decode_header(h: &[u8; HEADER_BYTES]) -> Result<(usize, u32), FrameError> {
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    if len == 0 || len as u64 > FRAME_BYTES_MAX {
        return Err(FrameError::BadLength(len));
    }
    Ok((len as usize, crc))
}

/// Checks and parses a body (entry payloads share `body`'s buffer).
pub fn decode_body(body: &Bytes, stored: u32) -> Result<Message, FrameError> {
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(FrameError::BadCrc { stored, computed });
    }
    Message::parse_from_carllerche_bytes(body).map_err(|e| FrameError::Undecodable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::{Entry, MessageType};

    #[test]
    fn a_message_round_trips_and_a_corrupt_body_is_refused() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = 1;
        m.to = 2;
        let e = Entry {
            index: 5,
            data: Bytes::from_static(b"payload"),
            ..Entry::default()
        };
        m.mut_entries().push(e);
        let mut out = Vec::new();
        let len = encode(&m, &mut out).unwrap();
        let mut h = [0u8; HEADER_BYTES];
        h.copy_from_slice(&out[..HEADER_BYTES]);
        let (blen, crc) = decode_header(&h).unwrap();
        assert_eq!(blen, len);
        let body = Bytes::copy_from_slice(&out[HEADER_BYTES..]);
        assert_eq!(decode_body(&body, crc).unwrap(), m);
        let mut bad = out[HEADER_BYTES..].to_vec();
        bad[0] ^= 0x40;
        assert!(matches!(
            decode_body(&Bytes::from(bad), crc),
            Err(FrameError::BadCrc { .. })
        ));
        assert!(matches!(
            decode_header(&[0xff, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            decode_header(&[0; 8]),
            Err(FrameError::BadLength(0))
        ));
    }
}
