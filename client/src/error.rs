//! The client's error type: every error a user can act on, with the broker's code and remark.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("TLS with {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("connection to {addr} closed")]
    ConnectionClosed { addr: String },
    #[error("no answer from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    #[error("broker {addr} answered code {code}: {remark}")]
    Broker {
        addr: String,
        code: i32,
        remark: String,
    },
    #[error("protocol error talking to {addr}: {source}")]
    Protocol {
        addr: String,
        source: apogee_net::ProtocolError,
    },
    #[error("no route for topic `{0}`: no name server knows it")]
    NoRoute(String),
    #[error("no name server answered: {0}")]
    NameServer(String),
    #[error("bad message: {0}")]
    BadMessage(String),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the client is shut down")]
    Shutdown,
    #[error("no reply to request {correlation_id} within {timeout_ms} ms")]
    RequestTimeout {
        correlation_id: String,
        timeout_ms: u64,
    },
    #[error("{limit} requests already await their replies; wait for some to finish")]
    TooManyRequests { limit: usize },
    #[error("request to {addr} cannot be signed: {source}")]
    Sign {
        addr: String,
        source: apogee_net::signature::SignatureError,
    },
}

impl ClientError {
    /// The broker's response code, when the broker answered with an error.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}
