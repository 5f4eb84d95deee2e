//! Which commit log segments to delete: plain decisions over segment ages and disk usage, so the policy is
//! tested without files or clocks. The engine applies them (deleting files and raising queue minimums).
//!
//! RocketMQ's rules (`DefaultMessageStore.CleanCommitLogService`, `MappedFileQueue.deleteExpiredFileByTime`):
//! at `deleteWhen` o'clock, or whenever disk usage passes `diskMaxUsedSpaceRatio` (75 %), delete segments
//! older than `fileReservedTime`, oldest first, stopping at the first unexpired one. Above
//! `diskSpaceCleanForciblyRatio` (85 %) RocketMQ "cleans immediately": the oldest segments go whatever their
//! age. Either way at most `deleteFileBatchMax` (10) per round. Above the refusal ratio (90 %) writes are
//! refused ([`crate::disk`]). The active segment (the one being written) and the one allocated ahead of it
//! are never candidates.

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

/// Why a round deletes what it deletes, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Expired segments at the delete hour.
    DeleteHour,
    /// Expired segments because usage passed `diskMaxUsedSpaceRatio`.
    SpacePressure,
    /// The oldest segments, expired or not, because usage passed `diskSpaceCleanForciblyRatio`.
    CleanForcibly,
}

/// Segments to delete now, oldest first, and why. `sealed` is oldest first and excludes the active segment.
pub fn choose(
    sealed: &[SegmentAge],
    policy: &Policy,
    disk_used_ratio: f64,
    is_delete_hour: bool,
) -> (Vec<u64>, Option<Reason>) {
    let reason = if disk_used_ratio > policy.force_ratio {
        Reason::CleanForcibly
    } else if disk_used_ratio > policy.max_used_ratio {
        Reason::SpacePressure
    } else if is_delete_hour {
        Reason::DeleteHour
    } else {
        return (Vec::new(), None);
    };
    let out: Vec<u64> = sealed
        .iter()
        .take_while(|s| reason == Reason::CleanForcibly || s.age_ms >= policy.reserved_ms)
        .take(policy.batch_max)
        .map(|s| s.base)
        .collect();
    let reason = (!out.is_empty()).then_some(reason);
    (out, reason)
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
        assert_eq!(choose(&s, &P, 0.5, false), (vec![], None));
        assert_eq!(
            choose(&s, &P, 0.5, true),
            (vec![0, 100], Some(Reason::DeleteHour))
        );
        assert_eq!(
            choose(&s, &P, 0.8, false),
            (vec![0, 100], Some(Reason::SpacePressure))
        );
    }

    #[test]
    fn unexpired_segments_go_only_above_the_force_ratio_oldest_first_in_a_bounded_batch() {
        let s = segs(&[10; 14]);
        assert_eq!(choose(&s, &P, 0.80, true), (vec![], None));
        let (doomed, reason) = choose(&s, &P, 0.86, false);
        assert_eq!(reason, Some(Reason::CleanForcibly));
        assert_eq!(doomed, (0..10).map(|i| i * 100).collect::<Vec<u64>>());
    }

    #[test]
    fn deletion_is_oldest_first_and_stops_at_the_first_unexpired() {
        let s = segs(&[5000, 10, 5000]);
        assert_eq!(
            choose(&s, &P, 0.5, true),
            (vec![0], Some(Reason::DeleteHour))
        );
    }
}
