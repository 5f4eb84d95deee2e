//! Small files that outlive a process (checkpoint, consumer offsets, topic and group tables), written
//! atomically: write a temporary file, fsync it, rename it over the old one, fsync the folder. A crash leaves
//! either the old file or the new one, never a mix; the checksum catches a disk that lied.
//!
//! ```text
//! | magic "APGM" (4) | version u16 = 1 | kind u16 | payload length u32 | CRC32 of payload u32 | payload |
//! ```
//! Magic, version and kind are checked before anything else is read.
//!
//! A write that fails (no space, say) leaves the old file as it was and removes its temporary file.
//!
//! A shard thread never runs the blocking calls (a write and two fsyncs cost milliseconds, a stall for every
//! connection of the shard): [`write_atomic_off_thread`] runs them on the executor's blocking pool. The
//! plain [`write_atomic`] is for start-up, tools and tests. Writers of one file must not overlap (the
//! temporary file is shared, and an older snapshot must not land after a newer one): each owner writes
//! its file from one task at a time.
//!
//! Tables changed by requests (topics, subscription groups) are written through a [`writer::TableWriter`]:
//! changes are coalesced, one task writes the latest snapshot, callers await durability with a ticket.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

pub mod writer;

pub const MAGIC: &[u8; 4] = b"APGM";
pub const VERSION: u16 = 1;
const HEADER_BYTES: usize = 4 + 2 + 2 + 4 + 4;

/// What a metadata file holds; a file of another kind is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    Checkpoint = 1,
    ConsumerOffsets = 2,
    Topics = 3,
    SubscriptionGroups = 4,
    /// The delay scheduler's progress per level (RocketMQ's `delayOffset.json`).
    DelayOffsets = 5,
    /// The timer index's progress (the broker's `timerProgress`).
    TimerProgress = 6,
    /// The transaction check-back's progress (half and op queue offsets, check counts).
    TransactionProgress = 7,
    /// Dledger mode's applied checkpoint (Raft index, commit log offset), the broker's `dledger/applied`.
    DledgerApplied = 8,
}

/// Writes `payload` to `path` atomically, on this thread.
pub fn write_atomic(path: &Path, kind: Kind, payload: &[u8]) -> Result<()> {
    crate::faults::check(crate::faults::FaultPoint::MetadataWrite)
        .map_err(|e| EngineError::io(path, e))?;
    write_file(path, &encode(kind, payload))
}

/// Writes `payload` to `path` atomically, with the blocking calls on the glommio executor's blocking
/// pool; the calling task waits, its shard goes on serving. Must run inside a glommio executor.
pub async fn write_atomic_off_thread(path: PathBuf, kind: Kind, payload: Vec<u8>) -> Result<()> {
    // Fault injection is per thread: look here, where the test armed it.
    crate::faults::check(crate::faults::FaultPoint::MetadataWrite)
        .map_err(|e| EngineError::io(&path, e))?;
    let bytes = encode(kind, &payload);
    crate::blocking::run(move || write_file(&path, &bytes)).await
}

/// The header and the payload, as the file holds them.
fn encode(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_BYTES + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_be_bytes());
    bytes.extend_from_slice(&(kind as u16).to_be_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Temporary file, fsync, rename, folder fsync; a failure removes the temporary file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        // A half-written temporary file would only hold space (the old file is still whole).
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(path, e)
    })
}

/// Reads a metadata file: `None` when it does not exist, an error naming the path when it is damaged.
pub fn read(path: &Path, kind: Kind) -> Result<Option<Vec<u8>>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(path, e)),
    };
    let corrupt = |reason: String| EngineError::Corrupt {
        what: "metadata file",
        path: path.to_owned(),
        offset: 0,
        reason,
    };
    if bytes.len() < HEADER_BYTES || &bytes[0..4] != MAGIC {
        return Err(corrupt("bad magic (not an Apogee metadata file)".into()));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(corrupt(format!(
            "version {version}, this build reads version {VERSION}"
        )));
    }
    let found = u16::from_be_bytes([bytes[6], bytes[7]]);
    if found != kind as u16 {
        return Err(corrupt(format!("holds kind {found}, expected {:?}", kind)));
    }
    let len = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let crc = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let payload = &bytes[HEADER_BYTES..];
    if payload.len() != len {
        return Err(corrupt(format!(
            "payload is {} bytes, header says {len}",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(Some(payload.to_vec()))
}

/// Reads a metadata file whose payload is JSON: `None` when the file does not exist; a payload that does
/// not parse is [`EngineError::Corrupt`] naming `what` and the path.
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    kind: Kind,
    what: &'static str,
) -> Result<Option<T>> {
    let Some(payload) = read(path, kind)? else {
        return Ok(None);
    };
    serde_json::from_slice(&payload)
        .map(Some)
        .map_err(|e| EngineError::Corrupt {
            what,
            path: path.to_owned(),
            offset: 0,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        assert!(read(&path, Kind::ConsumerOffsets).unwrap().is_none());
        write_atomic(&path, Kind::ConsumerOffsets, b"{\"a\":1}").unwrap();
        assert_eq!(
            read(&path, Kind::ConsumerOffsets).unwrap().unwrap(),
            b"{\"a\":1}"
        );
        assert!(read(&path, Kind::Topics).is_err(), "kind is checked");
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path, Kind::ConsumerOffsets).unwrap_err().to_string();
        assert!(err.contains("checksum") && err.contains("offsets"), "{err}");
    }

    #[test]
    fn a_crash_before_rename_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics");
        write_atomic(&path, Kind::Topics, b"old").unwrap();
        // A writer that died after writing the temporary file but before the rename.
        std::fs::write(path.with_extension("tmp"), b"half-writ").unwrap();
        assert_eq!(read(&path, Kind::Topics).unwrap().unwrap(), b"old");
        write_atomic(&path, Kind::Topics, b"new").unwrap();
        assert_eq!(read(&path, Kind::Topics).unwrap().unwrap(), b"new");
    }
}
