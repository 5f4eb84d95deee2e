//! The accounts in force, shared by every shard and reloaded when plain_acl.yml changes.
//!
//! - [`SharedAcl`] (one per process): the current [`AclTable`] behind a mutex, and a generation counter
//!   bumped on every successful reload. A std thread polls the file's length, mtime and inode every
//!   [`POLL_INTERVAL_MS`]; on a change that has settled ([`SETTLE_MS`]) it parses the file off the shard
//!   threads and swaps the table in,
//!   or, if the file is malformed or gone, keeps the last good table and logs why (file, line, reason).
//! - [`ShardAcl`] (one per shard, `!Send`): a cached `Arc` of the table and the generation it came from.
//!   A request costs one uncontended atomic load (a plain load on x86); the mutex is taken only on the
//!   first request after a reload. The table is only read, and no borrow is held across an `.await`.
//!
//! The thread holds only a `Weak` of the shared state and ends at its next poll once the servers drop it.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tracing::{error, info};

use crate::table::{AclError, AclTable};

/// How often plain_acl.yml is looked at for changes.
pub const POLL_INTERVAL_MS: u64 = 500;
/// A changed file is read only once it has stayed the same this long, so that a file being written in
/// place (truncated, then filled) is not read half-way: an empty half would mean "no accounts".
pub const SETTLE_MS: u64 = 100;

/// The table in force for the whole process.
pub struct SharedAcl {
    path: PathBuf,
    current: Mutex<Arc<AclTable>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for SharedAcl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAcl")
            .field("path", &self.path)
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish()
    }
}

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

impl SharedAcl {
    /// Loads `path` (an error here stops start-up) and starts the thread that reloads it on change.
    pub fn start(path: &Path) -> Result<Arc<Self>, AclError> {
        let first_stamp = stamp(path);
        let table = AclTable::load(path)?;
        info!(file = %path.display(), accounts = table.accounts.len(), "ACL on: accounts loaded");
        let shared = Arc::new(Self {
            path: path.to_owned(),
            current: Mutex::new(Arc::new(table)),
            generation: AtomicU64::new(1),
        });
        let weak = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new()
            .name("acl-reload".into())
            .spawn(move || watch(weak, first_stamp));
        if let Err(e) = spawned {
            return Err(AclError::Read {
                path: path.to_owned(),
                source: e,
            });
        }
        Ok(shared)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The table in force now.
    pub fn current(&self) -> Arc<AclTable> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the file now: swaps the table in, or keeps the old one and returns why not.
    pub fn reload(&self) -> Result<usize, AclError> {
        let table = AclTable::load(&self.path)?;
        let accounts = table.accounts.len();
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(accounts)
    }
}

fn watch(shared: Weak<SharedAcl>, mut seen: Option<Stamp>) {
    loop {
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        let Some(acl) = shared.upgrade() else { return };
        let now = stamp(&acl.path);
        if now == seen {
            continue;
        }
        std::thread::sleep(Duration::from_millis(SETTLE_MS));
        if stamp(&acl.path) != now {
            continue; // still being written: look again at the next poll
        }
        // Remember the version even when it is bad, so one bad edit is logged once, not every poll.
        seen = now;
        match acl.reload() {
            Ok(accounts) => {
                info!(file = %acl.path.display(), accounts, "ACL file changed: accounts reloaded")
            }
            Err(e) => {
                error!(error = %e, "ACL file changed but cannot be used; the last good accounts stay in force")
            }
        }
    }
}

/// One shard's view of the table: refreshed when the generation moves, read without locks otherwise.
pub struct ShardAcl {
    shared: Arc<SharedAcl>,
    seen: Cell<u64>,
    table: RefCell<Arc<AclTable>>,
}

impl ShardAcl {
    pub fn new(shared: Arc<SharedAcl>) -> Self {
        let generation = shared.generation.load(Ordering::Acquire);
        let table = shared.current();
        Self {
            shared,
            seen: Cell::new(generation),
            table: RefCell::new(table),
        }
    }

    /// Runs `f` on the table in force. `f` must not await (it cannot: it is a plain closure).
    pub fn with<R>(&self, f: impl FnOnce(&AclTable) -> R) -> R {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.seen.get() {
            *self.table.borrow_mut() = self.shared.current();
            self.seen.set(generation);
        }
        f(&self.table.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_picked_up_and_a_bad_one_keeps_the_old_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        let one = "accounts:\n  - {accessKey: account1, secretKey: secret11}\n";
        std::fs::write(&path, one).unwrap();
        let shared = SharedAcl::start(&path).unwrap();
        let shard = ShardAcl::new(shared.clone());
        assert!(shard.with(|t| t.accounts.contains_key("account1")));
        std::fs::write(
            &path,
            format!("{one}  - {{accessKey: account2, secretKey: secret22}}\n"),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !shard.with(|t| t.accounts.contains_key("account2")) {
            assert!(std::time::Instant::now() < deadline, "reload not seen");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::fs::write(&path, "accounts: [\n").unwrap();
        assert!(shared.reload().is_err());
        assert!(
            shard.with(|t| t.accounts.len() == 2),
            "the last good table stays"
        );
    }
}
