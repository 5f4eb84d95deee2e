//! The durable (term, vote) pair, in its own small file `hardstate`, replaced atomically.
//!
//! ```text
//! offset  size  field
//! 0       4     magic    "DLHS"
//! 4       2     version  u16 big-endian, 1
//! 6       2     reserved 0
//! 8       8     term     u64 big-endian
//! 16      8     vote     u64 big-endian (0: none)
//! 24      4     crc      u32 big-endian: CRC-32 of bytes 0..24
//! ```
//!
//! Written as `hardstate.tmp`, fdatasync'd, renamed over `hardstate`, and the folder fsync'd — always, whatever
//! `sync_wal` says: a vote that is forgotten lets a node vote twice in one term, and (term, vote) changes only on
//! elections, so the cost is paid rarely. The commit index is not here: it travels in the WAL (see
//! [`super::record`]), because it advances on every Ready.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::DledgerError;

pub const FILE_NAME: &str = "hardstate";
const TMP_NAME: &str = "hardstate.tmp";
const MAGIC: &[u8; 4] = b"DLHS";
const VERSION: u16 = 1;
pub const FILE_BYTES: usize = 28;

/// Reads (term, vote); a missing file is a fresh node: (0, 0).
pub fn load(dir: &Path) -> Result<(u64, u64), DledgerError> {
    let path = dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(source) => return Err(DledgerError::Io { path, source }),
    };
    let corrupt = |offset: u64, reason: String| DledgerError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    if bytes.len() != FILE_BYTES {
        return Err(corrupt(
            0,
            format!("length {} is not {FILE_BYTES}", bytes.len()),
        ));
    }
    if &bytes[0..4] != MAGIC {
        return Err(corrupt(0, "bad magic".into()));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(corrupt(4, format!("unknown version {version}")));
    }
    let stored = u32::from_be_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let computed = crc32fast::hash(&bytes[..24]);
    if stored != computed {
        return Err(corrupt(
            24,
            format!("crc mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    let mut term = [0u8; 8];
    term.copy_from_slice(&bytes[8..16]);
    let mut vote = [0u8; 8];
    vote.copy_from_slice(&bytes[16..24]);
    Ok((u64::from_be_bytes(term), u64::from_be_bytes(vote)))
}

pub fn encode(term: u64, vote: u64) -> [u8; FILE_BYTES] {
    let mut out = [0u8; FILE_BYTES];
    out[0..4].copy_from_slice(MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&term.to_be_bytes());
    out[16..24].copy_from_slice(&vote.to_be_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..28].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Replaces the file durably (blocking: call from the blocking pool).
pub fn store(dir: &Path, term: u64, vote: u64) -> Result<(), DledgerError> {
    let tmp: PathBuf = dir.join(TMP_NAME);
    let path = dir.join(FILE_NAME);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DledgerError::Io { path, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&encode(term, vote)).map_err(io(&tmp))?;
    f.sync_data().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    super::sync_dir(dir)
}
