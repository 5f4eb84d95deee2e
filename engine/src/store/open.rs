//! Opening a store: folders, the checkpoint, recovery of the commit log (its torn tail cut), the consume
//! queues and the key index rebuilt from the log past the checkpoint, then the background tasks started.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use tracing::{info, warn};

use crate::checkpoint::{self, Checkpoint};
use crate::commitlog::{recovery, CommitLog};
use crate::config::EngineConfig;
use crate::consumequeue::{ConsumeQueue, CqEntry};
use crate::disk::DiskGate;
use crate::error::{EngineError, Result};
use crate::index::KeyIndex;
use crate::log::SegmentedLog;
use crate::notify::Notify;
use crate::offsets::ConsumerOffsets;

use super::{disk_used_ratio, topic_slot, Engine};

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
            waiters: RefCell::new(super::group_commit::GroupCommit::new()),
            dispatched: Cell::new(0),
            flush_wanted: Notify::default(),
            waiter_arrived: Notify::default(),
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

    pub(super) async fn recover(&self, cp: Option<Checkpoint>, index_from: u64) -> Result<()> {
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

    pub(super) async fn load_queues(&self) -> Result<()> {
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
}
