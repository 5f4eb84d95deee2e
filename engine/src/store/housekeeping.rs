//! Background housekeeping: the checkpointer (consume queues flushed, consumer offsets and sealed key
//! indexes written, then the checkpoint), retention (expired segments deleted), the disk monitor (writes
//! refused and resumed by free space).

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use crate::checkpoint::{self, Checkpoint};
use crate::error::Result;
use crate::index;
use crate::limits::*;
use crate::retention::{self, SegmentAge};

use super::{now_ms, Engine};

impl Engine {
    pub(super) fn start_tasks(self: &Rc<Self>) {
        let me = self.clone();
        let flusher = glommio::spawn_local(async move { me.run_flusher().await }).detach();
        let me = self.clone();
        let checkpointer =
            glommio::spawn_local(async move { me.run_checkpointer().await }).detach();
        let me = self.clone();
        let cleaner = glommio::spawn_local(async move { me.run_retention().await }).detach();
        let me = self.clone();
        let disk = glommio::spawn_local(async move { me.run_disk_monitor().await }).detach();
        let me = self.clone();
        let timeouts = glommio::spawn_local(async move { me.run_flush_timeouts().await }).detach();
        self.tasks
            .borrow_mut()
            .extend([flusher, checkpointer, cleaner, disk, timeouts]);
    }

    pub(super) async fn run_checkpointer(&self) {
        while !self.closing.get() {
            glommio::timer::sleep(Duration::from_millis(CHECKPOINT_INTERVAL_MS)).await;
            if self.closing.get() {
                break;
            }
            if self.disk.borrow().is_out_of_space() {
                continue; // the disk monitor retries it once space returns
            }
            if let Err(e) = self.checkpoint_once(false).await {
                if e.is_no_space() {
                    self.out_of_space(format!("writing the checkpoint: {e}"));
                } else {
                    warn!(error = %e, "checkpoint failed");
                }
            }
        }
    }

    /// Flushes consume queues and consumer offsets, then records the offset they are complete up to.
    pub(super) async fn checkpoint_once(&self, clean: bool) -> Result<()> {
        let _one_at_a_time = self
            .checkpointing
            .acquire_permit(1)
            .await
            .expect("the checkpoint semaphore is never closed");
        // On a slave the log may end inside a record still arriving: vouch only up to a record boundary.
        let upto = self
            .dispatched
            .get()
            .min(self.commitlog.log.durable())
            .min(self.parsed.get());
        let queues = self.all_queues();
        for q in queues {
            q.flush().await?;
        }
        let offsets = self.offsets.borrow_mut().take_snapshot();
        if let Some((path, payload)) = offsets {
            let written = crate::metadata::write_atomic_off_thread(
                path,
                crate::metadata::Kind::ConsumerOffsets,
                payload,
            )
            .await;
            if let Err(e) = written {
                self.offsets.borrow_mut().mark_dirty();
                return Err(e);
            }
        }
        self.seal_indexes().await?;
        checkpoint::write_off_thread(
            self.config.store_dir.join("checkpoint"),
            &Checkpoint {
                clean,
                log_offset: upto,
                written_at_ms: now_ms(),
            },
        )
        .await
    }

    /// Writes full key indexes to disk (they stay searchable in memory until written).
    pub(super) async fn seal_indexes(&self) -> Result<()> {
        loop {
            let next = self.index.borrow().take_sealing();
            let Some((path, sealing)) = next else {
                return Ok(());
            };
            let dir = self.index.borrow().dir().to_owned();
            index::write_sealed(&dir, &path, sealing).await?;
            let sealed = index::Sealed::open(path).await?;
            self.index.borrow_mut().sealed_written(sealed);
        }
    }

    pub(super) async fn run_retention(&self) {
        let interval = Duration::from_millis(self.config.clean_resource_interval_ms);
        while !self.closing.get() {
            glommio::timer::sleep(interval).await;
            if self.closing.get() {
                break;
            }
            if let Err(e) = self.retention_once().await {
                warn!(error = %e, "retention round failed");
            }
        }
    }

    /// Samples the disk every [`DISK_SAMPLE_INTERVAL_MS`], and when writes were refused for ENOSPC and the
    /// disk has room again, retries what failed (the commit log flush, then the checkpoint); once both
    /// succeed, writes resume.
    pub(super) async fn run_disk_monitor(&self) {
        while !self.closing.get() {
            glommio::timer::sleep(Duration::from_millis(DISK_SAMPLE_INTERVAL_MS)).await;
            if self.closing.get() {
                break;
            }
            self.sample_disk().await;
            if self.disk.borrow().should_retry() {
                self.retry_after_no_space().await;
            }
        }
    }

    pub(super) async fn retry_after_no_space(&self) {
        let flushed = if self.commitlog.log.pending_bytes() > 0 {
            self.flush_commitlog().await.map(|_| ())
        } else {
            Ok(())
        };
        match flushed.and(self.checkpoint_once(false).await) {
            Ok(()) => {
                self.disk.borrow_mut().space_returned();
                info!(
                    store = %self.config.store_dir.display(),
                    used_percent = format!("{:.1}", self.disk.borrow().used_ratio() * 100.0),
                    "disk has room again: writes resume"
                );
            }
            Err(e) if e.is_no_space() => {}
            Err(e) => warn!(error = %e, "retry after a full disk failed"),
        }
    }

    /// One retention round: measure the disk, pick segments by RocketMQ's rules ([`retention`]), raise the
    /// log's and every queue's minimum past them, then delete their files. Readers see the new minimums
    /// before any file goes, so no read meets a missing segment.
    pub async fn retention_once(&self) -> Result<Vec<u64>> {
        self.sample_disk().await;
        let ratio = self.disk.borrow().used_ratio();
        let log = &self.commitlog.log;
        let size = log.segment_size();
        // Candidates: segments wholly on disk below the one being written (never the active segment, nor
        // the one allocated ahead of it).
        let active = crate::log::align_down_segment(log.written(), size);
        let on_disk_below = log.memory_start();
        let now = SystemTime::now();
        let mut sealed = Vec::new();
        for base in log
            .segment_bases()
            .into_iter()
            .filter(|b| *b < active && b + size <= on_disk_below)
        {
            let path = log.segment_path(base);
            let age_ms = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .map_or(0, |d| d.as_millis() as u64);
            sealed.push(SegmentAge { base, age_ms });
        }
        let hour = ((now_ms() / 3_600_000) % 24) as u32;
        let policy = retention::Policy {
            reserved_ms: self.config.file_reserved_time_hours * 3_600_000,
            max_used_ratio: self.config.disk_max_used_ratio,
            force_ratio: self.config.disk_force_clean_ratio,
            batch_max: RETENTION_SEGMENTS_PER_ROUND_MAX,
        };
        let (doomed, reason) = retention::choose(
            &sealed,
            &policy,
            ratio,
            hour == self.config.delete_when_hour,
        );
        let (Some(reason), Some(last)) = (reason, doomed.last()) else {
            return Ok(Vec::new());
        };
        let new_min = last + size;
        log.raise_min_offset(new_min);
        let dropped = self.index.borrow_mut().drop_below(new_min);
        for path in dropped {
            if let Err(e) = crate::blocking::remove_file_if_exists(path.clone()).await {
                warn!(path = %path.display(), error = %e, "cannot delete an expired index file");
            }
        }
        let queues = self.all_queues();
        for q in queues {
            q.drop_below_log_offset(new_min).await?;
        }
        for base in &doomed {
            info!(
                segment = %log.segment_path(*base).display(),
                ?reason,
                used_percent = format!("{:.1}", ratio * 100.0),
                reserved_hours = self.config.file_reserved_time_hours,
                "retention deletes commit log segment"
            );
            log.delete_segment(*base).await?;
        }
        self.sample_disk().await;
        Ok(doomed)
    }
}
