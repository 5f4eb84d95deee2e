//! What a shard's thread is running, for the stall probe: a label per task entry point (the request code
//! being served; "timer", "schedule", ... for the broker's own tasks) and the longest single poll seen
//! since the probe last looked.
//!
//! A reactor stalls when one poll of one task runs long (glommio is cooperative). [`Labelled`] wraps a
//! task's future and times each of its polls (two clock reads, ~50 ns); a poll longer than the longest
//! seen so far records its label in a thread-local. The probe ([`take_longest_poll`]) reads and resets it
//! each time it wakes, so a late wake-up is reported with the poll that most likely caused it. Tasks
//! spawned without a label (the store's flusher, checkpointer, retention, disk monitor; replication) are
//! not timed; a stall with no labelled poll long enough to explain it is theirs or the kernel's.
//!
//! Everything here is thread-local: each shard has its own, read only by its own probe.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What a labelled task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// A request of this code being served.
    Request(i32),
    /// One of the server's own tasks, by name.
    Task(&'static str),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Request(code) => write!(f, "request code {code}"),
            Label::Task(name) => f.write_str(name),
        }
    }
}

thread_local! {
    static LONGEST: Cell<Option<(Duration, Label)>> = const { Cell::new(None) };
}

/// The longest labelled poll since the last call, and its label; resets it.
pub fn take_longest_poll() -> Option<(Duration, Label)> {
    LONGEST.with(|l| l.take())
}

/// A future whose polls are timed under a label (see the module docs).
pub struct Labelled<F> {
    label: Label,
    inner: Pin<Box<F>>,
}

/// Wraps `future` so that its polls count under `label`.
pub fn labelled<F: Future>(label: Label, future: F) -> Labelled<F> {
    Labelled {
        label,
        inner: Box::pin(future),
    }
}

impl<F: Future> Future for Labelled<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = Instant::now();
        let out = self.inner.as_mut().poll(cx);
        let took = start.elapsed();
        let label = self.label;
        LONGEST.with(|l| {
            if l.get().is_none_or(|(d, _)| took > d) {
                l.set(Some((took, label)));
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_labelled_poll_is_kept_until_taken() {
        let _ = take_longest_poll();
        futures::executor::block_on(labelled(Label::Task("short"), async {}));
        futures::executor::block_on(labelled(Label::Request(11), async {
            std::thread::sleep(Duration::from_millis(5))
        }));
        futures::executor::block_on(labelled(Label::Task("short"), async {}));
        let (took, label) = take_longest_poll().unwrap();
        assert_eq!(label, Label::Request(11));
        assert!(took >= Duration::from_millis(5));
        assert_eq!(take_longest_poll(), None);
    }
}
