//! Long polling: pulls that find nothing new are parked per topic@queue and woken as soon as the engine
//! makes a message visible there, or answered at their timeout.
//!
//! The table is bounded ([`PARKED_MAX`]); past it a pull is answered at once (PULL_NOT_FOUND), which a
//! client treats like a timeout and retries.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use futures::channel::oneshot;

/// Pulls one shard keeps parked at most.
pub const PARKED_MAX: usize = 100_000;
/// Longest suspension a client may ask for.
pub const SUSPEND_MAX_MS: u64 = 60_000;

struct Parked {
    offset: u64,
    wake: oneshot::Sender<()>,
}

#[derive(Default)]
pub struct LongPollTable {
    /// topic → queue id → parked pulls. Two levels so `notify`, called for every visible message, looks
    /// up by `&str` without allocating.
    parked: RefCell<HashMap<String, HashMap<i32, Vec<Parked>>>>,
    count: Cell<usize>,
}

impl LongPollTable {
    /// Pulls parked now (reports and metrics).
    pub fn parked(&self) -> usize {
        self.count.get()
    }

    /// Parks a pull waiting for a message at or past `offset`; `None` if the table is full.
    pub fn park(&self, topic: &str, queue_id: i32, offset: u64) -> Option<oneshot::Receiver<()>> {
        if self.count.get() >= PARKED_MAX {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let mut parked = self.parked.borrow_mut();
        if !parked.contains_key(topic) {
            parked.insert(topic.to_owned(), HashMap::new());
        }
        parked
            .get_mut(topic)
            .expect("inserted above")
            .entry(queue_id)
            .or_default()
            .push(Parked { offset, wake: tx });
        self.count.set(self.count.get() + 1);
        Some(rx)
    }

    /// A queue's max offset rose to `max`: wakes every pull parked below it. Also drops the entries of pulls
    /// that timed out (their receivers are gone).
    pub fn notify(&self, topic: &str, queue_id: i32, max: u64) {
        let mut parked = self.parked.borrow_mut();
        let Some(queues) = parked.get_mut(topic) else {
            return;
        };
        let Some(list) = queues.get_mut(&queue_id) else {
            return;
        };
        // In place: this runs for every message made visible, so it must not allocate.
        let before = list.len();
        let mut i = 0;
        while i < list.len() {
            if list[i].wake.is_canceled() {
                list.swap_remove(i);
            } else if list[i].offset < max {
                let _ = list.swap_remove(i).wake.send(());
            } else {
                i += 1;
            }
        }
        let removed = before - list.len();
        // An emptied list is kept for the queue's next park (a consumer that keeps up parks again at once);
        // `sweep` drops it if the queue stays quiet.
        self.count.set(self.count.get() - removed);
    }

    /// Wakes every parked pull (shutdown).
    pub fn wake_all(&self) {
        for (_, queues) in self.parked.borrow_mut().drain() {
            for p in queues.into_values().flatten() {
                let _ = p.wake.send(());
            }
        }
        self.count.set(0);
    }

    /// Drops entries of pulls that timed out; called periodically so quiet queues do not hold them.
    pub fn sweep(&self) {
        let mut parked = self.parked.borrow_mut();
        let mut removed = 0;
        for queues in parked.values_mut() {
            for list in queues.values_mut() {
                let before = list.len();
                list.retain(|p| !p.wake.is_canceled());
                removed += before - list.len();
            }
            queues.retain(|_, l| !l.is_empty());
        }
        parked.retain(|_, q| !q.is_empty());
        self.count.set(self.count.get() - removed);
    }
}
