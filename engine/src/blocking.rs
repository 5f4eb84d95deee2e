//! File-system calls that have no io_uring path in glommio (unlink, mkdir, rename, a folder's fsync,
//! fallocate of a range, statvfs), run on the executor's blocking pool so that a shard thread never
//! blocks after start-up: an unlink of a 1 GiB segment frees its extents for milliseconds, an fsync waits
//! for the device, and during that time no connection of the shard would be served.
//!
//! Every function must run inside a glommio executor (its pool threads are bounded and owned by the
//! executor). Start-up code (recovery, opening a store) may still call `std::fs` directly: nothing is
//! served yet.

use std::path::{Path, PathBuf};

/// Runs `f` on the executor's blocking pool and waits for it, without blocking the shard.
pub async fn run<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
}

/// Removes a file; one that is already gone is fine.
pub async fn remove_file_if_exists(path: PathBuf) -> std::io::Result<()> {
    run(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    })
    .await
}

/// Creates a folder and its parents.
pub async fn create_dir_all(path: PathBuf) -> std::io::Result<()> {
    run(move || std::fs::create_dir_all(&path)).await
}

/// Renames `from` over `to` and fsyncs `to`'s folder, so that the rename survives a crash.
pub async fn rename_durably(from: PathBuf, to: PathBuf) -> std::io::Result<()> {
    run(move || {
        std::fs::rename(&from, &to)?;
        match to.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    })
    .await
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
