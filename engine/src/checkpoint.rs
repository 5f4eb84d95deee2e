//! The checkpoint: the commit log offset up to which consume queues are flushed, and whether the last stop
//! was clean. Stored as a [`crate::metadata`] file `<store>/checkpoint`, payload:
//!
//! ```text
//! | clean u8 | log offset u64 | written at (ms) i64 |
//! ```
//! A running engine writes `clean = 0`; only a clean shutdown writes `clean = 1` after its final flush.

use std::path::Path;

use crate::error::{EngineError, Result};
use crate::metadata::{self, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub clean: bool,
    /// Every record below this offset is durable and has its consume queue entries flushed.
    pub log_offset: u64,
    pub written_at_ms: i64,
}

pub fn read(path: &Path) -> Result<Option<Checkpoint>> {
    let Some(p) = metadata::read(path, Kind::Checkpoint)? else {
        return Ok(None);
    };
    if p.len() != 17 {
        return Err(EngineError::Corrupt {
            what: "checkpoint",
            path: path.to_owned(),
            offset: 0,
            reason: format!("payload is {} bytes, expected 17", p.len()),
        });
    }
    let mut o = [0u8; 8];
    o.copy_from_slice(&p[1..9]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&p[9..17]);
    Ok(Some(Checkpoint {
        clean: p[0] == 1,
        log_offset: u64::from_be_bytes(o),
        written_at_ms: i64::from_be_bytes(t),
    }))
}

/// Writes the checkpoint on this thread: for tools and tests; a running engine uses [`write_off_thread`].
pub fn write(path: &Path, cp: &Checkpoint) -> Result<()> {
    metadata::write_atomic(path, Kind::Checkpoint, &encode(cp))
}

/// [`write`](fn@write) with the blocking calls off the shard's thread ([`metadata::write_atomic_off_thread`]).
pub async fn write_off_thread(path: std::path::PathBuf, cp: &Checkpoint) -> Result<()> {
    metadata::write_atomic_off_thread(path, Kind::Checkpoint, encode(cp)).await
}

fn encode(cp: &Checkpoint) -> Vec<u8> {
    let mut p = Vec::with_capacity(17);
    p.push(cp.clean as u8);
    p.extend_from_slice(&cp.log_offset.to_be_bytes());
    p.extend_from_slice(&cp.written_at_ms.to_be_bytes());
    p
}
