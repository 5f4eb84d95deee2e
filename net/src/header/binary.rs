//! The ROCKETMQ binary header.
//!
//! ```text
//! code i16 | language u8 | version i16 | opaque i32 | flag i32 | remark: len i32 + utf8 |
//! extFields: total len i32, then repeated (key len i16 + key, value len i32 + value)
//! ```
//! Every length is checked against the bytes that remain before anything is read or allocated. The
//! extFields part is already [`ExtFields`]' own layout: decoding keeps it as a slice of the frame, encoding
//! copies it.

use bytes::{BufMut, Bytes};

use crate::codes::Language;
use crate::command::{ExtFields, RemotingCommand};
use crate::error::{ProtocolError, Result};
use crate::ext_fields::Parsed;
use crate::header::SerializeType;

/// Writes the header fields of `command` in the binary encoding.
pub fn encode(command: &RemotingCommand, out: &mut impl BufMut) {
    out.put_i16(command.code as i16);
    out.put_u8(command.language as u8);
    out.put_i16(command.version as i16);
    out.put_i32(command.opaque);
    out.put_i32(command.flag);
    match &command.remark {
        Some(remark) => {
            out.put_i32(remark.len() as i32);
            out.put_slice(remark.as_bytes());
        }
        None => out.put_i32(0),
    }
    command.ext_fields.encode_binary(out);
}

/// Bytes [`encode`] writes for `command`.
pub fn encoded_len(command: &RemotingCommand) -> usize {
    2 + 1
        + 2
        + 4
        + 4
        + 4
        + command.remark.as_ref().map_or(0, String::len)
        + 4
        + command.ext_fields.wire_len()
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(ProtocolError::BinaryHeader(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn i16(&mut self, what: &'static str) -> Result<i16> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn len(&mut self, raw: i64, what: &'static str) -> Result<usize> {
        if raw < 0 || raw as usize > self.bytes.len() {
            return Err(ProtocolError::BinaryHeader(what));
        }
        Ok(raw as usize)
    }
    fn string(&mut self, n: usize, what: &'static str) -> Result<String> {
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtocolError::Utf8(what))
    }
}

/// Reads header fields from binary bytes; the frame decoder attaches the body, and the extFields, checked
/// here, as a slice of the frame ([`Header::ext_at`]).
pub(crate) fn decode(header: &[u8]) -> Result<Header> {
    let mut r = Reader { bytes: header };
    let code = r.i16("code")? as i32;
    let language = r.take(1, "language")?[0];
    let version = r.i16("version")? as i32;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let raw = r.i32("remark length")? as i64;
    let remark_len = r.len(raw, "remark length exceeds the header")?;
    let remark = if remark_len > 0 {
        Some(r.string(remark_len, "remark")?)
    } else {
        None
    };
    let raw = r.i32("extFields length")? as i64;
    let ext_len = r.len(raw, "extFields length exceeds the header")?;
    let ext_at = header.len() - r.bytes.len();
    let ext = ExtFields::parse_binary(r.take(ext_len, "extFields")?)?;
    Ok(Header {
        command: RemotingCommand {
            code,
            language: Language::from_i32(language as i32).unwrap_or(Language::Other),
            version,
            opaque,
            flag,
            remark,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            serialize_type: SerializeType::Rocketmq,
        },
        ext_at: ext_at..ext_at + ext_len,
        ext,
    })
}

/// A decoded binary header whose extFields still wait for their bytes.
pub(crate) struct Header {
    pub command: RemotingCommand,
    /// Where the extFields lie in the header.
    pub ext_at: std::ops::Range<usize>,
    pub ext: Parsed,
}
