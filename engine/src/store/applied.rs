//! A replicated state machine's log (the broker's Dledger mode): [`Engine::append_applied`] stores the
//! messages of one committed Raft entry, in entry order, on every replica.
//!
//! The leader encodes an entry once, with its own store timestamp and store host; every replica (the
//! leader included) applies the same entries in the same order, so each assigns the same queue offsets
//! and the same physical offsets and writes byte-identical commit logs: nothing in a record depends on
//! the replica that applies it. Consume queues and the key index are fed as by an ordinary append, under
//! the same flush rules, so they only ever see committed entries.
//!
//! # Contract
//! - Deterministic: no limit that a replica's own settings could decide differently is checked here (the
//!   leader checked them before proposing). Refusals are for this replica's state (closing, failed, out of
//!   space), before anything is stored: the caller applies the same entry again later, never skips it.
//!   The exception is a record larger than a commit log segment, which can never be stored
//!   ([`EngineError::RecordLargerThanSegment`], also before anything is stored).
//! - Never waits for a flush: the entry is already durable in a majority's Raft log; a replica that
//!   crashes re-applies it from its own (`truncate_replicated` cuts the commit log back to the applied
//!   checkpoint first).

use std::net::SocketAddr;

use super::{Appended, Engine, Message};
use crate::config::FlushMode;
use crate::error::{EngineError, Result};

impl Engine {
    /// Stores `messages` (one committed entry) as written at `store_timestamp` by `store_host` (the
    /// leader's), assigning queue and physical offsets now. Returns where each landed. See the module docs.
    pub async fn append_applied(
        &self,
        messages: &[Message],
        store_timestamp: i64,
        store_host: SocketAddr,
    ) -> Result<Vec<Appended>> {
        self.check_open()?;
        // The one refusal that does not depend on this replica's state: checked for every record before
        // any is encoded, so an entry is never half stored.
        let segment = self.commitlog.log.segment_size();
        for m in messages {
            let size = m.record(store_timestamp, store_host).encoded_len();
            if (size + apogee_net::record::BLANK_MIN_BYTES) as u64 > segment {
                return Err(EngineError::RecordLargerThanSegment { size, segment });
            }
        }
        self.make_room(messages, store_host).await?;
        let (out, dispatches) = self.encode(messages, store_timestamp, store_host)?;
        let end = self.encoded_up_to();
        match self.config.flush_mode {
            FlushMode::Async => self.dispatch_written(dispatches, end)?,
            // Visible once durable, as any SYNC_FLUSH record; the flusher is woken, not awaited.
            FlushMode::Sync => {
                self.pending.borrow_mut().extend(dispatches);
                self.flush_wanted.notify();
            }
        }
        Ok(out)
    }
}
