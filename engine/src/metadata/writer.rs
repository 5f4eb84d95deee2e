//! Group commit for a metadata table (topics, subscription groups): a change marks the table dirty and
//! returns a [`Ticket`]; one task per table writes the *latest* snapshot through
//! [`super::write_atomic_off_thread`], and every change made while a write is in flight is coalesced into
//! the next one. A burst of N changes costs about two writes, not N, and the shard never blocks on the
//! file system.
//!
//! A caller that must not answer before its change is durable (RocketMQ answers UPDATE_AND_CREATE_TOPIC
//! only after `persist()`) awaits [`TableWriter::durable`] with its ticket: it resolves when a write that
//! began after the change was made has completed, or fails with that write's error.
//!
//! The decisions (which write covers which change, whom a finished write answers) live in [`Coalescer`],
//! plain Rust without a reactor, unit-tested below; [`TableWriter`] only puts glommio around it.
//!
//! Sequence numbers: every change gets the next number; `durable` is the highest number whose table state
//! is on disk; a write in flight covers every number up to the one it began with (its snapshot is taken
//! after it began, so it holds at least those changes).
//!
//! # Contracts
//! - Not `Send`: a table and its writer belong to one shard.
//! - Waiters are bounded by the requests in flight on the shard (each waits for its own change).
//! - A failed write answers the waiters it covered with its error and is retried after
//!   [`METADATA_WRITE_RETRY_INTERVAL_MS`] (or at the next change), so a later write can still carry the
//!   change to disk.
//! - Dropping a [`TableWriter::durable`] future mid-way only drops its answer; the write goes on.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;

use super::Kind;
use crate::error::{EngineError, Result};
use crate::notify::Notify;

/// After a failed metadata write, the next attempt waits this long unless a new change comes first.
pub const METADATA_WRITE_RETRY_INTERVAL_MS: u64 = 1_000;

/// What a change is waiting for: a completed write with a sequence number at or above this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// The group-commit decisions of one table, without I/O. `W` is whatever a waiter is answered through
/// (a channel in [`TableWriter`], a label in tests).
#[derive(Debug)]
pub struct Coalescer<W> {
    /// Sequence number of the latest change.
    changed: u64,
    /// Every change at or below this is on disk.
    durable: u64,
    /// The write in flight covers every change at or below this.
    writing: Option<u64>,
    /// Waiters with the change they wait for; every one is above `durable`.
    waiters: Vec<(u64, W)>,
}

impl<W> Default for Coalescer<W> {
    fn default() -> Self {
        Self {
            changed: 0,
            durable: 0,
            writing: None,
            waiters: Vec::new(),
        }
    }
}

impl<W> Coalescer<W> {
    /// Records a change of the table.
    pub fn change(&mut self) -> Ticket {
        self.changed += 1;
        Ticket(self.changed)
    }

    /// Whether some change is not on disk yet.
    pub fn is_dirty(&self) -> bool {
        self.durable < self.changed
    }

    /// Whether a write is in flight.
    pub fn is_writing(&self) -> bool {
        self.writing.is_some()
    }

    /// Registers `waiter` for `ticket`; gives it back when that change is already on disk.
    pub fn wait(&mut self, ticket: Ticket, waiter: W) -> Option<W> {
        assert!(
            ticket.0 <= self.changed,
            "ticket {} was never handed out (latest change {})",
            ticket.0,
            self.changed
        );
        if ticket.0 <= self.durable {
            return Some(waiter);
        }
        self.waiters.push((ticket.0, waiter));
        None
    }

    /// Starts a write when none is in flight and the table is dirty: the caller takes the snapshot *now*
    /// and writes it; the write covers every change made so far. `None`: nothing to do now.
    pub fn begin(&mut self) -> Option<Ticket> {
        if self.writing.is_some() || !self.is_dirty() {
            return None;
        }
        self.writing = Some(self.changed);
        Some(Ticket(self.changed))
    }

    /// The write begun at `covers` ended; returns the waiters it answers (with success when `ok`, with its
    /// error otherwise): those waiting for a change at or below `covers`.
    pub fn end(&mut self, covers: Ticket, ok: bool) -> Vec<W> {
        assert_eq!(
            self.writing,
            Some(covers.0),
            "ending a write that is not the one in flight"
        );
        self.writing = None;
        if ok {
            assert!(
                covers.0 > self.durable,
                "a write covering {} ended after one covering {} (writes go one at a time, in order)",
                covers.0,
                self.durable
            );
            self.durable = covers.0;
        }
        let (answered, waiting) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(seq, _)| *seq <= covers.0);
        self.waiters = waiting;
        answered.into_iter().map(|(_, w)| w).collect()
    }

    /// Every waiter, for a writer that stops without writing again.
    pub fn drain_waiters(&mut self) -> Vec<W> {
        std::mem::take(&mut self.waiters)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
    }
}

type Waiter = oneshot::Sender<Result<()>>;

/// The writer of one metadata file: see the module docs. Create it with the table ([`Self::new`]), spawn
/// [`Self::run`] once the table can be snapshotted, and [`Self::close`] it at shutdown (then await `run`).
pub struct TableWriter {
    path: PathBuf,
    kind: Kind,
    state: RefCell<Coalescer<Waiter>>,
    wake: Notify,
    closing: Cell<bool>,
    /// [`Self::run`] has returned: nothing will be written any more.
    stopped: Cell<bool>,
    writes: Cell<u64>,
}

impl TableWriter {
    pub fn new(path: PathBuf, kind: Kind) -> Rc<Self> {
        Rc::new(Self {
            path,
            kind,
            state: RefCell::new(Coalescer::default()),
            wake: Notify::default(),
            closing: Cell::new(false),
            stopped: Cell::new(false),
            writes: Cell::new(0),
        })
    }

    /// Marks the table changed; the writer task will write it. Does not wait.
    pub fn changed(&self) -> Ticket {
        let t = self.state.borrow_mut().change();
        self.wake.notify();
        t
    }

    /// The ticket of the latest change, for a caller that waits for everything changed so far.
    pub fn latest(&self) -> Ticket {
        Ticket(self.state.borrow().changed)
    }

    /// Waits until a write covering `ticket` has completed; its error if that write failed.
    pub async fn durable(&self, ticket: Ticket) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.state.borrow_mut().wait(ticket, tx).is_some() {
            return Ok(());
        }
        if self.stopped.get() {
            // No writer task is left to answer (a change made after shutdown).
            return Err(EngineError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(EngineError::ShuttingDown))
    }

    /// Completed writes so far (for metrics and tests).
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Asks [`Self::run`] to write what is dirty and return.
    pub fn close(&self) {
        self.closing.set(true);
        self.wake.notify();
    }

    /// The writer task: writes the snapshot `snapshot` returns whenever the table is dirty, one write at a
    /// time. `snapshot` returning `None` (its owner is gone) fails that write. Returns after
    /// [`Self::close`] once nothing is dirty (or a final write failed).
    pub async fn run(self: Rc<Self>, snapshot: impl Fn() -> Option<Vec<u8>>) {
        self.write_while_open(snapshot).await;
        self.stopped.set(true);
        for w in self.state.borrow_mut().drain_waiters() {
            let _ = w.send(Err(EngineError::ShuttingDown));
        }
    }

    async fn write_while_open(&self, snapshot: impl Fn() -> Option<Vec<u8>>) {
        loop {
            let notified = self.wake.notified();
            let Some(covers) = self.state.borrow_mut().begin() else {
                if self.closing.get() {
                    return;
                }
                notified.await;
                continue;
            };
            let written = match snapshot() {
                Some(bytes) => {
                    super::write_atomic_off_thread(self.path.clone(), self.kind, bytes).await
                }
                None => Err(EngineError::ShuttingDown),
            };
            let ok = written.is_ok();
            if ok {
                self.writes.set(self.writes.get() + 1);
            }
            let answered = self.state.borrow_mut().end(covers, ok);
            for w in answered {
                let _ = w.send(match &written {
                    Ok(()) => Ok(()),
                    Err(e) => Err(self.copy_error(e)),
                });
            }
            if let Err(e) = written {
                tracing::warn!(path = %self.path.display(), error = %e, "metadata table not written; retrying");
                if self.closing.get() {
                    for w in self.state.borrow_mut().drain_waiters() {
                        let _ = w.send(Err(self.copy_error(&e)));
                    }
                    return;
                }
                let retry =
                    glommio::timer::sleep(Duration::from_millis(METADATA_WRITE_RETRY_INTERVAL_MS));
                futures::future::select(Box::pin(retry), Box::pin(self.wake.notified())).await;
            }
        }
    }

    /// The error of a write, for each waiter it answers (the OS error code is kept, so that
    /// [`EngineError::is_no_space`] still tells).
    fn copy_error(&self, e: &EngineError) -> EngineError {
        let source = match e {
            EngineError::Io { source, .. } => match source.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(source.kind(), source.to_string()),
            },
            EngineError::ShuttingDown => return EngineError::ShuttingDown,
            other => std::io::Error::other(other.to_string()),
        };
        EngineError::io(&self.path, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_during_a_write_are_coalesced_into_the_next_one() {
        let mut c = Coalescer::<&str>::default();
        let first = c.change();
        let w1 = c.begin().expect("dirty table starts a write");
        assert_eq!(w1, first);
        assert_eq!(c.begin(), None, "one write at a time");
        let t: Vec<Ticket> = (0..100).map(|_| c.change()).collect();
        assert_eq!(c.begin(), None, "still one write at a time");
        c.end(w1, true);
        let w2 = c
            .begin()
            .expect("changes made during the write need a second one");
        assert_eq!(w2, *t.last().unwrap(), "the second write covers all 100");
        c.end(w2, true);
        assert!(!c.is_dirty());
        assert_eq!(c.begin(), None, "two writes for 101 changes");
    }

    #[test]
    fn a_write_answers_only_waiters_at_or_below_what_it_covers() {
        let mut c = Coalescer::default();
        let a = c.change();
        assert_eq!(c.wait(a, "a"), None);
        let w1 = c.begin().unwrap();
        let b = c.change();
        assert_eq!(c.wait(b, "b"), None);
        assert_eq!(c.end(w1, true), vec!["a"], "b changed after the snapshot");
        let w2 = c.begin().unwrap();
        assert_eq!(c.end(w2, true), vec!["b"]);
        assert_eq!(
            c.wait(a, "late"),
            Some("late"),
            "a change already on disk is answered at once"
        );
    }

    #[test]
    fn a_failed_write_answers_its_waiters_and_leaves_the_table_dirty() {
        let mut c = Coalescer::default();
        let a = c.change();
        c.wait(a, "a");
        let w1 = c.begin().unwrap();
        let b = c.change();
        c.wait(b, "b");
        assert_eq!(c.end(w1, false), vec!["a"], "a's write failed: a hears it");
        assert!(c.is_dirty(), "nothing reached the disk");
        let w2 = c.begin().expect("a retry writes the latest snapshot");
        assert_eq!(w2, b, "and covers a too");
        assert_eq!(c.end(w2, true), vec!["b"]);
        assert!(!c.is_dirty());
    }

    #[test]
    fn waiters_registered_out_of_order_are_answered_by_sequence() {
        let mut c = Coalescer::default();
        let a = c.change();
        let w1 = c.begin().unwrap();
        let b = c.change();
        c.wait(b, "b");
        c.wait(a, "a");
        assert_eq!(c.end(w1, true), vec!["a"]);
        assert_eq!(c.drain_waiters(), vec!["b"]);
    }

    #[test]
    #[should_panic(expected = "not the one in flight")]
    fn ending_a_write_never_begun_is_a_bug() {
        let mut c = Coalescer::<()>::default();
        let t = c.change();
        c.end(t, true);
    }

    #[test]
    fn a_burst_of_changes_costs_two_writes_and_every_waiter_hears_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics");
        let p = path.clone();
        let (writes, waited) = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let writer = TableWriter::new(p, Kind::Topics);
                let table = Rc::new(RefCell::new(Vec::<u32>::new()));
                let t = table.clone();
                let task = glommio::spawn_local(
                    writer
                        .clone()
                        .run(move || Some(serde_json::to_vec(&*t.borrow()).unwrap())),
                );
                let mut waits = Vec::new();
                for i in 0..500u32 {
                    table.borrow_mut().push(i);
                    let ticket = writer.changed();
                    let w = writer.clone();
                    waits.push(glommio::spawn_local(async move { w.durable(ticket).await }));
                }
                let mut ok = 0;
                for w in waits {
                    w.await.unwrap();
                    ok += 1;
                }
                writer.close();
                task.await;
                (writer.writes(), ok)
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(waited, 500);
        assert!(writes <= 2, "500 changes in a burst took {writes} writes");
        let on_disk: Vec<u32> = super::super::read_json(&path, Kind::Topics, "t")
            .unwrap()
            .unwrap();
        assert_eq!(on_disk.len(), 500, "the last write holds every change");
    }

    #[test]
    fn a_failed_write_is_reported_then_retried_and_a_change_after_shutdown_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups");
        let p = path.clone();
        let (first, second, after_close) =
            glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .spawn(move || async move {
                    let writer = TableWriter::new(p, Kind::SubscriptionGroups);
                    let value = Rc::new(Cell::new(1u32));
                    let v = value.clone();
                    let task = glommio::spawn_local(
                        writer
                            .clone()
                            .run(move || Some(serde_json::to_vec(&v.get()).unwrap())),
                    );
                    // The next metadata write on this thread fails with ENOSPC.
                    crate::faults::arm(crate::faults::FaultPoint::MetadataWrite, libc::ENOSPC, 1);
                    let first = writer.durable(writer.changed()).await;
                    value.set(2);
                    let second = writer.durable(writer.changed()).await;
                    writer.close();
                    task.await;
                    let after_close = writer.durable(writer.changed()).await;
                    (first, second, after_close)
                })
                .unwrap()
                .join()
                .unwrap();
        let first = first.unwrap_err();
        assert!(
            first.is_no_space(),
            "the waiter hears the write's error: {first}"
        );
        second.unwrap();
        assert!(matches!(after_close, Err(EngineError::ShuttingDown)));
        let on_disk: u32 = super::super::read_json(&path, Kind::SubscriptionGroups, "t")
            .unwrap()
            .unwrap();
        assert_eq!(on_disk, 2, "the retry wrote the latest snapshot");
    }
}
