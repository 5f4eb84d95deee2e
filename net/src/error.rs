//! The protocol crate's one error type.

use thiserror::Error;

/// What can be wrong with bytes received or values to be sent.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("frame length {length} is outside 4..={max} bytes")]
    FrameLength { length: i64, max: usize },
    #[error("header length {header} does not fit in a frame of {frame} bytes")]
    HeaderLength { header: usize, frame: usize },
    #[error("unknown serialize type {0} (0 is JSON, 1 is ROCKETMQ)")]
    SerializeType(u8),
    #[error("malformed JSON header: {0}")]
    JsonHeader(String),
    #[error("malformed binary header: {0}")]
    BinaryHeader(&'static str),
    #[error("header field is not valid UTF-8: {0}")]
    Utf8(&'static str),
    #[error("missing header field `{0}`")]
    MissingField(&'static str),
    #[error("header field `{field}` has a bad value `{value}`")]
    BadField { field: &'static str, value: String },
    #[error("malformed body: {0}")]
    Body(String),
    #[error("malformed message record at byte {at}: {reason}")]
    Record { at: usize, reason: &'static str },
    #[error("malformed batch at message {index}: {reason}")]
    Batch { index: usize, reason: &'static str },
    #[error("properties are {size} bytes, the limit is {max}")]
    PropertiesTooLarge { size: usize, max: usize },
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },
    #[error("bad message id `{0}`")]
    MessageId(String),
}

/// Result with [`ProtocolError`].
pub type Result<T> = std::result::Result<T, ProtocolError>;
