//! The applied checkpoint: how far this replica's commit log holds the Raft log, as the pair
//! `(applied Raft index, commit log offset)`, in `<store>/shard-i/dledger/applied` (an engine metadata
//! file: magic, version, kind, CRC; written atomically).
//!
//! ```text
//! payload: | applied index u64 | commit log offset u64 |   (big-endian, 16 bytes)
//! ```
//!
//! # Invariants
//! - Written only after an engine flush that made the commit log durable up to at least `offset`, with
//!   the pair taken between two applies (no entry half-applied): everything below `offset` on disk is
//!   exactly entries `..=index`.
//! - On start the commit log is cut back to `offset` (`Engine::truncate_replicated`) and Raft delivers
//!   from `index + 1` again, so a record past the checkpoint is never kept twice nor lost.
//! - The Raft log may only forget entries at or below a checkpointed index (`Node::applied` is told the
//!   checkpointed index, not the last applied one).

use std::path::{Path, PathBuf};

use apogee_engine::metadata::{self, Kind};
use apogee_engine::EngineError;

/// The file name, in the shard's `dledger/` folder.
pub const FILE_NAME: &str = "applied";
const PAYLOAD_BYTES: usize = 16;

/// Applied Raft index and the commit log offset right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    pub index: u64,
    pub offset: u64,
}

impl Applied {
    fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_BYTES);
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out
    }

    fn decode(path: &Path, payload: &[u8]) -> Result<Self, EngineError> {
        if payload.len() != PAYLOAD_BYTES {
            return Err(EngineError::Corrupt {
                what: "Dledger applied checkpoint",
                path: path.to_owned(),
                offset: 0,
                reason: format!(
                    "payload of {} bytes, expected {PAYLOAD_BYTES}",
                    payload.len()
                ),
            });
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&payload[..8]);
        let index = u64::from_be_bytes(a);
        a.copy_from_slice(&payload[8..]);
        Ok(Self {
            index,
            offset: u64::from_be_bytes(a),
        })
    }
}

/// The checkpoint's path in a shard's Dledger folder.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the checkpoint at start (blocking, before the shard serves); a store that never applied anything
/// reads as index 0, offset 0.
pub fn read(dir: &Path) -> Result<Applied, EngineError> {
    let p = path(dir);
    match metadata::read(&p, Kind::DledgerApplied)? {
        None => Ok(Applied::default()),
        Some(payload) => Applied::decode(&p, &payload),
    }
}

/// Writes the checkpoint off the shard's thread (the blocking pool); one writer at a time.
pub async fn write(dir: &Path, applied: Applied) -> Result<(), EngineError> {
    metadata::write_atomic_off_thread(path(dir), Kind::DledgerApplied, applied.encode()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_checkpoint_reads_back_and_a_missing_one_is_zero() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        assert_eq!(read(dir.path()).expect("reads"), Applied::default());
        let a = Applied {
            index: 77,
            offset: 123_456,
        };
        metadata::write_atomic(&path(dir.path()), Kind::DledgerApplied, &a.encode())
            .expect("writes");
        assert_eq!(read(dir.path()).expect("reads"), a);
    }

    #[test]
    fn a_damaged_checkpoint_names_its_file() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        metadata::write_atomic(&path(dir.path()), Kind::DledgerApplied, &[1, 2, 3])
            .expect("writes");
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME), "{e}");
    }
}
