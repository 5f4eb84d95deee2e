//! Transactional messages, per shard: half messages, END_TRANSACTION (37), check-back
//! (CHECK_TRANSACTION_STATE, 39) and the progress that survives a SIGKILL. RocketMQ's
//! `TransactionalMessageServiceImpl`, `EndTransactionProcessor` and `TransactionalMessageCheckService`,
//! rebuilt around one shard's store.
//!
//! # What it owns
//! - [`half`]: a prepared send is stored in [`HALF_TOPIC`] queue 0 (REAL_TOPIC / REAL_QID / PGROUP kept in
//!   its properties), invisible to consumers of the real topic; the send answer carries its half queue
//!   offset (`queueOffset`, RocketMQ's tranStateTableOffset) and its transaction id (UNIQ_KEY).
//! - [`end`]: END_TRANSACTION. COMMIT stores the message in its real topic and queue (sys flag commit, the
//!   half record's commit log offset in PREPARED TRANSACTION OFFSET) together with its op record; ROLLBACK
//!   stores the op record only. Bad ENDs get RocketMQ's answers and store nothing.
//! - [`check`]: the check-back task. It reads the op queue once at start, then in rounds scans the half
//!   queue from where it stopped (bounded per round), checks back undecided half messages older than
//!   `transactionTimeOut` (or their CHECK_IMMUNITY_TIME_IN_SECONDS) with a live producer of their group,
//!   every `transactionCheckInterval`, and after `transactionCheckMax` checks moves them to
//!   [`TRANS_CHECK_MAX_TIME_TOPIC`].
//! - [`state`]: the decision core (plain Rust): pending/decided/in-flight half offsets and the progress.
//!
//! # Byte layouts
//! - Op record ([`OP_TOPIC`] queue 0, RocketMQ's): body = the half message's queue offset in decimal text,
//!   TAGS = `d` ([`REMOVE_TAG`]). One op record per decision: commit, rollback, or discard.
//! - Progress: `<store>/config/transactionProgress`, an Apogee metadata file (magic, version, kind
//!   [`Kind::TransactionProgress`], CRC) whose payload is JSON `{"halfOffset":N,"opOffset":M,
//!   "checkTimes":{"<half offset>":n}}` ([`state::Progress`]).
//!
//! # Invariants and what a SIGKILL can do
//! - A committed message and its op record are one append (adjacent records, one flush): a crash keeps
//!   both or neither. Should the re-put survive without its op record anyway (a torn tail; or the test
//!   hook [`FAULT_SKIP_OP_ENV`]), the check-back finds the committed copy through the key index (its
//!   UNIQ_KEY in the real topic, PREPARED TRANSACTION OFFSET = the half record) and writes the missing op
//!   record instead of asking the producer: no message is committed twice.
//! - Progress is persisted only after the commit log was flushed, so it never vouches for an op record a
//!   crash could take back. After a SIGKILL the scan restarts at the persisted half offset: half messages
//!   decided since then are found decided in the op queue (read from the persisted op offset); undecided
//!   ones are checked back, with their persisted check counts.
//! - A second END for a decided half message is refused (SYSTEM_ERROR, nothing stored): RocketMQ 4.x would
//!   re-put a committed message again; Apogee never does.
//!
//! Only a master runs any of this; a slave refuses END as RocketMQ does and gets the records from its master.

pub mod check;
pub mod end;
pub mod half;
pub mod state;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use apogee_engine::metadata::{self, Kind};
use apogee_engine::{EngineError, Message};
use apogee_net::properties::{self, names};

use state::{Progress, TxState};

/// Where half messages wait (RocketMQ's `TransactionalMessageUtil.buildHalfTopic`).
pub const HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Where decisions are recorded (`buildOpTopic`).
pub const OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Where half messages go after `transactionCheckMax` unanswered checks (RocketMQ's name).
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// The tag of op records (`TransactionalMessageUtil.REMOVE_TAG`).
pub const REMOVE_TAG: &str = "d";
/// Test hook: when this variable is set in a broker's environment, a COMMIT stores the message without its
/// op record, so a test can SIGKILL the broker between the two. Never set it in production.
pub const FAULT_SKIP_OP_ENV: &str = "APOGEE_FAULT_TX_SKIP_OP_RECORD";

/// One shard's transactions. Owned by the shard's executor.
pub struct Transactions {
    path: PathBuf,
    pub state: RefCell<TxState>,
    dirty: Cell<bool>,
    /// Check-backs sent since start (the check-back rate is read from the log line that reports it).
    pub checks_sent: Cell<u64>,
    /// See [`FAULT_SKIP_OP_ENV`].
    pub fault_skip_op: bool,
}

impl Transactions {
    pub fn load(path: PathBuf) -> Result<Self, EngineError> {
        let progress: Progress =
            metadata::read_json(&path, Kind::TransactionProgress, "transaction progress")?
                .unwrap_or_default();
        Ok(Self {
            path,
            state: RefCell::new(TxState::restore(&progress)),
            dirty: Cell::new(false),
            checks_sent: Cell::new(0),
            fault_skip_op: std::env::var_os(FAULT_SKIP_OP_ENV).is_some(),
        })
    }

    /// The persisted progress as it was loaded (the op queue is read from its op offset).
    pub fn load_progress(&self) -> Result<Progress, EngineError> {
        Ok(metadata::read_json(
            &self.path,
            Kind::TransactionProgress,
            "transaction progress",
        )?
        .unwrap_or_default())
    }

    pub fn mark_dirty(&self) {
        self.dirty.set(true);
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty.get()
    }

    /// Writes the progress if it changed, off the shard's thread (it runs every second while transactions
    /// flow); the caller has flushed the commit log. Only the check-back task calls it, one write at a time.
    pub async fn persist(&self, op_end: u64) -> Result<(), EngineError> {
        if !self.dirty.get() {
            return Ok(());
        }
        let progress = self.state.borrow().progress(op_end);
        let body = serde_json::to_vec(&progress).map_err(|e| EngineError::Corrupt {
            what: "transaction progress",
            path: self.path.clone(),
            offset: 0,
            reason: e.to_string(),
        })?;
        // Changes made while the file is written mark it dirty again for the next round.
        self.dirty.set(false);
        let written =
            metadata::write_atomic_off_thread(self.path.clone(), Kind::TransactionProgress, body)
                .await;
        if written.is_err() {
            self.dirty.set(true);
        }
        written
    }
}

/// Adds a transaction system topic to the topic table on first use, as RocketMQ does (one queue, readable and
/// writable), so admin tools see it and its queue can be pulled for inspection.
pub fn ensure_topic(broker: &crate::broker::Broker, name: &str) {
    if broker.topics.borrow().get(name).is_some() {
        return;
    }
    let config = apogee_net::body::topic_config::TopicConfig::new(
        name,
        1,
        apogee_net::body::route::perm::READ_WRITE,
    );
    // Not awaited: the next write of the topic table carries it (it is added again on next use).
    let _ = broker.topics.borrow_mut().upsert(config);
    broker.register_now.notify();
}

/// The op record of the half message at `half_offset`.
pub fn op_message(half_offset: u64, store_host: std::net::SocketAddr, now_ms: i64) -> Message {
    let props =
        properties::encode([(names::TAGS, REMOVE_TAG), (names::WAIT, "false")]).unwrap_or_default();
    Message {
        topic: OP_TOPIC.to_owned(),
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_ms,
        born_host: store_host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: bytes::Bytes::from(half_offset.to_string()),
        properties: props,
    }
}

/// The half offset an op record names; `None` for a body that is not one.
pub fn op_half_offset(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_record_names_its_half_offset_with_the_remove_tag() {
        let m = op_message(42, "127.0.0.1:10911".parse().unwrap(), 1);
        assert_eq!((m.topic.as_str(), m.queue_id), (OP_TOPIC, 0));
        assert_eq!(op_half_offset(&m.body), Some(42));
        assert_eq!(properties::get(&m.properties, names::TAGS), Some("d"));
        assert_eq!(op_half_offset(b"x"), None);
    }
}
