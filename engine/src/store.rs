//! [`Engine`]: one shard's store. It owns the commit log, the consume queues, the consumer offsets and the
//! checkpoint, and the background tasks that flush, checkpoint and clean them.
//!
//! # Three offsets
//! - **written**: the commit log's end in memory; every record below it has its queue offset.
//! - **durable**: below it everything is on disk and synced.
//! - **dispatched**: below it every record has its consume queue entry, i.e. is visible to consumers.
//!   In SYNC_FLUSH dispatched ≤ durable always: a consumer never sees what a crash can take back.
//!   In ASYNC_FLUSH a record is dispatched as soon as it is written.
//!
//! # Life of an append
//! `append` checks limits, takes the next queue offset of each message's queue, encodes the records into
//! the write buffer (no await in between, so queue offsets and log order agree), then:
//! - ASYNC_FLUSH: dispatches them and returns;
//! - SYNC_FLUSH: registers a waiter for the batch's end offset and wakes the flusher. The flusher writes
//!   and syncs everything buffered at once (group commit: one write per touched segment and one fdatasync
//!   for all waiters), dispatches what became durable and completes the waiters.
//!
//! # Contracts
//! Owned by one shard (`Rc`, `!Send`). No `RefCell` borrow is held across an `.await`. Dropping an `append`
//! future after its records were encoded does not un-store them: they are flushed and dispatched like any.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_net::msgid;
use apogee_net::record::{self, NewRecord};
use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;
use futures::future::{select, Either};
use glommio::task::JoinHandle;
use tracing::{info, warn};

use crate::checkpoint::{self, Checkpoint};
use crate::commitlog::{recovery, CommitLog};
use crate::config::{EngineConfig, FlushMode};
use crate::consumequeue::{ConsumeQueue, CqEntry};
use crate::disk::{DiskGate, SpaceSample};
use crate::error::{EngineError, Result};
use crate::index::{self, KeyIndex};
use crate::limits::*;
use crate::log::SegmentedLog;
use crate::notify::Notify;
use crate::offsets::ConsumerOffsets;
use crate::retention::{self, SegmentAge};

mod replica;
mod topic_delete;

/// A message to store, as the broker hands it over.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Bytes,
    pub properties: String,
}

impl Message {
    /// The record this message becomes, stored at `store_timestamp` by `store_host`.
    fn record(&self, store_timestamp: i64, store_host: SocketAddr) -> NewRecord<'_> {
        NewRecord {
            topic: &self.topic,
            queue_id: self.queue_id,
            flag: self.flag,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp,
            store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: &self.body,
            properties: &self.properties,
        }
    }
}

/// Where a stored message landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub physical_offset: u64,
    pub size: usize,
    pub queue_offset: u64,
    pub store_timestamp: i64,
    /// The offset message id (store host + physical offset).
    pub msg_id: String,
}

/// How a queue read ended; the broker maps these to pull response codes (reference §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    Found,
    /// The queue has no messages at all.
    NoMessageInQueue,
    /// Offset is the queue's max: nothing new yet.
    OffsetOverflowOne,
    /// Offset is past the max; go on from the max.
    OffsetOverflowBadly,
    /// Offset is below the min (retention removed it).
    OffsetTooSmall,
    /// Messages were there, none matched the filter.
    NoMatchedMessage,
}

/// A filter over a stored record's bytes, for [`Engine::read_queue_filtered`].
pub type RecordFilter<'a> = dyn Fn(&[u8]) -> bool + 'a;

#[derive(Debug, Clone)]
pub struct QueueRead {
    pub status: ReadStatus,
    /// Stored records back to back, byte for byte.
    pub body: Bytes,
    pub messages: usize,
    pub next_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// Commit log offset of the last message read (0 when none): how far behind the log's end the
    /// reader is, for RocketMQ's "pull from the slave" suggestion.
    pub last_log_offset: u64,
}

struct Dispatch {
    topic: Rc<str>,
    queue_id: i32,
    queue_offset: u64,
    entry: CqEntry,
    end: u64,
    store_timestamp: i64,
    /// Key index hashes of the message's keys (KEYS tokens and UNIQ_KEY).
    key_hashes: Vec<u32>,
}

type Listener = Rc<dyn Fn(&str, i32, u64)>;
/// Per topic, per queue id. Two levels so that lookups take a `&str` and never allocate on the send or
/// pull path; the topic's `Rc<str>` is shared by everything that names the topic.
type PerQueue<V> = HashMap<Rc<str>, HashMap<i32, V>>;

/// The topic's shared name and its queues, created on first use.
fn topic_slot<'a, V>(map: &'a mut PerQueue<V>, topic: &str) -> (Rc<str>, &'a mut HashMap<i32, V>) {
    let name = match map.get_key_value(topic) {
        Some((name, _)) => name.clone(),
        None => {
            let name: Rc<str> = Rc::from(topic);
            map.insert(name.clone(), HashMap::new());
            name
        }
    };
    let queues = map.get_mut(topic).expect("inserted above when missing");
    (name, queues)
}
/// Why a flush could not make a waiting append durable.
#[derive(Debug, Clone)]
enum FlushFailure {
    /// No space: the record stays in the write buffer and becomes durable once space returns, but the
    /// append is answered with an error, never acknowledged.
    NoSpace(String),
    /// Any other I/O error: the engine stops accepting writes.
    Failed(String),
}

/// A SYNC_FLUSH append waiting for the durable offset to pass `end`; told the flush error if one fails.
type Waiter = (u64, oneshot::Sender<std::result::Result<(), FlushFailure>>);

/// See the module docs.
pub struct Engine {
    config: EngineConfig,
    commitlog: CommitLog,
    queues: RefCell<PerQueue<Rc<ConsumeQueue>>>,
    /// Next queue offset to assign, per queue (ahead of the consume queue while records wait to dispatch).
    next_queue_offset: RefCell<PerQueue<u64>>,
    pending: RefCell<VecDeque<Dispatch>>,
    waiters: RefCell<VecDeque<Waiter>>,
    dispatched: Cell<u64>,
    flush_wanted: Notify,
    flush_done: Notify,
    flush_busy: Cell<bool>,
    /// One checkpoint at a time (the checkpointer, the disk monitor's retry, shutdown): its files are
    /// written off the shard's thread, and an older snapshot must never land after a newer one.
    checkpointing: glommio::sync::Semaphore,
    offsets: RefCell<ConsumerOffsets>,
    index: RefCell<KeyIndex>,
    /// Whether writes are refused for space (see [`crate::disk`]).
    disk: RefCell<DiskGate>,
    failed: RefCell<Option<String>>,
    closing: Cell<bool>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    listener: RefCell<Option<Listener>>,
    /// Notified whenever the written offset moves (replication ships from it).
    appended: Notify,
    /// Replicated records up to here are dispatched or pending (slaves; see [`replica`]).
    parsed: Cell<u64>,
    /// How long each commit log flush (write + fdatasync) took, for the metrics endpoint.
    flush_latency: RefCell<crate::latency::Histogram>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Fraction of the file system holding `path` that is used, as `df` counts it (0 when it cannot be read).
pub fn disk_used_ratio(path: &Path) -> f64 {
    SpaceSample::read(path).map_or(0.0, |s| s.used_ratio())
}

/// [`disk_used_ratio`] with the `statvfs` on the executor's blocking pool: a shard thread makes no
/// blocking call after start-up (a stat of a stalled or remote file system can block for long).
async fn disk_used_ratio_off_thread(path: PathBuf) -> f64 {
    crate::blocking::run(move || disk_used_ratio(&path)).await
}

fn validate_message(config: &EngineConfig, m: &Message) -> Result<()> {
    apogee_net::topic::validate(&m.topic).map_err(EngineError::BadTopic)?;
    if m.body.len() > config.message_size_max_bytes {
        return Err(EngineError::MessageTooLarge {
            size: m.body.len(),
            max: config.message_size_max_bytes,
        });
    }
    if m.properties.len() > apogee_net::limits::PROPERTIES_SIZE_MAX_BYTES {
        return Err(EngineError::PropertiesTooLarge {
            size: m.properties.len(),
            max: apogee_net::limits::PROPERTIES_SIZE_MAX_BYTES,
        });
    }
    Ok(())
}

impl Engine {
    /// Opens the store in `config.store_dir`, recovering after a crash, and starts the background tasks on
    /// the current glommio executor.
    pub async fn open(config: EngineConfig) -> Result<Rc<Self>> {
        config.validate()?;
        let dir = config.store_dir.clone();
        for sub in ["commitlog", "consumequeue", "config"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| EngineError::io(&p, e))?;
        }
        crate::log::prime_iopoll_probe(&dir).await?;
        let cp_path = dir.join("checkpoint");
        let cp = checkpoint::read(&cp_path)?;
        let log =
            SegmentedLog::open(dir.join("commitlog"), config.commitlog_segment_size_bytes).await?;
        let offsets = ConsumerOffsets::load(dir.join("config").join("consumerOffset"))?;
        let (key_index, index_from) = KeyIndex::open(
            dir.join("index"),
            config.index_slots,
            config.index_entries_max,
            log.min_offset(),
        )
        .await?;
        let engine = Rc::new(Self {
            commitlog: CommitLog { log },
            queues: RefCell::new(HashMap::new()),
            next_queue_offset: RefCell::new(HashMap::new()),
            pending: RefCell::new(VecDeque::new()),
            waiters: RefCell::new(VecDeque::new()),
            dispatched: Cell::new(0),
            flush_wanted: Notify::default(),
            flush_done: Notify::default(),
            flush_busy: Cell::new(false),
            checkpointing: glommio::sync::Semaphore::new(1),
            flush_latency: RefCell::new(Default::default()),
            offsets: RefCell::new(offsets),
            index: RefCell::new(key_index),
            disk: RefCell::new(DiskGate::new(
                config.disk_refuse_ratio,
                disk_used_ratio(&dir),
            )),
            failed: RefCell::new(None),
            closing: Cell::new(false),
            tasks: RefCell::new(Vec::new()),
            listener: RefCell::new(None),
            appended: Notify::default(),
            parsed: Cell::new(0),
            config,
        });
        engine.recover(cp, index_from).await?;
        // The re-dispatched queue entries must be on disk before a checkpoint vouches for them. On a disk
        // with no room the old checkpoint stays (it vouches for less, which is safe) and the store opens
        // with writes refused; everything stored can still be read.
        if let Err(e) = engine.checkpoint_once(false).await {
            if !e.is_no_space() {
                return Err(e);
            }
            engine.out_of_space(format!("writing the checkpoint after recovery: {e}"));
        }
        engine.start_tasks();
        Ok(engine)
    }

    async fn recover(&self, cp: Option<Checkpoint>, index_from: u64) -> Result<()> {
        let log = &self.commitlog.log;
        self.load_queues().await?;
        let start = match cp {
            Some(cp) => cp.log_offset.max(log.min_offset()),
            None => log.min_offset(),
        };
        let queues = self.all_queues();
        for q in &queues {
            q.truncate_from_log_offset(start).await?;
        }
        // One scan feeds both derived structures: consume queues from the checkpoint on, the key index from
        // where its last sealed file ends.
        let scan_from = start.min(index_from);
        let mut redispatched = 0u64;
        let mut bad: Option<EngineError> = None;
        let scan = recovery::scan(log, scan_from, &mut |rec, at| {
            if bad.is_some() {
                return;
            }
            if at >= index_from {
                self.index.borrow_mut().add(&rec.topic, &rec.properties, at, rec.total_size as u32, rec.store_timestamp);
            }
            if at < start {
                return;
            }
            let entry = CqEntry {
                commit_log_offset: at,
                size: rec.total_size as u32,
                tag_hash: crate::delay::cq_tag_code(&self.config.delay_levels_ms, &rec.topic, &rec.properties, rec.store_timestamp),
            };
            let q = match self.queue_or_create(&rec.topic, rec.queue_id) {
                Ok(q) => q,
                Err(e) => {
                    bad = Some(e);
                    return;
                }
            };
            let queue_offset = rec.queue_offset as u64;
            if queue_offset != q.max_index() {
                bad = Some(EngineError::Corrupt {
                    what: "commit log record",
                    path: log.dir().to_owned(),
                    offset: at,
                    reason: format!(
                        "queue offset {queue_offset} of {}@{} does not follow the consume queue's {}",
                        rec.topic,
                        rec.queue_id,
                        q.max_index()
                    ),
                });
                return;
            }
            q.append(queue_offset, entry);
            redispatched += 1;
        })
        .await?;
        if let Some(e) = bad {
            return Err(e);
        }
        log.set_position(scan.end).await?;
        log.zero_range(scan.end, scan.dirty_end).await?;
        // Retention may have deleted commit log segments that queue entries still point into: every queue
        // starts at its first entry whose record still exists (RocketMQ's `correctMinOffset`).
        let log_min = log.min_offset();
        for q in self.all_queues() {
            q.drop_below_log_offset(log_min).await?;
        }
        if let Some(reason) = scan.corrupt {
            warn!(
                path = %log.dir().display(),
                offset = scan.end,
                dropped_bytes = scan.dirty_end - scan.end,
                "commit log ends in a torn or corrupt record ({reason}); truncated there"
            );
        }
        let mut next = self.next_queue_offset.borrow_mut();
        for (t, queues) in self.queues.borrow().iter() {
            let per = next.entry(t.clone()).or_default();
            for (id, q) in queues {
                per.insert(*id, q.max_index());
            }
        }
        self.dispatched.set(scan.end);
        self.parsed.set(scan.end);
        info!(
            store = %self.config.store_dir.display(),
            clean = cp.is_some_and(|c| c.clean),
            checkpoint = start,
            end = scan.end,
            redispatched,
            "store recovered"
        );
        Ok(())
    }

    async fn load_queues(&self) -> Result<()> {
        let root = self.config.store_dir.join("consumequeue");
        let topics = std::fs::read_dir(&root).map_err(|e| EngineError::io(&root, e))?;
        for t in topics {
            let t = t.map_err(|e| EngineError::io(&root, e))?;
            let Some(topic) = t.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let qdirs = std::fs::read_dir(t.path()).map_err(|e| EngineError::io(t.path(), e))?;
            for q in qdirs {
                let q = q.map_err(|e| EngineError::io(t.path(), e))?;
                let Some(id) = q.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let cq = ConsumeQueue::open(q.path(), &topic, id).await?;
                topic_slot(&mut self.queues.borrow_mut(), &topic)
                    .1
                    .insert(id, Rc::new(cq));
            }
        }
        Ok(())
    }

    fn queue_or_create(&self, topic: &str, queue_id: i32) -> Result<Rc<ConsumeQueue>> {
        if let Some(q) = self.queue(topic, queue_id) {
            return Ok(q);
        }
        let q = Rc::new(ConsumeQueue::create(
            self.queue_dir(topic, queue_id),
            topic,
            queue_id,
        )?);
        topic_slot(&mut self.queues.borrow_mut(), topic)
            .1
            .insert(queue_id, q.clone());
        Ok(q)
    }

    /// `<store>/consumequeue/<topic>/<queueId>`.
    fn queue_dir(&self, topic: &str, queue_id: i32) -> PathBuf {
        self.config
            .store_dir
            .join("consumequeue")
            .join(topic)
            .join(queue_id.to_string())
    }

    /// Creates a queue that starts at `first_index` (see [`ConsumeQueue::create_at`]).
    async fn create_queue_at(&self, topic: &str, queue_id: i32, first_index: u64) -> Result<()> {
        let dir = self.queue_dir(topic, queue_id);
        let q = Rc::new(ConsumeQueue::create_at(dir, topic, queue_id, first_index).await?);
        topic_slot(&mut self.queues.borrow_mut(), topic)
            .1
            .insert(queue_id, q);
        topic_slot(&mut self.next_queue_offset.borrow_mut(), topic)
            .1
            .insert(queue_id, first_index);
        Ok(())
    }

    fn queue(&self, topic: &str, queue_id: i32) -> Option<Rc<ConsumeQueue>> {
        self.queues
            .borrow()
            .get(topic)
            .and_then(|q| q.get(&queue_id))
            .cloned()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Called with (topic, queue id, new max offset) whenever messages become visible; long polling uses it.
    pub fn set_dispatch_listener(&self, listener: Listener) {
        *self.listener.borrow_mut() = Some(listener);
    }

    /// Stores `messages` (a batch lands contiguously); completes per the flush mode.
    ///
    /// Errors before anything is stored: limits, bad topic, disk full, a failed engine. After the records
    /// are stored: only [`EngineError::FlushTimeout`] (SYNC_FLUSH), which means stored but not yet durable.
    pub async fn append(&self, messages: &[Message]) -> Result<Vec<Appended>> {
        if self.closing.get() {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(f) = self.failed.borrow().as_ref() {
            return Err(EngineError::Failed(f.clone()));
        }
        for m in messages {
            validate_message(&self.config, m)?;
        }
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
        self.ensure_segments_for(messages).await?;
        // `ensure_segments_for` may have waited: look at the gate again before anything is stored.
        self.check_space()?;
        let store_timestamp = now_ms();
        let store_host = self.config.store_host;
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
            dispatches.push(Dispatch {
                topic: key_topic,
                queue_id: m.queue_id,
                queue_offset,
                entry: CqEntry {
                    commit_log_offset: physical_offset,
                    size: size as u32,
                    tag_hash: crate::delay::cq_tag_code(
                        &self.config.delay_levels_ms,
                        &m.topic,
                        &m.properties,
                        store_timestamp,
                    ),
                },
                end: physical_offset + size as u64,
                store_timestamp: 0,
                key_hashes: Vec::new(),
            });
            let key_hashes = index::keys_of(&m.properties)
                .map(|k| index::key_hash(&m.topic, k))
                .collect();
            let dispatch = dispatches.last_mut().expect("pushed above");
            dispatch.store_timestamp = store_timestamp;
            dispatch.key_hashes = key_hashes;
            out.push(Appended {
                physical_offset,
                size,
                queue_offset,
                store_timestamp,
                msg_id: msgid::encode(store_host, physical_offset),
            });
        }
        let end = self.commitlog.log.written();
        self.parsed.set(end);
        self.appended.notify();
        match self.config.flush_mode {
            FlushMode::Async => {
                for d in dispatches {
                    self.dispatch(d)?;
                }
                self.dispatched.set(end);
                if self.commitlog.log.pending_bytes() as usize
                    > self.config.write_buffer_max_bytes / 2
                {
                    self.flush_wanted.notify();
                }
                Ok(out)
            }
            FlushMode::Sync => {
                self.pending.borrow_mut().extend(dispatches);
                let (tx, rx) = oneshot::channel();
                self.waiters.borrow_mut().push_back((end, tx));
                self.flush_wanted.notify();
                let timeout =
                    glommio::timer::sleep(Duration::from_millis(self.config.sync_flush_timeout_ms));
                match select(rx, Box::pin(timeout)).await {
                    Either::Left((Ok(Ok(())), _)) => Ok(out),
                    Either::Left((Ok(Err(FlushFailure::Failed(e))), _)) => {
                        Err(EngineError::Failed(e))
                    }
                    Either::Left((Ok(Err(FlushFailure::NoSpace(reason))), _)) => {
                        Err(EngineError::DiskFull {
                            path: self.config.store_dir.clone(),
                            reason,
                        })
                    }
                    Either::Left((Err(_), _)) => Err(EngineError::ShuttingDown),
                    Either::Right(_) => Err(EngineError::FlushTimeout {
                        timeout_ms: self.config.sync_flush_timeout_ms,
                        stored: out,
                    }),
                }
            }
        }
    }

    /// `Ok` when writes may go on; else the refusal, naming the disk.
    fn check_space(&self) -> Result<()> {
        self.disk
            .borrow()
            .check()
            .map_err(|r| EngineError::DiskFull {
                path: self.config.store_dir.clone(),
                reason: r.to_string(),
            })
    }

    /// Shuts the space gate after an ENOSPC; logs it once per episode.
    fn out_of_space(&self, what: String) {
        if self.disk.borrow_mut().out_of_space(what.clone()) {
            warn!(
                store = %self.config.store_dir.display(),
                reason = %what,
                "disk is full: writes are refused until space is freed; reads go on"
            );
        }
    }

    /// Samples the disk's used ratio; logs when writes stop or may start again because of it.
    async fn sample_disk(&self) {
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
    async fn ensure_segments_for(&self, messages: &[Message]) -> Result<()> {
        let log = &self.commitlog.log;
        let size = log.segment_size();
        let host = self.config.store_host;
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
    async fn ensure_log_allocated(&self, through: u64) -> Result<()> {
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

    fn dispatch(&self, d: Dispatch) -> Result<()> {
        let q = self.queue_or_create(&d.topic, d.queue_id)?;
        q.append(d.queue_offset, d.entry);
        self.index.borrow_mut().add_hashes(
            &d.key_hashes,
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
    async fn flush_commitlog(&self) -> Result<u64> {
        while self.flush_busy.get() {
            self.flush_done.notified().await;
        }
        self.flush_busy.set(true);
        let started = std::time::Instant::now();
        let result = self.commitlog.log.flush().await;
        self.flush_latency
            .borrow_mut()
            .observe(started.elapsed().as_micros() as u64);
        self.flush_busy.set(false);
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
                loop {
                    let front = self.waiters.borrow_mut().pop_front();
                    match front {
                        Some((end, tx)) if end <= durable => {
                            let _ = tx.send(Ok(()));
                        }
                        Some(w) => {
                            self.waiters.borrow_mut().push_front(w);
                            break;
                        }
                        None => break,
                    }
                }
                self.flush_done.notify();
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
                for (_, tx) in self.waiters.borrow_mut().drain(..) {
                    let _ = tx.send(Err(failure.clone()));
                }
                self.flush_done.notify();
                Err(e)
            }
        }
    }

    fn start_tasks(self: &Rc<Self>) {
        let me = self.clone();
        let flusher = glommio::spawn_local(async move { me.run_flusher().await }).detach();
        let me = self.clone();
        let checkpointer =
            glommio::spawn_local(async move { me.run_checkpointer().await }).detach();
        let me = self.clone();
        let cleaner = glommio::spawn_local(async move { me.run_retention().await }).detach();
        let me = self.clone();
        let disk = glommio::spawn_local(async move { me.run_disk_monitor().await }).detach();
        self.tasks
            .borrow_mut()
            .extend([flusher, checkpointer, cleaner, disk]);
    }

    async fn run_flusher(&self) {
        let interval = Duration::from_millis(self.config.flush_interval_ms);
        while !self.closing.get() {
            let wanted = self.flush_wanted.notified();
            if self.commitlog.log.pending_bytes() == 0 || self.config.flush_mode == FlushMode::Async
            {
                match self.config.flush_mode {
                    FlushMode::Sync => wanted.await,
                    FlushMode::Async => {
                        let _ = select(Box::pin(wanted), Box::pin(glommio::timer::sleep(interval)))
                            .await;
                    }
                }
            }
            if self.closing.get() || self.failed.borrow().is_some() {
                break;
            }
            // Out of space: the disk monitor retries the flush once space returns.
            if self.disk.borrow().is_out_of_space() {
                glommio::timer::sleep(Duration::from_millis(DISK_SAMPLE_INTERVAL_MS)).await;
                continue;
            }
            if self.commitlog.log.pending_bytes() > 0 {
                let _ = self.flush_commitlog().await;
            }
        }
    }

    async fn run_checkpointer(&self) {
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
    async fn checkpoint_once(&self, clean: bool) -> Result<()> {
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
    async fn seal_indexes(&self) -> Result<()> {
        loop {
            let next = self.index.borrow().take_sealing();
            let Some((path, bytes, _)) = next else {
                return Ok(());
            };
            let dir = self.index.borrow().dir().to_owned();
            index::write_sealed(&dir, &path, &bytes).await?;
            let sealed = index::Sealed::open(path).await?;
            self.index.borrow_mut().sealed_written(sealed);
        }
    }

    /// Messages of `topic` with `key` (a KEYS token or the UNIQ_KEY) stored within `[from_ms, to_ms]`,
    /// newest first, at most `max`: the stored records, verified against the commit log.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Bytes>> {
        let max = max.clamp(1, READ_MESSAGES_MAX);
        // Ask for more candidates than wanted: hash collisions are filtered out below. The in-memory part is
        // searched under a short borrow; sealed files are read after it is released (no borrow crosses an
        // await), through their own `Rc`s.
        let want = max * 4;
        let hash = index::key_hash(topic, key);
        let (mut candidates, sealed) = {
            let idx = self.index.borrow();
            (
                idx.memory_candidates(hash, from_ms, to_ms, want),
                idx.sealed_newest_first(),
            )
        };
        for file in sealed {
            if candidates.len() >= want {
                break;
            }
            file.candidates(hash, from_ms, to_ms, want, &mut candidates)
                .await?;
        }
        let mut out = Vec::new();
        for offset in candidates {
            if out.len() >= max {
                break;
            }
            let Some(bytes) = self.read_record(offset).await? else {
                continue;
            };
            let Ok(rec) = record::decode(&bytes) else {
                continue;
            };
            if rec.topic == topic && index::keys_of(&rec.properties).any(|k| k == key) {
                out.push(bytes);
            }
        }
        Ok(out)
    }

    /// Commit log offset up to which messages are indexed, and the newest store time indexed.
    pub fn index_progress(&self) -> (u64, i64) {
        self.index.borrow().progress()
    }

    async fn run_retention(&self) {
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
    async fn run_disk_monitor(&self) {
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

    async fn retry_after_no_space(&self) {
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

    /// Reads up to `max_messages` / `max_bytes` of a queue from `offset`, skipping messages whose tag hash
    /// `filter` rejects.
    pub async fn read_queue(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_messages: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
    ) -> Result<QueueRead> {
        self.read_queue_filtered(
            topic,
            queue_id,
            offset,
            max_messages,
            max_bytes,
            filter,
            None,
        )
        .await
    }

    /// [`Self::read_queue`] with a second filter over each stored record's bytes (an SQL92 selector
    /// looks at its properties), asked only for entries whose tag hash passed `filter`. A record it
    /// refuses is skipped like a tag mismatch: it is read but not in the answer. With a record filter the
    /// log is read [`FILTER_READ_WINDOW_BYTES`] at a time, the filter looks at records where they lie in
    /// that window, and only the records it keeps are copied into the answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_queue_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max_messages: usize,
        max_bytes: usize,
        filter: &dyn Fn(i64) -> bool,
        record_filter: Option<&RecordFilter<'_>>,
    ) -> Result<QueueRead> {
        let max_messages = max_messages.clamp(1, READ_MESSAGES_MAX);
        let max_bytes = max_bytes.clamp(1, READ_BYTES_MAX);
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(QueueRead {
                status: ReadStatus::NoMessageInQueue,
                body: Bytes::new(),
                messages: 0,
                next_offset: 0,
                min_offset: 0,
                max_offset: 0,
                last_log_offset: 0,
            });
        };
        let (min, max) = (q.min_index(), q.max_index());
        let mut read = QueueRead {
            status: ReadStatus::Found,
            body: Bytes::new(),
            messages: 0,
            next_offset: offset,
            min_offset: min,
            max_offset: max,
            last_log_offset: 0,
        };
        if max == 0 {
            read.status = ReadStatus::NoMessageInQueue;
            read.next_offset = 0;
            return Ok(read);
        }
        if offset < min {
            read.status = ReadStatus::OffsetTooSmall;
            read.next_offset = min;
            return Ok(read);
        }
        if offset == max {
            read.status = ReadStatus::OffsetOverflowOne;
            return Ok(read);
        }
        if offset > max {
            read.status = ReadStatus::OffsetOverflowBadly;
            // RocketMQ 5's DefaultMessageStore: go on from the end (4.x sent a queue whose minimum is 0
            // back to 0, re-delivering everything).
            read.next_offset = max;
            return Ok(read);
        }
        let mut body = BytesMut::new();
        let mut next = offset;
        // Entries whose records retention deleted while this read ran (the queue minimum is raised before
        // files go, but a read may have started earlier): skipped, and reported as "offset moved".
        let mut dead = 0usize;
        // Scan a bounded number of entries, so a filter that matches nothing cannot hold the shard.
        let scan_max = (max_messages * 16).max(READ_MESSAGES_MAX) as u64;
        // The record filter's read window: its bytes and the log offset they start at.
        let (mut window, mut window_start) = (BytesMut::new(), 0u64);
        while next < max && next - offset < scan_max && read.messages < max_messages {
            let want = (max_messages - read.messages).min(256);
            let entries = match q.entries(next, want).await {
                Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                    read.status = ReadStatus::OffsetTooSmall;
                    read.next_offset = q.min_index();
                    read.min_offset = q.min_index();
                    return Ok(read);
                }
                r => r?,
            };
            if entries.is_empty() {
                break;
            }
            for e in entries {
                if e.size == 0 {
                    return Err(EngineError::Corrupt {
                        what: "consume queue entry",
                        path: self.queue_dir(topic, queue_id),
                        offset: next * CQ_ENTRY_BYTES,
                        reason: "entry below the queue's max offset has size 0".into(),
                    });
                }
                if !filter(e.tag_hash) {
                    next += 1;
                    continue;
                }
                if let Some(keep) = record_filter {
                    let (start, size) = (e.commit_log_offset, e.size as usize);
                    if start < window_start
                        || start + size as u64 > window_start + window.len() as u64
                    {
                        window.clear();
                        match self.read_window(start, size, &mut window).await {
                            Ok(()) => window_start = start,
                            Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                                dead += 1;
                                next += 1;
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let at = (start - window_start) as usize;
                    let record = &window[at..at + size];
                    if !keep(record) {
                        next += 1;
                        continue;
                    }
                    if read.messages > 0 && body.len() + size > max_bytes {
                        read.next_offset = next;
                        read.body = body.freeze();
                        return Ok(read);
                    }
                    body.extend_from_slice(record);
                    read.messages += 1;
                    read.last_log_offset = start;
                    next += 1;
                    if read.messages >= max_messages {
                        break;
                    }
                    continue;
                }
                if read.messages > 0 && body.len() + e.size as usize > max_bytes {
                    read.next_offset = next;
                    read.body = body.freeze();
                    return Ok(read);
                }
                match self
                    .commitlog
                    .log
                    .read_into(e.commit_log_offset, e.size as usize, &mut body)
                    .await
                {
                    Ok(()) => {}
                    Err(EngineError::Deleted { .. }) if read.messages == 0 => {
                        dead += 1;
                        next += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                read.messages += 1;
                read.last_log_offset = e.commit_log_offset;
                next += 1;
                if read.messages >= max_messages {
                    break;
                }
            }
        }
        read.next_offset = next;
        read.body = body.freeze();
        if read.messages == 0 {
            read.status = if dead > 0 {
                read.min_offset = q.min_index().max(next);
                ReadStatus::OffsetTooSmall
            } else {
                ReadStatus::NoMatchedMessage
            };
        }
        Ok(read)
    }

    /// Reads the log from `start` into `window`: [`FILTER_READ_WINDOW_BYTES`], or less at the end of the
    /// segment or of what is dispatched, and never less than the record of `size` bytes there. Bytes
    /// past that record are a read-ahead only: if they cannot be read (the unwritten tail after a
    /// segment's blank), the record alone is read.
    async fn read_window(&self, start: u64, size: usize, window: &mut BytesMut) -> Result<()> {
        let log = &self.commitlog.log;
        let segment_end = start - start % log.segment_size() + log.segment_size();
        let end = segment_end
            .min(self.dispatched.get())
            .min(start + FILTER_READ_WINDOW_BYTES as u64);
        let len = (end.saturating_sub(start) as usize).max(size);
        match log.read_into(start, len, window).await {
            Ok(()) => Ok(()),
            Err(e @ EngineError::Deleted { .. }) => Err(e),
            Err(_) if len > size => {
                window.clear();
                log.read_into(start, size, window).await
            }
            Err(e) => Err(e),
        }
    }

    /// Up to `max` consume queue entries of a queue from `offset` (fewer at its end; none for an unknown
    /// queue or an offset outside it). The delay scheduler reads delivery times from them.
    pub async fn queue_entries(
        &self,
        topic: &str,
        queue_id: i32,
        offset: u64,
        max: usize,
    ) -> Result<Vec<CqEntry>> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(Vec::new());
        };
        if offset < q.min_index() || offset >= q.max_index() {
            return Ok(Vec::new());
        }
        q.entries(offset, max.clamp(1, READ_MESSAGES_MAX)).await
    }

    /// Forgets every committed offset of `group` (DELETE_SUBSCRIPTIONGROUP with cleanOffset).
    pub fn remove_group_offsets(&self, group: &str) {
        self.offsets.borrow_mut().remove_group(group);
    }

    /// The stored record at a physical offset (view by message id), if one starts there.
    pub async fn read_record(&self, physical_offset: u64) -> Result<Option<Bytes>> {
        let log = &self.commitlog.log;
        // The offset comes from a request (a message id): checked, so u64::MAX is "not found", not a wrap.
        let dispatched = self.dispatched.get();
        if physical_offset < log.min_offset()
            || physical_offset
                .checked_add(8)
                .is_none_or(|end| end > dispatched)
        {
            return Ok(None);
        }
        let head = match log.read(physical_offset, 8).await {
            Err(EngineError::Deleted { .. }) => return Ok(None),
            r => r?,
        };
        let size = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let magic = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if size <= 0 || (magic != record::MESSAGE_MAGIC && magic != record::MESSAGE_MAGIC_V2) {
            return Ok(None);
        }
        if physical_offset
            .checked_add(size as u64)
            .is_none_or(|end| end > self.dispatched.get())
        {
            return Ok(None);
        }
        match log.read(physical_offset, size as usize).await {
            Err(EngineError::Deleted { .. }) => Ok(None),
            r => r.map(Some),
        }
    }

    /// Store timestamp of the message at a queue offset.
    pub async fn store_time(&self, topic: &str, queue_id: i32, offset: u64) -> Result<Option<i64>> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(None);
        };
        let Some(e) = q.entry(offset).await? else {
            return Ok(None);
        };
        let rec = match self
            .commitlog
            .read(e.commit_log_offset, e.size as usize)
            .await
        {
            Err(EngineError::Deleted { .. }) => return Ok(None),
            r => r?,
        };
        let r = record::decode(&rec).map_err(|err| EngineError::Corrupt {
            what: "commit log record",
            path: self.commitlog.log.dir().to_owned(),
            offset: e.commit_log_offset,
            reason: err.to_string(),
        })?;
        Ok(Some(r.store_timestamp))
    }

    /// The first queue offset whose message was stored at or after `timestamp_ms` (the max offset if none).
    pub async fn search_offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> Result<u64> {
        let Some(q) = self.queue(topic, queue_id) else {
            return Ok(0);
        };
        let (mut lo, mut hi) = (q.min_index(), q.max_index());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.store_time(topic, queue_id, mid).await? {
                Some(t) if t < timestamp_ms => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
    }

    pub fn max_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.max_index())
    }

    pub fn min_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.min_index())
    }

    /// Queues that exist in the store, for admin answers.
    /// Every consume queue, for flushing and cleaning them all.
    fn all_queues(&self) -> Vec<Rc<ConsumeQueue>> {
        self.queues
            .borrow()
            .values()
            .flat_map(|q| q.values().cloned())
            .collect()
    }

    pub fn queue_ids(&self) -> Vec<(String, i32)> {
        self.queues
            .borrow()
            .iter()
            .flat_map(|(t, q)| q.keys().map(move |id| (t.to_string(), *id)))
            .collect()
    }

    /// Sets a committed offset; refused when it is a new queue's and the table is full (see `offsets`).
    pub fn commit_offset(
        &self,
        topic: &str,
        group: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<()> {
        self.offsets
            .borrow_mut()
            .commit(topic, group, queue_id, offset)
    }

    pub fn query_offset(&self, topic: &str, group: &str, queue_id: i32) -> Option<i64> {
        self.offsets.borrow().query(topic, group, queue_id)
    }

    /// Every committed offset as (topic, group, queue id, offset): for lag figures, without JSON.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.offsets
            .borrow()
            .all()
            .filter_map(|(key, queue, offset)| {
                let (topic, group) = key.rsplit_once('@')?;
                Some((topic.to_owned(), group.to_owned(), queue, offset))
            })
            .collect()
    }

    /// Every committed consumer offset, as `{"offsetTable":{"topic@group":{"0":5}}}`.
    pub fn offsets_json(&self) -> Vec<u8> {
        self.offsets.borrow().to_json()
    }

    /// Written, durable and dispatched commit log offsets.
    pub fn log_offsets(&self) -> (u64, u64, u64) {
        let log = &self.commitlog.log;
        (log.written(), log.durable(), self.dispatched.get())
    }

    /// Durations of the commit log's flushes so far.
    pub fn flush_latency(&self) -> crate::latency::Histogram {
        self.flush_latency.borrow().clone()
    }

    /// fdatasync calls the commit log has issued (group commit makes this far smaller than appends).
    pub fn commitlog_sync_count(&self) -> u64 {
        self.commitlog.log.sync_count()
    }

    pub fn commitlog_min_offset(&self) -> u64 {
        self.commitlog.log.min_offset()
    }

    /// Forces a flush of the commit log now (tests, benchmarks, shutdown).
    pub async fn flush(&self) -> Result<u64> {
        self.flush_commitlog().await
    }

    /// Stops the background tasks, flushes everything and writes a clean checkpoint.
    pub async fn shutdown(&self) -> Result<()> {
        if self.closing.replace(true) {
            return Ok(());
        }
        self.flush_wanted.notify();
        for t in self.tasks.borrow_mut().drain(..) {
            t.cancel();
        }
        self.flush_busy.set(false);
        let mut clean = self.failed.borrow().is_none();
        if clean {
            if let Err(e) = self.flush_commitlog().await {
                // On a full disk what was never made durable was never acknowledged (SYNC_FLUSH); close
                // what can be closed and let the next start recover.
                if !e.is_no_space() {
                    return Err(e);
                }
                warn!(error = %e, "final flush failed for lack of space");
                clean = false;
            }
        }
        // Seal the active key index too, so a restart does not rebuild it from the log.
        self.index.borrow_mut().seal_now();
        if let Err(e) = self.checkpoint_once(clean).await {
            if !e.is_no_space() {
                return Err(e);
            }
            warn!(error = %e, "final checkpoint failed for lack of space; the next start recovers");
            clean = false;
        }
        let queues = self.all_queues();
        for q in queues {
            q.close().await;
        }
        self.commitlog.log.close().await;
        info!(store = %self.config.store_dir.display(), clean, "store closed");
        Ok(())
    }

    /// The store folder.
    pub fn store_dir(&self) -> PathBuf {
        self.config.store_dir.clone()
    }
}
