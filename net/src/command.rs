//! [`RemotingCommand`]: one decoded frame, request or response.

use std::fmt;

use bytes::Bytes;

use crate::codes::{Language, ResponseCode, VERSION};
use crate::header::SerializeType;

/// `flag` bit 0: this frame is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// `flag` bit 1: this request expects no response.
pub const FLAG_ONEWAY: i32 = 1 << 1;

pub use crate::ext_fields::ExtFields;

/// One frame: its header fields and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code in a request, response code in a response.
    pub code: i32,
    pub language: Language,
    pub version: i32,
    /// Request id, echoed by the response.
    pub opaque: i32,
    pub flag: i32,
    /// Error text on a failed response.
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    pub body: Bytes,
    /// How the header was (or will be) encoded.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A request with no fields yet, in the binary encoding Apogee's own peers use.
    pub fn request(code: i32, opaque: i32) -> Self {
        Self {
            code,
            language: Language::Rust,
            version: VERSION,
            opaque,
            flag: 0,
            remark: None,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            serialize_type: SerializeType::Rocketmq,
        }
    }

    /// The response to this request, with its opaque and header encoding.
    pub fn response_to(&self, code: ResponseCode, remark: Option<String>) -> Self {
        Self {
            code: code as i32,
            language: Language::Rust,
            version: VERSION,
            opaque: self.opaque,
            flag: FLAG_RESPONSE,
            remark,
            ext_fields: ExtFields::new(),
            body: Bytes::new(),
            serialize_type: self.serialize_type,
        }
    }

    /// An error response whose remark says what went wrong.
    pub fn error_to(&self, code: ResponseCode, remark: impl Into<String>) -> Self {
        self.response_to(code, Some(remark.into()))
    }

    pub fn with_ext(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.ext_fields.put_display(key, value);
        self
    }

    /// Sets every header field at once, from a typed header's `to_ext()`.
    pub fn with_ext_fields(mut self, ext: ExtFields) -> Self {
        self.ext_fields = ext;
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_serialize_type(mut self, serialize_type: SerializeType) -> Self {
        self.serialize_type = serialize_type;
        self
    }

    pub fn oneway(mut self) -> Self {
        self.flag |= FLAG_ONEWAY;
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key)
    }

    /// The response code, if this is a response with a known one.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_i32(self.code)
    }
}
