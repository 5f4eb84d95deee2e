//! The group-commit decisions, as plain Rust over offsets (no I/O, no reactor; time is passed in as an
//! `Instant`): which SYNC_FLUSH appends a flush answers, which have waited past their deadline, and what
//! the flusher task does next. [`super::append`] drives it.
//!
//! # Offsets
//! - **written**: the commit log's end in memory (the log owns it and passes it in);
//! - **durable**: what the last successful flush synced; never passes written, never goes back;
//! - an append waits for the durable offset to reach the end of its records (`end`).
//!
//! A flush answers every waiter whose `end` is at or below the new durable offset, and only those: one
//! write and one fdatasync serve every append buffered before it began (group commit). A failed flush
//! answers every waiter with the failure (the engine stops, or refuses for space until it returns).
//! Waiters arrive in log order (each `end` is the written offset at its append), so answering is a scan
//! from the front.
//!
//! Each waiter has a deadline (its append time plus `syncFlushTimeout`). One task sleeps until the oldest
//! waiter's deadline ([`GroupCommit::next_deadline`]) and takes every expired waiter out
//! ([`GroupCommit::expire`]); their appends answer `FlushTimeout` (stored, not yet durable): a waiter past
//! its deadline is never answered by a flush, and none lingers until one.

use std::collections::VecDeque;
use std::time::Instant;

use crate::config::FlushMode;

/// The SYNC_FLUSH appends waiting for durability, in log order.
#[derive(Debug)]
pub(crate) struct GroupCommit<W> {
    durable: u64,
    /// (end, deadline, waiter), in log order.
    waiters: VecDeque<(u64, Instant, W)>,
}

/// What the flusher waits for before its next round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlusherWait {
    /// Bytes are buffered and appends wait (SYNC_FLUSH): flush at once, batching whatever arrived
    /// meanwhile.
    Nothing,
    /// Nothing is buffered (SYNC_FLUSH): until an append asks.
    Wake,
    /// ASYNC_FLUSH: until the flush interval passes, or an append asks early (write buffer half full).
    WakeOrInterval,
}

/// What the flusher does after waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlusherAct {
    /// The engine closes, or failed: the task ends.
    Stop,
    /// The disk is full: wait a disk sample interval (the disk monitor retries once space returns).
    WaitForSpace,
    Flush,
    /// Nothing is buffered.
    Idle,
}

impl FlusherWait {
    pub(crate) fn decide(mode: FlushMode, pending_bytes: u64) -> Self {
        match mode {
            FlushMode::Async => Self::WakeOrInterval,
            FlushMode::Sync if pending_bytes == 0 => Self::Wake,
            FlushMode::Sync => Self::Nothing,
        }
    }
}

impl FlusherAct {
    pub(crate) fn decide(stopping: bool, out_of_space: bool, pending_bytes: u64) -> Self {
        if stopping {
            Self::Stop
        } else if out_of_space {
            Self::WaitForSpace
        } else if pending_bytes > 0 {
            Self::Flush
        } else {
            Self::Idle
        }
    }
}

impl<W> GroupCommit<W> {
    pub(crate) fn new() -> Self {
        Self {
            durable: 0,
            waiters: VecDeque::new(),
        }
    }

    /// An append whose records end at `end` waits for them to be durable, until `deadline`.
    pub(crate) fn wait(&mut self, end: u64, written: u64, deadline: Instant, waiter: W) {
        assert!(
            end <= written,
            "a waiter for offset {end} beyond the written offset {written}"
        );
        if let Some((last, _, _)) = self.waiters.back() {
            assert!(*last <= end, "waiters out of log order: {end} after {last}");
        }
        self.waiters.push_back((end, deadline, waiter));
    }

    /// A flush made everything below `durable` durable: the waiters it answers, in log order.
    pub(crate) fn flushed(&mut self, durable: u64, written: u64) -> Vec<W> {
        assert!(
            durable <= written,
            "durable offset {durable} beyond the written offset {written}"
        );
        assert!(
            durable >= self.durable,
            "durable offset went back from {} to {durable}",
            self.durable
        );
        self.durable = durable;
        let mut answered = Vec::new();
        while self
            .waiters
            .front()
            .is_some_and(|(end, _, _)| *end <= durable)
        {
            if let Some((_, _, w)) = self.waiters.pop_front() {
                answered.push(w);
            }
        }
        answered
    }

    /// A flush failed: every waiter hears it.
    pub(crate) fn failed(&mut self) -> Vec<W> {
        self.waiters.drain(..).map(|(_, _, w)| w).collect()
    }

    /// Takes out the waiters whose deadline is at or before `now`; their appends answer `FlushTimeout`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<W> {
        let (expired, waiting) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|(_, deadline, _)| *deadline <= now);
        self.waiters = waiting;
        expired.into_iter().map(|(_, _, w)| w).collect()
    }

    /// Whether no append waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// The earliest deadline of a waiting append (`None` when none waits): when the timeout task must
    /// look next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.waiters.iter().map(|(_, deadline, _)| *deadline).min()
    }

    /// The log was cut back to `offset` (a slave following a restarted master): durability is measured
    /// from there again. A slave takes no appends, so no waiter can be above it.
    pub(crate) fn truncated(&mut self, offset: u64) {
        assert!(
            self.waiters.back().is_none_or(|(end, _, _)| *end <= offset),
            "the log was cut to {offset} below a waiting append"
        );
        self.durable = self.durable.min(offset);
    }

    /// Appends still waiting.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A deadline no test reaches.
    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_flush_answers_every_waiter_at_or_below_the_durable_offset_and_no_other() {
        let mut g = GroupCommit::new();
        g.wait(100, 100, far(), "a");
        g.wait(250, 250, far(), "b");
        g.wait(250, 300, far(), "c");
        g.wait(300, 300, far(), "d");
        assert_eq!(g.flushed(250, 300), vec!["a", "b", "c"]);
        assert_eq!(g.waiting(), 1, "d's records are not durable yet");
        assert_eq!(g.flushed(250, 300), Vec::<&str>::new(), "nothing new");
        assert_eq!(g.flushed(300, 300), vec!["d"]);
    }

    #[test]
    fn one_flush_batches_every_append_buffered_before_it() {
        let mut g = GroupCommit::new();
        for i in 1..=1000u64 {
            g.wait(i * 10, i * 10, far(), i);
        }
        let answered = g.flushed(10_000, 10_000);
        assert_eq!(answered.len(), 1000, "one flush for all");
        assert!(answered.windows(2).all(|w| w[0] < w[1]), "in log order");
    }

    #[test]
    fn a_failed_flush_answers_every_waiter() {
        let mut g = GroupCommit::new();
        g.wait(10, 10, far(), 1);
        g.wait(20, 20, far(), 2);
        assert_eq!(g.failed(), vec![1, 2]);
        assert_eq!(g.waiting(), 0);
    }

    #[test]
    #[should_panic(expected = "beyond the written offset")]
    fn durable_never_passes_written() {
        GroupCommit::<()>::new().flushed(11, 10);
    }

    #[test]
    #[should_panic(expected = "went back")]
    fn durable_never_goes_back() {
        let mut g = GroupCommit::<()>::new();
        g.flushed(10, 10);
        g.flushed(5, 10);
    }

    #[test]
    #[should_panic(expected = "out of log order")]
    fn waiters_arrive_in_log_order() {
        let mut g = GroupCommit::new();
        g.wait(20, 20, far(), ());
        g.wait(10, 20, far(), ());
    }

    #[test]
    fn the_flusher_flushes_at_once_in_sync_mode_and_on_its_interval_in_async_mode() {
        assert_eq!(FlusherWait::decide(FlushMode::Sync, 0), FlusherWait::Wake);
        assert_eq!(
            FlusherWait::decide(FlushMode::Sync, 1),
            FlusherWait::Nothing
        );
        assert_eq!(
            FlusherWait::decide(FlushMode::Async, 1),
            FlusherWait::WakeOrInterval
        );
        assert_eq!(FlusherAct::decide(true, false, 1), FlusherAct::Stop);
        assert_eq!(FlusherAct::decide(false, true, 1), FlusherAct::WaitForSpace);
        assert_eq!(FlusherAct::decide(false, false, 1), FlusherAct::Flush);
        assert_eq!(FlusherAct::decide(false, false, 0), FlusherAct::Idle);
    }

    #[test]
    fn waiters_expire_at_their_deadline_and_not_before() {
        let t0 = Instant::now();
        let timeout = Duration::from_millis(5_000);
        let mut g = GroupCommit::new();
        g.wait(10, 10, t0 + timeout, "a");
        g.wait(20, 20, t0 + Duration::from_millis(1_000) + timeout, "b");
        assert!(g.expire(t0 + timeout - Duration::from_millis(1)).is_empty());
        assert_eq!(
            g.expire(t0 + timeout),
            vec!["a"],
            "due exactly at its deadline"
        );
        assert_eq!(g.waiting(), 1);
        assert_eq!(
            g.flushed(20, 20),
            vec!["b"],
            "an expired waiter is never answered by a flush"
        );
    }

    #[test]
    fn the_next_deadline_is_the_earliest_waiting_one() {
        let t0 = Instant::now();
        let mut g = GroupCommit::new();
        assert_eq!(g.next_deadline(), None, "nothing waits");
        assert!(g.is_empty());
        g.wait(10, 10, t0 + Duration::from_millis(300), "a");
        g.wait(20, 20, t0 + Duration::from_millis(100), "b");
        assert_eq!(g.next_deadline(), Some(t0 + Duration::from_millis(100)));
        assert_eq!(g.expire(t0 + Duration::from_millis(100)), vec!["b"]);
        assert_eq!(g.next_deadline(), Some(t0 + Duration::from_millis(300)));
        assert_eq!(g.flushed(10, 20), vec!["a"]);
        assert_eq!(
            g.next_deadline(),
            None,
            "answered waiters leave no deadline"
        );
    }

    #[test]
    fn a_flush_before_the_deadline_answers_and_nothing_expires_later() {
        let t0 = Instant::now();
        let mut g = GroupCommit::new();
        g.wait(10, 10, t0 + Duration::from_millis(100), "a");
        assert_eq!(g.flushed(10, 10), vec!["a"]);
        assert!(g.expire(t0 + Duration::from_secs(1)).is_empty());
    }
}
