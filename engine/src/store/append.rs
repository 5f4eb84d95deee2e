//! The write path: an append checks limits and space, assigns queue offsets, encodes its records into the
//! commit log's write buffer, and (SYNC_FLUSH) waits for the group commit; the flusher task writes and
//! syncs what is buffered, moves the durable offset, dispatches records to their consume queues and key
//! index, and answers the waiting appends.

use std::time::Duration;

use apogee_net::msgid;
use apogee_net::record;
use futures::channel::oneshot;
use futures::future::select;
use tracing::{info, warn};

use crate::config::FlushMode;
use crate::consumequeue::CqEntry;
use crate::error::{EngineError, Result};
use crate::index;
use crate::limits::*;

use super::group_commit::{FlusherAct, FlusherWait};
use super::{
    disk_used_ratio_off_thread, now_ms, topic_slot, validate_message, Appended, Dispatch, Engine,
    FlushFailure, Message,
};

impl Engine {
    /// Stores `messages` (a batch lands contiguously); completes per the flush mode.
    ///
    /// Errors before anything is stored: limits, bad topic, disk full, a failed engine. After the records
    /// are stored: only [`EngineError::FlushTimeout`] (SYNC_FLUSH), which means stored but not yet durable.
    pub async fn append(&self, messages: &[Message]) -> Result<Vec<Appended>> {
        self.check_open()?;
        for m in messages {
            validate_message(&self.config, m)?;
        }
        self.make_room(messages, self.config.store_host).await?;
        let (out, dispatches) = self.encode(messages, now_ms(), self.config.store_host)?;
        let end = self.encoded_up_to();
        match self.config.flush_mode {
            FlushMode::Async => {
                self.dispatch_written(dispatches, end)?;
                Ok(out)
            }
            FlushMode::Sync => {
                self.pending.borrow_mut().extend(dispatches);
                let (tx, rx) = oneshot::channel();
                let timeout_after = Duration::from_millis(self.config.sync_flush_timeout_ms);
                let first = {
                    let mut waiters = self.waiters.borrow_mut();
                    let first = waiters.is_empty();
                    waiters.wait(
                        end,
                        self.commitlog.log.written(),
                        std::time::Instant::now() + timeout_after,
                        tx,
                    );
                    first
                };
                if first {
                    self.waiter_arrived.notify();
                }
                self.flush_wanted.notify();
                // Answered by a flush, a failed flush, or the flush-timeout task at the deadline.
                match rx.await {
                    Ok(Ok(())) => Ok(out),
                    Ok(Err(FlushFailure::Failed(e))) => Err(EngineError::Failed(e)),
                    Ok(Err(FlushFailure::NoSpace(reason))) => Err(EngineError::DiskFull {
                        path: self.config.store_dir.clone(),
                        reason,
                    }),
                    // Dropped unanswered: the engine is closing (its tasks were cancelled).
                    Err(_) if self.closing.get() => Err(EngineError::ShuttingDown),
                    Ok(Err(FlushFailure::TimedOut)) | Err(_) => Err(EngineError::FlushTimeout {
                        timeout_ms: self.config.sync_flush_timeout_ms,
                        stored: out,
                    }),
                }
            }
        }
    }

    /// Answers `FlushTimeout` to every SYNC_FLUSH append whose deadline passed before a flush made it
    /// durable: sleeps until the oldest waiter's deadline (deadlines grow with log order, as every append
    /// adds the same timeout to its arrival time), takes out what expired, and again. One timer for all
    /// waiters, where a timer per append cost a timer-tree insert and removal and a boxed future each.
    pub(super) async fn run_flush_timeouts(&self) {
        while !self.closing.get() {
            let arrived = self.waiter_arrived.notified();
            let next = self.waiters.borrow().next_deadline();
            match next {
                None => arrived.await,
                Some(deadline) => {
                    let now = std::time::Instant::now();
                    if deadline > now {
                        glommio::timer::sleep(deadline - now).await;
                    }
                    let expired = self.waiters.borrow_mut().expire(std::time::Instant::now());
                    for tx in expired {
                        let _ = tx.send(Err(FlushFailure::TimedOut));
                    }
                }
            }
        }
    }

    /// `Ok` unless the engine is closing or failed for good: the refusals every writer checks first.
    pub(super) fn check_open(&self) -> Result<()> {
        if self.closing.get() {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(f) = self.failed.borrow().as_ref() {
            return Err(EngineError::Failed(f.clone()));
        }
        Ok(())
    }

    /// After [`Engine::encode`]: every record up to the written offset is whole (parsed), and shippers
    /// waiting for new bytes are woken. Returns that offset.
    pub(super) fn encoded_up_to(&self) -> u64 {
        let end = self.commitlog.log.written();
        self.parsed.set(end);
        self.appended.notify();
        end
    }

    /// ASYNC_FLUSH's visibility rule: records are dispatched (consume queues, key index) once written, up to
    /// `end`; the flusher is woken early once half the write buffer waits for it.
    pub(super) fn dispatch_written(&self, dispatches: Vec<Dispatch>, end: u64) -> Result<()> {
        for d in dispatches {
            self.dispatch(d)?;
        }
        self.dispatched.set(end);
        if self.commitlog.log.pending_bytes() as usize > self.config.write_buffer_max_bytes / 2 {
            self.flush_wanted.notify();
        }
        Ok(())
    }

    /// Waits until `messages` fit: the write buffer under its bound (the flusher drains it) and the commit
    /// log blocks they will be written into allocated. Refuses for space or a failed engine, with nothing
    /// stored.
    pub(super) async fn make_room(
        &self,
        messages: &[Message],
        store_host: std::net::SocketAddr,
    ) -> Result<()> {
        self.check_space()?;
        // Back-pressure: a full write buffer waits for the flusher, before anything is encoded.
        let mut rounds = 0;
        while self.commitlog.log.pending_bytes() as usize > self.config.write_buffer_max_bytes {
            let done = self.flush_done.notified();
            self.flush_wanted.notify();
            done.await;
            rounds += 1;
            if rounds > 10_000 {
                return Err(EngineError::Failed("write buffer never drained".into()));
            }
            if let Some(f) = self.failed.borrow().as_ref() {
                return Err(EngineError::Failed(f.clone()));
            }
            self.check_space()?;
        }
        self.ensure_segments_for(messages, store_host).await?;
        // `ensure_segments_for` may have waited: look at the gate again before anything is stored.
        self.check_space()?;
        Ok(())
    }

    /// Assigns each message its queue offset and encodes it into the write buffer, stored at
    /// `store_timestamp` by `store_host`; no await, so log order and queue order agree. Returns where each
    /// landed and what to dispatch.
    pub(super) fn encode(
        &self,
        messages: &[Message],
        store_timestamp: i64,
        store_host: std::net::SocketAddr,
    ) -> Result<(Vec<Appended>, Vec<Dispatch>)> {
        let mut out = Vec::with_capacity(messages.len());
        let mut dispatches = Vec::with_capacity(messages.len());
        for m in messages {
            let (key_topic, queue_offset) = {
                let mut next = self.next_queue_offset.borrow_mut();
                let (name, queues) = topic_slot(&mut next, &m.topic);
                let slot = queues.entry(m.queue_id).or_insert(0);
                let q = *slot;
                *slot += 1;
                (name, q)
            };
            let rec = m.record(store_timestamp, store_host);
            let (physical_offset, size) =
                self.commitlog
                    .append(&rec, queue_offset as i64, record::body_crc(&m.body))?;
            // One pass over the properties finds what the consume queue (TAGS) and the key index
            // (KEYS, UNIQ_KEY) need.
            let found = index::IndexedProperties::scan(&m.properties);
            dispatches.push(Dispatch {
                topic: key_topic,
                queue_id: m.queue_id,
                queue_offset,
                entry: CqEntry {
                    commit_log_offset: physical_offset,
                    size: size as u32,
                    tag_hash: crate::delay::cq_tag_code_with_tags(
                        &self.config.delay_levels_ms,
                        &m.topic,
                        &m.properties,
                        found.tags,
                        store_timestamp,
                    ),
                },
                end: physical_offset + size as u64,
                store_timestamp,
                key_hashes: index::KeyHashes::of(&m.topic, found),
            });
            out.push(Appended {
                physical_offset,
                size,
                queue_offset,
                store_timestamp,
                msg_id: msgid::encode(store_host, physical_offset),
            });
        }
        Ok((out, dispatches))
    }

    /// `Ok` when writes may go on; else the refusal, naming the disk. Dledger's leader asks before it
    /// proposes: an entry it could not apply would hold its send until the apply wait runs out.
    pub fn check_space(&self) -> Result<()> {
        self.disk
            .borrow()
            .check()
            .map_err(|r| EngineError::DiskFull {
                path: self.config.store_dir.clone(),
                reason: r.to_string(),
            })
    }

    /// Shuts the space gate after an ENOSPC; logs it once per episode.
    pub(super) fn out_of_space(&self, what: String) {
        if self.disk.borrow_mut().out_of_space(what.clone()) {
            warn!(
                store = %self.config.store_dir.display(),
                reason = %what,
                "disk is full: writes are refused until space is freed; reads go on"
            );
        }
    }

    /// Samples the disk's used ratio; logs when writes stop or may start again because of it.
    pub(super) async fn sample_disk(&self) {
        let ratio = disk_used_ratio_off_thread(self.config.store_dir.clone()).await;
        let mut gate = self.disk.borrow_mut();
        let was_over = gate.used_ratio() > self.config.disk_refuse_ratio;
        gate.sampled(ratio);
        let over = ratio > self.config.disk_refuse_ratio;
        if over && !was_over {
            warn!(
                store = %self.config.store_dir.display(),
                used_percent = format!("{:.1}", ratio * 100.0),
                refuse_percent = format!("{:.0}", self.config.disk_refuse_ratio * 100.0),
                "disk usage is over diskSpaceWarningLevelRatio: writes are refused"
            );
        } else if was_over && !over {
            info!(
                store = %self.config.store_dir.display(),
                used_percent = format!("{:.1}", ratio * 100.0),
                "disk usage is back under diskSpaceWarningLevelRatio"
            );
        }
    }

    /// Makes sure the commit log blocks `messages` will be written into are allocated, before anything is
    /// encoded: on a disk without room the append is refused, with nothing stored, instead of being taken
    /// into memory and failing its flush.
    pub(super) async fn ensure_segments_for(
        &self,
        messages: &[Message],
        host: std::net::SocketAddr,
    ) -> Result<()> {
        let log = &self.commitlog.log;
        let size = log.segment_size();
        let need: u64 = messages
            .iter()
            .map(|m| (m.record(0, host).encoded_len() + record::BLANK_MIN_BYTES) as u64)
            .sum();
        // Bounded: each round allocates one step; other appends may move the head while it waits.
        for _ in 0..8 {
            let written = log.written();
            let through = if need <= log.segment_remaining() {
                written + need
            } else {
                // The records cross into the next segment: this one is written up to its end (records,
                // then the blank that ends it), the next one from its start.
                let segment_end = crate::log::align_down_segment(written, size) + size;
                if !log.is_allocated(segment_end) {
                    self.ensure_log_allocated(segment_end).await?;
                    continue;
                }
                segment_end + need.min(size)
            };
            if log.is_allocated(through) {
                return Ok(());
            }
            self.ensure_log_allocated(through).await?;
        }
        Ok(())
    }

    /// Allocates the commit log's blocks up to `through`; no space shuts the gate and refuses.
    pub(super) async fn ensure_log_allocated(&self, through: u64) -> Result<()> {
        let log = &self.commitlog.log;
        if let Err(e) = log.ensure_allocated(through).await {
            if !e.is_no_space() {
                return Err(e);
            }
            let what = format!("allocating commit log blocks up to offset {through}: {e}");
            self.out_of_space(what.clone());
            return Err(EngineError::DiskFull {
                path: self.config.store_dir.clone(),
                reason: crate::disk::Refusal::OutOfSpace { what }.to_string(),
            });
        }
        if log.take_allocated_bytes() > 0 {
            self.sample_disk().await;
        }
        Ok(())
    }

    pub(super) fn dispatch(&self, d: Dispatch) -> Result<()> {
        let q = self.queue_or_create(&d.topic, d.queue_id)?;
        q.append(d.queue_offset, d.entry);
        self.index.borrow_mut().add_hashes(
            d.key_hashes.iter(),
            d.entry.commit_log_offset,
            d.entry.size,
            d.store_timestamp,
        );
        if let Some(l) = self.listener.borrow().clone() {
            l(&d.topic, d.queue_id, d.queue_offset + 1);
        }
        Ok(())
    }

    /// Flushes the commit log once, dispatches what became durable and completes its waiters. The only
    /// caller of the commit log's flush, so at most one is in flight.
    ///
    /// A flush stays busy until its outcome is applied, not only until its write returns: the outcome
    /// awaits (a disk sample on the blocking pool after segment growth), and a second flush finishing in
    /// that gap would report a later durable offset first, so this one's would go back (a Dledger follower
    /// whose checkpoint flush met the flusher after a SIGSTOP panicked on exactly that).
    pub(super) async fn flush_commitlog(&self) -> Result<u64> {
        while self.flush_busy.get() {
            self.flush_done.notified().await;
        }
        self.flush_busy.set(true);
        let started = std::time::Instant::now();
        let result = self.commitlog.log.flush().await;
        self.flush_latency
            .borrow_mut()
            .observe(started.elapsed().as_micros() as u64);
        let outcome = self.apply_flush(result).await;
        self.flush_busy.set(false);
        self.flush_done.notify();
        outcome
    }

    /// What a commit log flush made true: dispatches, visibility, waiters answered (or failed).
    async fn apply_flush(&self, result: Result<u64>) -> Result<u64> {
        match result {
            Ok(durable) => {
                if self.commitlog.log.take_allocated_bytes() > 0 {
                    self.sample_disk().await;
                }
                // SYNC_FLUSH masters ship only durable bytes: a flush is news for their slaves.
                self.appended.notify();
                loop {
                    let front = self.pending.borrow_mut().pop_front();
                    match front {
                        Some(d) if d.end <= durable => self.dispatch(d)?,
                        Some(d) => {
                            self.pending.borrow_mut().push_front(d);
                            break;
                        }
                        None => break,
                    }
                }
                if self.config.flush_mode == FlushMode::Sync {
                    self.dispatched.set(self.dispatched.get().max(durable));
                }
                let written = self.commitlog.log.written();
                let answered = self.waiters.borrow_mut().flushed(durable, written);
                for tx in answered {
                    let _ = tx.send(Ok(()));
                }
                Ok(durable)
            }
            Err(e) => {
                let failure = if e.is_no_space() {
                    let what = format!("flushing the commit log: {e}");
                    self.out_of_space(what.clone());
                    FlushFailure::NoSpace(crate::disk::Refusal::OutOfSpace { what }.to_string())
                } else {
                    let text = e.to_string();
                    warn!(error = %text, "commit log flush failed; the shard stops accepting writes");
                    *self.failed.borrow_mut() = Some(text.clone());
                    FlushFailure::Failed(text)
                };
                let answered = self.waiters.borrow_mut().failed();
                for tx in answered {
                    let _ = tx.send(Err(failure.clone()));
                }
                Err(e)
            }
        }
    }

    pub(super) async fn run_flusher(&self) {
        let interval = Duration::from_millis(self.config.flush_interval_ms);
        while !self.closing.get() {
            let wanted = self.flush_wanted.notified();
            let pending = self.commitlog.log.pending_bytes();
            match FlusherWait::decide(self.config.flush_mode, pending) {
                FlusherWait::Nothing => {}
                FlusherWait::Wake => wanted.await,
                FlusherWait::WakeOrInterval => {
                    let _ =
                        select(Box::pin(wanted), Box::pin(glommio::timer::sleep(interval))).await;
                }
            }
            let stopping = self.closing.get() || self.failed.borrow().is_some();
            let out_of_space = self.disk.borrow().is_out_of_space();
            match FlusherAct::decide(stopping, out_of_space, self.commitlog.log.pending_bytes()) {
                FlusherAct::Stop => break,
                // The disk monitor retries the flush once space returns.
                FlusherAct::WaitForSpace => {
                    glommio::timer::sleep(Duration::from_millis(DISK_SAMPLE_INTERVAL_MS)).await;
                }
                FlusherAct::Flush => {
                    let _ = self.flush_commitlog().await;
                }
                FlusherAct::Idle => {}
            }
        }
    }

    /// Forces a flush of the commit log now (tests, benchmarks, shutdown).
    pub async fn flush(&self) -> Result<u64> {
        self.flush_commitlog().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use glommio::{LocalExecutorBuilder, Placement};

    use crate::{Engine, EngineConfig, EngineError, FlushMode, Message};

    fn message() -> Message {
        Message {
            topic: "T".into(),
            queue_id: 0,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().expect("literal"),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: Bytes::from_static(b"hello"),
            properties: "UNIQ_KEY\u{1}U1\u{2}".into(),
        }
    }

    #[test]
    fn a_sync_append_not_flushed_by_its_deadline_answers_flush_timeout_and_stays_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let mut c = EngineConfig::new(&path);
                c.flush_mode = FlushMode::Sync;
                c.commitlog_segment_size_bytes = 1024 * 1024;
                c.message_size_max_bytes = 64 * 1024;
                c.write_buffer_max_bytes = 512 * 1024;
                c.sync_flush_timeout_ms = 100;
                let engine = Engine::open(c).await.expect("open");
                // The flusher finds a flush in progress and waits for it: nothing gets durable.
                engine.flush_busy.set(true);
                let started = Instant::now();
                let batch = [message()];
                let answer = futures::future::select(
                    Box::pin(engine.append(&batch)),
                    Box::pin(glommio::timer::sleep(Duration::from_secs(10))),
                )
                .await;
                let futures::future::Either::Left((result, _)) = answer else {
                    panic!("the append was never answered: no timeout fired");
                };
                let waited = started.elapsed();
                match result {
                    Err(EngineError::FlushTimeout { timeout_ms, stored }) => {
                        assert_eq!(timeout_ms, 100);
                        assert_eq!(stored.len(), 1, "the record was stored");
                    }
                    other => panic!("expected FlushTimeout, got {other:?}"),
                }
                assert!(
                    waited >= Duration::from_millis(100),
                    "answered after {waited:?}, before its deadline"
                );
                assert!(
                    engine.waiters.borrow().is_empty(),
                    "the expired waiter was taken out"
                );
                // Once flushes run again the stored record becomes durable and visible like any other.
                engine.flush_busy.set(false);
                engine.flush_done.notify();
                let durable = engine.flush().await.expect("flush");
                assert_eq!(durable, engine.log_offsets().0);
                assert_eq!(engine.max_offset("T", 0), 1);
                engine.shutdown().await.expect("shutdown");
            })
            .expect("executor")
            .join()
            .expect("test panicked");
    }
}
