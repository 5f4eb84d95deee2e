//! Fault injection at the I/O boundary, for tests: make the next N operations at a named point fail with a
//! given OS error (ENOSPC, EIO, ...), on the current thread only.
//!
//! The engine asks [`check`] right before each real operation of a point, so an injected error takes the
//! same path as one from the kernel. A shard owns its engine on one thread, so a test arms faults from the
//! executor that runs the engine and nothing else sees them. When nothing is armed the check is one
//! thread-local flag read.

use std::cell::{Cell, RefCell};

/// Where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// Creating a segment file (commit log or consume queue) or allocating a step of its blocks.
    Preallocate,
    /// Writing flushed blocks to a segment file.
    FlushWrite,
    /// Writing a metadata file (checkpoint, consumer offsets, topic and group tables).
    MetadataWrite,
}

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static PLAN: RefCell<Vec<(FaultPoint, i32, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Makes the next `times` operations at `point` on this thread fail with OS error `errno`.
pub fn arm(point: FaultPoint, errno: i32, times: u32) {
    PLAN.with(|p| p.borrow_mut().push((point, errno, times)));
    ARMED.with(|a| a.set(true));
}

/// Removes every armed fault of this thread.
pub fn clear() {
    PLAN.with(|p| p.borrow_mut().clear());
    ARMED.with(|a| a.set(false));
}

/// The injected error for one operation at `point`, if one is armed.
pub fn check(point: FaultPoint) -> std::io::Result<()> {
    if !ARMED.with(Cell::get) {
        return Ok(());
    }
    PLAN.with(|p| {
        let mut plan = p.borrow_mut();
        let Some(i) = plan.iter().position(|(pt, _, n)| *pt == point && *n > 0) else {
            return Ok(());
        };
        plan[i].2 -= 1;
        let errno = plan[i].1;
        if plan.iter().all(|(_, _, n)| *n == 0) {
            plan.clear();
            ARMED.with(|a| a.set(false));
        }
        Err(std::io::Error::from_raw_os_error(errno))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_fault_fires_the_given_number_of_times_then_disarms() {
        assert!(check(FaultPoint::FlushWrite).is_ok());
        arm(FaultPoint::FlushWrite, libc::ENOSPC, 2);
        assert!(
            check(FaultPoint::Preallocate).is_ok(),
            "other points untouched"
        );
        let e = check(FaultPoint::FlushWrite).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(check(FaultPoint::FlushWrite).is_err());
        assert!(check(FaultPoint::FlushWrite).is_ok());
        clear();
    }
}
