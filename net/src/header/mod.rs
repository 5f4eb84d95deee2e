//! The two header encodings of a frame, chosen by the serialize type byte.
//!
//! The 4 bytes after the frame length are `serialize type (u8) << 24 | header length (u24)`.

pub mod binary;
pub mod json;

/// Serialize type byte: how the header is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerializeType {
    /// fastjson-style JSON (0), what the Java client sends by default.
    Json = 0,
    /// RocketMQ's compact binary header (1), what Apogee's own client sends.
    Rocketmq = 1,
}

impl SerializeType {
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Json),
            1 => Some(Self::Rocketmq),
            _ => None,
        }
    }
}
