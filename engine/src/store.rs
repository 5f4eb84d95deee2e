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
//!   for all waiters), dispatches what became durable and completes the waiters. One task answers the
//!   waiters whose `syncFlushTimeout` passed first (one timer for all, at the oldest waiter's deadline,
//!   instead of a timer per append).
//!
//! # Where things live
//! This file holds the [`Engine`] type, its messages and results, and small accessors. The rest, by what
//! it does:
//! - `store/open.rs`: opening and recovering (checkpoint, commit log tail, consume queues, key index);
//! - `store/append.rs`: the write path, the flusher task and group commit, dispatch to consume queues;
//! - `store/group_commit.rs`: the group-commit decisions (which appends a flush answers, when the flusher
//!   flushes), plain Rust with unit tests;
//! - `store/read.rs`: queue reads, records by offset, time search, key lookups;
//! - `store/queues.rs`: the consume queue tables;
//! - `store/housekeeping.rs`: the checkpointer, index sealing, retention, the disk monitor;
//! - `store/replica.rs`: a slave's log, appended from its master's bytes;
//! - `store/applied.rs`: a Raft replica's log (Dledger mode), appended from committed entries;
//! - `store/topic_delete.rs`: removing a topic's consume queues and offsets.
//!
//! # Contracts
//! Owned by one shard (`Rc`, `!Send`). No `RefCell` borrow is held across an `.await`. Dropping an `append`
//! future after its records were encoded does not un-store them: they are flushed and dispatched like any.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use apogee_net::record::NewRecord;
use bytes::Bytes;
use futures::channel::oneshot;
use glommio::task::JoinHandle;
use tracing::{info, warn};

use crate::commitlog::CommitLog;
use crate::config::EngineConfig;
use crate::consumequeue::{ConsumeQueue, CqEntry};
use crate::disk::{DiskGate, SpaceSample};
use crate::error::{EngineError, Result};
use crate::index::KeyIndex;
use crate::notify::Notify;
use crate::offsets::ConsumerOffsets;

mod append;
mod applied;
mod group_commit;
mod housekeeping;
mod open;
mod queues;
mod read;
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
    key_hashes: crate::index::KeyHashes,
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
    /// The append's deadline (`syncFlushTimeout`) passed first: stored, not yet durable.
    TimedOut,
}

/// A SYNC_FLUSH append waiting for the durable offset to pass its end ([`group_commit::GroupCommit`]);
/// told the flush error if one fails.
type Waiter = oneshot::Sender<std::result::Result<(), FlushFailure>>;

/// See the module docs.
pub struct Engine {
    config: EngineConfig,
    commitlog: CommitLog,
    queues: RefCell<PerQueue<Rc<ConsumeQueue>>>,
    /// Next queue offset to assign, per queue (ahead of the consume queue while records wait to dispatch).
    next_queue_offset: RefCell<PerQueue<u64>>,
    pending: RefCell<VecDeque<Dispatch>>,
    waiters: RefCell<group_commit::GroupCommit<Waiter>>,
    dispatched: Cell<u64>,
    flush_wanted: Notify,
    /// A SYNC_FLUSH append started waiting while none did (the flush-timeout task sleeps on it).
    waiter_arrived: Notify,
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
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Called with (topic, queue id, new max offset) whenever messages become visible; long polling uses it.
    pub fn set_dispatch_listener(&self, listener: Listener) {
        *self.listener.borrow_mut() = Some(listener);
    }

    /// Forgets every committed offset of `group` (DELETE_SUBSCRIPTIONGROUP with cleanOffset).
    pub fn remove_group_offsets(&self, group: &str) {
        self.offsets.borrow_mut().remove_group(group);
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
