//! The decision core of one shard's transactions: which half messages are still undecided, which are
//! decided, what the check-back service does next, and what its persisted progress is. Plain Rust over
//! offsets and times, unit-tested without a reactor; [`super::check`] and [`super::end`] drive it.
//!
//! # Offsets (all half-queue offsets unless named otherwise)
//! - `half_next`: every half message below it is resolved (committed, rolled back, discarded after
//!   `transactionCheckMax` checks, or unreadable). Persisted.
//! - `scanned`: every half message below it was looked at by the scan: it is either in `pending` (undecided,
//!   waiting for its END or its next check) or resolved. `half_next ≤ scanned`.
//! - `decided`: half offsets ≥ `half_next` with an op record, and where that op record is in the op queue.
//!   The smallest of those op queue offsets is the persisted `opOffset`: after a restart the op queue is
//!   read from there, which finds every op record of a half message at or above the persisted `half_next`.
//! - `in_flight`: half messages an END (or the check-back service) has claimed and not yet finished: a
//!   second END for them is refused, and the scan does not check them.
//!
//! # Invariants
//! - A half message is claimed at most once at a time, and once ended it is never claimed again: this is
//!   what makes "no message is ever committed twice" hold within a process lifetime (across restarts the
//!   op queue and the key-index guard in [`super::check`] carry it).
//! - `half_next` only moves up, and never past a pending or in-flight half message.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Undecided half messages one shard tracks at most; past it the scan waits (it does not read further
/// half messages) until checks or ENDs resolve some.
pub const PENDING_MAX: usize = 100_000;

/// An undecided half message, as the scan found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub commit_log_offset: u64,
    pub born_ms: i64,
    /// CHECK_IMMUNITY_TIME_IN_SECONDS in ms, when the message carries a valid one.
    pub immunity_ms: Option<i64>,
    /// Check-backs sent so far (persisted, so a restart does not reset the count).
    pub checks: u32,
    /// When this process last checked it (0: not yet).
    pub last_check_ms: i64,
}

/// What the check-back service does with a pending half message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not yet: too young, or checked less than `transactionCheckInterval` ago.
    Wait,
    /// Ask its producer group (CHECK_TRANSACTION_STATE).
    Check,
    /// Checked `transactionCheckMax` times without an answer: move it to TRANS_CHECK_MAX_TIME_TOPIC.
    Discard,
}

/// The check-back rules (RocketMQ's `TransactionalMessageServiceImpl.check`): a message is first checked
/// once it is older than its immunity time (CHECK_IMMUNITY_TIME_IN_SECONDS, else `transactionTimeOut`),
/// at once if it was born in the future (a clock went back), then every `transactionCheckInterval`; after
/// `transactionCheckMax` checks it is discarded instead.
pub fn action(
    p: &Pending,
    now_ms: i64,
    timeout_ms: i64,
    interval_ms: i64,
    check_max: u32,
) -> Action {
    let age = now_ms - p.born_ms;
    let due = if p.last_check_ms > 0 {
        now_ms - p.last_check_ms >= interval_ms
    } else {
        age < 0 || age >= p.immunity_ms.unwrap_or(timeout_ms)
    };
    match (due, p.checks >= check_max) {
        (false, _) => Action::Wait,
        (true, false) => Action::Check,
        (true, true) => Action::Discard,
    }
}

/// A CHECK_IMMUNITY_TIME_IN_SECONDS value in ms; `None` for a value that is not a number of seconds (then
/// `transactionTimeOut` applies, as RocketMQ's `TransactionalMessageUtil.getImmunityTime`).
pub fn immunity_ms(text: &str) -> Option<i64> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s >= 0)
        .map(|s| s.saturating_mul(1000))
}

/// Why a half message cannot be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotClaimable {
    /// Already committed, rolled back or discarded.
    Resolved,
    /// Another END (or a check-back step) is deciding it right now.
    InFlight,
}

/// The persisted progress: `<store>/config/transactionProgress`, JSON in an Apogee metadata file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub half_offset: u64,
    pub op_offset: u64,
    /// Check-backs sent per pending half offset (only those checked at least once).
    #[serde(default)]
    pub check_times: BTreeMap<u64, u32>,
}

/// One shard's transaction state. See the module docs.
#[derive(Debug, Default)]
pub struct TxState {
    half_next: u64,
    scanned: u64,
    pending: BTreeMap<u64, Pending>,
    decided: BTreeMap<u64, u64>,
    in_flight: BTreeSet<u64>,
    /// Check counts from the persisted progress, handed to half messages as the scan finds them again.
    restored_checks: BTreeMap<u64, u32>,
}

impl TxState {
    /// The state after a start: the scan starts again at the persisted `half_next` (pending messages are
    /// found again, with their check counts), and the op queue is read from the persisted op offset.
    pub fn restore(p: &Progress) -> Self {
        Self {
            half_next: p.half_offset,
            scanned: p.half_offset,
            restored_checks: p.check_times.clone(),
            ..Default::default()
        }
    }

    pub fn half_next(&self) -> u64 {
        self.half_next
    }

    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether an END for `half` would be refused, and why.
    pub fn claimable(&self, half: u64) -> Result<(), NotClaimable> {
        if self.in_flight.contains(&half) {
            return Err(NotClaimable::InFlight);
        }
        let resolved = half < self.half_next
            || self.decided.contains_key(&half)
            || (half < self.scanned && !self.pending.contains_key(&half));
        if resolved {
            Err(NotClaimable::Resolved)
        } else {
            Ok(())
        }
    }

    /// Claims `half` for an END or a check-back step; the caller ends it with [`Self::ended`] once its op
    /// record is stored, or gives it back with [`Self::release`].
    pub fn claim(&mut self, half: u64) -> Result<Option<Pending>, NotClaimable> {
        self.claimable(half)?;
        self.in_flight.insert(half);
        Ok(self.pending.remove(&half))
    }

    /// The claim on `half` failed to store anything: it is undecided again.
    pub fn release(&mut self, half: u64, pending: Option<Pending>) {
        self.in_flight.remove(&half);
        if let (true, Some(p)) = (half < self.scanned, pending) {
            self.pending.insert(half, p);
        }
    }

    /// The op record of `half` is stored at `op_offset` of the op queue.
    pub fn ended(&mut self, half: u64, op_offset: u64) {
        self.in_flight.remove(&half);
        self.pending.remove(&half);
        if half >= self.half_next {
            self.decided.insert(half, op_offset);
        }
    }

    /// An op record read back from the op queue (after a start).
    pub fn op_seen(&mut self, half: u64, op_offset: u64) {
        if half >= self.half_next {
            self.pending.remove(&half);
            let slot = self.decided.entry(half).or_insert(op_offset);
            *slot = (*slot).min(op_offset);
        }
    }

    /// Whether the scan must read the half message at `half` (false: already decided or being decided).
    pub fn needs_look(&self, half: u64) -> bool {
        !self.decided.contains_key(&half) && !self.in_flight.contains(&half)
    }

    /// Whether the scan may look at one more half message.
    pub fn scan_has_room(&self) -> bool {
        self.pending.len() < PENDING_MAX
    }

    /// The scan looked at `half` (the next one, `scanned`): `found` is the message when it is undecided,
    /// `None` when it was decided or unreadable.
    pub fn scanned_one(&mut self, half: u64, found: Option<Pending>) {
        debug_assert_eq!(half, self.scanned, "the scan reads half offsets in order");
        self.scanned = half + 1;
        if let Some(mut p) = found {
            if self.needs_look(half) {
                p.checks = p
                    .checks
                    .max(self.restored_checks.remove(&half).unwrap_or(0));
                self.pending.insert(half, p);
            }
        }
    }

    /// Retention removed half messages below `min`: they can no longer be checked or committed.
    pub fn skip_below(&mut self, min: u64) {
        if self.scanned < min {
            self.scanned = min;
        }
        self.pending.retain(|h, _| *h >= min);
        self.advance();
    }

    /// Pending half messages from the oldest, with what to do with each now (at most `max` that are not
    /// [`Action::Wait`]).
    pub fn due(
        &self,
        now_ms: i64,
        timeout_ms: i64,
        interval_ms: i64,
        check_max: u32,
        max: usize,
    ) -> Vec<(u64, Pending, Action)> {
        self.pending
            .iter()
            .filter(|(h, _)| !self.in_flight.contains(h))
            .map(|(h, p)| {
                (
                    *h,
                    *p,
                    action(p, now_ms, timeout_ms, interval_ms, check_max),
                )
            })
            .filter(|(_, _, a)| *a != Action::Wait)
            .take(max)
            .collect()
    }

    /// A check-back for `half` was sent (or could not be, for want of a producer): it counts.
    pub fn checked(&mut self, half: u64, now_ms: i64) -> Option<u32> {
        let p = self.pending.get_mut(&half)?;
        p.checks += 1;
        p.last_check_ms = now_ms.max(1);
        Some(p.checks)
    }

    /// Moves `half_next` up to the oldest half message still undecided, and forgets what is below it.
    pub fn advance(&mut self) {
        let mut next = self.scanned;
        if let Some(h) = self.pending.keys().next() {
            next = next.min(*h);
        }
        if let Some(h) = self.in_flight.range(..self.scanned).next() {
            next = next.min(*h);
        }
        // Every pending or in-flight offset is at or above half_next by construction; were one not, going
        // back would re-open decided messages, so half_next holds (and debug builds say what went wrong).
        debug_assert!(
            next >= self.half_next,
            "half_next would go back from {} to {next}",
            self.half_next
        );
        self.half_next = next.max(self.half_next);
        self.decided = self.decided.split_off(&next);
        self.restored_checks = self.restored_checks.split_off(&next);
    }

    /// What to persist; `op_end` is the op queue's end (the op offset when no decided message is kept).
    pub fn progress(&self, op_end: u64) -> Progress {
        Progress {
            half_offset: self.half_next,
            op_offset: self.decided.values().copied().min().unwrap_or(op_end),
            check_times: self
                .pending
                .iter()
                .filter(|(_, p)| p.checks > 0)
                .map(|(h, p)| (*h, p.checks))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(born_ms: i64) -> Pending {
        Pending {
            commit_log_offset: 0,
            born_ms,
            immunity_ms: None,
            checks: 0,
            last_check_ms: 0,
        }
    }

    #[test]
    fn a_half_message_is_checked_after_its_timeout_then_every_interval_then_discarded() {
        let mut p = pending(1_000);
        assert_eq!(action(&p, 6_999, 6_000, 30_000, 2), Action::Wait);
        assert_eq!(action(&p, 7_000, 6_000, 30_000, 2), Action::Check);
        assert_eq!(
            action(&p, 500, 6_000, 30_000, 2),
            Action::Check,
            "born in the future: the clock went back"
        );
        p.checks = 1;
        p.last_check_ms = 7_000;
        assert_eq!(action(&p, 36_999, 6_000, 30_000, 2), Action::Wait);
        assert_eq!(action(&p, 37_000, 6_000, 30_000, 2), Action::Check);
        p.checks = 2;
        assert_eq!(action(&p, 67_000, 6_000, 30_000, 2), Action::Discard);
        let immune = Pending {
            immunity_ms: immunity_ms("60"),
            ..pending(0)
        };
        assert_eq!(action(&immune, 59_999, 6_000, 30_000, 2), Action::Wait);
        assert_eq!(action(&immune, 60_000, 6_000, 30_000, 2), Action::Check);
        assert_eq!(immunity_ms("x"), None);
        assert_eq!(immunity_ms("-3"), None);
    }

    #[test]
    fn a_half_message_is_ended_once_and_a_second_end_is_refused() {
        let mut s = TxState::default();
        assert_eq!(s.claim(0), Ok(None), "an END before the scan saw it");
        assert_eq!(s.claim(0), Err(NotClaimable::InFlight));
        s.ended(0, 0);
        assert_eq!(s.claim(0), Err(NotClaimable::Resolved));
        s.scanned_one(0, None);
        s.scanned_one(1, Some(pending(5)));
        s.advance();
        assert_eq!((s.half_next(), s.scanned()), (1, 2));
        assert_eq!(s.claim(0), Err(NotClaimable::Resolved), "below half_next");
        let p = s.claim(1).unwrap();
        assert_eq!(p, Some(pending(5)));
        s.release(1, p);
        assert_eq!(
            s.due(10_000, 6_000, 30_000, 15, 10).len(),
            1,
            "released: pending again"
        );
        s.claim(1).unwrap();
        s.ended(1, 1);
        s.advance();
        assert_eq!(s.half_next(), 2);
        assert_eq!(s.claim(1), Err(NotClaimable::Resolved));
    }

    #[test]
    fn progress_keeps_the_op_offset_of_every_decision_at_or_above_half_next() {
        let mut s = TxState::default();
        s.scanned_one(0, Some(pending(0)));
        s.claim(1).unwrap();
        s.ended(1, 7);
        s.scanned_one(1, None);
        s.advance();
        assert_eq!(s.half_next(), 0, "held by the pending message at 0");
        assert!(s.checked(0, 100).is_some());
        let p = s.progress(9);
        assert_eq!(
            p,
            Progress {
                half_offset: 0,
                op_offset: 7,
                check_times: [(0, 1)].into()
            }
        );
        // After a restart: the op record read back, then the scan finds message 0 with its count.
        let mut r = TxState::restore(&p);
        r.op_seen(1, 7);
        assert!(!r.needs_look(1));
        r.scanned_one(0, Some(pending(0)));
        r.scanned_one(1, None);
        assert_eq!(r.due(10_000, 6_000, 30_000, 15, 10)[0].1.checks, 1);
        r.claim(0).unwrap();
        r.ended(0, 8);
        r.advance();
        assert_eq!(r.progress(9).half_offset, 2);
        assert_eq!(r.progress(9).op_offset, 9, "nothing decided is kept");
    }
}
