//! Disk space: how full the store's file system is, and whether writes must stop for it.
//!
//! Writes are refused for space in two cases, and [`DiskGate`] holds both:
//! - **over the ratio**: the used ratio, as `df` counts it, is above `diskSpaceWarningLevelRatio` (90 %).
//!   The ratio is sampled with `statvfs` (on the executor's blocking pool, never on the shard's thread) every [`DISK_SAMPLE_INTERVAL_MS`](crate::limits::DISK_SAMPLE_INTERVAL_MS)
//!   and again right after the engine allocates disk blocks (a step of a commit log or consume queue
//!   segment, a sealed index). Appends do not allocate between steps, so between samples the ratio only
//!   moves by at most one step and by what other processes write: the check on the append path is one
//!   comparison, and fast writers meet SERVICE_NOT_AVAILABLE before ENOSPC.
//! - **out of space**: an operation met ENOSPC or EDQUOT (an allocation, a flush, a metadata write). The
//!   gate stays shut until the engine has retried what failed and it succeeded, with the ratio back under
//!   the threshold; then writes resume by themselves, without a restart.
//!
//! Nothing else is refused: reads, queries and offsets are served whatever the disk holds. The decisions
//! are plain Rust over samples, tested without a file system.

use std::path::Path;

/// One `statvfs` reading of the file system holding the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpaceSample {
    /// Bytes in use (all blocks minus free blocks).
    pub used_bytes: u64,
    /// Bytes an unprivileged writer may still take (`f_bavail`), as `df` shows them.
    pub avail_bytes: u64,
}

impl SpaceSample {
    /// Reads the file system holding `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` is a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let block = st.f_frsize as u64;
        Ok(Self {
            used_bytes: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * block,
            avail_bytes: st.f_bavail as u64 * block,
        })
    }

    /// The used fraction as `df` computes it: used / (used + available to users).
    pub fn used_ratio(&self) -> f64 {
        let all = self.used_bytes + self.avail_bytes;
        if all == 0 {
            0.0
        } else {
            self.used_bytes as f64 / all as f64
        }
    }
}

/// Whether an I/O error means the file system (or the user's quota) has no room.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Why writes are refused for space.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    OverRatio { used_ratio: f64, refuse_ratio: f64 },
    OutOfSpace { what: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OverRatio {
                used_ratio,
                refuse_ratio,
            } => write!(
                f,
                "{:.1}% used, writes are refused above {:.0}% (diskSpaceWarningLevelRatio)",
                used_ratio * 100.0,
                refuse_ratio * 100.0
            ),
            Refusal::OutOfSpace { what } => {
                write!(f, "{what}; writes resume by themselves once space is freed")
            }
        }
    }
}

/// The space gate of one store: see the module docs.
#[derive(Debug, Clone)]
pub struct DiskGate {
    refuse_ratio: f64,
    used_ratio: f64,
    out_of_space: Option<String>,
}

impl DiskGate {
    pub fn new(refuse_ratio: f64, used_ratio: f64) -> Self {
        Self {
            refuse_ratio,
            used_ratio,
            out_of_space: None,
        }
    }

    /// `Ok` when writes may go on.
    pub fn check(&self) -> Result<(), Refusal> {
        if let Some(what) = &self.out_of_space {
            return Err(Refusal::OutOfSpace { what: what.clone() });
        }
        if self.used_ratio > self.refuse_ratio {
            return Err(Refusal::OverRatio {
                used_ratio: self.used_ratio,
                refuse_ratio: self.refuse_ratio,
            });
        }
        Ok(())
    }

    pub fn used_ratio(&self) -> f64 {
        self.used_ratio
    }

    /// A new sample of the used ratio.
    pub fn sampled(&mut self, used_ratio: f64) {
        self.used_ratio = used_ratio;
    }

    /// An operation met ENOSPC; `what` says which, for the refusal's remark. Returns true when this shuts
    /// a gate that was open for space (so the caller logs it once).
    pub fn out_of_space(&mut self, what: String) -> bool {
        self.out_of_space.replace(what).is_none()
    }

    pub fn is_out_of_space(&self) -> bool {
        self.out_of_space.is_some()
    }

    /// Whether it is worth retrying what failed: out of space, and the ratio is back under the threshold.
    pub fn should_retry(&self) -> bool {
        self.out_of_space.is_some() && self.used_ratio <= self.refuse_ratio
    }

    /// The retried operations succeeded: writes may resume (if the ratio allows).
    pub fn space_returned(&mut self) {
        self.out_of_space = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_above_the_ratio_and_resume_below_it() {
        let mut g = DiskGate::new(0.9, 0.5);
        assert!(g.check().is_ok());
        g.sampled(0.93);
        let refusal = g.check().unwrap_err();
        assert!(refusal.to_string().contains("93.0% used"), "{refusal}");
        g.sampled(0.89);
        assert!(g.check().is_ok());
    }

    #[test]
    fn out_of_space_holds_until_a_retry_succeeds_under_the_ratio() {
        let mut g = DiskGate::new(0.9, 0.5);
        assert!(g.out_of_space("preallocating segment X: No space left".into()));
        assert!(!g.out_of_space("again".into()), "logged once");
        assert!(g.check().unwrap_err().to_string().contains("again"));
        g.sampled(0.95);
        assert!(
            !g.should_retry(),
            "no retry while the disk is still over the ratio"
        );
        g.sampled(0.7);
        assert!(g.should_retry());
        assert!(g.check().is_err(), "still refused until the retry succeeds");
        g.space_returned();
        assert!(g.check().is_ok());
    }

    #[test]
    fn a_sample_of_the_real_file_system_is_a_ratio() {
        let s = SpaceSample::read(Path::new("/")).unwrap();
        assert!((0.0..=1.0).contains(&s.used_ratio()));
    }
}
