//! Cutting frames out of a byte stream, and writing them.
//!
//! ```text
//! | length: i32 | serialize type: u8 | header length: u24 | header bytes | body bytes |
//! length = 4 + header length + body length
//! ```
//! [`decode`] looks only at the first 8 bytes until the whole frame is buffered, and rejects a length outside
//! `4..=FRAME_SIZE_MAX_BYTES` at once: a peer cannot make us buffer more than one maximal frame.
//!
//! The buffer grows as the frame's bytes arrive, at most [`FRAME_GROWTH_STEP_BYTES`] ahead of them: a peer
//! that claims 16 MiB and sends 4 bytes costs what it sent, not what it claimed.

use bytes::{BufMut, BytesMut};

use crate::command::{ExtFields, RemotingCommand};
use crate::error::{ProtocolError, Result};
use crate::header::{binary, json, SerializeType};
use crate::limits::{FRAME_GROWTH_STEP_BYTES, FRAME_SIZE_MAX_BYTES, HEADER_SIZE_MAX_BYTES};

/// Bytes before the header: the length and the serialize-type/header-length word.
pub const PREFIX_BYTES: usize = 8;

/// Checks the frame length in the first 4 buffered bytes, if there are 4.
///
/// Callers that read from a socket use this to refuse an oversized frame before reading its body.
pub fn peek_length(src: &[u8]) -> Result<Option<usize>> {
    if src.len() < 4 {
        return Ok(None);
    }
    let length = i32::from_be_bytes([src[0], src[1], src[2], src[3]]) as i64;
    if length < 4 || length as usize > FRAME_SIZE_MAX_BYTES {
        return Err(ProtocolError::FrameLength {
            length,
            max: FRAME_SIZE_MAX_BYTES,
        });
    }
    Ok(Some(length as usize))
}

/// Takes one frame off the front of `src`, if it is all there.
///
/// `Ok(None)`: more bytes are needed. `Err`: the stream is malformed and the connection should close; `src`
/// is left as it was.
pub fn decode(src: &mut BytesMut) -> Result<Option<RemotingCommand>> {
    let Some(length) = peek_length(src)? else {
        return Ok(None);
    };
    if src.len() < 4 + length {
        // Room for the next read only, never the whole declared length: the claim is not yet paid for.
        src.reserve((4 + length - src.len()).min(FRAME_GROWTH_STEP_BYTES));
        return Ok(None);
    }
    let word = u32::from_be_bytes([src[4], src[5], src[6], src[7]]);
    let kind = (word >> 24) as u8;
    let header_len = (word & 0x00FF_FFFF) as usize;
    if header_len > length - 4 || header_len > HEADER_SIZE_MAX_BYTES {
        return Err(ProtocolError::HeaderLength {
            header: header_len,
            frame: length,
        });
    }
    let serialize_type = SerializeType::from_u8(kind).ok_or(ProtocolError::SerializeType(kind))?;
    // The header is parsed in place: a malformed one leaves `src` as it was.
    let header = &src[PREFIX_BYTES..PREFIX_BYTES + header_len];
    let (mut command, ext) = match serialize_type {
        SerializeType::Json => (json::decode(header)?, None),
        SerializeType::Rocketmq => {
            let h = binary::decode(header)?;
            (h.command, Some((h.ext_at, h.ext)))
        }
    };
    // The frame's bytes are shared from here on: the body and the binary extFields are slices of them.
    let frame = src.split_to(4 + length).freeze();
    if let Some((at, parsed)) = ext {
        let wire = frame.slice(PREFIX_BYTES + at.start..PREFIX_BYTES + at.end);
        command.ext_fields = ExtFields::from_parsed(wire, parsed);
    }
    command.body = frame.slice(PREFIX_BYTES + header_len..);
    Ok(Some(command))
}

/// Appends `command` as one frame to `dst`, in its own serialize type; on an error `dst` is left as it
/// was.
///
/// A binary header is measured first and written straight into `dst`, reserved once for the whole frame
/// (no intermediate header buffer); a JSON header (Java clients' requests, so their answers) goes through
/// one.
pub fn encode(command: &RemotingCommand, dst: &mut BytesMut) -> Result<()> {
    match command.serialize_type {
        SerializeType::Rocketmq => {
            let header_len = binary::encoded_len(command);
            let length = checked_length(header_len, command.body.len())?;
            dst.reserve(4 + length);
            let start = dst.len();
            put_prefix(dst, length, SerializeType::Rocketmq, header_len);
            binary::encode(command, dst);
            dst.put_slice(&command.body);
            debug_assert_eq!(
                dst.len() - start,
                4 + length,
                "binary::encoded_len is exact"
            );
        }
        SerializeType::Json => {
            let mut header = Vec::with_capacity(256);
            json::encode(command, &mut header);
            let length = checked_length(header.len(), command.body.len())?;
            dst.reserve(4 + length);
            put_prefix(dst, length, SerializeType::Json, header.len());
            dst.put_slice(&header);
            dst.put_slice(&command.body);
        }
    }
    Ok(())
}

/// The frame length for a header and body of these sizes, if within the limits.
fn checked_length(header_len: usize, body_len: usize) -> Result<usize> {
    let length = 4 + header_len + body_len;
    if length > FRAME_SIZE_MAX_BYTES || header_len > HEADER_SIZE_MAX_BYTES {
        return Err(ProtocolError::FrameTooLarge {
            size: length,
            max: FRAME_SIZE_MAX_BYTES,
        });
    }
    Ok(length)
}

fn put_prefix(dst: &mut BytesMut, length: usize, kind: SerializeType, header_len: usize) {
    dst.put_i32(length as i32);
    dst.put_u32(((kind as u32) << 24) | header_len as u32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::RequestCode;

    fn roundtrip(kind: SerializeType) {
        let cmd = RemotingCommand::request(RequestCode::SendMessageV2 as i32, 42)
            .with_ext("a", "group")
            .with_ext("b", "TopicA")
            .with_body(&b"hello"[..])
            .with_serialize_type(kind);
        let mut buf = BytesMut::new();
        encode(&cmd, &mut buf).unwrap();
        buf.extend_from_slice(&[0, 0]); // the start of the next frame stays put
        let back = decode(&mut buf).unwrap().unwrap();
        assert_eq!(back, cmd);
        assert_eq!(&buf[..], &[0, 0]);
    }

    #[test]
    fn json_and_binary_frames_round_trip() {
        roundtrip(SerializeType::Json);
        roundtrip(SerializeType::Rocketmq);
    }

    #[test]
    fn binary_header_matches_hand_written_bytes() {
        let cmd = RemotingCommand::request(30, 1).with_ext("k", "v");
        let mut buf = BytesMut::new();
        encode(&cmd, &mut buf).unwrap();
        #[rustfmt::skip]
        let header: Vec<u8> = vec![
            0, 30,          // code
            12,             // language RUST
            1, 197,         // version 453
            0, 0, 0, 1,     // opaque
            0, 0, 0, 0,     // flag
            0, 0, 0, 0,     // remark length
            0, 0, 0, 8,     // extFields length
            0, 1, b'k', 0, 0, 0, 1, b'v',
        ];
        let mut expect = vec![
            0,
            0,
            0,
            (4 + header.len()) as u8,
            1,
            0,
            0,
            header.len() as u8,
        ];
        expect.extend_from_slice(&header);
        assert_eq!(&buf[..], &expect[..]);
    }

    #[test]
    fn java_style_json_header_is_accepted() {
        let header = br#"{"code":34,"extFields":{"n":5,"x":null},"flag":0,"language":"JAVA","opaque":9,"serializeTypeCurrentRPC":"JSON","version":401}"#;
        let mut buf = BytesMut::new();
        buf.put_i32(4 + header.len() as i32);
        buf.put_u32(header.len() as u32);
        buf.put_slice(header);
        let cmd = decode(&mut buf).unwrap().unwrap();
        assert_eq!(cmd.code, 34);
        assert_eq!(cmd.opaque, 9);
        assert_eq!(cmd.ext("n"), Some("5"));
        assert_eq!(cmd.language, crate::codes::Language::Java);
    }

    #[test]
    fn oversized_and_negative_lengths_are_rejected_before_buffering() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode(&mut buf),
            Err(ProtocolError::FrameLength { .. })
        ));
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode(&mut buf),
            Err(ProtocolError::FrameLength { .. })
        ));
    }

    #[test]
    fn header_longer_than_frame_is_rejected() {
        let mut buf = BytesMut::new();
        buf.put_i32(8);
        buf.put_u32(0x0100_0010);
        buf.put_u32(0);
        assert!(matches!(
            decode(&mut buf),
            Err(ProtocolError::HeaderLength { .. })
        ));
    }

    #[test]
    fn claimed_large_partially_sent_frame_holds_only_what_arrived() {
        let mut buf = BytesMut::new();
        buf.put_i32(FRAME_SIZE_MAX_BYTES as i32);
        buf.put_u32(0x0000_0010);
        buf.put_slice(&[0u8; 100]);
        let arrived = buf.len();
        for _ in 0..3 {
            assert!(decode(&mut buf).unwrap().is_none());
        }
        assert!(
            buf.capacity() <= 2 * arrived + FRAME_GROWTH_STEP_BYTES,
            "{} bytes arrived of a claimed {FRAME_SIZE_MAX_BYTES}, yet {} are reserved",
            arrived,
            buf.capacity()
        );
        // And as the frame arrives, it is still cut whole.
        let cmd = RemotingCommand::request(10, 3).with_body(vec![7u8; 300_000]);
        let mut full = BytesMut::new();
        encode(&cmd, &mut full).unwrap();
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in full.chunks(4096) {
            buf.extend_from_slice(piece);
            assert!(got.is_none());
            got = decode(&mut buf).unwrap();
            assert!(buf.capacity() <= 2 * full.len() + FRAME_GROWTH_STEP_BYTES);
        }
        assert_eq!(got.unwrap(), cmd);
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_and_leaves_the_buffer_as_it_was() {
        for kind in [SerializeType::Rocketmq, SerializeType::Json] {
            let big = RemotingCommand::request(10, 3)
                .with_ext("k", "v")
                .with_body(vec![0u8; FRAME_SIZE_MAX_BYTES])
                .with_serialize_type(kind);
            let mut dst = BytesMut::from(&b"earlier"[..]);
            assert!(matches!(
                encode(&big, &mut dst),
                Err(ProtocolError::FrameTooLarge { .. })
            ));
            assert_eq!(&dst[..], b"earlier");
        }
    }

    #[test]
    fn truncated_frame_waits_for_more_bytes() {
        let cmd = RemotingCommand::request(10, 3).with_body(&b"abc"[..]);
        let mut full = BytesMut::new();
        encode(&cmd, &mut full).unwrap();
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(decode(&mut part).unwrap().is_none(), "cut at {cut}");
        }
    }
}
