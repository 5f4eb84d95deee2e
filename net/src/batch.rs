//! The body of SEND_BATCH_MESSAGE: messages back to back, each
//!
//! ```text
//! TOTALSIZE i32 | MAGIC i32 (0) | BODYCRC i32 (0) | FLAG i32 | BODY len i32 + bytes | PROPERTIES len i16 + bytes
//! ```

use bytes::{BufMut, Bytes};

use crate::error::{ProtocolError, Result};
use crate::properties;

/// One message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    pub flag: i32,
    pub body: Bytes,
    pub properties: String,
}

/// Appends one batch entry.
pub fn encode_one(flag: i32, body: &[u8], props: &str, out: &mut Vec<u8>) -> Result<()> {
    properties::check_size(props.len())?;
    let total = 4 + 4 + 4 + 4 + 4 + body.len() + 2 + props.len();
    out.put_i32(total as i32);
    out.put_i32(0);
    out.put_i32(0);
    out.put_i32(flag);
    out.put_i32(body.len() as i32);
    out.put_slice(body);
    out.put_i16(props.len() as i16);
    out.put_slice(props.as_bytes());
    Ok(())
}

/// Splits a batch body into its messages; the bodies share `src`'s memory.
pub fn decode(src: &Bytes) -> Result<Vec<BatchMessage>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < src.len() {
        let index = out.len();
        let bad = |reason| ProtocolError::Batch { index, reason };
        let rest = &src[pos..];
        if rest.len() < 20 {
            return Err(bad("fewer bytes than a message header"));
        }
        let int =
            |at: usize| i32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let total = int(0);
        if total < 22 || total as usize > rest.len() {
            return Err(bad("TOTALSIZE is outside the batch"));
        }
        let total = total as usize;
        let flag = int(12);
        let body_len = int(16);
        if body_len < 0 || 20 + body_len as usize + 2 > total {
            return Err(bad("body length is outside the message"));
        }
        let body_len = body_len as usize;
        let body = src.slice(pos + 20..pos + 20 + body_len);
        let p = 20 + body_len;
        let props_len = i16::from_be_bytes([rest[p], rest[p + 1]]);
        if props_len < 0 || p + 2 + props_len as usize != total {
            return Err(bad("properties length does not end at TOTALSIZE"));
        }
        let props = std::str::from_utf8(&rest[p + 2..total])
            .map_err(|_| bad("properties are not UTF-8"))?
            .to_owned();
        out.push(BatchMessage {
            flag,
            body,
            properties: props,
        });
        pos += total;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_and_rejects_bad_lengths() {
        let mut buf = Vec::new();
        encode_one(0, b"one", "TAGS\u{1}a\u{2}", &mut buf).unwrap();
        encode_one(7, b"", "", &mut buf).unwrap();
        let bytes = Bytes::from(buf.clone());
        let msgs = decode(&bytes).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(&msgs[0].body[..], b"one");
        assert_eq!(msgs[1].flag, 7);
        let mut bad = buf.clone();
        bad[3] = 0xff;
        assert!(decode(&Bytes::from(bad)).is_err());
        assert!(decode(&Bytes::from(buf[..buf.len() - 1].to_vec())).is_err());
    }
}
