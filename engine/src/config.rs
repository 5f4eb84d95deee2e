//! Engine settings, with RocketMQ's defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::limits::*;

/// When an append counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Done when durable (fdatasync); appends waiting together share one write and one sync.
    Sync,
    /// Done when in the write buffer; flushed every `flush_interval_ms` and when the buffer fills.
    Async,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This shard's store folder (`<storePathRootDir>/shard-<i>`).
    pub store_dir: PathBuf,
    pub commitlog_segment_size_bytes: u64,
    pub flush_mode: FlushMode,
    pub flush_interval_ms: u64,
    pub sync_flush_timeout_ms: u64,
    pub write_buffer_max_bytes: usize,
    pub message_size_max_bytes: usize,
    pub file_reserved_time_hours: u64,
    pub delete_when_hour: u32,
    /// How often retention runs (`cleanResourceInterval`).
    pub clean_resource_interval_ms: u64,
    pub disk_max_used_ratio: f64,
    pub disk_refuse_ratio: f64,
    /// Above this used ratio retention deletes the oldest segments even if unexpired.
    pub disk_force_clean_ratio: f64,
    /// The address written as STOREHOSTADDRESS and in offset message ids.
    pub store_host: SocketAddr,
    /// Hash slots per key index file.
    pub index_slots: u32,
    /// Entries per key index file: the bound of the in-memory active index (20 bytes each).
    pub index_entries_max: u32,
    /// Delay of each level in ms (`messageDelayLevel`): the delivery time written in the schedule topic's
    /// consume queue entries ([`crate::delay`]).
    pub delay_levels_ms: Vec<u64>,
}

impl EngineConfig {
    /// Defaults for a store in `store_dir`.
    pub fn new(store_dir: impl Into<PathBuf>) -> Self {
        Self {
            store_dir: store_dir.into(),
            commitlog_segment_size_bytes: COMMITLOG_SEGMENT_SIZE_BYTES_DEFAULT,
            flush_mode: FlushMode::Async,
            flush_interval_ms: FLUSH_INTERVAL_MS_DEFAULT,
            sync_flush_timeout_ms: SYNC_FLUSH_TIMEOUT_MS_DEFAULT,
            write_buffer_max_bytes: WRITE_BUFFER_MAX_BYTES_DEFAULT,
            message_size_max_bytes: apogee_net::limits::MESSAGE_SIZE_MAX_BYTES_DEFAULT,
            file_reserved_time_hours: FILE_RESERVED_TIME_HOURS_DEFAULT,
            delete_when_hour: DELETE_WHEN_HOUR_DEFAULT,
            clean_resource_interval_ms: CLEAN_RESOURCE_INTERVAL_MS_DEFAULT,
            disk_max_used_ratio: DISK_MAX_USED_RATIO_DEFAULT,
            disk_refuse_ratio: DISK_REFUSE_RATIO_DEFAULT,
            disk_force_clean_ratio: DISK_FORCE_CLEAN_RATIO,
            store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
            index_slots: crate::index::INDEX_SLOTS_DEFAULT,
            index_entries_max: crate::index::INDEX_ENTRIES_DEFAULT,
            delay_levels_ms: crate::delay::parse_levels(crate::delay::MESSAGE_DELAY_LEVEL_DEFAULT)
                .unwrap_or_default(),
        }
    }

    /// Checks relations between settings; the error names the setting.
    pub fn validate(&self) -> crate::Result<()> {
        let err = |m: String| Err(crate::EngineError::Config(m));
        if !self
            .commitlog_segment_size_bytes
            .is_multiple_of(DIRECT_IO_ALIGN_BYTES)
            || self.commitlog_segment_size_bytes < 64 * 1024
        {
            return err(format!(
                "mappedFileSizeCommitLog={} must be a multiple of {DIRECT_IO_ALIGN_BYTES} and at least 65536",
                self.commitlog_segment_size_bytes
            ));
        }
        if self.message_size_max_bytes as u64 + 1024 > self.commitlog_segment_size_bytes {
            return err(format!(
                "maxMessageSize={} does not fit in mappedFileSizeCommitLog={}",
                self.message_size_max_bytes, self.commitlog_segment_size_bytes
            ));
        }
        if !(0.1..=0.95).contains(&self.disk_max_used_ratio) {
            return err(format!(
                "diskMaxUsedSpaceRatio={} must be within 0.1..=0.95",
                self.disk_max_used_ratio
            ));
        }
        if self.delete_when_hour > 23 {
            return err(format!(
                "deleteWhen={} must be an hour 0..=23",
                self.delete_when_hour
            ));
        }
        if self.clean_resource_interval_ms == 0 {
            return err("cleanResourceInterval must be at least 1 ms".into());
        }
        if self.write_buffer_max_bytes < self.message_size_max_bytes * 2 {
            return err("the write buffer must hold at least two maximal messages".into());
        }
        Ok(())
    }
}
