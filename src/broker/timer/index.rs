//! The timer index of one shard: which timer messages are waiting, in due order, with a bounded part of
//! them in memory. Plain Rust over consume queue entries; `mod.rs` feeds it and re-puts what it says is due.
//!
//! # Model
//! Every entry of the timer topic's consume queue is a timer, keyed by [`Key`] = (fire time, queue
//! offset): a total order, due time first. Entries below `scanned_to` have been classified, each as
//! exactly one of:
//! - **delivered** (or dropped as unreadable),
//! - **in memory** ([`Index::memory`]): every classified, undelivered timer with key < `horizon`,
//! - **far**: every classified, undelivered timer with key >= `horizon`. Far timers are not held: only
//!   their count, smallest key and lowest queue offset are. They are found again by a *reload*, which
//!   re-reads the consume queue from that offset ([`Reload`]).
//!
//! `horizon` starts unbounded; when memory would exceed its capacity the largest key leaves memory and
//! becomes the horizon. A reload takes the smallest far keys that fit and moves the horizon up to the
//! first key it could not take (or unbounds it when it took them all). Since every key in memory is below
//! every far key, delivering memory in key order delivers all timers in due order.
//!
//! # Progress (what survives a restart)
//! [`Progress`] = (`scan_from`, `scanned_to`, `delivered_below`): every timer below `scan_from` is
//! delivered, and every timer below `scanned_to` with key < `delivered_below` is delivered;
//! `delivered_below` = min(smallest key in memory, horizon). After a restart the index starts scanning at
//! `scan_from` and skips what the second rule says is delivered. A timer delivered after the progress was
//! written is delivered again after a crash: at-least-once, like RocketMQ's timer checkpoint.
//!
//! # Bounds
//! Memory holds `capacity` entries at most. A reload reads the consume queue from the lowest far offset
//! to `scanned_to` (20 bytes a timer) and runs only when memory is at most half full, so it costs one
//! pass per `capacity / 2` timers delivered.

use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

/// The order timers are delivered in: due time, then arrival in the timer queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub fire_at_ms: i64,
    pub offset: u64,
}

impl Key {
    pub const MAX: Key = Key {
        fire_at_ms: i64::MAX,
        offset: u64::MAX,
    };
}

/// One timer: its key and where its record is in the commit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    pub key: Key,
    pub commit_log_offset: u64,
    pub size: u32,
}

/// What the index must remember across a restart. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub scan_from: u64,
    pub scanned_to: u64,
    pub delivered_below: Key,
}

impl Default for Progress {
    fn default() -> Self {
        Self {
            scan_from: 0,
            scanned_to: 0,
            delivered_below: Key {
                fire_at_ms: i64::MIN,
                offset: 0,
            },
        }
    }
}

/// What is known of the far timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Far {
    count: u64,
    min_key: Option<Key>,
    min_offset: Option<u64>,
}

impl Far {
    fn add(&mut self, key: Key) {
        self.count += 1;
        self.min_key = Some(self.min_key.map_or(key, |k| k.min(key)));
        self.min_offset = Some(self.min_offset.map_or(key.offset, |o| o.min(key.offset)));
    }
}

pub struct Index {
    capacity: usize,
    memory: BTreeMap<Key, (u64, u32)>,
    /// `None`: unbounded (no far timers).
    horizon: Option<Key>,
    far: Far,
    scanned_to: u64,
    /// From the progress of the last run: timers below `.0` with key < `.1` were delivered then.
    delivered_before: Option<(u64, Key)>,
}

impl Index {
    /// An index that goes on from `progress` (the default progress for a new store).
    pub fn new(capacity: usize, progress: Progress) -> Self {
        assert!(
            capacity >= 2,
            "a timer index needs room for 2 entries at least"
        );
        Self {
            capacity,
            memory: BTreeMap::new(),
            horizon: None,
            far: Far::default(),
            scanned_to: progress.scan_from,
            delivered_before: (progress.scanned_to > progress.scan_from)
                .then_some((progress.scanned_to, progress.delivered_below)),
        }
    }

    /// The next timer queue offset to classify.
    pub fn scanned_to(&self) -> u64 {
        self.scanned_to
    }

    /// Retention removed timer queue entries below `min`: whatever they were, they are gone.
    pub fn skip_below(&mut self, min: u64) {
        if self.scanned_to < min {
            self.scanned_to = min;
        }
    }

    /// The timer queue ends at `max` (recovery may have cut it shorter than the progress says, after a
    /// damaged log): offsets from `max` on will be new timers, whatever the progress said of them.
    /// Returns whether anything changed.
    pub fn clamp_to(&mut self, max: u64) -> bool {
        let mut changed = false;
        if self.scanned_to > max {
            self.scanned_to = max;
            changed = true;
        }
        if let Some((below, d)) = self.delivered_before {
            if below > max {
                self.delivered_before = Some((max, d));
                changed = true;
            }
        }
        changed
    }

    fn was_delivered(&self, key: Key) -> bool {
        self.delivered_before
            .is_some_and(|(below, d)| key.offset < below && key < d)
    }

    /// Classifies the timer at queue offset `scanned_to` (the caller feeds them in queue order).
    pub fn offer(&mut self, t: Timer) {
        debug_assert_eq!(
            t.key.offset, self.scanned_to,
            "timers are offered in queue order"
        );
        self.scanned_to = t.key.offset + 1;
        if self.was_delivered(t.key) {
            return;
        }
        if self.horizon.is_some_and(|h| t.key >= h) {
            self.far.add(t.key);
            return;
        }
        self.memory.insert(t.key, (t.commit_log_offset, t.size));
        if self.memory.len() > self.capacity {
            if let Some((k, _)) = self.memory.pop_last() {
                self.horizon = Some(k);
                self.far.add(k);
            }
        }
    }

    /// Up to `max` timers due at `now_ms`, in delivery order; they stay in the index until
    /// [`Index::delivered`] says their re-put is stored.
    pub fn due(&self, now_ms: i64, max: usize) -> Vec<Timer> {
        self.memory
            .iter()
            .take_while(|(k, _)| k.fire_at_ms <= now_ms)
            .take(max)
            .map(|(k, (o, s))| Timer {
                key: *k,
                commit_log_offset: *o,
                size: *s,
            })
            .collect()
    }

    /// These timers were re-put (or dropped as unreadable).
    pub fn delivered(&mut self, keys: impl IntoIterator<Item = Key>) {
        for k in keys {
            self.memory.remove(&k);
        }
    }

    /// When the earliest timer in memory is due.
    pub fn next_fire_at_ms(&self) -> Option<i64> {
        self.memory.first_key_value().map(|(k, _)| k.fire_at_ms)
    }

    /// Timers held in memory, and far timers (on disk only).
    pub fn counts(&self) -> (usize, u64) {
        (self.memory.len(), self.far.count)
    }

    /// A reload is due: far timers exist and memory is at most half full.
    pub fn wants_reload(&self) -> bool {
        self.far.count > 0 && self.memory.len() <= self.capacity / 2
    }

    /// Starts a reload of the far timers: the caller feeds it every timer of the queue from `.from` to
    /// `.to` ([`Reload::offer`]), then hands it back to [`Index::finish_reload`]. Timers may be delivered
    /// meanwhile; none may be offered.
    pub fn start_reload(&self) -> Reload {
        Reload {
            from: self.far.min_offset.unwrap_or(self.scanned_to),
            to: self.scanned_to,
            horizon: self.horizon,
            room: self.capacity.saturating_sub(self.memory.len()).max(1),
            delivered_before: self.delivered_before,
            taken: BinaryHeap::new(),
            cut: None,
            far: Far::default(),
        }
    }

    pub fn finish_reload(&mut self, r: Reload) {
        assert_eq!(
            r.to, self.scanned_to,
            "no timer may be offered during a reload"
        );
        for t in r.taken {
            self.memory.insert(t.key, (t.commit_log_offset, t.size));
        }
        self.horizon = r.cut;
        self.far = r.far;
        assert!(
            self.memory.len() <= self.capacity,
            "a reload overfilled memory: {} > {}",
            self.memory.len(),
            self.capacity
        );
    }

    /// What to write down now (see the module docs).
    pub fn progress(&self) -> Progress {
        let first = self.memory.first_key_value().map(|(k, _)| *k);
        let delivered_below = match (first, self.horizon) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Key::MAX),
        };
        let memory_min = self.memory.keys().map(|k| k.offset).min();
        let scan_from = [memory_min, self.far.min_offset, Some(self.scanned_to)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.scanned_to);
        Progress {
            scan_from,
            scanned_to: self.scanned_to,
            delivered_below,
        }
    }
}

/// A reload in progress: picks the smallest far timers that fit in memory. See [`Index::start_reload`].
pub struct Reload {
    pub from: u64,
    pub to: u64,
    horizon: Option<Key>,
    room: usize,
    delivered_before: Option<(u64, Key)>,
    /// A max-heap: the largest taken timer leaves first when room runs out.
    taken: BinaryHeap<Timer>,
    /// The smallest key not taken.
    cut: Option<Key>,
    far: Far,
}

impl Reload {
    /// Considers one timer of the reloaded range.
    pub fn offer(&mut self, t: Timer) {
        let delivered = self
            .delivered_before
            .is_some_and(|(below, d)| t.key.offset < below && t.key < d);
        // Below the horizon: in memory or delivered already.
        if delivered || !matches!(self.horizon, Some(h) if t.key >= h) {
            return;
        }
        if self.cut.is_some_and(|c| t.key >= c) {
            self.far.add(t.key);
            return;
        }
        self.taken.push(t);
        if self.taken.len() > self.room {
            if let Some(out) = self.taken.pop() {
                self.cut = Some(out.key);
                self.far.add(out.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(offset: u64, fire_at_ms: i64) -> Timer {
        Timer {
            key: Key { fire_at_ms, offset },
            commit_log_offset: offset * 100,
            size: 100,
        }
    }

    /// Runs a reload over `queue` (the whole timer queue, by offset) as `mod.rs` does.
    fn reload(index: &mut Index, queue: &[Timer]) {
        let mut r = index.start_reload();
        for t in &queue[r.from as usize..r.to as usize] {
            r.offer(*t);
        }
        index.finish_reload(r);
    }

    /// Delivers everything due up to `now`, returning the delivered offsets in order.
    fn deliver(index: &mut Index, now: i64) -> Vec<u64> {
        let due = index.due(now, usize::MAX);
        index.delivered(due.iter().map(|t| t.key));
        due.iter().map(|t| t.key.offset).collect()
    }

    #[test]
    fn timers_come_out_in_due_order_whatever_their_arrival_order() {
        let mut index = Index::new(16, Progress::default());
        let queue: Vec<Timer> = [50, 10, 30, 10, 20]
            .iter()
            .enumerate()
            .map(|(i, t)| timer(i as u64, *t))
            .collect();
        for t in &queue {
            index.offer(*t);
        }
        assert_eq!(index.next_fire_at_ms(), Some(10));
        assert_eq!(deliver(&mut index, 5), Vec::<u64>::new());
        assert_eq!(deliver(&mut index, 20), vec![1, 3, 4]);
        assert_eq!(deliver(&mut index, 100), vec![2, 0]);
        assert_eq!(index.progress().scan_from, 5);
    }

    #[test]
    fn memory_stays_bounded_and_far_timers_are_reloaded_in_order() {
        // 100 timers in a scrambled due order through an index that holds 8.
        let queue: Vec<Timer> = (0..100u64)
            .map(|i| timer(i, ((i * 37) % 100) as i64 * 10))
            .collect();
        let mut index = Index::new(8, Progress::default());
        for t in &queue {
            index.offer(*t);
            assert!(index.counts().0 <= 8);
        }
        assert_eq!(index.counts(), (8, 92));
        let mut order = Vec::new();
        let mut now = 0;
        let mut reloads = 0;
        while order.len() < 100 && now < 10_000 {
            if index.wants_reload() {
                reload(&mut index, &queue);
                reloads += 1;
                assert!(index.counts().0 <= 8);
            }
            order.extend(deliver(&mut index, now));
            now += 10;
        }
        let due: Vec<i64> = order
            .iter()
            .map(|o| queue[*o as usize].key.fire_at_ms)
            .collect();
        assert_eq!(order.len(), 100, "every timer once");
        assert!(
            due.windows(2).all(|w| w[0] <= w[1]),
            "in due order: {due:?}"
        );
        assert!(
            reloads <= 100 / 4 + 1,
            "a reload per half memory: {reloads}"
        );
    }

    #[test]
    fn a_restart_from_progress_skips_what_was_delivered_and_keeps_the_rest() {
        let queue: Vec<Timer> = [30, 10, 40, 20, 50]
            .iter()
            .enumerate()
            .map(|(i, t)| timer(i as u64, *t))
            .collect();
        let mut index = Index::new(2, Progress::default());
        for t in &queue[..4] {
            index.offer(*t);
        }
        assert_eq!(deliver(&mut index, 20), vec![1, 3]);
        let p = index.progress();
        assert_eq!(p.scanned_to, 4);
        // A late timer (due before timers already delivered) arrives after the progress was taken.
        let late = timer(5, 15);
        let mut queue = queue;
        queue.push(late);

        // The process dies; a new index goes on from the progress.
        let mut again = Index::new(2, p);
        assert_eq!(again.scanned_to(), p.scan_from);
        for t in &queue[p.scan_from as usize..] {
            again.offer(*t);
        }
        let mut order = Vec::new();
        for now in [15, 30, 40, 50] {
            if again.wants_reload() {
                reload(&mut again, &queue);
            }
            order.extend(deliver(&mut again, now));
        }
        if again.wants_reload() {
            reload(&mut again, &queue);
        }
        order.extend(deliver(&mut again, 1_000));
        assert_eq!(
            order,
            vec![5, 0, 2, 4],
            "the rest once each, none of 1 and 3"
        );
    }

    #[test]
    fn an_empty_index_has_delivered_everything_it_scanned() {
        let mut index = Index::new(4, Progress::default());
        index.offer(timer(0, 5));
        deliver(&mut index, 5);
        let p = index.progress();
        assert_eq!(
            (p.scan_from, p.scanned_to, p.delivered_below),
            (1, 1, Key::MAX)
        );
        index.skip_below(7);
        assert_eq!(index.scanned_to(), 7);
    }

    #[test]
    fn a_queue_shorter_than_the_progress_gets_its_new_timers_delivered() {
        let p = Progress {
            scan_from: 2,
            scanned_to: 6,
            delivered_below: Key {
                fire_at_ms: 100,
                offset: 0,
            },
        };
        let mut index = Index::new(4, p);
        assert!(index.clamp_to(3));
        // Offsets 3.. were cut by recovery and are written again: new timers, due before 100 or not.
        index.offer(timer(2, 50));
        index.offer(timer(3, 50));
        assert_eq!(
            deliver(&mut index, 60),
            vec![3],
            "2 was delivered before; 3 is new"
        );
    }
}
