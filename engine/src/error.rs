//! The engine's one error type. Variants carry the path, offset or limit involved.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("message body is {size} bytes, the limit (maxMessageSize) is {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("properties are {size} bytes, the limit is {max}")]
    PropertiesTooLarge { size: usize, max: usize },
    #[error("the consumer offset table holds {entries} offsets, its limit; offsets of new queues are not kept (delete unused groups or topics)")]
    OffsetTableFull { entries: usize },
    #[error("bad topic: {0}")]
    BadTopic(String),
    #[error("record of {size} bytes cannot fit in a commit log segment of {segment} bytes")]
    RecordLargerThanSegment { size: usize, segment: u64 },
    /// Writes are refused for space (see [`crate::disk`]); nothing of the refused append was stored.
    #[error("disk is full at {path}: {reason}")]
    DiskFull { path: PathBuf, reason: String },
    /// The offset was stored once, but retention has deleted it (the log now starts at `min_offset`).
    #[error("commit log offset {offset} was deleted by retention; the log starts at {min_offset}")]
    Deleted { offset: u64, min_offset: u64 },
    #[error(
        "flush did not complete within {timeout_ms} ms; the message is stored but not yet durable"
    )]
    FlushTimeout {
        timeout_ms: u64,
        /// Where the messages were stored: they stay, and become durable with a later flush.
        stored: Vec<crate::store::Appended>,
    },
    #[error("corrupt {what} at {path}, offset {offset}: {reason}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Shipped bytes that do not continue this log (replication).
    #[error("replication: {0}")]
    Replication(String),
    #[error("bad config: {0}")]
    Config(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("the engine failed earlier and stopped accepting writes: {0}")]
    Failed(String),
}

impl EngineError {
    /// Whether this is an I/O error that means "no space left" (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Io { source, .. } if crate::disk::is_no_space(source))
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        Self::Io {
            path: path.into(),
            source: source.into(),
        }
    }
}

/// Result with [`EngineError`].
pub type Result<T> = std::result::Result<T, EngineError>;
