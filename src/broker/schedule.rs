//! Delay levels: messages sent with a DELAY property wait in [`SCHEDULE_TOPIC`] (queue `level - 1`) and a
//! scheduler task per shard re-puts each one to its real topic and queue when it is due. Also
//! GET_ALL_DELAY_OFFSET (45).
//!
//! # What it owns
//! - [`delay_into_schedule`]: the send-side rewrite (RocketMQ's `HookUtils.transformDelayLevelMessage`): the
//!   level is clamped to the highest configured one, REAL_TOPIC / REAL_QID keep the destination. The engine
//!   writes the delivery time (store time + the level's delay) into the consume queue's tag hash slot
//!   (`apogee_engine::delay`), so the scheduler decides from consume queue entries alone.
//! - [`Schedule`]: the delivery progress per level (next schedule-queue offset to deliver), persisted as a
//!   metadata file `<store>/config/delayOffset` whose payload is RocketMQ's `delayOffset.json` shape
//!   `{"offsetTable":{"1":5}}`; GET_ALL_DELAY_OFFSET answers it.
//! - [`run`]: the scheduler task (glommio at the edge; [`decide`] and [`time_up`] are the plain decision
//!   core). Each round walks every level from its offset: entries already due are re-put (RocketMQ's
//!   `messageTimeup`: DELAY, TIMER_DELIVER_MS and TIMER_DELAY_SEC cleared, WAIT=false, everything else —
//!   body, flag, sys flag, born time and host, reconsume times, REAL_TOPIC/REAL_QID — kept); the first
//!   entry not yet due ends the level (entries of one level are in delivery order). Due entries are re-put
//!   in batches (records read concurrently, one append). It then sleeps until the earliest due time, or
//!   until a delayed message is dispatched into a level with nothing waiting (the engine's dispatch
//!   listener wakes it; a level with a message waiting is woken by that one, which is due first), so
//!   delivery follows the due time within the timer's precision, not a poll interval.
//! - Levels are taken from `messageDelayLevel` at start; a level beyond the table is stored at the highest
//!   level (as RocketMQ); schedule queues of levels a smaller table no longer has are not delivered (as
//!   RocketMQ, which only walks its table).
//!
//! # Invariants
//! - A level's offset only moves past an entry once its re-put was stored (or the entry was unreadable).
//! - Offsets are persisted only after the commit log was flushed, so a persisted offset never vouches for
//!   a re-put that a crash could still take back.
//!
//! # What a SIGKILL can duplicate
//! Progress is written every `flushDelayOffsetInterval` (10 s by default, as RocketMQ) and on a clean stop.
//! After a SIGKILL the scheduler restarts from the last persisted offsets, so messages re-put since then are
//! re-put again: delivery is at-least-once, exactly as RocketMQ's `ScheduleMessageService`. Nothing is
//! lost: a delayed message that was acknowledged (durable in SYNC_FLUSH) is still in the schedule queue.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use apogee_engine::delay::{self, SCHEDULE_TOPIC};
use apogee_engine::metadata::{self, Kind};
use apogee_engine::notify::Notify;
use apogee_engine::{EngineError, Message};
use apogee_net::body::delay_offset::DelayOffsetTable;
use apogee_net::body::to_json;
use apogee_net::codes::ResponseCode;
use apogee_net::properties::{self, names};
use apogee_net::record::{self, StoredRecord};
use apogee_net::RemotingCommand;
use apogee_transport::StopSignal;
use futures::future::{select, Either};
use tracing::{info, warn};

use super::{now_ms, Broker};
use crate::dledger::AppendError;

/// Schedule-queue entries one level delivers per round before the others get their turn.
pub const DELIVER_BATCH_MAX: usize = 256;
/// Due entries re-put with one append at most, and their bytes at most (at least one entry is taken).
pub const REPUT_BATCH_MAX: usize = 32;
pub const REPUT_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Longest sleep with nothing due (a safety net; new delayed messages wake the scheduler anyway).
pub const IDLE_SLEEP_MAX_MS: u64 = 5_000;
/// Pause before retrying a level whose re-put failed (RocketMQ waits `DELAY_FOR_A_PERIOD` = 10 s after an
/// exception, `DELAY_FOR_A_WHILE` = 100 ms after a failed put; a failed put here is a full disk or a failed
/// store, which do not clear in 100 ms).
pub const RETRY_AFTER_FAILURE_MS: u64 = 1_000;
/// The transaction half topic: a message scheduled into it is a bug upstream and is dropped, as RocketMQ does.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";

/// The scheduler's state on one shard. See the module docs.
pub struct Schedule {
    path: PathBuf,
    levels_ms: Vec<u64>,
    table: RefCell<DelayOffsetTable>,
    dirty: Cell<bool>,
    wake: Notify,
    /// Per level (index `level - 1`): true while the scheduler has nothing of that level waiting, so a new
    /// message of the level must wake it. A level with a message waiting will wake for that one, which is
    /// due no later than any newer message of the same level.
    idle: RefCell<Vec<bool>>,
}

impl Schedule {
    pub fn load(path: PathBuf, levels_ms: Vec<u64>) -> Result<Self, EngineError> {
        let table: DelayOffsetTable =
            metadata::read_json(&path, Kind::DelayOffsets, "delay offsets")?.unwrap_or_default();
        Ok(Self {
            path,
            table: RefCell::new(table),
            dirty: Cell::new(false),
            wake: Notify::default(),
            idle: RefCell::new(vec![true; levels_ms.len()]),
            levels_ms,
        })
    }

    /// The highest delay level.
    pub fn max_level(&self) -> i32 {
        self.levels_ms.len() as i32
    }

    pub fn levels_ms(&self) -> &[u64] {
        &self.levels_ms
    }

    /// Next schedule-queue offset to deliver of `level`.
    pub fn offset(&self, level: i32) -> u64 {
        self.table
            .borrow()
            .offset_table
            .get(&level)
            .copied()
            .unwrap_or(0)
    }

    fn set_offset(&self, level: i32, offset: u64) {
        let old = self.table.borrow_mut().offset_table.insert(level, offset);
        if old != Some(offset) {
            self.dirty.set(true);
        }
    }

    /// A delayed message was dispatched into `queue_id` of the schedule topic: wakes the scheduler unless
    /// it already waits for an earlier message of that level.
    pub fn dispatched(&self, queue_id: i32) {
        let idle = usize::try_from(queue_id)
            .ok()
            .and_then(|i| self.idle.borrow().get(i).copied())
            .unwrap_or(true);
        if idle {
            self.wake.notify();
        }
    }

    fn set_idle(&self, level: i32, idle: bool) {
        if let Ok(i) = usize::try_from(level - 1) {
            if let Some(s) = self.idle.borrow_mut().get_mut(i) {
                *s = idle;
            }
        }
    }

    /// A slave takes its master's progress (RocketMQ's `SlaveSynchronize`), so that it would go on from
    /// there; it does not deliver itself.
    pub async fn replace_from_master(&self, table: DelayOffsetTable) -> Result<(), EngineError> {
        if *self.table.borrow() == table {
            return Ok(());
        }
        *self.table.borrow_mut() = table;
        self.dirty.set(true);
        self.persist().await
    }

    /// The table as RocketMQ's `DelayOffsetSerializeWrapper` JSON.
    pub fn to_json(&self) -> Vec<u8> {
        to_json(&*self.table.borrow())
    }

    /// Writes the table if it changed, off the shard's thread. One writer at a time: the scheduler task on
    /// a master, the metadata sync on a slave (a slave runs no scheduler). Changes made during the write
    /// mark the table dirty again for the next round.
    async fn persist(&self) -> Result<(), EngineError> {
        if !self.dirty.get() {
            return Ok(());
        }
        let body = self.to_json();
        self.dirty.set(false);
        let written =
            metadata::write_atomic_off_thread(self.path.clone(), Kind::DelayOffsets, body).await;
        if written.is_err() {
            self.dirty.set(true);
        }
        written
    }
}

/// The level a DELAY property's value asks for; the error says why it is not one.
pub fn parse_delay_level(text: &str) -> Result<i32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("the DELAY property `{text}` is not a delay level (a whole number)"))
}

/// Where a message with delay level `level` (> 0) is stored: the schedule topic, queue `level - 1`, with
/// the level clamped to the highest one and REAL_TOPIC / REAL_QID recording its destination.
pub fn delay_into_schedule(
    max_level: i32,
    topic: &str,
    queue_id: i32,
    props: &str,
    level: i32,
) -> Result<(String, i32, String), String> {
    let level = level.min(max_level);
    let level_text = level.to_string();
    let queue_text = queue_id.to_string();
    let props = properties::with_changes(
        props,
        &[
            (names::DELAY, &level_text),
            (names::REAL_TOPIC, topic),
            (names::REAL_QID, &queue_text),
        ],
        &[],
    )
    .map_err(|e| e.to_string())?;
    Ok((SCHEDULE_TOPIC.to_owned(), level - 1, props))
}

/// What to do with a schedule-queue entry of `level` whose tag code says `deliver_at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Deliver,
    WaitUntil(i64),
}

/// RocketMQ's rule, with its `correctDeliverTimestamp`: an entry due later than now + the level's delay
/// (the clock went back, or the table changed) is delivered now.
pub fn decide(levels_ms: &[u64], level: i32, deliver_at_ms: i64, now_ms: i64) -> Step {
    let latest = now_ms.saturating_add(delay::level_delay_ms(levels_ms, level).unwrap_or(0) as i64);
    let due = if deliver_at_ms > latest {
        now_ms
    } else {
        deliver_at_ms
    };
    if due <= now_ms {
        Step::Deliver
    } else {
        Step::WaitUntil(due)
    }
}

/// The message a due schedule record becomes (RocketMQ's `messageTimeup`); an error names what is missing.
pub fn time_up(rec: StoredRecord) -> Result<Message, String> {
    let topic = properties::get(&rec.properties, names::REAL_TOPIC)
        .ok_or("no REAL_TOPIC property")?
        .to_owned();
    let queue_id: i32 = properties::get(&rec.properties, names::REAL_QID)
        .and_then(|q| q.trim().parse().ok())
        .ok_or("no REAL_QID property, or not a number")?;
    let props = properties::with_changes(
        &rec.properties,
        &[(names::WAIT, "false")],
        &[
            names::DELAY,
            names::TIMER_DELIVER_MS,
            names::TIMER_DELAY_SEC,
        ],
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
        prepared_transaction_offset: rec.prepared_transaction_offset,
        body: rec.body,
        properties: props,
    })
}

/// How one level's round ended.
enum Level {
    /// Nothing left to deliver.
    Idle,
    /// The next entry is due then.
    WaitUntil(i64),
    /// The batch bound was reached with more due entries left.
    More,
}

/// Delivers what is due in one level. Due entries are taken in batches: their records are read
/// concurrently and re-put with one append, so a busy level costs one store round trip per batch rather
/// than per message.
async fn deliver_level(broker: &Broker, level: i32) -> Result<Level, EngineError> {
    let engine = &broker.engine;
    let schedule = &broker.schedule;
    let queue_id = level - 1;
    let mut offset = schedule.offset(level);
    // Retention may have removed entries below the offset (RocketMQ resets to the queue's minimum too).
    let min = engine.min_offset(SCHEDULE_TOPIC, queue_id);
    if offset < min {
        warn!(
            shard = broker.shard,
            level,
            from = offset,
            to = min,
            "delay offset below its queue's minimum; moved up"
        );
        offset = min;
        schedule.set_offset(level, offset);
    }
    let mut delivered = 0;
    // Pessimistic: a dispatch into this level while it is being read must wake the scheduler.
    schedule.set_idle(level, true);
    while delivered < DELIVER_BATCH_MAX {
        let entries = engine
            .queue_entries(SCHEDULE_TOPIC, queue_id, offset, REPUT_BATCH_MAX)
            .await?;
        if entries.is_empty() {
            return Ok(Level::Idle);
        }
        schedule.set_idle(level, false);
        let now = now_ms() as i64;
        let mut due = Vec::with_capacity(entries.len());
        let mut bytes = 0usize;
        let mut waiting = None;
        for e in entries {
            if let Step::WaitUntil(t) = decide(schedule.levels_ms(), level, e.tag_hash, now) {
                waiting = Some(t);
                break;
            }
            if !due.is_empty() && bytes + e.size as usize > REPUT_BATCH_BYTES_MAX {
                break;
            }
            bytes += e.size as usize;
            due.push(e);
        }
        if due.is_empty() {
            return Ok(waiting.map_or(Level::Idle, Level::WaitUntil));
        }
        let records =
            futures::future::join_all(due.iter().map(|e| engine.read_record(e.commit_log_offset)))
                .await;
        let mut messages = Vec::with_capacity(due.len());
        for (i, (e, rec)) in due.iter().zip(records).enumerate() {
            let at = offset + i as u64;
            let message = match rec? {
                None => Err("no record at its commit log offset".to_owned()),
                Some(bytes) => record::decode(&bytes)
                    .map_err(|err| err.to_string())
                    .and_then(time_up),
            };
            match message {
                Err(reason) => {
                    warn!(shard = broker.shard, level, offset = at, commit_log_offset = e.commit_log_offset, %reason, "delayed message cannot be delivered; skipped");
                }
                Ok(m) if m.topic == TRANS_HALF_TOPIC => {
                    warn!(
                        shard = broker.shard,
                        level,
                        offset = at,
                        "delayed message for the transaction half topic dropped, as RocketMQ does"
                    );
                }
                Ok(m) => messages.push(m),
            }
        }
        if !messages.is_empty() {
            match crate::dledger::append(broker, &messages).await {
                // Stored but not yet durable: stored all the same, so it must not be put twice.
                Ok(_) | Err(AppendError::Engine(EngineError::FlushTimeout { .. })) => {}
                Err(AppendError::Engine(err)) => return Err(err),
                // Dledger mode: no longer the leader (the next one delivers from the copied progress).
                Err(AppendError::Refused(_, remark)) => return Err(EngineError::Failed(remark)),
            }
        }
        offset += due.len() as u64;
        delivered += due.len();
        schedule.set_offset(level, offset);
        if let Some(t) = waiting {
            return Ok(Level::WaitUntil(t));
        }
    }
    Ok(Level::More)
}

/// Moves each level's offset into its queue's range (RocketMQ's `correctDelayOffset`): retention may have
/// removed entries, or the offsets file may be older or newer than the queues.
fn correct_offsets(broker: &Broker) {
    for level in 1..=broker.schedule.max_level() {
        let (min, max) = (
            broker.engine.min_offset(SCHEDULE_TOPIC, level - 1),
            broker.engine.max_offset(SCHEDULE_TOPIC, level - 1),
        );
        let at = broker.schedule.offset(level);
        let fixed = at.clamp(min, max.max(min));
        if fixed != at {
            warn!(
                shard = broker.shard,
                level,
                from = at,
                to = fixed,
                "delay offset corrected into its queue's range"
            );
            broker.schedule.set_offset(level, fixed);
        }
    }
}

/// Flushes the commit log (so every re-put counted is durable), then writes the offsets.
async fn persist(broker: &Broker) {
    if !broker.schedule.dirty.get() {
        return;
    }
    if let Err(e) = broker.engine.flush().await {
        warn!(shard = broker.shard, error = %e, "delay offsets not persisted: commit log flush failed");
        return;
    }
    if let Err(e) = broker.schedule.persist().await {
        warn!(shard = broker.shard, error = %e, "delay offsets not persisted");
    }
}

/// The scheduler task of one shard; returns after `stop`, having persisted its progress.
pub async fn run(broker: Rc<Broker>, stop: StopSignal) {
    correct_offsets(&broker);
    let persist_every_ms = broker.config.flush_delay_offset_interval_ms.max(1) as i64;
    let mut persisted_at = now_ms() as i64;
    info!(
        shard = broker.shard,
        levels = broker.schedule.max_level(),
        "delay scheduler started"
    );
    loop {
        // Created before the scan, so a message dispatched during it still wakes the sleep below.
        let woken = broker.schedule.wake.notified();
        let mut next_due: Option<i64> = None;
        for level in 1..=broker.schedule.max_level() {
            // Dledger mode: only the leader that takes sends re-puts (a follower's log grows from Raft).
            if broker.stopping.get() || broker.is_slave() {
                break;
            }
            let now = now_ms() as i64;
            let due = match deliver_level(&broker, level).await {
                Ok(Level::Idle) => None,
                Ok(Level::WaitUntil(t)) => Some(t),
                Ok(Level::More) => Some(now),
                Err(e) => {
                    warn!(shard = broker.shard, level, error = %e, "delayed messages not delivered; retrying");
                    Some(now + RETRY_AFTER_FAILURE_MS as i64)
                }
            };
            next_due = match (next_due, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let now = now_ms() as i64;
        if now - persisted_at >= persist_every_ms {
            persist(&broker).await;
            persisted_at = now;
        }
        let wait_ms = next_due
            .map_or(IDLE_SLEEP_MAX_MS as i64, |t| t - now)
            .min(persisted_at + persist_every_ms - now)
            .clamp(0, IDLE_SLEEP_MAX_MS as i64) as u64;
        if wait_ms == 0 {
            // Let requests run between rounds of a busy scheduler.
            glommio::yield_if_needed().await;
        } else {
            let sleep = glommio::timer::sleep(Duration::from_millis(wait_ms));
            let woke = select(Box::pin(woken), Box::pin(sleep));
            if let Either::Right(_) = select(woke, stop.clone()).await {
                break;
            }
        }
        if broker.stopping.get() {
            break;
        }
    }
    persist(&broker).await;
    info!(shard = broker.shard, "delay scheduler stopped");
}

/// GET_ALL_DELAY_OFFSET: the progress table, as RocketMQ's `delayOffset.json`.
pub fn all_offsets(broker: &Rc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    req.response_to(ResponseCode::Success, None)
        .with_body(broker.schedule.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_are_delivered_and_far_future_ones_corrected_to_now() {
        let levels = delay::parse_levels("1s 5s").unwrap();
        assert_eq!(decide(&levels, 1, 1_000, 1_000), Step::Deliver);
        assert_eq!(decide(&levels, 1, 1_500, 1_000), Step::WaitUntil(1_500));
        // Due later than now + the level's delay: the clock went back; deliver now, as RocketMQ does.
        assert_eq!(decide(&levels, 1, 9_000, 1_000), Step::Deliver);
        assert_eq!(decide(&levels, 2, 6_000, 1_000), Step::WaitUntil(6_000));
    }

    #[test]
    fn a_delayed_message_is_moved_to_the_schedule_topic_with_its_destination() {
        let (topic, queue, props) =
            delay_into_schedule(18, "T", 3, "DELAY\u{1}40\u{2}TAGS\u{1}a\u{2}", 40).unwrap();
        assert_eq!(
            (topic.as_str(), queue),
            (SCHEDULE_TOPIC, 17),
            "clamped to the last level"
        );
        assert_eq!(properties::get(&props, names::DELAY), Some("18"));
        assert_eq!(properties::get(&props, names::REAL_TOPIC), Some("T"));
        assert_eq!(properties::get(&props, names::REAL_QID), Some("3"));
        assert_eq!(properties::get(&props, names::TAGS), Some("a"));
        assert!(parse_delay_level("x").unwrap_err().contains("`x`"));
        assert_eq!(parse_delay_level(" -2"), Ok(-2));
    }

    #[test]
    fn time_up_restores_the_destination_and_clears_the_delay() {
        let rec = StoredRecord {
            total_size: 0,
            body_crc: 0,
            queue_id: 2,
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
            topic: SCHEDULE_TOPIC.into(),
            properties: "DELAY\u{1}2\u{2}REAL_TOPIC\u{1}T\u{2}REAL_QID\u{1}1\u{2}WAIT\u{1}true\u{2}TIMER_DELAY_SEC\u{1}9\u{2}".into(),
        };
        let m = time_up(rec.clone()).unwrap();
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
        assert_eq!(properties::get(&m.properties, names::DELAY), None);
        assert_eq!(properties::get(&m.properties, names::TIMER_DELAY_SEC), None);
        assert_eq!(properties::get(&m.properties, names::WAIT), Some("false"));
        assert_eq!(properties::get(&m.properties, names::REAL_TOPIC), Some("T"));
        let mut broken = rec;
        broken.properties = "DELAY\u{1}2\u{2}".into();
        assert!(time_up(broken).unwrap_err().contains("REAL_TOPIC"));
    }
}
