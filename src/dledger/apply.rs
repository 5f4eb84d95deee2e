//! The apply task (committed entries, in index order, into the commit log) and the checkpoint task (the
//! applied pair written after an engine flush).
//!
//! # Invariants
//! - Every committed entry is applied exactly once per process life, in index order, and never skipped:
//!   a refusal of this replica's engine (no space) is retried until it passes or the shard stops. An
//!   entry that does not decode stops applying for good (the shard then refuses sends, saying why):
//!   skipping it would make this log differ from the others.
//! - `Dledger::applied` moves only after an entry is wholly in the engine, together with the commit
//!   log's end, so the checkpoint task always reads a pair that matches the log.
//! - The Raft node is told an index as applied (and may then forget the entries up to it) only once the
//!   checkpoint file holds it: a restart replays from the checkpoint, so those entries must still be
//!   there. (Entries a peer that is down still lacks the node keeps in its WAL on its own, up to
//!   `wal_lagging_retain_bytes`.)

use std::rc::Rc;
use std::time::Duration;

use apogee_transport::StopSignal;
use futures::future::{select, Either};
use tracing::{error, info, warn};

use super::checkpoint::{self, Applied};
use super::{entry, Dledger};
use crate::broker::Broker;

/// How often the applied checkpoint is written when entries were applied since the last one.
pub const CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// How long a refused apply (no space) waits before it is tried again.
const APPLY_RETRY_MS: u64 = 200;

/// Applies committed entries until the node stops delivering them.
pub async fn run(broker: Rc<Broker>, d: Rc<Dledger>) {
    let engine = broker.engine.clone();
    while let Some(batch) = d.node.next_committed().await {
        for c in batch {
            let e = match entry::decode(&c.data) {
                Ok(e) => e,
                Err(err) => {
                    let reason =
                        format!("entry {} (term {}) does not decode: {err}", c.index, c.term);
                    error!(shard = broker.shard, group = %d.group, %reason, "Dledger: applying stopped; this replica takes no sends and must be rebuilt");
                    *d.failed.borrow_mut() = Some(reason);
                    d.role_news.notify();
                    return;
                }
            };
            let stored = if e.messages.is_empty() {
                Vec::new() // a leader's barrier: nothing to store
            } else {
                let mut attempt = 0u64;
                loop {
                    match engine
                        .append_applied(&e.messages, e.store_timestamp, e.store_host)
                        .await
                    {
                        Ok(stored) => break stored,
                        Err(apogee_engine::EngineError::ShuttingDown) => return,
                        Err(err @ apogee_engine::EngineError::RecordLargerThanSegment { .. }) => {
                            let reason = format!("entry {} can never be stored: {err}", c.index);
                            error!(shard = broker.shard, group = %d.group, %reason, "Dledger: applying stopped; this replica takes no sends (raise mappedFileSizeCommitLog)");
                            *d.failed.borrow_mut() = Some(reason);
                            d.role_news.notify();
                            return;
                        }
                        Err(err) => {
                            if attempt.is_multiple_of(50) {
                                warn!(shard = broker.shard, group = %d.group, index = c.index, error = %err, "Dledger: committed entry not applied yet; retrying");
                            }
                            attempt += 1;
                            glommio::timer::sleep(Duration::from_millis(APPLY_RETRY_MS)).await;
                            if broker.stopping.get() {
                                return;
                            }
                        }
                    }
                }
            };
            let (written, _, _) = engine.log_offsets();
            d.applied.set(Applied {
                index: c.index,
                offset: written,
            });
            let waiter = d.waiters.borrow_mut().remove(&e.proposal_id);
            if let Some(tx) = waiter {
                let _ = tx.send(stored);
            }
            // A batch holds up to 1024 entries: let requests run between them.
            glommio::yield_if_needed().await;
        }
    }
    info!(shard = broker.shard, group = %d.group, "Dledger apply task stopped");
}

/// Writes the applied checkpoint every [`CHECKPOINT_INTERVAL_MS`] until `stop`, then once more.
pub async fn run_checkpoints(broker: Rc<Broker>, d: Rc<Dledger>, stop: StopSignal) {
    loop {
        let tick = glommio::timer::sleep(Duration::from_millis(CHECKPOINT_INTERVAL_MS));
        if let Either::Right(_) = select(Box::pin(tick), stop.clone()).await {
            return;
        }
        if let Err(e) = checkpoint_now(&broker, &d).await {
            warn!(shard = broker.shard, group = %d.group, error = %e, "Dledger checkpoint not written; retrying");
        }
    }
}

/// Flushes the commit log and writes the applied pair taken before the flush; then lets the Raft node
/// forget what the checkpoint covers.
pub async fn checkpoint_now(broker: &Broker, d: &Dledger) -> Result<(), String> {
    let a = d.applied.get();
    if a == d.checkpointed.get() {
        return Ok(());
    }
    let durable = broker.engine.flush().await.map_err(|e| e.to_string())?;
    if durable < a.offset {
        return Err(format!(
            "the commit log is durable to {durable}, short of the applied offset {}",
            a.offset
        ));
    }
    checkpoint::write(&d.dir, a)
        .await
        .map_err(|e| e.to_string())?;
    d.checkpointed.set(a);
    d.node.applied(a.index);
    Ok(())
}
