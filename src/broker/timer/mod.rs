//! Timer messages (RocketMQ 5's arbitrary delivery time: TIMER_DELIVER_MS, TIMER_DELAY_SEC,
//! TIMER_DELAY_MS): they wait in the system topic [`TIMER_TOPIC`] (`rmq_sys_wheel_timer`, queue 0), invisible
//! to consumers, and a task per shard re-puts each one to its real topic and queue when it is due.
//!
//! # What it owns
//! - [`accept`]: the send-side rule (which messages are timers, RocketMQ's refusals, the rewrite with
//!   TIMER_OUT_MS / REAL_TOPIC / REAL_QID).
//! - [`index`]: the timer index, plain Rust: due order, a bounded part in memory, the rest found again on
//!   disk, and the progress that survives a restart.
//! - [`Timers`] and [`run`]: the glommio edge. The task scans new timer-queue entries (the engine writes
//!   TIMER_OUT_MS into the entry's tag slot, `apogee_engine::delay`, so no record is read to index a
//!   timer), reloads far timers when memory frees up, re-puts due timers in batches, and writes its
//!   progress every `timerFlushIntervalMs` to `<store>/config/timerProgress`, a metadata file
//!   (`apogee_engine::metadata`, kind `TimerProgress`) whose payload is JSON:
//!   `{"scanFrom":u64,"scannedTo":u64,"deliveredBelow":{"fireAtMs":i64,"offset":u64}}`
//!   (meaning in [`index`]).
//!
//! # Why not RocketMQ's timer wheel and timer log
//! RocketMQ keeps a second on-disk structure (a timer log of 52-byte records chained per slot, and a wheel
//! file of slots for 2 × 7 days). The timer topic's consume queue already lists every timer with its slot
//! time (20 bytes each), so the index keeps the nearest timers in memory and re-reads the queue for the
//! rest: no second file to recover or to keep consistent with the log, at the price of a queue re-read
//! (from the oldest waiting timer) once per `timerEntriesInMemoryMax / 2` timers delivered when more are
//! waiting than fit in memory.
//!
//! # Delivery
//! A timer is due at TIMER_OUT_MS + `timerPrecisionMs` (RocketMQ's slot end, never before the asked time).
//! The task sleeps until the earliest due timer in memory, or until a timer is dispatched into the queue
//! (the engine's dispatch listener wakes it), so delivery follows the due time within a few ms. A due
//! timer becomes (RocketMQ's `TimerMessageStore.convert`): its real topic and queue, REAL_TOPIC / REAL_QID
//! removed, TIMER_ENQUEUE_MS (the timer record's store time: RocketMQ writes when its wheel took the
//! message in, which is that plus its dispatch lag) and TIMER_DEQUEUE_MS (now) added, WAIT=false; body,
//! flag, sys flag, born time and host, reconsume times and the other properties (TIMER_OUT_MS and the
//! TIMER_* asked for included) kept.
//!
//! # Invariants
//! - A timer leaves the index only once its re-put is stored (or its record is unreadable: logged).
//! - Progress is written only after the commit log was flushed, so it never vouches for a re-put that a
//!   crash could take back.
//!
//! # What a SIGKILL can duplicate
//! Timers re-put after the last progress write (at most `timerFlushIntervalMs`, 1 s by default, as
//! RocketMQ's timer checkpoint) are re-put again after a restart: at-least-once, as RocketMQ. Nothing
//! acknowledged is lost: an acknowledged timer is in the timer queue, at or after `scanFrom`.
//!
//! # Slaves and retention
//! Only a master runs the task (a slave gets the re-put messages from its master's log), as RocketMQ
//! stops timer dequeueing on slaves. Timers whose records retention deleted (a delay longer than
//! `fileReservedTime`) are skipped with a warning; RocketMQ re-writes such timers every 2 days
//! (`timerRollWindowSlot`), which Apogee does not do.

pub mod accept;
pub mod index;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use apogee_engine::delay::TIMER_TOPIC;
use apogee_engine::metadata::{self, Kind};
use apogee_engine::notify::Notify;
use apogee_engine::{EngineError, Message};
use apogee_net::properties::{self, names};
use apogee_net::record::{self, StoredRecord};
use apogee_transport::StopSignal;
use futures::future::{select, Either};
use tracing::{info, warn};

use super::{now_ms, Broker};
use index::{Index, Key, Progress, Reload, Timer};

/// Timer entries in memory per shard by default (`timerEntriesInMemoryMax`), about 50 bytes each.
pub const ENTRIES_IN_MEMORY_MAX_DEFAULT: usize = 100_000;
/// The range `timerEntriesInMemoryMax` may take.
pub const ENTRIES_IN_MEMORY_MIN: usize = 2;
pub const ENTRIES_IN_MEMORY_MAX: usize = 10_000_000;
/// RocketMQ's `timerPrecisionMs` choices; a configured value is snapped down to one of them.
pub const PRECISION_MS_CHOICES: [u64; 4] = [100, 200, 500, 1000];
/// Timer-queue entries read at once (a scan or a reload).
pub const SCAN_BATCH_ENTRIES: usize = 1024;
/// Entries a round classifies at most before it delivers (so a burst of new timers does not hold back
/// due ones).
pub const SCAN_ROUND_ENTRIES_MAX: usize = 16 * SCAN_BATCH_ENTRIES;
/// Due timers re-put with one append at most, and per round at most.
pub const REPUT_BATCH_MAX: usize = 32;
pub const DELIVER_ROUND_MAX: usize = 1024;
/// Longest sleep with nothing due (new timers wake the task anyway).
pub const IDLE_SLEEP_MAX_MS: u64 = 5_000;
/// Pause after a failed re-put (a full disk or a failed store, which do not clear at once).
pub const RETRY_AFTER_FAILURE_MS: u64 = 1_000;

/// RocketMQ's `setTimerPrecisionMs`: the largest choice not above `ms` (the smallest one below them all).
pub fn snap_precision_ms(ms: u64) -> u64 {
    PRECISION_MS_CHOICES
        .iter()
        .rev()
        .find(|c| **c <= ms)
        .copied()
        .unwrap_or(PRECISION_MS_CHOICES[0])
}

/// The timer state of one shard. See the module docs.
pub struct Timers {
    path: PathBuf,
    index: RefCell<Index>,
    persisted: RefCell<Progress>,
    wake: Notify,
}

impl Timers {
    pub fn load(path: PathBuf, capacity: usize) -> Result<Self, EngineError> {
        let progress: Progress =
            metadata::read_json(&path, Kind::TimerProgress, "timer progress")?.unwrap_or_default();
        Ok(Self {
            path,
            index: RefCell::new(Index::new(capacity, progress)),
            persisted: RefCell::new(progress),
            wake: Notify::default(),
        })
    }

    /// A timer was dispatched into the timer queue: wakes the task to index it.
    pub fn dispatched(&self) {
        self.wake.notify();
    }

    /// Timers held in memory, and those waiting on disk only.
    pub fn counts(&self) -> (usize, u64) {
        self.index.borrow().counts()
    }
}

/// The message a due timer record becomes; an error names what is missing.
pub fn time_up(rec: StoredRecord, now_ms: i64) -> Result<Message, String> {
    if rec.topic != TIMER_TOPIC {
        return Err(format!(
            "the record is in topic {}, not {TIMER_TOPIC}",
            rec.topic
        ));
    }
    let topic = properties::get(&rec.properties, names::REAL_TOPIC)
        .ok_or("no REAL_TOPIC property")?
        .to_owned();
    let queue_id: i32 = properties::get(&rec.properties, names::REAL_QID)
        .and_then(|q| q.trim().parse().ok())
        .ok_or("no REAL_QID property, or not a number")?;
    let props = properties::with_changes(
        &rec.properties,
        &[
            (names::TIMER_ENQUEUE_MS, &rec.store_timestamp.to_string()),
            (names::TIMER_DEQUEUE_MS, &now_ms.to_string()),
            (names::WAIT, "false"),
        ],
        &[names::REAL_TOPIC, names::REAL_QID],
    )
    .map_err(|e| e.to_string())?;
    Ok(Message {
        topic,
        queue_id,
        flag: rec.flag,
        sys_flag: rec.sys_flag,
        born_timestamp: rec.born_timestamp,
        born_host: rec.born_host,
        reconsume_times: rec.reconsume_times,
        prepared_transaction_offset: 0,
        body: rec.body,
        properties: props,
    })
}

fn timer_of(broker: &Broker, offset: u64, e: &apogee_engine::consumequeue::CqEntry) -> Timer {
    Timer {
        key: Key {
            fire_at_ms: e
                .tag_hash
                .saturating_add(broker.config.timer_precision_ms as i64),
            offset,
        },
        commit_log_offset: e.commit_log_offset,
        size: e.size,
    }
}

/// Indexes timers dispatched since the last scan (a bounded number per call); true when more are left.
async fn scan(broker: &Broker) -> Result<bool, EngineError> {
    let engine = &broker.engine;
    let min = engine.min_offset(TIMER_TOPIC, 0);
    let from = broker.timers.index.borrow().scanned_to();
    if from < min {
        warn!(
            shard = broker.shard,
            from,
            to = min,
            "timer queue entries removed by retention before their time; skipped"
        );
        broker.timers.index.borrow_mut().skip_below(min);
    }
    let mut scanned = 0;
    while scanned < SCAN_ROUND_ENTRIES_MAX {
        let at = broker.timers.index.borrow().scanned_to();
        let entries = engine
            .queue_entries(TIMER_TOPIC, 0, at, SCAN_BATCH_ENTRIES)
            .await?;
        if entries.is_empty() {
            return Ok(false);
        }
        scanned += entries.len();
        let mut index = broker.timers.index.borrow_mut();
        for (i, e) in entries.iter().enumerate() {
            index.offer(timer_of(broker, at + i as u64, e));
        }
    }
    Ok(true)
}

/// Reads far timers back into memory, delivering due ones between reads.
async fn reload(broker: &Broker) -> Result<(), EngineError> {
    let engine = &broker.engine;
    let mut r: Reload = broker.timers.index.borrow().start_reload();
    let mut at = r.from.max(engine.min_offset(TIMER_TOPIC, 0));
    while at < r.to {
        let want = SCAN_BATCH_ENTRIES.min((r.to - at) as usize);
        let entries = engine.queue_entries(TIMER_TOPIC, 0, at, want).await?;
        if entries.is_empty() {
            // Retention removed the rest of the range meanwhile.
            at = engine.min_offset(TIMER_TOPIC, 0).max(at + 1);
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            r.offer(timer_of(broker, at + i as u64, e));
        }
        at += entries.len() as u64;
        deliver_due(broker).await?;
    }
    let (memory, far) = broker.timers.counts();
    broker.timers.index.borrow_mut().finish_reload(r);
    let (memory_after, far_after) = broker.timers.counts();
    info!(
        shard = broker.shard,
        memory_before = memory,
        far_before = far,
        memory_after,
        far_after,
        "far timers reloaded from the timer queue"
    );
    Ok(())
}

/// Re-puts what is due, in batches (records read concurrently, one append each), a bounded number per
/// call; returns how many timers left the index.
async fn deliver_due(broker: &Broker) -> Result<usize, EngineError> {
    let engine = &broker.engine;
    let mut done = 0;
    while done < DELIVER_ROUND_MAX {
        let now = now_ms() as i64;
        let due = broker.timers.index.borrow().due(now, REPUT_BATCH_MAX);
        if due.is_empty() {
            break;
        }
        let records =
            futures::future::join_all(due.iter().map(|t| engine.read_record(t.commit_log_offset)))
                .await;
        let mut messages = Vec::with_capacity(due.len());
        for (t, rec) in due.iter().zip(records) {
            let message = match rec? {
                None => {
                    Err("no record at its commit log offset (removed by retention?)".to_owned())
                }
                Some(bytes) => record::decode(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|r| time_up(r, now)),
            };
            match message {
                Ok(m) => messages.push(m),
                Err(reason) => warn!(
                    shard = broker.shard,
                    offset = t.key.offset,
                    commit_log_offset = t.commit_log_offset,
                    %reason,
                    "timer message cannot be delivered; skipped"
                ),
            }
        }
        if !messages.is_empty() {
            match engine.append(&messages).await {
                // Stored but not yet durable: stored all the same, so it must not be put twice.
                Ok(_) | Err(EngineError::FlushTimeout { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        done += due.len();
        broker
            .timers
            .index
            .borrow_mut()
            .delivered(due.iter().map(|t| t.key));
    }
    Ok(done)
}

/// Flushes the commit log (so every re-put counted is durable), then writes the progress taken before.
async fn persist(broker: &Broker) {
    let progress = broker.timers.index.borrow().progress();
    if progress == *broker.timers.persisted.borrow() {
        return;
    }
    if let Err(e) = broker.engine.flush().await {
        warn!(shard = broker.shard, error = %e, "timer progress not written: commit log flush failed");
        return;
    }
    let body = match serde_json::to_vec(&progress) {
        Ok(b) => b,
        Err(e) => {
            warn!(shard = broker.shard, error = %e, "timer progress not encoded");
            return;
        }
    };
    // Off the shard's thread; only the timer task writes this file, one round at a time.
    match metadata::write_atomic_off_thread(broker.timers.path.clone(), Kind::TimerProgress, body)
        .await
    {
        Ok(()) => *broker.timers.persisted.borrow_mut() = progress,
        Err(e) => warn!(shard = broker.shard, error = %e, "timer progress not written"),
    }
}

/// One round: index new timers, reload far ones if memory has room, deliver what is due. Returns when
/// the next round is needed at the latest.
async fn round(broker: &Broker) -> Result<i64, EngineError> {
    let more = scan(broker).await?;
    if broker.timers.index.borrow().wants_reload() {
        reload(broker).await?;
    }
    let delivered = deliver_due(broker).await?;
    let now = now_ms() as i64;
    if more || delivered >= DELIVER_ROUND_MAX {
        return Ok(now);
    }
    Ok(broker
        .timers
        .index
        .borrow()
        .next_fire_at_ms()
        .unwrap_or(now + IDLE_SLEEP_MAX_MS as i64))
}

/// The timer task of one shard; returns after `stop`, having written its progress.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    let persist_every_ms = broker.config.timer_flush_interval_ms.max(1) as i64;
    let mut persisted_at = now_ms() as i64;
    let max = broker.engine.max_offset(TIMER_TOPIC, 0);
    if broker.timers.index.borrow_mut().clamp_to(max) {
        warn!(
            shard = broker.shard,
            max, "timer progress is ahead of the timer queue (a damaged log was cut); clamped"
        );
    }
    let p = *broker.timers.persisted.borrow();
    info!(
        shard = broker.shard,
        scan_from = p.scan_from,
        scanned_to = p.scanned_to,
        precision_ms = broker.config.timer_precision_ms,
        "timer task started"
    );
    loop {
        // Created before the round, so a timer dispatched during it still wakes the sleep below.
        let woken = broker.timers.wake.notified();
        let next = match round(&broker).await {
            Ok(t) => t,
            Err(e) => {
                warn!(shard = broker.shard, error = %e, "timer messages not delivered; retrying");
                now_ms() as i64 + RETRY_AFTER_FAILURE_MS as i64
            }
        };
        let now = now_ms() as i64;
        if now - persisted_at >= persist_every_ms {
            persist(&broker).await;
            persisted_at = now;
        }
        if broker.stopping.get() {
            break;
        }
        let wait_ms = (next - now)
            .min(persisted_at + persist_every_ms - now)
            .clamp(0, IDLE_SLEEP_MAX_MS as i64) as u64;
        if wait_ms == 0 {
            // Let requests run between rounds of a busy task.
            glommio::yield_if_needed().await;
        } else {
            let sleep = glommio::timer::sleep(Duration::from_millis(wait_ms));
            let woke = select(Box::pin(woken), Box::pin(sleep));
            if let Either::Right(_) = select(woke, stop.clone()).await {
                break;
            }
        }
    }
    persist(&broker).await;
    let (memory, far) = broker.timers.counts();
    info!(
        shard = broker.shard,
        memory, far, "timer task stopped (timers waiting in memory, and on disk only)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_snaps_down_to_rocketmq_choices() {
        assert_eq!(snap_precision_ms(1), 100);
        assert_eq!(snap_precision_ms(100), 100);
        assert_eq!(snap_precision_ms(499), 200);
        assert_eq!(snap_precision_ms(700), 500);
        assert_eq!(snap_precision_ms(5000), 1000);
    }

    #[test]
    fn time_up_restores_the_destination_and_stamps_the_times() {
        let rec = StoredRecord {
            total_size: 0,
            body_crc: 0,
            queue_id: 0,
            flag: 7,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: 0,
            born_timestamp: 5,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 6,
            store_host: "127.0.0.1:2".parse().unwrap(),
            reconsume_times: 3,
            prepared_transaction_offset: 0,
            body: bytes::Bytes::from_static(b"b"),
            topic: TIMER_TOPIC.into(),
            properties: "TIMER_DELAY_MS\u{1}900\u{2}TIMER_OUT_MS\u{1}900\u{2}REAL_TOPIC\u{1}T\u{2}REAL_QID\u{1}1\u{2}WAIT\u{1}true\u{2}".into(),
        };
        let m = time_up(rec.clone(), 1_000).unwrap();
        assert_eq!(
            (
                m.topic.as_str(),
                m.queue_id,
                m.flag,
                m.reconsume_times,
                m.born_timestamp
            ),
            ("T", 1, 7, 3, 5)
        );
        let get = |n| properties::get(&m.properties, n);
        assert_eq!(get(names::REAL_TOPIC), None);
        assert_eq!(get(names::REAL_QID), None);
        assert_eq!(get(names::TIMER_ENQUEUE_MS), Some("6"));
        assert_eq!(get(names::TIMER_DEQUEUE_MS), Some("1000"));
        assert_eq!(get(names::TIMER_OUT_MS), Some("900"));
        assert_eq!(get(names::TIMER_DELAY_MS), Some("900"));
        assert_eq!(get(names::WAIT), Some("false"));
        let mut broken = rec;
        broken.properties = "TIMER_OUT_MS\u{1}2\u{2}".into();
        assert!(time_up(broken, 1).unwrap_err().contains("REAL_TOPIC"));
    }
}
