//! Which commit log segments to delete: plain decisions over segment ages and disk usage, so the policy is
//! tested without files or clocks. The engine applies them (deleting files and raising queue minimums).
//!
//! RocketMQ's rules: at `deleteWhen` o'clock, or whenever disk usage passes `diskMaxUsedSpaceRatio`, delete
//! segments older than `fileReservedTime`; above 85 % delete the oldest even if unexpired; above the refusal
//! ratio (90 %) refuse writes. The active segment (the one being written) is never deleted.

/// One deletable candidate: a sealed segment and how long since it was last written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentAge {
    pub base: u64,
    pub age_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub reserved_ms: u64,
    pub max_used_ratio: f64,
    pub force_ratio: f64,
    /// Segments deleted at most per round, so one round never stalls the shard for long.
    pub batch_max: usize,
}

/// Segments to delete now, oldest first. `sealed` is oldest first and excludes the active segment.
pub fn choose(
    sealed: &[SegmentAge],
    policy: &Policy,
    disk_used_ratio: f64,
    is_delete_hour: bool,
) -> Vec<u64> {
    let space_pressure = disk_used_ratio > policy.max_used_ratio;
    let mut out = Vec::new();
    if is_delete_hour || space_pressure {
        out.extend(
            sealed
                .iter()
                .take_while(|s| s.age_ms >= policy.reserved_ms)
                .map(|s| s.base),
        );
    }
    if out.is_empty() && disk_used_ratio > policy.force_ratio {
        out.extend(sealed.first().map(|s| s.base));
    }
    out.truncate(policy.batch_max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        reserved_ms: 1000,
        max_used_ratio: 0.75,
        force_ratio: 0.85,
        batch_max: 10,
    };

    fn segs(ages: &[u64]) -> Vec<SegmentAge> {
        ages.iter()
            .enumerate()
            .map(|(i, a)| SegmentAge {
                base: i as u64 * 100,
                age_ms: *a,
            })
            .collect()
    }

    #[test]
    fn expired_segments_go_only_at_the_delete_hour_or_under_pressure() {
        let s = segs(&[5000, 2000, 10]);
        assert!(choose(&s, &P, 0.5, false).is_empty());
        assert_eq!(choose(&s, &P, 0.5, true), vec![0, 100]);
        assert_eq!(choose(&s, &P, 0.8, false), vec![0, 100]);
    }

    #[test]
    fn unexpired_segments_go_only_above_the_force_ratio_one_at_a_time() {
        let s = segs(&[10, 10]);
        assert!(choose(&s, &P, 0.80, true).is_empty());
        assert_eq!(choose(&s, &P, 0.86, false), vec![0]);
    }

    #[test]
    fn deletion_is_oldest_first_and_stops_at_the_first_unexpired() {
        let s = segs(&[5000, 10, 5000]);
        assert_eq!(choose(&s, &P, 0.5, true), vec![0]);
    }
}
