//! `--disk-baseline`: the disk's raw sequential write bandwidth, measured the way the engine writes
//! (O_DIRECT, large aligned blocks, one fdatasync at the end), so that a run's MB/s can be stated as a
//! share of what the disk under its store can do in the same minutes (issue 13's yardstick: ≥ 50 % of raw
//! for batches).
//!
//! The file is written in [`BLOCK_BYTES`] blocks from one buffer aligned to [`ALIGN_BYTES`] (O_DIRECT's
//! requirement), then synced and removed. MB are 10^6 bytes, as in the run's own report.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

/// What the baseline writes: enough to pass any write cache and take a few seconds on an SSD.
pub const BASELINE_BYTES: usize = 512 * 1024 * 1024;
/// One write: 1 MiB, the size of the engine's large flushes.
pub const BLOCK_BYTES: usize = 1024 * 1024;
/// O_DIRECT buffers and sizes are aligned to this (a page; covers 512 B and 4 KiB sectors).
pub const ALIGN_BYTES: usize = 4096;

const _: () =
    assert!(BASELINE_BYTES.is_multiple_of(BLOCK_BYTES) && BLOCK_BYTES.is_multiple_of(ALIGN_BYTES));

/// Writes `bytes` (a multiple of [`BLOCK_BYTES`]) to a new file in `dir` with O_DIRECT, syncs it, removes
/// it, and answers MB/s.
pub fn measure(dir: &Path, bytes: usize) -> Result<f64, String> {
    if bytes == 0 || !bytes.is_multiple_of(BLOCK_BYTES) {
        return Err(format!(
            "the baseline size must be a positive multiple of {BLOCK_BYTES} bytes, not {bytes}"
        ));
    }
    let path = dir.join(format!("apogee-disk-baseline-{}.tmp", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot open {} with O_DIRECT for the disk baseline: {e}",
                path.display()
            )
        })?;
    // An aligned block inside a slightly larger Vec: no allocator tricks needed.
    let mut raw = vec![0x5au8; BLOCK_BYTES + ALIGN_BYTES];
    let skip = raw.as_ptr().align_offset(ALIGN_BYTES);
    let block = &mut raw[skip..skip + BLOCK_BYTES];
    let started = Instant::now();
    let written = (|| {
        for i in 0..bytes / BLOCK_BYTES {
            block[0] = i as u8;
            file.write_all(block)?;
        }
        file.sync_data()
    })();
    let elapsed = started.elapsed().as_secs_f64();
    drop(file);
    let removed = std::fs::remove_file(&path);
    written.map_err(|e| format!("disk baseline write to {} failed: {e}", path.display()))?;
    removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    Ok(bytes as f64 / elapsed.max(1e-9) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_writes_syncs_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mb_per_s = measure(dir.path(), 4 * BLOCK_BYTES).unwrap();
        assert!(mb_per_s > 0.0, "{mb_per_s}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(measure(dir.path(), BLOCK_BYTES + 1).is_err());
    }
}
